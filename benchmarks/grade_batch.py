"""Grading a class: `litlabs grade-all` over many Lab 1 submissions, as an instructor runs it.

Makes N submissions (default 100): 10% hostile (crash at import, endless loop at
import, a memory bomb, an output flood), the rest references, untouched stubs and
references with one mistake. Runs ``litlabs grade-all submissions/ --out grades.csv
--jobs J`` as a fresh command from the folder holding them, checks every row's
score, and prints the median over runs of: wall time, students per minute, and the
marginal time per student (from a second, small batch of the same mix). As a
baseline it times ``litlabs grade`` of one reference as a fresh process, which is
what each student cost when every student paid torch's import.

    python benchmarks/grade_batch.py [--students 100] [--jobs 2] [--repeats 3]
"""
from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REFERENCE = (REPO / "solutions" / "logreg.py").read_text()
STUB = (REPO / "labs" / "logreg.py").read_text()
FUTURE = "from __future__ import annotations\n"


def at_top(code: str) -> str:
    return REFERENCE.replace(FUTURE, FUTURE + code, 1)


MISTAKES = [  # (old, new, score): the reference with one mistake
    ("err = a - y.to(a.dtype)", "err = y.to(a.dtype) - a", 20),
    ("    shifted = logits - logits.max(dim=1, keepdim=True).values\n    exp", "    shifted = logits\n    exp", 26),
]
HOSTILE = [  # (source, score)
    (at_top("raise RuntimeError('crash at import')\n"), 0),
    (at_top("while True:\n    pass\n"), 0),
    (at_top("hog = []\nwhile True:\n    hog.append(bytearray(1 << 28))\n"), 0),
    (at_top("for _ in range(200_000):\n    print('flood ' * 20)\n"), 27),
]


def submission(i: int) -> tuple[str, float]:
    """The i-th student's logreg.py and the score it must get: 1 in 10 is hostile."""
    if i % 10 == 9:
        return HOSTILE[(i // 10) % len(HOSTILE)]
    kind = i % 10
    if kind < 4:
        return REFERENCE, 27
    if kind < 7:
        return STUB, 0
    old, new, score = MISTAKES[kind % len(MISTAKES)]
    return REFERENCE.replace(old, new, 1), score


def run_batch(folder: Path, students: int, jobs: int) -> float:
    """Grade `students` submissions from `folder`, relative paths as the README types them; return wall time."""
    for i in range(students):
        (folder / "submissions" / f"s{i:03d}").mkdir(parents=True)
        (folder / "submissions" / f"s{i:03d}" / "logreg.py").write_text(submission(i)[0])
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "grader.cli", "grade-all", "submissions/", "--out", "grades.csv",
                           "--jobs", str(jobs)], cwd=folder, capture_output=True, text=True)
    wall = time.perf_counter() - start
    rows = list(csv.DictReader((folder / "grades.csv").open()))
    wrong = [(r["student"], r["score"], r["status"]) for r in rows
             if float(r["score"]) != submission(int(r["student"][1:]))[1] or r["status"] != "graded"]
    if done.returncode != 0 or len(rows) != students or wrong:
        sys.exit(f"the batch graded wrongly (exit {done.returncode}): {wrong[:5]}\n{done.stdout[-2000:]}"
                 f"{done.stderr[-2000:]}")
    return wall


def one_fresh_grade(folder: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "grader.cli", "grade", str(REPO / "solutions"), "--lab", "logreg",
                    "--format", "json"],
                   cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--small", type=int, default=10, help="the small batch, for the marginal time per student")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    walls, smalls, fresh = [], [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as big, tempfile.TemporaryDirectory() as small:
            walls.append(run_batch(Path(big), args.students, args.jobs))
            smalls.append(run_batch(Path(small), args.small, args.jobs))
            fresh.append(one_fresh_grade(Path(small)))
    wall, small_wall, baseline = statistics.median(walls), statistics.median(smalls), statistics.median(fresh)
    marginal = (wall - small_wall) / (args.students - args.small)
    print(f"litlabs grade-all, {args.students} Lab 1 submissions (10% hostile), --jobs {args.jobs}, "
          f"{args.repeats} run(s); every row graded right")
    print(f"  wall time                median {wall:.1f} s  (min {min(walls):.1f}, max {max(walls):.1f})")
    print(f"  students per minute      {60 * args.students / wall:.1f}")
    print(f"  marginal time / student  {marginal:.2f} s of wall time  (from {args.small} students: {small_wall:.1f} s)")
    print(f"  baseline: one fresh `litlabs grade` of the reference takes {baseline:.1f} s; a process per student "
          f"would take about {args.students * baseline / args.jobs:.0f} s for this batch "
          f"({args.students * baseline / args.jobs / wall:.1f}x the batch's time)")


if __name__ == "__main__":
    main()
