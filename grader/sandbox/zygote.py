"""The zygote: one helper process that has imported torch and Lightning and forks a worker per request.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import gc
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from grader.course import REPO_ROOT
from grader.sandbox import wire
from grader.sandbox.hiding import _alive
from grader.sandbox.limits import worker_env
from grader.sandbox.processes import kill_tree, running, stat_fields

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
        import grader.sandbox.worker

        grader.sandbox.worker.zygote_main(keep)
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
                 f"import grader.sandbox.worker; grader.sandbox.worker.zygote_main({theirs.fileno()})"],
                pass_fds=[theirs.fileno()], cwd=self.home, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
            )
        theirs.close()
        (Path(self.home) / "zygote").write_text(str(self.process.pid))
        self._start_deadline = time.monotonic() + start_timeout
        self._ready = False  # waited for at the first spawn, so the judge can work meanwhile

    def alive(self) -> bool:
        """Whether the zygote still runs. A judge forked off the owner (grade-all) is not its parent and
        cannot wait for it (to ``poll`` it would be gone): it looks at /proc instead."""
        if os.getpid() == self._owner:
            return self.process.poll() is None
        fields = stat_fields(self.process.pid)
        return fields is not None and running(fields)

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
