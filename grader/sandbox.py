"""The judge's side of the trust boundary: run submitted code in a confined worker.

``Zygote`` starts one helper process that has imported torch and Lightning and
forks a worker per submission (see ``grader.worker``): starting a worker costs
milliseconds instead of the seconds a fresh interpreter needs. ``Sandbox`` is
one submission's worker: it sends requests, enforces a deadline on each, reads
back plain data only, and on a crash, hang or garbage kills the worker and
every process that came from it (``kill_tree``) so the next request starts a fresh one.
"""
from __future__ import annotations

import collections
import contextlib
import fcntl
import functools
import gc
import json
import math
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import processes, wire
from .labs import REPO_ROOT

SANDBOX_USER = os.environ.get("LITLABS_SANDBOX_USER", "nobody")


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


IMPORT_CPU_SECONDS = 1  # CPU time a worker has for starting and importing the submission, on top of its request's


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


# Where the fallback below keeps the original modes while paths are hidden (root only).
HIDDEN_STATE_DIR = Path(os.environ.get("LITLABS_HIDDEN_STATE_DIR", "/run/litlabs" if os.path.isdir("/run") else
                                       tempfile.gettempdir()))


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
        from .report import write_text_atomically

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
    from .catalog import PRIVATE_PATHS

    # Not the offline data files: they belong to the installation, which other users run at the same time
    # (the README's threat model says what the worker can read without Landlock).
    return list(PRIVATE_PATHS) if identity.isolated and not landlock_abi() else []


# --- Landlock: what the worker may read and write, with or without root ------------------

def landlock_abi() -> int:
    """The Landlock ABI the workers will use: 0 where the kernel has none, or LITLABS_NO_LANDLOCK is set."""
    if os.environ.get("LITLABS_NO_LANDLOCK"):
        return 0
    from .landlock import abi_version

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


# --- the zygote ----------------------------------------------------------------------

def _cache_env() -> dict[str, str]:
    """What the zygote (trusted, never its workers) needs to find the judge's data cache."""
    names = ("HOME", "XDG_CACHE_HOME", "LITLABS_CACHE_DIR")  # see datamodules.cache.cache_dir
    return {name: os.environ[name] for name in names if name in os.environ}


def remove_stale_homes() -> None:
    """Remove the folders of zygotes whose judge and zygote are both gone (killed from outside):
    they hold submitted files, which must not outlive their grading."""
    for home in Path(tempfile.gettempdir()).glob("litlabs-zygote-*"):
        try:
            owner = int((home / "owner").read_text())
        except (OSError, ValueError):
            continue
        if not _alive(owner) and not any(_alive(p) for p in _zygotes_of(home)):
            shutil.rmtree(home, ignore_errors=True)


def _zygotes_of(home: Path) -> list[int]:
    try:
        return [int((home / "zygote").read_text())]
    except (OSError, ValueError):
        return []


def _forget_judge_environment() -> None:
    """Zero the judge's environment strings that the kernel left in this forked process's memory
    (/proc/PID/environ, and what a worker inherits): the zygote's environment is only ``env``."""
    import ctypes

    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    start, end = int(fields[47]), int(fields[48])  # env_start, env_end (fields 50 and 51 of proc(5))
    if 0 < start < end:
        ctypes.memset(start, 0, end - start)


def _zygote_child(control_fd: int, stderr_fd: int, home: str, env: dict, path: list[str]) -> None:
    """In the process just forked off the judge: become what ``python -I -c ... zygote_main`` was, then
    serve as the zygote until the judge closes the control socket or dies. Never returns."""
    code = 1
    try:
        os.set_inheritable(control_fd, True)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(stderr_fd, 2)
        keep = control_fd if control_fd > 2 else os.dup(control_fd)
        # No descriptor of the judge's (its end of the control socket above all: the zygote sees the
        # judge's death as the end of that socket). The judge's Python objects that wrapped them are
        # never collected here (gc.freeze, and this function never returns), so none closes a reused one.
        gc.freeze()
        os.closerange(3, keep)
        os.closerange(keep + 1, 65536)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        # The signal dispositions of a fresh interpreter; no alarm or mask of the judge's.
        for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGALRM, signal.SIGUSR1,
                       signal.SIGUSR2, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.chdir(home)
        os.environ.clear()
        os.environ.update(env)
        _forget_judge_environment()
        sys.argv[:] = ["-c"]
        sys.path[:] = path  # python -I's (no current directory, PYTHONPATH or user site) and this checkout
        sys.path_importer_cache.clear()
        import importlib

        importlib.invalidate_caches()
        import grader.worker

        grader.worker.zygote_main(keep)
        code = 0
    except BaseException:
        with contextlib.suppress(Exception):
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
    finally:
        os._exit(code)


