"""Grade one submission: take its lab file, run the checks with pytest, collect results.

The checks run in this process, which never imports submitted code; they reach
the submission through ``Submission``, which forwards each request to a
sandboxed worker (``grader.sandbox``).
"""
from __future__ import annotations

from pathlib import Path

from grader.course import REPO_ROOT, LabError, get_lab
from grader.judge.intake import IntakeError, labs_submitted
from grader.judge.results import Results
from grader.judge.run import NoChecksSelected, run_checks
from grader.judge.session import GradingSession
from grader.sandbox.identity import Identity, landlock_abi
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


def _submission_dir(name: str) -> str:
    """A path as the user typed it; the bare words 'solutions' and 'labs' also name ours.

    A folder of that name in the current directory wins: paths mean what they mean in the user's shell.
    """
    if name in ("solutions", "labs") and not Path(name).is_dir():
        return str(REPO_ROOT / name)
    return name


def grade_labs(submission: str, labs: list[str], require_sandbox_user: bool = False, include_hidden: bool = True,
               require_confinement: bool = False, keyword: str | None = None):
    """``litlabs grade`` and ``check``: grade one submission for one or more labs; (Results, exit code). Never raises:
    bad input and grader failures are in the Results' error, exit code 2 (1: a grader error while grading)."""
    try:
        labs = labs or labs_submitted([_submission_dir(submission)])
        for lab in labs:
            get_lab(lab)  # before anything slow starts
        if require_confinement and not landlock_abi():
            raise LabError("refusing to run the submission without the Landlock file wall: this kernel has no "
                           "Landlock (Linux 5.13 or newer, enabled), or LITLABS_NO_LANDLOCK is set")
        with GradingSession() as session:
            import datamodules.splits  # noqa: F401 -- the checks' data (torch only: the judge never imports Lightning)

            if require_sandbox_user and not session.identity.isolated:
                raise LabError("refusing to run the submission without a separate unprivileged user: "
                               + session.identity.note)
            results = session.grade_labs(_submission_dir(submission), labs, include_hidden, keyword)
        return results, 1 if results.error else 0  # 0: grading completed, whatever the score
    except Exception as err:  # bad input or a grader failure: still leave results
        return Results(lab=" ".join(labs or []), error=str(err)), 2


__all__ = ["GradingSession", "IntakeError", "NoChecksSelected", "grade", "grade_labs", "grade_submission", "run_checks"]
