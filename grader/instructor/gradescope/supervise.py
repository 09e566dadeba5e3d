"""Run the grader so that results.json always says what happened, and nothing it started outlives it.

``python supervise.py RESULTS -- COMMAND...`` (run_autograder runs it by path: it imports neither
torch nor litlabs, a few MB). It becomes a child subreaper, runs COMMAND, and when COMMAND ends:

- kills every process still left below it (a zygote or worker whose judge was killed is re-parented
  here, and goes) and removes the folders of zygotes whose judge is gone (they hold submitted files);
- if RESULTS is missing or empty (the judge was killed before it wrote it), writes one that says
  why: killed at the container's memory limit (the cgroup counted an OOM kill), killed by another
  signal, or ended with an exit code, and what to do.
"""
from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time

# What every lab's reference needs (benchmarks/grade_reference.py --memory ... --cpus 0.5): the advice
# an out-of-memory result gives.
ADVISED_MEMORY = "1 GB"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _memory_cgroup() -> str:
    """This process's memory cgroup folder (v2 or v1), or ""."""
    for line in _read("/proc/self/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            folder = "/sys/fs/cgroup" + path
            if os.path.exists(os.path.join(folder, "memory.max")):
                return folder
        elif "memory" in controllers.split(","):
            return "/sys/fs/cgroup/memory" + path
    return ""


def oom_kills() -> int | None:
    """How many processes the kernel killed at this cgroup's memory limit so far (None: unknown)."""
    folder = _memory_cgroup()
    for name in ("memory.events", "memory.oom_control"):
        for line in _read(os.path.join(folder, name)).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    return None


def memory_limit() -> str:
    folder = _memory_cgroup()
    for name in ("memory.max", "memory.limit_in_bytes"):
        value = _read(os.path.join(folder, name)).strip()
        if value and value != "max" and int(value) < 1 << 60:
            return f"{int(value) / 1024**2:.0f} MB"
    return "unknown"


def children() -> list[int]:
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read(f"/proc/{entry}/stat")
            fields = stat.rsplit(")", 1)[-1].split()
            if len(fields) > 1 and int(fields[1]) == me and fields[0] != "Z":
                found.append(int(entry))
    return found


def kill_leftovers() -> int:
    """Kill every process left below this one (re-parented here: this process is a subreaper)."""
    killed = 0
    for _ in range(50):
        left = children()
        if not left:
            break
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.05)
        while True:  # reap them
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
    return killed


def remove_left_homes() -> None:
    """Remove the zygote folders (submitted files) of judges that are gone: a zygote killed here had no
    time to (see grader.sandbox.zygote.remove_stale_homes, which the next grading would run)."""
    import shutil
    import tempfile
    from pathlib import Path

    for home in Path(tempfile.gettempdir()).glob("litlabs-zygote-*"):
        try:
            owner = int((home / "owner").read_text())
        except (OSError, ValueError):
            continue
        if not os.path.exists(f"/proc/{owner}") or _read(f"/proc/{owner}/stat").rsplit(")", 1)[-1].split()[:1] == ["Z"]:
            shutil.rmtree(home, ignore_errors=True)


def explain(code: int, oom_before: int | None) -> str:
    oom_after = oom_kills()
    if code == -signal.SIGKILL or code == 137:
        if oom_after is not None and oom_before is not None and oom_after > oom_before:
            return (f"Out of memory: the grader was killed at the container's memory limit ({memory_limit()}). "
                    f"Please tell the course staff: set the autograder's memory to at least {ADVISED_MEMORY} "
                    "(Gradescope: Autograder settings, Memory limit) and rerun the autograder.")
        return ("The grader was killed (SIGKILL), most likely at the container's memory limit "
                f"({memory_limit()}) or its time limit. Please tell the course staff: set the autograder's memory "
                f"to at least {ADVISED_MEMORY} and check its timeout, then rerun the autograder.")
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return (f"The grader was stopped by signal {name} (the container's time limit?) before it could write "
                "its results. Please tell the course staff.")
    return (f"The grader ended with exit code {code} without writing its results (Python or litlabs could not "
            "start?). Please tell the course staff.")


def main(argv: list[str]) -> int:
    results, command = argv[0], argv[argv.index("--") + 1:]
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    oom_before = oom_kills()
    if os.path.exists(results):  # only this grading's results count: a killed one must not leave an old file
        os.unlink(results)
    process = subprocess.Popen(command)
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # pass a stop on, then clean up
        signal.signal(number, lambda n, _: process.send_signal(n))
    code = process.wait()
    kill_leftovers()
    remove_left_homes()
    if not os.path.exists(results) or os.path.getsize(results) == 0:
        document = {"score": 0, "output": explain(code, oom_before), "tests": []}
        tmp = results + ".tmp"
        with open(tmp, "w") as f:
            json.dump(document, f)
            f.write("\n")
        os.replace(tmp, results)
    return code


if __name__ == "__main__":
    sys.exit(0 if main(sys.argv[1:]) >= 0 else 1)
