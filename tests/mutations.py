"""Deliberately wrong implementations of a lab: the reference with one mistake, graded for real.

Shared by the tests of each lab's checks (tests/test_LAB_submissions.py).
"""
import os

import pytest

from grader.course import REPO_ROOT, checks_of
from grader.instructor.audit import apply, audit_lab, variants_of
from grader.judge.grade import grade
from grader.sandbox.identity import choose_identity
from grader.sandbox.limits import Limits

LIMITS = Limits(call_seconds=10, import_seconds=10)


class LabSources:
    """A lab's reference and stub, its checks, and a way to grade variants of the reference."""

    def __init__(self, lab: str):
        self.lab = lab
        self.reference = (REPO_ROOT / "solutions" / f"{lab}.py").read_text()
        self.stub = (REPO_ROOT / "labs" / f"{lab}.py").read_text()
        self.checks = {c.name for c in checks_of(lab)}
        self.full = sum(c.points for c in checks_of(lab))
        mistakes, alternatives = variants_of(lab, students=False)  # the pinned table
        self.mistake_names = [m.name for m in mistakes]
        self.alternative_names = [a.name for a in alternatives]
        self._variants = {v.name: v for v in mistakes + alternatives}

    def variant(self, name: str) -> str:
        """The submission of a mistake or alternative in grader/mistakes/LAB.py."""
        return apply(self.reference, self._variants[name])

    def grade(self, folder, zygote, source: str, keyword: str | None = None):
        """Grade source as a submission in folder; keyword selects checks as pytest -k."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self.lab}.py").write_text(source)
        results = grade(folder, self.lab, zygote=zygote, identity=choose_identity(), limits=LIMITS,
                        keyword=keyword)
        assert not results.error, results.error
        return results


def failed(results) -> set[str]:
    return {o.check for o in results.outcomes if not o.passed}


def audited(lab: str):
    """A module fixture: the lab's mistakes and alternatives (grader/mistakes/LAB.py), graded once, quick."""
    @pytest.fixture(scope="module")
    def audit():
        # under pytest-xdist the other worker has the second core
        return audit_lab(lab, jobs=1 if os.environ.get("PYTEST_XDIST_WORKER") else 2, quick=True, students=False)

    return audit


def assert_caught_as_pinned(audit, name: str) -> None:
    """The mistake is graded, fails the checks its table pins (or some check), and loses their points."""
    row = audit.row(name)
    assert not row.problem, row.problem
    expected = row.variant.caught_by
    assert row.failed == expected if expected is not None else row.failed, sorted(row.failed)
    points = {c.name: c.points for c in audit.checks}
    assert row.lost == sum(points[c] for c in row.failed)


def assert_full_marks(audit, name: str) -> None:
    row = audit.row(name)
    assert not row.problem and not row.failed and row.lost == 0, (row.problem, row.reasons)


def assert_every_check_catches_something(audit) -> None:
    caught = set().union(*(r.failed for r in audit.mistakes))
    assert {c.name for c in audit.checks} - caught == set()
