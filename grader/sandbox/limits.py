"""What a worker may use, and the errors a request can end with.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


class SubmissionError(Exception):
    """The submitted code failed, hung, crashed or returned something unusable; one line says how."""


class GraderError(RuntimeError):
    """The grader's own machinery failed (not the submission): grading reports a grader error."""


@dataclass
class Limits:
    """What one submission may use. Every request runs in a fresh worker under these limits.

    A training request has a CPU-time budget of its own (set by the check from what the reference
    needs, see ``Submission.fit``); its wall-clock deadline is ``wall_per_cpu`` times that budget,
    so a machine with half a CPU (Gradescope's default) still finishes the reference.
    """

    call_seconds: float = 10.0  # one function call
    import_seconds: float = 20.0
    fit_cpu_seconds: float = 60.0  # a training request whose check sets no budget of its own
    wall_per_cpu: float = 4.0  # wall-clock deadline of a training request per second of its CPU budget
    total_seconds: float = 480.0  # every request of one submission together (wall clock)
    memory_bytes: int = 3 * 1024**3  # address space the submission may add to the worker
    file_bytes: int = 64 * 1024**2
    processes: int = 256  # only applied when the worker runs as a sandbox user
    output_bytes: int = 4096  # how much of the worker's output is kept


def worker_env(workdir: str) -> dict[str, str]:
    """The whole environment a worker sees: nothing of the grader's."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


IMPORT_CPU_SECONDS = 1  # CPU time a worker has for starting and importing the submission, on top of its request's

# Where the fallback below keeps the original modes while paths are hidden (root only).
HIDDEN_STATE_DIR = Path(os.environ.get("LITLABS_HIDDEN_STATE_DIR", "/run/litlabs" if os.path.isdir("/run") else
                                       tempfile.gettempdir()))
