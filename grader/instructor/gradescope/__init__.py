"""``litlabs gradescope OUT.zip``: an autograder bundle per Gradescope's specification.

The zip holds ``setup.sh`` and ``run_autograder`` at its root, beside the
litlabs source that Gradescope unpacks into ``/autograder/source``:
pyproject.toml, datamodules/, grader/ (hidden checks included; not the audit's mistakes), labs/.
The reference solutions are not in it: the checks need only torch.
"""
from __future__ import annotations

import os
import shlex
import stat
import zipfile
from pathlib import Path

from grader.course import REPO_ROOT, get_lab

HERE = Path(__file__).resolve().parent
MISTAKES_DIR = REPO_ROOT / "grader" / "mistakes"  # `litlabs audit`'s tables quote the reference: never shipped
SOURCES = ("pyproject.toml", "README.md", "datamodules", "grader", "labs")


def _files():
    for name in SOURCES:
        path = REPO_ROOT / name
        if path.is_file():
            yield path
        else:
            for file in sorted(path.rglob("*")):
                if file.is_file() and "__pycache__" not in file.parts and not file.is_relative_to(MISTAKES_DIR):
                    yield file


def _add(bundle: zipfile.ZipFile, arcname: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))  # a reproducible zip
    info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    bundle.writestr(info, data)


def build_bundle(out_zip: str | Path, labs: list[str]) -> Path:
    for name in labs:
        get_lab(name)
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    run = (HERE / "run_autograder").read_text().replace("__LABS__", " ".join(shlex.quote(n) for n in labs))
    tmp = out_zip.with_name(f".{out_zip.name}.tmp")
    with zipfile.ZipFile(tmp, "w") as bundle:
        _add(bundle, "setup.sh", (HERE / "setup.sh").read_bytes(), executable=True)
        _add(bundle, "run_autograder", run.encode(), executable=True)
        for file in _files():
            _add(bundle, str(file.relative_to(REPO_ROOT)), file.read_bytes(), os.access(file, os.X_OK))
    os.replace(tmp, out_zip)
    return out_zip
