"""Grade one submission: take its lab file, run the checks with pytest, collect results.

The checks run in this process, which never imports submitted code; they reach
the submission through ``Submission``, which forwards each request to a
sandboxed worker (``grader.sandbox``).
"""
from __future__ import annotations

import ast
import contextlib
import dataclasses
import io
import os
import time
from pathlib import Path

import pytest

from grader.course import REPO_ROOT, LabError, check_files, get_lab
from grader.judge.intake import IntakeError, take_lab_file
from grader.judge.plugin import GradingPlugin
from grader.judge.results import Results, merge
from grader.kit.program import Submission
from grader.sandbox.client import Sandbox
from grader.sandbox.hiding import hidden_from_sandbox, paths_to_hide
from grader.sandbox.identity import Identity, choose_identity, describe_layers, landlock_abi
from grader.sandbox.limits import Limits
from grader.sandbox.zygote import Zygote


class NoChecksSelected(LabError):
    """A -k expression that selects none of a lab's checks."""


def run_checks(files: list[Path], submission: Submission, keyword: str | None = None) -> GradingPlugin:
    """Run the checks in files against the submission; ``keyword`` selects some of them, as pytest's -k."""
    plugin = GradingPlugin(submission)
    args = [str(f) for f in files] + (["-k", keyword] if keyword else []) + [
        "-c", str(REPO_ROOT / "grader" / "pytest.ini"), "--rootdir", str(REPO_ROOT / "grader"),
        "-p", "no:cacheprovider", "-p", "no:terminal", "--import-mode=importlib",
        # These two gc.collect() a heap full of torch several times per session (a second each).
        "-p", "no:unraisableexception", "-p", "no:threadexception",
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        code = pytest.main(args, plugins=[plugin])
    if code in (pytest.ExitCode.NO_TESTS_COLLECTED, pytest.ExitCode.USAGE_ERROR) and keyword:
        raise NoChecksSelected(f"no check matches -k {keyword!r}: give words from the check names that "
                               "`litlabs check LAB` lists, e.g. -k batchnorm")
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        raise RuntimeError(f"the checks could not be run (pytest exit code {int(code)})")
    return plugin


def grade(submission_dir: str | Path, lab_name: str = "logreg", include_hidden: bool = True,
          zygote: Zygote | None = None, identity: Identity | None = None, limits: Limits | None = None,
          keyword: str | None = None) -> Results:
    """Grade a submission directory; never raises for anything the submission does.

    ``keyword`` runs only the checks it selects (pytest's -k), for a quick look at a few of them.

    Raises IntakeError (missing directory) and LabError (unknown lab): those are
    the caller's mistakes, not the submission's.
    """
    started = time.monotonic()
    lab = get_lab(lab_name)
    intake = take_lab_file(submission_dir, lab.filename)
    results = Results(lab=lab.name, notes=list(intake.notes))
    identity = identity or choose_identity()
    results.notes.append(identity.note)
    with hidden_from_sandbox(paths_to_hide(identity)):
        _run(results, intake, lab, include_hidden, zygote, identity, limits, landlock_abi() > 0, keyword)
    results.execution_time = time.monotonic() - started
    return results


def static_policy_on() -> bool:
    """The static policy is on unless LITLABS_NO_POLICY is set (the tests of the walls behind it set it)."""
    return not os.environ.get("LITLABS_NO_POLICY")


def read_the_rules(intake, lab_name: str) -> tuple[str, dict]:
    """The integrity policy and the lab's scoped rules, read off the submitted source in the judge.

    Returns (why the submission may not run, or ""; {rule name: [Violation]} of the lab's rules).
    """
    from grader.judge import policy

    if intake.lab_file is None or not static_policy_on():
        return "", {}
    source = intake.lab_file.read_bytes()
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return "", {}  # the worker's import says what and where, as Python itself would (and runs nothing)
    found = policy.scan(source, intake.lab_file.name)
    if found:
        more = f"; and {len(found) - 1} more: " + "; ".join(map(str, found[1:4])) if len(found) > 1 else ""
        return f"breaks a rule every submission must follow, so it was not run: {found[0]}{more}", {}
    breaches: dict = {}
    if lab_name in policy.LAB_RULES:
        for violation in policy.lab_rules(lab_name, source, intake.lab_file.name):
            breaches.setdefault(violation.rule, []).append(violation)
    return "", breaches


def _run(results, intake, lab, include_hidden, zygote, identity, limits, landlock, keyword=None) -> None:
    own_zygote = zygote is None
    sandbox = None
    try:
        refused, breaches = read_the_rules(intake, lab.name)
        if refused:
            intake = dataclasses.replace(intake, lab_file=None, problem=f"the submission {refused}")
        if intake.lab_file is None:
            submission = Submission(None, intake.problem)
        else:
            zygote = zygote or Zygote()
            sandbox = Sandbox(zygote, intake.lab_file, identity, limits, landlock=landlock)
            submission = Submission(sandbox, breaches=breaches)
        plugin = run_checks(check_files(lab.name, include_hidden), submission, keyword)
        results.outcomes = plugin.outcomes
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
            results.confinement = describe_layers(identity, sandbox.confinement, sandbox.uid)
            results.notes.append(results.confinement)
        broken = [o for o in results.outcomes if o.grader_error]
        if broken:  # never let a failure of the judge pass for the student's grade
            results.error = f"{len(broken)} check(s) broke inside the grader, first {broken[0].check}: {broken[0].reason}"
    except NoChecksSelected:
        raise  # the caller's mistake, not the grader's
    except Exception as err:  # a failure of the grader itself: score 0, and say why
        results.error = f"{type(err).__name__}: {err}"
    finally:
        if sandbox is not None:
            sandbox.close()
        if own_zygote and zygote is not None:
            zygote.close()


def grade_submission(submission_dir: str | Path, labs: list[str], zygote: Zygote, identity: Identity,
                     include_hidden: bool = True, limits: Limits | None = None, keyword: str | None = None) -> Results:
    """Grade one submission for one or more labs into one Results (see ``grade``)."""
    return merge([grade(submission_dir, lab, include_hidden=include_hidden, zygote=zygote, identity=identity,
                        limits=limits, keyword=keyword) for lab in labs])


__all__ = ["IntakeError", "NoChecksSelected", "grade", "grade_submission", "run_checks"]
