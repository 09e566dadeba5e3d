"""The file-mode fallback where Landlock is missing: the reference and hidden checks unreadable while grading.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import stat
from pathlib import Path

from grader.sandbox import processes
from grader.sandbox.identity import Identity, landlock_abi
from grader.sandbox.limits import HIDDEN_STATE_DIR


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    fields = processes.stat_fields(pid)
    return fields is None or fields[0] != "Z"  # a zombie is not a holder: it can no longer restore anything


def _hidden_state(paths) -> tuple[Path, Path]:
    import hashlib

    key = hashlib.sha1("\0".join(sorted(map(str, paths))).encode()).hexdigest()[:16]
    HIDDEN_STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    return HIDDEN_STATE_DIR / f"hidden-{key}.json", HIDDEN_STATE_DIR / f"hidden-{key}.lock"


def _update_hidden(paths, holder: int, joining: bool) -> None:
    """Join or leave the gradings that hide paths; the first hides them, the last restores them.

    The original modes live in a state file, so they survive any grading: a second grading
    does not mistake the hidden modes for the originals, and a holder that died (SIGKILL)
    is dropped the next time anyone looks.
    """
    state_file, lock_file = _hidden_state(paths)
    with open(lock_file, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            state = {"modes": {}, "holders": []}
        holders = [pid for pid in state["holders"] if pid != holder and _alive(pid)]
        modes = state["modes"]
        if not holders and not joining:  # the last one out restores the originals
            for path, mode in modes.items():
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(path, mode)
            state_file.unlink(missing_ok=True)
            return
        if joining:
            for path in map(str, paths):
                if path not in modes and os.path.exists(path):
                    modes[path] = stat.S_IMODE(os.stat(path).st_mode)  # first sight: the original
            holders.append(holder)
        from grader.files import write_text_atomically

        # The record first, the chmods after: a judge killed between them (SIGKILL, the memory limit)
        # leaves its guardian the originals to restore, never hidden files and no record of them.
        write_text_atomically(json.dumps({"modes": modes, "holders": holders}), state_file)
        if joining:
            for path in map(str, paths):
                if path in modes:
                    os.chmod(path, modes[path] & ~0o077)


@contextlib.contextmanager
def hidden_from_sandbox(paths):
    """The fallback where Landlock is missing: while grading as root, the reference and the hidden
    checks are unreadable to others, and afterwards they have their original modes again.

    Crash-safe: a guardian process (its own session) restores the modes when this process
    ends in any way, SIGKILL included; concurrent gradings share one record of the originals.
    """
    paths = [str(Path(p).resolve()) for p in paths if Path(p).exists()]
    if not paths:
        yield
        return
    read_end, write_end = os.pipe()
    guardian = os.fork()
    if guardian == 0:  # waits until the grader closes the pipe or dies, then leaves
        code = 1
        try:
            os.setsid()
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            os.close(write_end)
            while os.read(read_end, 1):
                pass
            _update_hidden(paths, os.getpid(), joining=False)
            code = 0
        finally:
            os._exit(code)
    os.close(read_end)
    try:
        _update_hidden(paths, guardian, joining=True)
        yield
    finally:
        os.close(write_end)
        _, status = os.waitpid(guardian, 0)
        if status != 0:  # the guardian itself was killed: leave in its place
            _update_hidden(paths, guardian, joining=False)


def paths_to_hide(identity: Identity) -> list:
    """What the file-mode fallback hides: the reference and hidden checks, only where the worker runs
    as another user and Landlock is missing (Landlock walls off every copy, without root)."""
    from grader.course import PRIVATE_PATHS

    # Not the offline data files: they belong to the installation, which other users run at the same time
    # (the README's threat model says what the worker can read without Landlock).
    return list(PRIVATE_PATHS) if identity.isolated and not landlock_abi() else []
