"""Finding and killing processes: every descendant of a process, or every process of a user.

Used on both sides of the trust boundary (the judge kills workers, the zygote kills
what its workers left behind), so it imports nothing of either.
"""
from __future__ import annotations

import collections
import contextlib
import os
import signal
import time

PF_EXITING = 0x4  # the kernel's flag (field 9 of /proc/PID/stat) for a process that is tearing itself down


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, session, ...); None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _state(fields: list[str]) -> str:
    """The process's state letter, from the fields ``stat_fields`` gives.

    "X" (dead) also for a process that is exiting (it runs no code of its own again), and "L" for a
    leader that exited while its other threads run on: /proc shows that one as a zombie ("Z"),
    though it is not one (a submission can hide that way)."""
    letter, exiting, threads = fields[0], int(fields[6]) & PF_EXITING, int(fields[17])
    if letter in ("Z", "X") or exiting:
        return "L" if threads > 1 else "Z" if letter == "Z" else "X"
    return letter


def live(state: str) -> bool:
    """Whether a process in this state (see ``process_table``) can still run code."""
    return state not in ("Z", "X")


def running(fields: list[str]) -> bool:
    """Whether the process whose ``stat_fields`` these are can still run code."""
    return live(_state(fields))


def process_table() -> list[tuple[int, int, int, str]]:
    """(pid, parent pid, session id, state) of every process; empty where there is no /proc.

    The state is /proc's letter, refined (see ``_state``): a killed process frees its memory
    before it becomes a zombie (tens of milliseconds for a worker that holds torch) and shows as
    "X" meanwhile, as good as gone; a zombie leader whose threads run on shows as "L", alive.

    The processes are read one by one, in pid order, and a parent can exit between the reading of its
    child and its own: once pids have wrapped around, a child can come first, and it would look
    parentless (its parent gone, its new parent -- the subreaper -- not yet seen as its parent), a
    process a tree walk misses. A table with a parent that is missing is read again.
    """
    table = []
    for _ in range(TABLE_READS):
        table = _read_table()
        pids = {pid for pid, *_ in table} | {0}  # 0: the parent of a namespace's first process
        if all(ppid in pids for _, ppid, _, _ in table):
            break
    return table


TABLE_READS = 5  # a table that is still not whole after this (a /proc that hides processes) is used as it is


def _read_table() -> list[tuple[int, int, int, str]]:
    table = []
    if not os.path.isdir("/proc"):  # not Linux (e.g. a student's Mac): the process group must do
        return table
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = stat_fields(int(entry.name))
            if fields is not None:
                table.append((int(entry.name), int(fields[1]), int(fields[3]), _state(fields)))
    return table


def descendants(root: int, table: list[tuple[int, int, int, str]] | None = None) -> set[int]:
    """Every process below root in the process tree, zombies included (see ``process_table``)."""
    table = process_table() if table is None else table
    children = collections.defaultdict(list)
    for pid, ppid, _, _ in table:
        children[ppid].append(pid)
    found, stack = set(), [root]
    while stack:
        for child in children[stack.pop()]:
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _offspring(root: int, same_session: bool) -> set[int]:
    """Live processes that came from root: its descendants and, if asked, its session's members.

    The zygote and each worker are child subreapers (see grader.sandbox.worker), so a process
    whose parent exits is re-parented to them, not to init, and stays a descendant.
    """
    table = process_table()
    found = descendants(root, table)
    if same_session:
        found |= {pid for pid, _, sid, _ in table if sid == root}
    return {pid for pid, _, _, state in table if live(state) and pid in found} - {root}


def kill_tree(root: int, same_session: bool, seconds: float = 2.0) -> None:
    """SIGKILL everything that came from root, then root and its process group.

    root stays alive until the end, so a process orphaned by the killing is
    re-parented to it and found in the next round; forks in between are caught
    the same way (RLIMIT_NPROC bounds them).
    """
    deadline = time.monotonic() + seconds
    while (targets := _offspring(root, same_session)) and time.monotonic() < deadline:
        for pid in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)  # let the signals land before looking again
    kills = [(os.killpg, root), (os.kill, root)] if same_session else [(os.kill, root)]
    for kill, target in kills:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(target, signal.SIGKILL)


def processes_of_user(uid: int, below: int | None = None) -> set[int]:
    """Live processes whose real user is uid (zombies and exiting ones excluded); with ``below``, only its
    descendants."""
    found = set()
    if not os.path.isdir("/proc"):
        return found
    within = descendants(below) if below is not None else None
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or (within is not None and int(entry.name) not in within):
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        stat = stat_fields(int(entry.name))
        if stat is None or not running(stat):
            continue
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            found.add(int(entry.name))
    return found


def kill_user(uid: int, below: int | None = None, seconds: float = 5.0) -> bool:
    """SIGKILL every process of uid (below ``below``, if given) until none is left; True if none is left.

    Only for a uid that belongs to one student's sandbox alone: a process cannot leave its uid, so
    this catches what re-sessioned itself or re-parented to the zygote (a child subreaper), out of
    its worker's tree. ``below`` (the zygote) keeps it off another grader's processes on this kernel
    that happen to use the same uid (a chroot with its own lock files).
    """
    if uid == 0 or uid == os.getuid():
        raise ValueError("kill_user is for a sandbox's own uid, never the grader's")
    deadline = time.monotonic() + seconds
    while targets := processes_of_user(uid, below):
        if time.monotonic() > deadline:
            return False
        for pid in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)
    return True
