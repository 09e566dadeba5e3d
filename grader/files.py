"""Writing files so that a reader sees the old one or the whole new one, never half of one.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_text_atomically(text: str, path: str | Path) -> Path:
    """Write text to a temporary file beside path, then rename it over path.

    A reader sees the old file or the whole new one, never half of it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def write_json_atomically(document: dict, path: str | Path) -> Path:
    return write_text_atomically(json.dumps(document, indent=2) + "\n", path)
