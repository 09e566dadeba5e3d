"""Grading a lab's reference: wall time and peak memory of all processes together.

Runs ``litlabs grade solutions --lab LAB`` as a fresh command several times (as an
autograder would) and samples, every 20 ms, the memory of the whole process
tree: the judge, the zygote and the sandboxed worker. Memory is the sum of PSS
(proportional set size: pages shared between processes, such as the worker's
copy-on-write pages inherited from the zygote, are split between them) and, as
an upper bound, the sum of RSS. Prints medians over the runs.

With ``--memory`` or ``--cpus`` each grading runs as Docker would run it (Gradescope's default
container is ``--memory 768m --cpus 0.5``): in a child of this process's memory cgroup with that
limit (and the same limit on memory + swap, where the kernel has it) and a child of its cpu cgroup
with that CFS quota. The peak is then the cgroup's own ``memory.max_usage_in_bytes`` (what the
kernel's OOM killer compares with the limit; it includes page cache the grading read first), and a
grading the kernel killed is reported as such. Needs cgroup v1 and the right to create cgroups
(root); the cgroups are removed afterwards, also on failure.

    python benchmarks/grade_reference.py [--lab logreg] [--repeats 5]
    python benchmarks/grade_reference.py --lab all --repeats 1 --memory 768M --cpus 0.5

The grader runs with the environment variables run_autograder sets (``AUTOGRADER_ENV``; ``--plain-env``: without).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.course import LABS
from grader.sandbox.processes import descendants

CGROUP_ROOT = "/sys/fs/cgroup"
# The environment grader/instructor/gradescope/run_autograder gives the grader (--plain-env: none of it).
AUTOGRADER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "131072"}


class CgroupUnavailable(RuntimeError):
    """Limits like Docker's cannot be set here; the message says why."""