def _native_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


# This module imports torch (grader.wire): the threads a process has once torch is imported and before
# it ran any operation (OpenBLAS's, see _why_not_fork). More threads later: a pool started, no fork.
_THREADS_AFTER_IMPORT = _native_threads()


@functools.lru_cache(maxsize=1)
def isolated_sys_path() -> tuple[str, ...]:
    """The sys.path of ``python -I`` with this interpreter: no PYTHONPATH, user site or current directory."""
    out = subprocess.run([sys.executable, "-I", "-c", "import sys, json; print(json.dumps(sys.path))"],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=True).stdout
    return tuple(json.loads(out))


def _why_not_fork() -> str:
    """Why this process may not fork the zygote (and starts a fresh interpreter instead); "" if it may.

    The zygote is the parent of every worker, so it may hold nothing a submission must not see:
    no data set with labels, no check module (the hidden checks). A fork copies only the calling
    thread; a process with other Python threads may hold a lock one of them held (logging, the
    import lock). Native threads: after ``import torch`` the only ones are OpenBLAS's idle thread
    server (numpy's), which OpenBLAS shuts down in a pthread_atfork handler and starts again when
    needed (none with OPENBLAS_NUM_THREADS=1, as run_autograder sets); torch's intra-op (OpenMP)
    and inter-op pools start at the first parallel operation, and a judge that forks the zygote has
    run none (the zygote is started before any check, hidden file or data is read). A process that
    did run torch operations has more threads than it had when this module was imported (or loaded
    data: grade-all's batch process), and gets a fresh interpreter. ``LITLABS_ZYGOTE_EXEC=1`` forces one.
    """
    if not sys.platform.startswith("linux"):
        return "not Linux"
    if os.environ.get("LITLABS_ZYGOTE_EXEC"):
        return "LITLABS_ZYGOTE_EXEC is set"
    if threading.active_count() != 1:
        return f"{threading.active_count()} Python threads"
    threads = _native_threads()
    if threads > _THREADS_AFTER_IMPORT:  # a thread pool started since torch was imported
        return f"{threads} threads (torch's thread pools have started)"
    from datamodules.splits import labelled_data_loaded

    if labelled_data_loaded():
        return "this process has loaded labelled data"
    checks = (str(REPO_ROOT / "grader" / "checks"), str(REPO_ROOT / "grader" / "hidden"))
    for module in list(sys.modules.values()):
        path = str(getattr(module, "__file__", None) or "")
        if path.startswith(checks) and not path.endswith("__init__.py"):
            return "this process has loaded the checks"
    return ""


