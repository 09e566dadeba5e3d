"""Take only the graded lab file from a submission directory, and say what was left out.

A lab file is taken only as a regular file inside the submission directory
(no symlinks, no escaping through a symlinked folder). Everything else a
submission holds — conftest.py, sitecustomize.py, .pth files, packages named
like ours or like torch — is ignored and listed in the report.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

MAX_LAB_FILE_BYTES = 1024 * 1024
# Ignored like everything else, but named in the report because they look like tampering.
SUSPICIOUS = {"conftest.py", "sitecustomize.py", "usercustomize.py", "solutions", "grader", "torch",
              "lightning", "torchmetrics", "pytest", "datamodules", "labs"}


class IntakeError(Exception):
    """The submission directory itself is unusable (missing, not a directory)."""


@dataclass
class Intake:
    lab_file: Path | None  # the regular file to grade, or None
    problem: str = ""  # why there is no lab file
    notes: list[str] = field(default_factory=list)


def _is_regular_inside(path: Path, root: Path) -> bool:
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        return False
    # no component between root and the file may be a symlink
    return os.path.realpath(path) == os.path.join(os.path.realpath(root), os.path.relpath(path, root))


def take_lab_file(submission_dir: str | Path, filename: str) -> Intake:
    root = Path(submission_dir)
    if not root.is_dir():
        raise IntakeError(f"submission directory {root} does not exist or is not a directory")
    candidates, notes = [], []
    for dirpath, dirnames, filenames in os.walk(root):  # os.walk does not follow symlinked folders
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__pycache__")))
        for name in sorted(filenames + [d for d in dirnames if d in SUSPICIOUS]):
            path = Path(dirpath) / name
            relative = path.relative_to(root)
            if name == filename:
                if _is_regular_inside(path, root):
                    candidates.append(path)
                else:
                    notes.append(f"ignored {relative}: not a regular file inside the submission (a symlink?)")
            elif name in SUSPICIOUS or name.endswith(".pth"):
                notes.append(f"ignored {relative}: only {filename} is graded; everything else comes from the release")
    if not candidates:
        return Intake(None, f"no regular file named {filename} in the submission", notes)
    # Prefer the shallowest copy (e.g. ./logreg.py over ./labs/logreg.py over deeper ones).
    candidates.sort(key=lambda p: (len(p.relative_to(root).parts), str(p)))
    chosen = candidates[0]
    if len(candidates) > 1:
        notes.append(f"graded {chosen.relative_to(root)}; ignored other copies: "
                     + ", ".join(str(p.relative_to(root)) for p in candidates[1:]))
    if chosen.stat().st_size > MAX_LAB_FILE_BYTES:
        return Intake(None, f"{chosen.relative_to(root)} is larger than {MAX_LAB_FILE_BYTES // 1024} KiB", notes)
    return Intake(chosen, "", notes)


def labs_submitted(directories) -> list[str]:
    """The labs whose files (LAB.py, anywhere inside) the submission directories hold, in registry order.

    Raises IntakeError when there is none: the user then names the lab with --lab.
    """
    from grader.course import LABS

    found = set()
    for directory in directories:
        if not Path(directory).is_dir():
            raise IntakeError(f"submission directory {directory} does not exist or is not a directory")
        for _, dirnames, filenames in os.walk(directory):
            dirnames[:] = [d for d in dirnames if not d.startswith((".", "__pycache__"))]
            found.update(name[:-3] for name in filenames if name.endswith(".py") and name[:-3] in LABS)
    if not found:
        names = ", ".join(f"{lab}.py" for lab in LABS)
        where = ", ".join(str(d) for d in directories[:3]) + (" ..." if len(directories) > 3 else "")
        raise IntakeError(f"no lab file ({names}) in {where}: pass --lab to say which lab to grade")
    return [lab for lab in LABS if lab in found]
