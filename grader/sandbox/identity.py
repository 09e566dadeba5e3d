"""Who the worker runs as, and the walls around it: the user, a uid per grading, Landlock's paths.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from grader.course import REPO_ROOT
from grader.sandbox import processes
from grader.sandbox.limits import HIDDEN_STATE_DIR, GraderError

SANDBOX_USER = os.environ.get("LITLABS_SANDBOX_USER", "nobody")


# --- who the submission runs as ------------------------------------------------------

@dataclass
class Identity:
    uid: int | None  # None: the grader's own user
    gid: int | None
    note: str  # what the report says about it
    isolated: bool


def _others_can_read(path: Path) -> bool:
    """Can a user who is neither owner nor in the group read path (and reach it)?"""
    path = Path(path).resolve()
    for parent in reversed(path.parents):
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return False
    return bool(os.stat(path).st_mode & stat.S_IROTH)


def interpreter_files() -> list[Path]:
    import importlib.util

    # Found, not imported: the judge never imports Lightning (its memory; see Zygote).
    torch, lightning = (importlib.util.find_spec(name).origin for name in ("torch", "lightning"))
    return [Path(sys.executable), Path(torch), Path(lightning), Path(__file__)]


def choose_identity(user: str = SANDBOX_USER) -> Identity:
    """Run as an unprivileged user when the grader is root and that user can run Python here."""
    if os.geteuid() != 0:
        return Identity(None, None, f"The submission ran as the grader's own user ({pwd.getpwuid(os.geteuid()).pw_name}), "
                        "not in a separate account: it could read what the grader can read.", False)
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return Identity(None, None, f"WARNING: the submission ran with the grader's privileges (root): "
                        f"there is no user {user!r} to run it as.", False)
    unreadable = [str(p) for p in interpreter_files() if not _others_can_read(p)]
    if unreadable:
        return Identity(None, None, "WARNING: the submission ran with the grader's privileges (root): "
                        f"user {user!r} cannot read the Python installation ({unreadable[0]}). "
                        "Install litlabs in an environment outside /root (e.g. a venv under /opt).", False)
    return Identity(entry.pw_uid, entry.pw_gid, "The submission ran as an unprivileged user: a uid of its own, with "
                    f"the rights of user {user!r} (no account, no files) and shared with no other submission.", True)


# Each submission graded at the same time runs as a uid of its own (root only): no account, no files,
# nothing shared with a classmate's worker, and every process it starts can be found by its uid
# however it re-parents or re-sessions itself. LITLABS_SANDBOX_UID_BASE moves the range.
UID_BASE = int(os.environ.get("LITLABS_SANDBOX_UID_BASE", "61000"))
UID_SLOTS = 256


class UidSlot:
    """A uid no other grading uses until ``release`` (an exclusive lock file per uid, so it holds
    across the judges of a ``grade-all`` batch and goes away with a judge that dies)."""

    def __init__(self):
        HIDDEN_STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        for slot in range(UID_SLOTS):
            uid = UID_BASE + slot
            with contextlib.suppress(KeyError):
                pwd.getpwuid(uid)
                continue  # a real account: never borrow it
            lock = open(HIDDEN_STATE_DIR / f"uid-{uid}.lock", "a")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                continue
            if processes.processes_of_user(uid):
                # In use all the same: by another grader on this kernel whose lock files we cannot see (a
                # chroot, another /run), or left by a grading that was killed. Never ours to kill: skip it.
                lock.close()
                continue
            self.uid, self._lock = uid, lock
            return
        raise GraderError(f"no free sandbox uid in {UID_BASE}..{UID_BASE + UID_SLOTS - 1}")

    def release(self) -> None:
        self._lock.close()  # its processes were killed with its last worker (Sandbox.kill)


# --- Landlock: what the worker may read and write, with or without root ------------------

def landlock_abi() -> int:
    """The Landlock ABI the workers will use: 0 where the kernel has none, or LITLABS_NO_LANDLOCK is set."""
    if os.environ.get("LITLABS_NO_LANDLOCK"):
        return 0
    from grader.sandbox.landlock import abi_version

    return abi_version()


def private_paths(root: Path = REPO_ROOT) -> list[str]:
    """What a worker may not read: everything of the instructor's checkout, except folders holding the
    interpreter (a venv inside it), and the offline data sets' files (their labels)."""
    from datamodules.cache import labelled_data_files

    interpreter = [os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, *sys.path) if p]
    private = []
    for entry in sorted(os.listdir(root)):
        path = os.path.realpath(root / entry)
        if not any(i == path or i.startswith(path + os.sep) for i in interpreter):
            private.append(path)
    return private + [os.path.realpath(p) for p in labelled_data_files()]


def describe_layers(identity: Identity, confinement: str, uid: int | None = None) -> str:
    """One line for the report: the walls that were in force for this submission (uid: the one it ran as)."""
    uid = identity.uid if uid is None else uid
    if uid is None:
        user = "the grader's own user"
    else:
        try:
            user = f"user {pwd.getpwuid(uid).pw_name}"
        except KeyError:
            user = f"a uid of its own ({uid}, no account)"
    files = confinement or ("no file wall (Landlock unavailable; the reference is hidden by file modes)"
                            if identity.isolated else "no file wall (Landlock unavailable)")
    return f"Confinement: {files} + {user} + rlimits (memory, CPU time, file size) + process-tree kill."
