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
import json
import math
import os
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

from grader.sandbox import processes, wire
from grader.sandbox.identity import Identity, UidSlot, landlock_abi, private_paths
from grader.sandbox.limits import IMPORT_CPU_SECONDS, GraderError, Limits, SubmissionError, worker_env
from grader.sandbox.zygote import Zygote

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


class _CpuMeter(threading.Thread):
    """The CPU time a worker has used, read from /proc every ``PERIOD`` seconds while it lives.

    Once the worker is gone, the last reading tells whether it ran into its CPU limit. Its wall time
    cannot: on a loaded machine a worker that crashed at once may have waited longer for a core than
    its whole CPU limit.
    """

    PERIOD = 0.1

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.seconds, self.threads = pid, 0.0, 1
        self._done = threading.Event()

    def run(self):
        while not self._done.wait(self.PERIOD):
            fields = processes.stat_fields(self.pid)
            if fields is None or not processes.running(fields):
                return
            self.seconds = max(self.seconds, _cpu_of(fields))
            self.threads = max(self.threads, int(fields[17]))

    def stop(self) -> None:
        self._done.set()

    def reached(self, limit: float, wall_seconds: float) -> bool:
        """Whether a worker that ended had used up ``limit`` CPU seconds, as far as the readings tell.

        Between two readings it can have used at most PERIOD per thread; a reader starved of a core
        reads less often, so a worker that ran as long as its limit and used half of it counts too."""
        slack = self.PERIOD * self.threads + 0.1
        return self.seconds >= limit - slack or (wall_seconds >= limit - 0.5 and self.seconds >= limit / 2)


_LIVE: set[Sandbox] = set()  # this process's sandboxes, for kill_live_workers


def kill_live_workers() -> None:
    """Kill the workers of every open sandbox of this process (a judge told to stop at once)."""
    for sandbox in list(_LIVE):
        sandbox.kill()


def _cpu_seconds(pid: int) -> float:
    """CPU time a process used so far (user + system), from /proc; 0 where unknown."""
    fields = processes.stat_fields(pid)
    return 0.0 if fields is None else _cpu_of(fields)


def _cpu_of(fields: list[str]) -> float:
    """User + system seconds, from the fields ``processes.stat_fields`` gives."""
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
        self._cpu = _CpuMeter(self._pid)
        self._cpu.start()
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
            self._cpu.stop()
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
            if self._cpu.reached(self._cpu_limit, time.monotonic() - self._worker_started):
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
