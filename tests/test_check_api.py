"""The one way to declare a check (``grader.kit.check.check``) and hidden-ness by folder alone."""
from __future__ import annotations

import math

import pytest

import grader.course as course
from grader.judge.grade import run_checks
from grader.judge.results import Results
from grader.kit.check import CheckDeclarationError, check


def _a_check():
    def test_something(submission):
        """something holds"""

    return test_something


@pytest.mark.parametrize("points", [0, -1, True, "2", math.nan, math.inf, None])
def test_check_refuses_points_that_are_not_a_positive_number(points):
    with pytest.raises(CheckDeclarationError, match="positive number of points"):
        check(points=points)


def test_check_refuses_a_hint_that_is_not_text_a_non_test_function_no_docstring_and_a_second_declaration():
    with pytest.raises(CheckDeclarationError, match="hint"):
        check(points=1, hint=["a list"])

    def helper(submission):
        """not a check"""

    with pytest.raises(CheckDeclarationError, match="test_"):
        check(points=1)(helper)

    def test_undocumented(submission):
        pass

    with pytest.raises(CheckDeclarationError, match="docstring"):
        check(points=1)(test_undocumented)
    declared = check(points=1)(_a_check())
    with pytest.raises(CheckDeclarationError, match="twice"):
        check(points=2)(declared)


def test_check_records_points_and_hint_for_the_catalog():
    declared = check(points=2, hint="look at the sign")(_a_check())
    assert course.spec_of(declared) == course.CheckSpec(2.0, "look at the sign")
    assert course.title_of(declared) == "something holds"
    assert course.spec_of(_a_check()) is None


CHECK_FILE = '''
from grader.kit.check import check


@check(points={points}, hint="a hint")
def test_{name}(submission):
    """{name} holds"""
    assert submission == "passes"
'''


@pytest.fixture
def lab_folders(tmp_path, monkeypatch):
    """A lab "demo" whose visible check sits in checks/ and whose other check sits in hidden/, with no marker."""
    (tmp_path / "grader" / "checks").mkdir(parents=True)
    (tmp_path / "grader" / "hidden").mkdir()
    (tmp_path / "grader" / "checks" / "test_demo.py").write_text(CHECK_FILE.format(points=2, name="seen"))
    (tmp_path / "grader" / "hidden" / "test_demo.py").write_text(CHECK_FILE.format(points=3, name="unseen"))
    monkeypatch.setattr(course, "CHECKS_DIR", tmp_path / "grader" / "checks")
    monkeypatch.setattr(course, "HIDDEN_DIR", tmp_path / "grader" / "hidden")
    return tmp_path


def test_a_check_in_hidden_is_hidden_everywhere_without_a_marker(lab_folders):
    from grader.instructor.release import points_table

    checks = {c.name: c.hidden for c in course.checks_of("demo")}
    assert checks == {"test_seen": False, "test_unseen": True}
    assert [c.name for c in course.checks_of("demo", include_hidden=False)] == ["test_seen"]
    table = points_table("demo")
    assert "seen holds | 2" in table and "unseen holds" not in table and "graded after the deadline | 3" in table

    plugin = run_checks(course.check_files("demo"), submission="passes")
    results = Results(lab="demo", outcomes=plugin.outcomes)
    visibility = {t["name"]: t["visibility"] for t in results.gradescope()["tests"]}
    assert visibility == {"seen holds": "visible", "unseen holds": "after_published"}
    assert results.score == 5


def test_an_undeclared_test_function_in_a_check_file_stops_the_grading(lab_folders):
    with open(lab_folders / "grader" / "checks" / "test_demo.py", "a") as f:
        f.write('\n\ndef test_forgot_the_decorator(submission):\n    """no points"""\n')
    with pytest.raises(RuntimeError, match="could not be run"):
        run_checks(course.check_files("demo"), submission="passes")
