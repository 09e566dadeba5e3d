"""Deliberately wrong implementations of a lab: the reference with one mistake, graded for real.

Shared by the tests of each lab's checks (tests/test_LAB_submissions.py).
"""
from grader.catalog import checks_of
from grader.grade import grade
from grader.labs import REPO_ROOT
from grader.sandbox import Limits, choose_identity

LIMITS = Limits(call_seconds=10, import_seconds=10)


class LabSources:
    """A lab's reference and stub, its checks, and a way to grade variants of the reference."""

    def __init__(self, lab: str):
        self.lab = lab
        self.reference = (REPO_ROOT / "solutions" / f"{lab}.py").read_text()
        self.stub = (REPO_ROOT / "labs" / f"{lab}.py").read_text()
        self.checks = {c.name for c in checks_of(lab)}
        self.full = sum(c.points for c in checks_of(lab))

    def mutate(self, *replacements) -> str:
        """The reference with each (old, new) replaced once; old must be there."""
        source = self.reference
        for old, new in replacements:
            assert source.count(old) >= 1, f"mutation target not found: {old!r}"
            source = source.replace(old, new, 1)
        return source

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