class _ForkedProcess:
    """What the Zygote uses of a ``subprocess.Popen``, for a zygote forked from the judge."""

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None

    def _reap(self, flags: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:  # reaped elsewhere
            self.returncode = -signal.SIGKILL
            return
        if pid:
            self.returncode = os.waitstatus_to_exitcode(status)

    def poll(self):
        if self.returncode is None:
            self._reap(os.WNOHANG)
        return self.returncode

    def wait(self):
        if self.returncode is None:
            self._reap(0)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


class Zygote:
    """A helper process that forks submission workers; see grader.worker.

    Started, where it may be (``_why_not_fork``), by forking this process right after it has
    imported torch: the zygote then imports Lightning on its own, and the pages of torch stay shared
    between the judge, the zygote and every worker (on Gradescope's 768 MB machines the difference
    between fitting and being killed). Otherwise a fresh ``python -I`` interpreter, as before. Either
    way the zygote has its own clean environment (``worker_env``), its folder as its cwd, an isolated
    sys.path (``python -I``'s and this checkout), stdin and stdout on /dev/null, stderr into
    ``stderr.log`` in its folder, and no file descriptor of the judge's but its control socket.
    ``forked`` says which start it had.
    """

    def __init__(self, start_timeout: float = 120.0):
        remove_stale_homes()
        import torch  # noqa: F401  (the pages a forked zygote shares; the judge needs it anyway)

        self._control, theirs = socket.socketpair()
        self.home = tempfile.mkdtemp(prefix="litlabs-zygote-")
        # Workers of other uids pass through (never list) this folder to their own sandbox folder.
        os.chmod(self.home, 0o711)
        (Path(self.home) / "owner").write_text(str(os.getpid()))
        self._owner = os.getpid()
        # One spawn at a time, from the judge's threads and from judges forked off it (grade-all):
        # a POSIX record lock is per process and goes away with a process that dies holding it.
        self._lock = threading.Lock()
        self._lock_file = open(Path(self.home) / "spawn.lock", "wb")
        # A file, not a pipe: nobody reads a pipe while grading, and a full one would block the zygote.
        self._stderr = open(Path(self.home) / "stderr.log", "w+b")
        env = {**worker_env(self.home), **_cache_env()}
        self.why_not_forked = _why_not_fork()
        self.forked = not self.why_not_forked
        if self.forked:
            path = [str(REPO_ROOT), *isolated_sys_path()]
            for stream in (sys.stdout, sys.stderr):  # nothing of the judge's buffered output is written twice
                with contextlib.suppress(Exception):
                    stream.flush()
            # What the judge holds now (torch's modules above all) is never freed: its cyclic collector need
            # not walk it, and so does not copy the pages it shares with the zygote.
            gc.collect()
            gc.freeze()
            pid = os.fork()
            if pid == 0:
                _zygote_child(theirs.fileno(), self._stderr.fileno(), self.home, env, path)  # never returns
            self.process = _ForkedProcess(pid)
        else:
            self.process = subprocess.Popen(
                # -I: no PYTHONPATH, user site or current directory; the path given is this
                # checkout's, so the worker runs the same grader as the judge.
                [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r}); "
                 f"import grader.worker; grader.worker.zygote_main({theirs.fileno()})"],
                pass_fds=[theirs.fileno()], cwd=self.home, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
            )
        theirs.close()
        (Path(self.home) / "zygote").write_text(str(self.process.pid))
        self._start_deadline = time.monotonic() + start_timeout
        self._ready = False  # waited for at the first spawn, so the judge can work meanwhile

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self) -> None:
        """Block until the zygote has imported everything (done lazily at the first spawn otherwise)."""
        if self._ready:
            return
        try:
            json.loads(wire.recv_frame(self._control, deadline=self._start_deadline))
            self._ready = True
        except (EOFError, TimeoutError) as err:
            self.process.kill()
            self.process.wait()
            self._stderr.seek(0)
            detail = self._stderr.read().decode(errors="replace")[-2000:]
            self.close()
            raise RuntimeError(f"the grader's worker process did not start: {detail or type(err).__name__}") from None

    def spawn(self, spec: dict) -> tuple[int, socket.socket, int]:
        """Fork a worker; return (pid, socket to it, read end of its output)."""
        with self._lock:
            self.wait_ready()
            fcntl.lockf(self._lock_file, fcntl.LOCK_EX)
            try:
                wire.send_frame(self._control, json.dumps(spec).encode())
                message, fds, _, _ = socket.recv_fds(self._control, 1024, 2)
            finally:
                fcntl.lockf(self._lock_file, fcntl.LOCK_UN)
        if len(fds) != 2:
            raise RuntimeError("the grader's worker process did not hand over a worker")
        return json.loads(message)["pid"], socket.socket(fileno=fds[0]), fds[1]

    def close(self) -> None:
        if os.getpid() != self._owner:
            return  # a judge forked off the owner (grade-all) shares the zygote but does not end it
        # The zygote holds no state worth a clean exit, and tearing down torch takes a second.
        # Its session is the judge's own, so only its descendants go with it.
        kill_tree(self.process.pid, same_session=False)
        self.process.wait()
        self._control.close()
        self._stderr.close()
        self._lock_file.close()
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- one submission's worker ---------------------------------------------------------

descendants, kill_tree = processes.descendants, processes.kill_tree  # the judge's names for them


class _OutputTail(threading.Thread):
    """Drain the worker's stdout/stderr, keeping only the last bytes (output floods cost nothing)."""

    def __init__(self, fd: int, keep: int):
        super().__init__(daemon=True)
        self.fd, self.buffer = fd, collections.deque(maxlen=keep)

    def run(self):
        with open(self.fd, "rb", buffering=0) as stream:
            while chunk := stream.read(65536):
                self.buffer.extend(chunk)

    def text(self) -> str:
        return bytes(self.buffer).decode(errors="replace")


