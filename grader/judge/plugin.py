"""The pytest plugin that turns check outcomes into a grade.

Checks are pytest tests declared with ``grader.kit.check.check(points=…, hint=…)``; a check in
``grader/hidden/`` is hidden (the folder alone says so). The first line of a check's docstring is its
name in reports. Checks get the submitted code through the ``submission`` fixture
(a ``grader.kit.program.Submission``).
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from grader.course import is_hidden, spec_of, title_of
from grader.kit.expect import CheckFailed
from grader.sandbox.limits import SubmissionError


@dataclass
class Outcome:
    check: str  # the test function's name
    title: str  # its docstring's first line
    points: float
    hidden: bool
    passed: bool
    reason: str = ""
    hint: str = ""
    grader_error: bool = False  # the check broke inside the judge: not the submission's doing

    @property
    def score(self) -> float:
        return self.points if self.passed else 0.0


GRADER_ERROR = "grader error (please tell the course staff)"


def is_verdict(error: BaseException) -> bool:
    """Did the check fail because of the submission (True), or break inside the judge?"""
    return isinstance(error, (SubmissionError, AssertionError))  # CheckFailed is an AssertionError


def reason_from(excinfo) -> str:
    """One line (or a few) for the report; a judge bug is labelled as such."""
    error = excinfo.value
    if isinstance(error, (SubmissionError, CheckFailed)):
        return str(error)
    if isinstance(error, AssertionError):  # a plain assert in a check
        return str(error).split("\nassert ")[0].strip() or "assertion failed"
    return f"{GRADER_ERROR}: {type(error).__name__}: {error}"


class GradingPlugin:
    def __init__(self, submission):
        self._submission = submission
        self.outcomes: list[Outcome] = []

    @pytest.fixture(scope="session")
    def submission(self):
        return self._submission

    def pytest_collection_modifyitems(self, items):
        for item in items:
            if spec_of(item.function) is None:
                raise pytest.UsageError(f"{item.nodeid} is not declared a check: decorate it with "
                                        "@check(points=…, hint=…) from grader.kit.check")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item, call):
        """Record the outcome, and give pytest a report without a formatted traceback.

        Nobody reads pytest's own report here, and formatting a long traceback for
        every failed check costs tens of milliseconds each (most of a stub's grading time).
        """
        excinfo = call.excinfo
        skipped = excinfo is not None and excinfo.errisinstance(pytest.skip.Exception)
        passed = excinfo is None
        if call.when == "call" or (call.when == "setup" and not passed):
            spec = spec_of(item.function)
            self.outcomes.append(Outcome(
                check=item.name, title=title_of(item.function), points=spec.points, hidden=is_hidden(item.path),
                passed=passed, reason="" if passed else "skipped" if skipped else reason_from(excinfo),
                hint="" if passed else spec.hint,
                grader_error=not passed and not skipped and not is_verdict(excinfo.value),
            ))
        if skipped:
            return None  # pytest builds its usual report for a skip
        longrepr = None if passed else f"{excinfo.typename}: {excinfo.value}"
        return pytest.TestReport(item.nodeid, item.location, {}, "passed" if passed else "failed", longrepr,
                                 call.when, duration=call.duration, start=call.start, stop=call.stop)
