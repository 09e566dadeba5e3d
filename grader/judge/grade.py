"""Grade one submission: take its lab file, run the checks with pytest, collect results.

The checks run in this process, which never imports submitted code; they reach
the submission through ``Submission``, which forwards each request to a
sandboxed worker (``grader.sandbox``).
"""
from __future__ import annotations

from pathlib import Path

from grader.judge.intake import IntakeError
from grader.judge.results import Results
from grader.judge.run import NoChecksSelected, run_checks
from grader.judge.session import GradingSession
from grader.sandbox.identity import Identity
from grader.sandbox.limits import Limits
from grader.sandbox.zygote import Zygote


def grade(submission_dir: str | Path, lab_name: str = "logreg", include_hidden: bool = True,
          zygote: Zygote | None = None, identity: Identity | None = None, limits: Limits | None = None,
          keyword: str | None = None) -> Results:
    """Grade one lab of a submission directory in a session of its own (see ``GradingSession.grade``).

    A given zygote and identity are used, not closed; otherwise they are made for this grading only.
    """
    with GradingSession(identity, zygote, limits, eager=False) as session:
        return session.grade(submission_dir, lab_name, include_hidden, keyword)


def grade_submission(submission_dir: str | Path, labs: list[str], zygote: Zygote, identity: Identity,
                     include_hidden: bool = True, limits: Limits | None = None, keyword: str | None = None) -> Results:
    """Grade one submission for one or more labs into one Results (see ``GradingSession.grade_labs``)."""
    with GradingSession(identity, zygote, limits, eager=False) as session:
        return session.grade_labs(submission_dir, labs, include_hidden, keyword)


__all__ = ["GradingSession", "IntakeError", "NoChecksSelected", "grade", "grade_submission", "run_checks"]
