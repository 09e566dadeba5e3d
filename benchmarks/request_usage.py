"""CPU and wall time of each request a lab's reference makes while graded: where the budgets come from.

Every training request (``Submission.fit``) has a CPU-time budget that its check sets from what
the reference needs; this prints what the reference uses, request by request, and the margin each
budget leaves (budget / use). The worker is single-threaded, so its CPU time hardly depends on the
machine's load; it does depend on the CPU's speed, hence the margin.

    python benchmarks/request_usage.py [--lab mlp ...]
"""
from __future__ import annotations

import argparse
import collections

from grader.course import LABS, REPO_ROOT
from grader.judge.grade import grade
from grader.sandbox import client as sandbox
from grader.sandbox.zygote import Zygote


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab", nargs="*", default=list(LABS))
    args = parser.parse_args()
    usage: list = []
    close = sandbox.Sandbox.close

    def keep_usage(self):
        usage.extend(self.usage)
        close(self)

    sandbox.Sandbox.close = keep_usage
    with Zygote() as zygote:
        for lab in args.lab:
            usage.clear()
            results = grade(REPO_ROOT / "solutions", lab, zygote=zygote)
            print(f"{lab}: score {results.score:g} / {results.max_score:g}, {len(usage)} requests, "
                  f"{sum(u[1] for u in usage):.1f} s CPU, {sum(u[2] for u in usage):.1f} s wall in workers")
            trained = collections.defaultdict(list)
            for what, cpu, wall in usage:
                if what.startswith("training"):
                    trained[what].append((cpu, wall))
            for what, runs in trained.items():
                print(f"  {what:40s} " + ", ".join(f"{cpu:.1f} s CPU / {wall:.1f} s wall" for cpu, wall in runs))


if __name__ == "__main__":
    main()
