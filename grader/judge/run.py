"""Running a lab's checks against one submission: the static rules read off its source, then a pytest session
whose plugin collects the outcomes.
"""
from __future__ import annotations

import ast
import contextlib
import io
import os
from pathlib import Path

import pytest

from grader.course import REPO_ROOT, LabError
from grader.judge.plugin import GradingPlugin
from grader.kit.program import Submission


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
