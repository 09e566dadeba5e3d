"""Landlock: a process confines itself (and all it starts later) to an allow-list, without root.

Linux 5.13+ (ABI 1: files), 6.7+ (ABI 4: TCP bind/connect), 6.12+ (ABI 6: signals and
abstract unix sockets scoped to the process's own domain). Three system calls, made
through ctypes: no binding to install, nothing to compile.

    abi = landlock.abi_version()            # 0: not available here
    landlock.restrict(read=[...], write=[...])   # after this, everything else is refused

See the kernel's documentation, Documentation/userspace-api/landlock.rst.
"""
from __future__ import annotations

import ctypes
import functools
import os
import platform
import sys
from dataclasses import dataclass

# System call numbers: the same on x86-64 and arm64 (the generic table), and on riscv64.
_SYSCALLS = {"create_ruleset": 444, "add_rule": 445, "restrict_self": 446}
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# File-system access rights, by the ABI that introduced them.
FS = {
    "execute": (1 << 0, 1), "write_file": (1 << 1, 1), "read_file": (1 << 2, 1), "read_dir": (1 << 3, 1),
    "remove_dir": (1 << 4, 1), "remove_file": (1 << 5, 1), "make_char": (1 << 6, 1), "make_dir": (1 << 7, 1),
    "make_reg": (1 << 8, 1), "make_sock": (1 << 9, 1), "make_fifo": (1 << 10, 1), "make_block": (1 << 11, 1),
    "make_sym": (1 << 12, 1), "refer": (1 << 13, 2), "truncate": (1 << 14, 3), "ioctl_dev": (1 << 15, 5),
}
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

READ = ("execute", "read_file", "read_dir")
WRITE = READ + ("write_file", "remove_dir", "remove_file", "make_dir", "make_reg", "make_sym", "make_fifo",
                "make_sock", "truncate")


class LandlockError(OSError):
    """Landlock is missing here, or refused the ruleset."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # the kernel's struct is packed: 12 bytes
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@functools.lru_cache(maxsize=1)
def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


@functools.lru_cache(maxsize=1)
def abi_version() -> int:
    """The Landlock ABI this kernel offers, or 0 where there is none (not Linux, too old, disabled)."""
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "aarch64", "riscv64"):
        return 0
    version = _libc().syscall(_SYSCALLS["create_ruleset"], None, ctypes.c_size_t(0),
                              ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(version), 0)


@dataclass
class Confinement:
    abi: int
    files: bool
    net: bool
    signals: bool

    def describe(self) -> str:
        walls = [name for name, on in (("files", self.files), ("net", self.net), ("signals", self.signals)) if on]
        return f"landlock v{self.abi} ({', '.join(walls)})"


def _mask(names, abi: int) -> int:
    return sum(FS[name][0] for name in names if FS[name][1] <= abi)


@dataclass(frozen=True)
class Rules:
    """What ``enforce`` allows: (path, access mask) pairs for one ABI, worked out ahead of time.

    Working them out (a stat per path) costs more than enforcing them; a process that confines
    many children alike (the zygote) does it once and adds each child's own paths with ``plus``.
    """
    abi: int
    paths: tuple[tuple[str, int], ...]

    def plus(self, read=(), write=()) -> Rules:
        return Rules(self.abi, self.paths + rules(read, write, self.abi).paths)


def rules(read=(), write=(), abi: int | None = None) -> Rules:
    """The rules that allow reading (and executing) beneath ``read`` and writing beneath ``write``.

    Paths that do not exist are left out. A file gets only the rights that apply to files.
    """
    abi = abi_version() if abi is None else abi
    found = []
    for paths, names in ((read, READ), (write, WRITE)):
        for path in paths:
            path = os.fspath(path)
            if not os.path.exists(path):
                continue
            access = _mask(names, abi)
            if not os.path.isdir(path):
                access &= _FILE_RIGHTS
            found.append((path, access))
    return Rules(abi, tuple(found))


def restrict(read=(), write=(), abi: int | None = None) -> Confinement:
    """Confine this process: read (and execute) only beneath ``read``, write only beneath ``write``,
    no TCP bind or connect, no signals or abstract unix sockets outside its own domain.

    Paths that do not exist are skipped. Raises LandlockError if the kernel has no Landlock.
    Irreversible, and inherited by every process started afterwards.
    """
    return enforce(rules(read, write, abi))


def enforce(allowed: Rules) -> Confinement:
    """Confine this process to ``allowed`` (see ``rules``), as ``restrict`` does."""
    abi = allowed.abi
    if abi < 1:
        raise LandlockError("Landlock is not available on this kernel")
    libc = _libc()
    attr = _RulesetAttr(handled_access_fs=_mask(FS, abi),
                        handled_access_net=(NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
                        scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0)
    # Older kernels take the larger struct as long as the fields they do not know are zero.
    ruleset = libc.syscall(_SYSCALLS["create_ruleset"], ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise LandlockError(ctypes.get_errno(), f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
    try:
        for path, access in allowed.paths:
            _allow(libc, ruleset, path, access)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise LandlockError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_SYSCALLS["restrict_self"], ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise LandlockError(ctypes.get_errno(), f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    return Confinement(abi, files=True, net=abi >= 4, signals=abi >= 6)


_FILE_RIGHTS = FS["execute"][0] | FS["write_file"][0] | FS["read_file"][0] | FS["truncate"][0] | FS["ioctl_dev"][0]


def _allow(libc, ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path that is not there (any more) needs no rule
    try:
        rule = _PathBeneathAttr(allowed_access=access, parent_fd=fd)
        if libc.syscall(_SYSCALLS["add_rule"], ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                        ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise LandlockError(ctypes.get_errno(), f"landlock_add_rule({path}): {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)