_LIVE: set[Sandbox] = set()  # this process's sandboxes, for kill_live_workers


def kill_live_workers() -> None:
    """Kill the workers of every open sandbox of this process (a judge told to stop at once)."""
    for sandbox in list(_LIVE):
        sandbox.kill()


def _cpu_seconds(pid: int) -> float:
    """CPU time a process used so far (user + system), from /proc; 0 where unknown."""
    fields = processes.stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sandbox:
    """Runs one submission file in confined workers and asks it things.

    ``request(op, **payload)`` returns the worker's plain-data answer or raises
    ``SubmissionError`` with a one-line reason. Each request gets a fresh worker, forked
    from the zygote, that imports the submission, serves that request and is killed with
    everything it started: no request sees what an earlier one did. An import that fails is
    remembered: every later request fails with the same reason at once. All requests of one
    submission share one wall-clock budget (``Limits.total_seconds``).

    Files: ``ZYGOTE_HOME/sandboxes/NAME/code/LAB.py`` (the submission, read-only to the worker)
    and ``.../scratch`` (the worker's home and only writable folder, emptied for each request).
    """

    def __init__(self, zygote: Zygote, submission_file: Path, identity: Identity, limits: Limits | None = None,
                 landlock: bool | None = None):
        self.zygote, self.identity = zygote, identity
        self.limits = limits or Limits()
        self.landlock = landlock_abi() > 0 if landlock is None else landlock
        self.confinement = ""  # what the worker reported before it loaded the submission
        self.import_error: str | None = None
        self._pid: int | None = None
        self._sock: socket.socket | None = None
        self._output: _OutputTail | None = None
        self._spent = 0.0  # seconds of the total budget used so far
        self.usage: list[tuple[str, float, float]] = []  # (what, CPU seconds, wall seconds) of each request
        self.restarts = 0
        # A uid of this submission's own where the grader is root; otherwise the identity's (or none).
        self._slot = UidSlot() if identity.isolated and identity.uid is not None else None
        self.uid = self._slot.uid if self._slot else identity.uid
        self.gid = self._slot.uid if self._slot else identity.gid
        sandboxes = Path(zygote.home) / "sandboxes"
        sandboxes.mkdir(mode=0o711, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="submission-", dir=sandboxes))
        os.chmod(self.folder, 0o711)
        code = self.folder / "code"
        code.mkdir(mode=0o750)
        self.submission_file = code / Path(submission_file).name
        shutil.copyfile(submission_file, self.submission_file)
        os.chmod(self.submission_file, 0o440)  # the worker reads it and cannot change it
        if self.gid is not None:
            for path in (code, self.submission_file):
                os.chown(path, -1, self.gid)  # readable by this submission's group only
        self.workdir = self.folder / "scratch"
        _LIVE.add(self)

    # the worker's life
    def _fresh_scratch(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(mode=0o700)
        if self.uid is not None:
            os.chown(self.workdir, self.uid, self.gid)

    def _start(self, cpu_seconds: float) -> None:
        self._fresh_scratch()
        limits = {**asdict(self.limits), "cpu_seconds": max(1, math.ceil(cpu_seconds))}
        self._cpu_limit, self._worker_started = limits["cpu_seconds"], time.monotonic()
        spec = {"workdir": str(self.workdir), "submission": str(self.submission_file),
                "uid": self.uid, "gid": self.gid,
                "env": worker_env(str(self.workdir)), "limits": limits,
                "landlock": self.landlock, "private": private_paths()}
        self._pid, self._sock, output_fd = self.zygote.spawn(spec)
        self._output = _OutputTail(output_fd, self.limits.output_bytes)
        self._output.start()
        # The worker says how it confined itself before it runs any submitted code.
        try:
            hello = json.loads(wire.recv_frame(self._sock, deadline=time.monotonic() + self.limits.import_seconds))
        except (EOFError, OSError, TimeoutError, ValueError, wire.WireError) as err:
            self.kill()
            raise GraderError(f"the grader's worker did not start ({type(err).__name__})") from None
        if type(hello) is not dict or hello.get("error"):
            self.kill()
            raise GraderError(f"the grader's worker could not confine itself: {hello.get('error')}")
        self.confinement = str(hello.get("confinement", ""))[:200]
        try:
            self._exchange({"op": "load"}, self._within_budget(self.limits.import_seconds), "importing the submission")
        except SubmissionError as err:
            if not self._budget_spent():
                self.import_error = f"the submission could not be imported: {err}"
            self.kill()
            raise SubmissionError(self.import_error or str(err)) from None

    def kill(self) -> None:
        """Kill the worker and every process that came from it, in its session or not, and every
        process of this submission's uid (however it re-parented itself)."""
        if self._pid is not None:
            kill_tree(self._pid, same_session=True)  # the worker leads its own session
            self._sock.close()
            # Not joined here: the output ends once the killed worker has freed its memory (~20 ms
            # with torch), which the next worker need not wait for.
            self._pid = self._sock = None
            self.restarts += 1
        if self._slot is not None:
            processes.kill_user(self._slot.uid, below=self.zygote.process.pid)

    def close(self) -> None:
        self.kill()
        if self._output is not None:
            self._output.join(timeout=2)
        if self._slot is not None:
            self._slot.release()
            self._slot = None
        _LIVE.discard(self)
        shutil.rmtree(self.folder, ignore_errors=True)

    def output(self) -> str:
        """What the last worker printed (its last ``Limits.output_bytes``)."""
        if self._output is None:
            return ""
        if self._pid is None:
            self._output.join(timeout=2)
        return self._output.text()

    # the budget
    def _budget_spent(self) -> bool:
        return self._spent >= self.limits.total_seconds

    def _within_budget(self, seconds: float) -> float:
        left = self.limits.total_seconds - self._spent
        if left <= 0:
            raise SubmissionError(f"the submission used up its total time budget of {self.limits.total_seconds:g} s "
                                  "(all its calls together); the remaining checks were not run")
        return min(seconds, left)

    # asking
    def request(self, op: str, timeout: float | None = None, what: str = "", cpu_seconds: float | None = None,
                **payload):
        """Ask a fresh worker one thing. ``timeout``: its wall-clock deadline (the call limit by default);
        ``cpu_seconds``: the CPU time it may use (by default as much as its deadline)."""
        if self.import_error:
            raise SubmissionError(self.import_error)
        timeout = timeout if timeout is not None else self.limits.call_seconds
        started = time.monotonic()
        try:
            # the worker's CPU time covers its start and the submission's import as well as the request
            self._start((cpu_seconds if cpu_seconds is not None else timeout) + IMPORT_CPU_SECONDS)
            deadline = self._within_budget(timeout)
            return self._exchange({"op": op, **payload}, deadline, what or op,
                                  budget_cut=deadline < timeout)
        finally:
            if self._pid is not None:
                self.usage.append((what or op, _cpu_seconds(self._pid), time.monotonic() - started))
            self.kill()
            self._spent += time.monotonic() - started

    def _exchange(self, request: dict, timeout: float, what: str, budget_cut: bool = False):
        try:
            wire.send_frame(self._sock, wire.encode_request(request))
            reply = wire.decode_reply(wire.recv_frame(self._sock, deadline=time.monotonic() + timeout))
        except TimeoutError:
            self.kill()
            if budget_cut:
                raise SubmissionError(f"{what} was stopped when the submission's total time budget of "
                                      f"{self.limits.total_seconds:g} s ran out") from None
            raise SubmissionError(f"{what} did not finish within {timeout:g} s (an endless loop?)") from None
        except (EOFError, OSError):
            self.kill()
            if time.monotonic() - self._worker_started >= self._cpu_limit - 0.5:  # it ran as long as its CPU time
                raise SubmissionError(f"{what} did not finish within its CPU time of {self._cpu_limit:g} s "
                                      "(an endless loop?)") from None
            raise SubmissionError(f"the submission's process ended during {what} "
                                  "(os._exit, a crash, or a resource limit: memory or CPU time)") from None
        except wire.WireError as err:
            self.kill()
            raise SubmissionError(f"{what} sent back something other than plain data: {err}") from None
        if type(reply) is not dict or type(reply.get("ok")) is not bool:
            self.kill()
            raise SubmissionError(f"{what} sent back a malformed reply")
        if not reply["ok"]:
            raise SubmissionError(str(reply.get("error", "unknown error"))[:500])
        return reply.get("value")
