"""One grading session: what grading needs, put together in one place.

A session holds the identity workers run as (``choose_identity``), the file-mode fallback's hiding of
the reference and hidden checks (where Landlock is missing), and a warm zygote, for as long as it is
open. ``grade``, ``litlabs grade`` and ``check``, ``validate``, ``audit`` and ``grade-all`` all grade
through one::

    with GradingSession() as session:
        results = session.grade("submissions/ada", "logreg")
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path

from grader.course import check_files, get_lab
from grader.judge.intake import take_lab_file
from grader.judge.results import Results, merge
from grader.judge.run import NoChecksSelected, read_the_rules, run_checks
from grader.kit.program import Submission
from grader.sandbox.client import Sandbox
from grader.sandbox.hiding import hidden_from_sandbox, paths_to_hide
from grader.sandbox.identity import Identity, choose_identity, describe_layers, landlock_abi
from grader.sandbox.limits import Limits
from grader.sandbox.zygote import Zygote


class GradingSession:
    """Identity, hiding and zygote for a run of gradings; a context manager.

    identity, zygote: given ones are used (a given zygote is not closed); otherwise made here.
    eager: start the zygote on entering (it imports Lightning while the judge works) rather than at
    the first submission that has code to run.
    """

    def __init__(self, identity: Identity | None = None, zygote: Zygote | None = None,
                 limits: Limits | None = None, eager: bool = True):
        self.identity, self.limits, self._zygote, self._eager = identity, limits, zygote, eager
        self._own_zygote = zygote is None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> GradingSession:
        try:
            self.identity = self.identity or choose_identity()
            self._stack.enter_context(hidden_from_sandbox(paths_to_hide(self.identity)))
            self._stack.callback(self._close_zygote)
            if self._eager:
                self.zygote()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def zygote(self) -> Zygote:
        """The session's zygote, started now if it was not, and started again if a submission killed it."""
        if self._zygote is not None and self._own_zygote and not self._zygote.alive():
            self._close_zygote()
        if self._zygote is None:
            self._zygote, self._own_zygote = Zygote(), True
        return self._zygote

    def _close_zygote(self) -> None:
        if self._own_zygote and self._zygote is not None:
            self._zygote.close()
            self._zygote = None

    def grade(self, submission_dir: str | Path, lab_name: str, include_hidden: bool = True,
              keyword: str | None = None) -> Results:
        """Grade one lab of a submission directory; never raises for anything the submission does.

        ``keyword`` runs only the checks it selects (pytest's -k). Raises IntakeError (missing directory),
        LabError (unknown lab) and NoChecksSelected: the caller's mistakes, not the submission's.
        """
        started = time.monotonic()
        lab = get_lab(lab_name)
        intake = take_lab_file(submission_dir, lab.filename)
        results = Results(lab=lab.name, notes=[*intake.notes, self.identity.note])
        self._run_checks(results, intake, check_files(lab.name, include_hidden), keyword)
        results.execution_time = time.monotonic() - started
        return results

    def grade_labs(self, submission_dir: str | Path, labs: list[str], include_hidden: bool = True,
                   keyword: str | None = None) -> Results:
        """Grade one submission for one or more labs into one Results."""
        return merge([self.grade(submission_dir, lab, include_hidden, keyword) for lab in labs])

    def _run_checks(self, results: Results, intake, files: list[Path], keyword: str | None) -> None:
        sandbox = None
        try:
            refused, breaches = read_the_rules(intake, results.lab)
            if refused:
                intake = dataclasses.replace(intake, lab_file=None, problem=f"the submission {refused}")
            if intake.lab_file is None:
                submission = Submission(None, intake.problem)
            else:
                sandbox = Sandbox(self.zygote(), intake.lab_file, self.identity, self.limits,
                                  landlock=landlock_abi() > 0)
                submission = Submission(sandbox, breaches=breaches)
            results.outcomes = run_checks(files, submission, keyword).outcomes
            if refused:
                results.problem = f"the submission {refused}"
                results.notes.insert(0, f"The submission {refused}.")  # refused says it was not run, and why
            elif intake.lab_file is None:
                results.problem = intake.problem
                results.notes.insert(0, f"Nothing to grade: {intake.problem}.")
            elif sandbox.import_error:
                results.problem = sandbox.import_error
                results.notes.insert(0, sandbox.import_error)
            if sandbox is not None:
                results.confinement = describe_layers(self.identity, sandbox.confinement, sandbox.uid)
                results.notes.append(results.confinement)
            broken = [o for o in results.outcomes if o.grader_error]
            if broken:  # never let a failure of the judge pass for the student's grade
                results.error = (f"{len(broken)} check(s) broke inside the grader, first {broken[0].check}: "
                                 f"{broken[0].reason}")
        except NoChecksSelected:
            raise  # the caller's mistake, not the grader's
        except Exception as err:  # a failure of the grader itself: score 0, and say why
            results.error = f"{type(err).__name__}: {err}"
        finally:
            if sandbox is not None:
                sandbox.close()
