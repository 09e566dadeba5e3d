"""Grading a lab's reference: wall time and peak memory of all processes together.

Runs ``litlabs grade solutions --lab LAB`` as a fresh command several times (as an
autograder would) and samples, every 20 ms, the memory of the whole process
tree: the judge, the zygote and the sandboxed worker. Memory is the sum of PSS
(proportional set size: pages shared between processes, such as the worker's
copy-on-write pages inherited from the zygote, are split between them) and, as
an upper bound, the sum of RSS. Prints medians over the runs.

    python benchmarks/grade_reference.py [--lab logreg] [--repeats 5]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.sandbox import descendants


def memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in kB, 0 if it is gone."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
        return int(fields["Pss"].split()[0]), int(fields["Rss"].split()[0])
    except (OSError, KeyError, ValueError):
        return 0, 0


def grade_once(results: Path, lab: str) -> tuple[float, int, int, float]:
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "grader.cli", "grade", "solutions", "--lab", lab,
                                "--results", str(results), "--format", "json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_pss = peak_rss = 0
    while process.poll() is None:
        totals = [memory_kb(p) for p in (process.pid, *descendants(process.pid))]
        peak_pss = max(peak_pss, sum(t[0] for t in totals))
        peak_rss = max(peak_rss, sum(t[1] for t in totals))
        time.sleep(0.02)
    wall = time.perf_counter() - start
    score = json.loads(results.read_text())["score"]
    return wall, peak_pss, peak_rss, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lab", default="logreg")
    args = parser.parse_args()
    walls, psss, rsss = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            wall, pss, rss, score = grade_once(Path(tmp) / "results.json", args.lab)
            walls.append(wall)
            psss.append(pss)
            rsss.append(rss)
    print(f"litlabs grade solutions --lab {args.lab} (the reference), {args.repeats} runs, score {score:g}")
    print(f"  wall time           median {statistics.median(walls):.1f} s  (min {min(walls):.1f}, max {max(walls):.1f})")
    print(f"  peak memory, PSS    median {statistics.median(psss) / 1024**2:.2f} GB (all processes together)")
    print(f"  peak memory, RSS    median {statistics.median(rsss) / 1024**2:.2f} GB (upper bound: shared pages counted twice)")


if __name__ == "__main__":
    main()
