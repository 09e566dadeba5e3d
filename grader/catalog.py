"""What checks a lab has and what they are worth, read from the check modules themselves.

Handouts and the gradebook take points from here, so they cannot drift from
the checks that award them.
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from .labs import REPO_ROOT

CHECKS_DIR = REPO_ROOT / "grader" / "checks"
HIDDEN_DIR = REPO_ROOT / "grader" / "hidden"
# What submitted code must never read: hidden from the sandbox user while grading as root.
# git's objects hold the reference too, and the audit's mistakes quote it
PRIVATE_PATHS = (REPO_ROOT / "solutions", HIDDEN_DIR, REPO_ROOT / ".git", REPO_ROOT / "grader" / "mistakes")


@dataclass(frozen=True)
class CheckInfo:
    name: str
    title: str
    points: float
    hidden: bool
    hint: str


def check_files(lab: str, include_hidden: bool = True) -> list[Path]:
    files = [CHECKS_DIR / f"test_{lab}.py"]
    hidden = HIDDEN_DIR / f"test_{lab}.py"
    if include_hidden and hidden.exists():
        files.append(hidden)
    return files


def _marks(function) -> dict:
    marks = {}
    for mark in getattr(function, "pytestmark", []):
        marks[mark.name] = mark.args[0] if mark.args else True
    return marks


def _load(path: Path):
    name = f"litlabs_catalog_{path.parent.name}_{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def checks_of(lab: str, include_hidden: bool = True) -> list[CheckInfo]:
    """The lab's checks in the order the grader runs them."""
    found = []
    for path in check_files(lab, include_hidden):
        module = _load(path)
        for name, function in vars(module).items():
            if not (name.startswith("test_") and callable(function)):
                continue
            marks = _marks(function)
            title = (function.__doc__ or name).strip().splitlines()[0]
            found.append(CheckInfo(name, title, float(marks.get("points", 0)), bool(marks.get("hidden", False)),
                                   str(marks.get("hint", ""))))
    return found
