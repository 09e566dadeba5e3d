"""What the Landlock wall costs a worker: building the allow-list and applying the ruleset.

Forks workers from a process that has imported torch and Lightning, as the zygote does. The
zygote works out the rules every worker shares once (``allowed_paths``, a stat per path); each
worker adds its own folder and file and enforces them (``landlock.enforce``), and for comparison
also times doing it all itself (``allowed_paths`` + ``landlock.restrict``, what a worker did before).
Prints the medians over the runs, beside the time to fork a worker at all (the baseline).

    python benchmarks/landlock_setup.py [--repeats 30]
"""
from __future__ import annotations

import argparse
import os
import statistics
import struct
import tempfile
import time

import lightning  # noqa: F401 -- the worker's address space, as in the zygote
import torch  # noqa: F401

from grader.sandbox import landlock
from grader.sandbox.identity import private_paths
from grader.sandbox.worker import _base_rules, allowed_paths, allowed_writes

PRIVATE = tuple(private_paths())  # what the judge sends the zygote with each worker's spec


def one_worker(workdir: str, all_itself: bool) -> tuple[float, float, float, int]:
    """(fork to first instruction, allow-list, enforce) in seconds, and the number of read rules."""
    read_end, write_end = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            forked = time.perf_counter()
            t0 = time.perf_counter()
            if all_itself:
                read, write = allowed_paths(workdir, private_paths())
                t1 = time.perf_counter()
                landlock.restrict(read=read, write=write)
                rules = len(read)
            else:
                base = _base_rules(PRIVATE)  # worked out by the parent before the fork
                t1 = time.perf_counter()
                landlock.enforce(base.plus(write=allowed_writes(workdir)))
                rules = len(base.paths)
            t2 = time.perf_counter()
            os.write(write_end, struct.pack("dddi", forked - started, t1 - t0, t2 - t1, rules))
        finally:
            os._exit(0)
    os.close(write_end)
    data = os.read(read_end, 64)
    os.close(read_end)
    os.waitpid(pid, 0)
    return struct.unpack("dddi", data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    abi = landlock.abi_version()
    if not abi:
        raise SystemExit("this kernel has no Landlock: nothing to measure")
    _base_rules(PRIVATE)  # once, in the parent: the zygote's part
    print(f"Landlock ABI {abi}; {args.repeats} workers of each kind forked from a process holding torch and Lightning")
    with tempfile.TemporaryDirectory() as workdir:
        for all_itself, name in ((True, "all in the worker (before)"), (False, "shared rules from the zygote (now)")):
            runs = [one_worker(workdir, all_itself) for _ in range(args.repeats)]
            fork, paths, enforce, rules = (statistics.median(column) for column in zip(*runs))
            print(f"{name}: fork, to the child's first instruction median {fork * 1e3:.2f} ms (baseline); "
                  f"allow-list ({rules:.0f} read rules) {paths * 1e3:.2f} ms; ruleset and self {enforce * 1e3:.2f} ms; "
                  f"the wall in total: {(paths + enforce) * 1e3:.2f} ms per worker")


if __name__ == "__main__":
    main()