def parse_bytes(text: str) -> int:
    """'768M', '1G', '1.5G', '800000000' -> bytes (binary units, as Docker's --memory)."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    text = text.strip().upper().removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def _own_cgroup(controller: str) -> Path:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return Path(CGROUP_ROOT, controller, path.lstrip("/"))
    raise CgroupUnavailable(f"no cgroup v1 {controller} controller (/proc/self/cgroup); cgroup v2 is not supported")


class DockerLimits:
    """A memory cgroup and a cpu cgroup, children of this process's own, with Docker's limits.

    ``preexec`` (for ``subprocess.Popen(preexec_fn=...)``) moves the new process into both;
    ``peak_bytes()`` and ``oom_kills()`` read what the kernel counted; leaving the ``with`` block
    kills whatever is left in them and removes them.
    """

    def __init__(self, memory_bytes: int | None, cpus: float | None):
        self.memory_bytes, self.cpus = memory_bytes, cpus
        self.memory: Path | None = None
        self.cpu: Path | None = None

    def __enter__(self):
        name = f"litlabs-bench-{os.getpid()}-{time.monotonic_ns()}"
        try:
            if self.memory_bytes is not None:
                self.memory = _own_cgroup("memory") / name
                self.memory.mkdir()
                (self.memory / "memory.limit_in_bytes").write_text(str(self.memory_bytes))
                memsw = self.memory / "memory.memsw.limit_in_bytes"
                if memsw.exists():  # Docker sets memory + swap to the same limit: no swap
                    memsw.write_text(str(self.memory_bytes))
            if self.cpus is not None:
                self.cpu = _own_cgroup("cpu") / name
                self.cpu.mkdir()
                (self.cpu / "cpu.cfs_period_us").write_text("100000")
                (self.cpu / "cpu.cfs_quota_us").write_text(str(int(self.cpus * 100000)))
        except CgroupUnavailable:
            self._remove()
            raise
        except OSError as err:
            self._remove()
            raise CgroupUnavailable(f"cannot create or configure a cgroup: {err}") from None
        return self

    def preexec(self) -> None:
        for group in (self.memory, self.cpu):
            if group is not None:
                (group / "cgroup.procs").write_text(str(os.getpid()))

    def peak_bytes(self) -> int | None:
        return int((self.memory / "memory.max_usage_in_bytes").read_text()) if self.memory else None

    def oom_kills(self) -> int:
        if self.memory is None:
            return 0
        for line in (self.memory / "memory.oom_control").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return int((self.memory / "memory.failcnt").read_text()) and -1  # unknown kernel: "maybe"

    def _remove(self) -> None:
        for group in (self.memory, self.cpu):
            if group is None or not group.exists():
                continue
            for _ in range(100):  # what the grading left (it should leave nothing) goes first
                pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)
            with contextlib.suppress(OSError):
                group.rmdir()

    def __exit__(self, *exc):
        self._remove()


def memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in kB, 0 if it is gone."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
        return int(fields["Pss"].split()[0]), int(fields["Rss"].split()[0])
    except (OSError, KeyError, ValueError):
        return 0, 0


def grade_once(results: Path, lab: str, limits: DockerLimits | None = None, checkout: Path | None = None,
               env: dict | None = None) -> dict:
    # env: the grader's whole environment (default: this one with run_autograder's AUTOGRADER_ENV)
    """Grade the reference once; {"wall", "pss", "rss" (kB), "score", "full" (full marks), "peak" (bytes, cgroup),
    "oom_kills", "exit"}."""
    results.unlink(missing_ok=True)
    env = {**os.environ, **AUTOGRADER_ENV} if env is None else env
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "grader.cli", "grade", "solutions", "--lab", lab,
                                "--results", str(results), "--format", "json"], cwd=checkout, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               preexec_fn=limits.preexec if limits else None)
    peak_pss = peak_rss = 0
    while process.poll() is None:
        totals = [memory_kb(p) for p in (process.pid, *descendants(process.pid))]
        peak_pss = max(peak_pss, sum(t[0] for t in totals))
        peak_rss = max(peak_rss, sum(t[1] for t in totals))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    try:
        document = json.loads(results.read_text())
        score, full = document["score"], sum(test["max_score"] for test in document["tests"])
    except (OSError, ValueError, KeyError, TypeError):
        score = full = None
    return {"wall": wall, "pss": peak_pss, "rss": peak_rss, "score": score, "full": full, "exit": process.returncode,
            "peak": limits.peak_bytes() if limits else None, "oom_kills": limits.oom_kills() if limits else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lab", default="logreg", help="a lab, or 'all'")
    parser.add_argument("--memory", type=parse_bytes, help="a memory limit as Docker's --memory (768M, 1G)")
    parser.add_argument("--cpus", type=float, help="a CPU quota as Docker's --cpus (0.5)")
    parser.add_argument("--checkout", type=Path, help="grade with the litlabs in this folder (default: this one)")
    parser.add_argument("--plain-env", action="store_true", help="without run_autograder's environment variables")
    args = parser.parse_args()
    env = dict(os.environ) if args.plain_env else None
    labs = list(LABS) if args.lab == "all" else [args.lab]
    docker = args.memory is not None or args.cpus is not None
    if docker:
        print(f"limits: memory {args.memory / 1024**2:.0f} MiB, " if args.memory else "limits: memory none, ",
              f"cpus {args.cpus:g}" if args.cpus else "cpus no limit", sep="")
    for lab in labs:
        runs = []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeats):
                if docker:
                    with DockerLimits(args.memory, args.cpus) as limits:
                        runs.append(grade_once(Path(tmp) / "results.json", lab, limits, args.checkout, env))
                else:
                    runs.append(grade_once(Path(tmp) / "results.json", lab, None, args.checkout, env))
        walls = [r["wall"] for r in runs]
        scores = sorted({f"{r['score']}/{r['full']}" for r in runs})
        print(f"litlabs grade solutions --lab {lab} (the reference), {args.repeats} runs, score {', '.join(scores)}")
        print(f"  wall time           median {statistics.median(walls):.1f} s  (min {min(walls):.1f}, max {max(walls):.1f})")
        if docker and args.memory is not None:
            peaks = [r["peak"] for r in runs]
            killed = sum(1 for r in runs if r["oom_kills"])
            print(f"  cgroup peak         median {statistics.median(peaks) / 1024**2:.0f} MiB "
                  f"(max {max(peaks) / 1024**2:.0f}; memory.max_usage_in_bytes)"
                  + (f"; OOM kills in {killed} run(s), exit codes {[r['exit'] for r in runs]}" if killed else ""))
        print(f"  peak memory, PSS    median {statistics.median(r['pss'] for r in runs) / 1024**2:.2f} GB "
              "(all processes together)")
        print(f"  peak memory, RSS    median {statistics.median(r['rss'] for r in runs) / 1024**2:.2f} GB "
              "(upper bound: shared pages counted twice)")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
