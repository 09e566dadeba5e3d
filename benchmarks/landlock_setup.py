"""What the Landlock wall costs a worker: building the allow-list and applying the ruleset.

Forks workers from a process that has imported torch and Lightning, as the zygote does;
each times ``allowed_paths`` + ``landlock.restrict`` and sends the figures back. Prints
the medians over the runs, beside the time to fork a worker at all (the baseline).

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

from grader import landlock
from grader.sandbox import private_paths
from grader.worker import allowed_paths


def one_worker(workdir: str) -> tuple[float, float, float, int]:
    """(fork to first instruction, allow-list, restrict) in seconds, and the number of read rules."""
    read_end, write_end = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            forked = time.perf_counter()
            t0 = time.perf_counter()
            read, write = allowed_paths(workdir, private_paths())
            t1 = time.perf_counter()
            landlock.restrict(read=read, write=write)
            t2 = time.perf_counter()
            os.write(write_end, struct.pack("dddi", forked - started, t1 - t0, t2 - t1, len(read)))
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
    with tempfile.TemporaryDirectory() as workdir:
        runs = [one_worker(workdir) for _ in range(args.repeats)]
    fork, paths, restrict, rules = (statistics.median(column) for column in zip(*runs))
    print(f"Landlock ABI {abi}; {args.repeats} workers forked from a process holding torch and Lightning")
    print(f"  fork, to the child's first instruction  median {fork * 1e3:.2f} ms (baseline)")
    print(f"  building the allow-list ({rules:.0f} read rules)   median {paths * 1e3:.2f} ms")
    print(f"  landlock.restrict (ruleset, rules, self) median {restrict * 1e3:.2f} ms")
    print(f"  the wall in total: {(paths + restrict) * 1e3:.2f} ms per worker")


if __name__ == "__main__":
    main()
