"""The sandboxed side: a zygote that forks one worker per submission.

Started by ``grader.sandbox.zygote.Zygote``, which calls ``zygote_main(CONTROL_FD)``, in a process
forked from the judge right after it imported torch (so torch's pages are shared) or in a fresh
interpreter. The zygote imports Lightning once (seconds on these machines) and
never imports submitted code. For each submission it forks a worker that:
starts its own session (process group), caps memory, CPU time and file size,
drops to the sandbox user when one is given, clears its environment, blocks
imports of the reference and of the grader, and then serves one request from the
judge: call a function, run methods of a class, train a LightningModule, evaluate a
trained state. A worker serves one request and is killed; the next request gets a fresh
fork, so nothing a submission does in one request (patched modules, globals, threads)
survives into the next. Replies are plain data (see ``grader.sandbox.wire``). What a request
can ask for (and the table ``OPS`` that names it) is ``grader.sandbox.ops``'s.

The zygote holds no data with labels: the judge sends a worker the training data it
may train on and evaluation inputs without their labels.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import importlib.abc
import json
import os
import resource
import select
import shutil
import signal
import socket
import sys

from grader.sandbox import ops, processes, wire

# Code the submission must not import, even where file permissions would allow it: the
# reference, and the grader itself (what a worker needs of it is bound before the submission loads).
BLOCKED_PACKAGES = ("solutions", "grader")
BLOCKED_TOP_LEVEL = ("solutions", "grader")  # folders a confined worker may not read, wherever they are
_UNLISTED: list = []  # the grader's modules a worker took out of sys.modules


# --- the zygote ---------------------------------------------------------------------

def preload() -> None:
    """Import what every worker needs, once, before any fork."""
    import lightning  # noqa: F401
    import torch  # noqa: F401
    import torchmetrics  # noqa: F401

    import datamodules.base  # noqa: F401  (the worker's datamodule; the data itself comes from the judge)
    from datamodules.pretrained import SHIPPED_FILES, shipped_state
    from grader.sandbox import landlock  # noqa: F401
    from grader.training import trainer  # noqa: F401
    from labs import common  # noqa: F401  (given code the labs import)

    for name in SHIPPED_FILES:
        shipped_state(name)  # the pretrained backbones, read before the file wall goes up


def become_subreaper() -> None:
    """Have orphaned descendants re-parented to this process instead of to init.

    A submission can start a process in a new session and let its parent exit;
    as a descendant of a subreaper it can still be found and killed by the judge.
    Linux only; elsewhere the worker's process group is what the judge kills.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_CHILD_SUBREAPER = 36
        ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


SWEEP_SECONDS = 0.1  # how often the zygote kills processes its workers left behind


def sweep_orphans(workers: set[int]) -> None:
    """Kill every child of this process that is not one of its workers.

    Only orphans are re-parented here (this process is a child subreaper): a submission's
    process whose worker exited first, in a session of its own or not. They have no
    business outliving their worker.
    """
    me = os.getpid()
    table = processes.process_table()
    live = {pid for pid, ppid, _, state in table if ppid == me and processes.live(state)}
    workers &= live  # forget the workers that ended
    for pid in live - workers:
        processes.kill_tree(pid, same_session=False, seconds=0.5)


def zygote_main(control_fd: int) -> None:
    become_subreaper()
    preload()
    # What preload made is never freed: the cyclic collector of a worker need not walk it (and so does not
    # copy its pages, shared with the zygote) -- the memory a worker adds stays what the submission adds.
    gc.collect()
    gc.freeze()
    home = os.getcwd()  # the judge's folder for this zygote: its workers' folders live below it
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers are reaped automatically
    control = socket.socket(fileno=control_fd)
    wire.send_frame(control, json.dumps({"ready": True, "pid": os.getpid()}).encode())
    workers: set[int] = set()
    while True:
        ready, _, _ = select.select([control], [], [], SWEEP_SECONDS)
        sweep_orphans(workers)
        if not ready:
            continue
        try:
            spec = json.loads(wire.recv_frame(control))
        except (EOFError, OSError, ValueError):
            break  # the judge is gone: it closed us, or died
        # Worked out here, once: the same for every worker.
        spec["grader_modules"] = _grader_modules()
        if spec.get("landlock"):
            spec["base_rules"] = _base_rules(tuple(spec["private"]))
        judge_end, worker_end = socket.socketpair()
        output_read, output_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            control.close()
            judge_end.close()
            os.close(output_read)
            # At the container's memory limit the kernel kills a worker first, before the judge or this
            # zygote: the submission's request fails ("a resource limit: memory"), the grading goes on.
            with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as adj:
                adj.write("1000")
            try:
                worker_main(worker_end, output_write, spec)
            finally:
                os._exit(70)
        workers.add(pid)
        worker_end.close()
        os.close(output_write)
        socket.send_fds(control, [json.dumps({"pid": pid}).encode()], [judge_end.fileno(), output_read])
        judge_end.close()
        os.close(output_read)
    # Take every worker and what they started along, and the workers' folders (the judge may
    # have been killed and cannot); kill_tree ends with this process itself.
    for pid in processes.descendants(os.getpid()):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(os.path.join(home, "sandboxes"), ignore_errors=True)
    processes.kill_tree(os.getpid(), same_session=False)


# --- one worker ---------------------------------------------------------------------

def _blocked(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in BLOCKED_PACKAGES)


class _BlockReference(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if _blocked(name):
            raise ImportError(f"module {name!r} is not available to submitted code")
        return None


def _confine(sock: socket.socket, output_fd: int, spec: dict) -> None:
    """Everything a worker does to itself before it touches submitted code."""
    os.setsid()  # its own process group: the judge kills the whole group
    become_subreaper()  # not inherited across fork: each worker sets it for its own offspring
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    keep = sock.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, 65536)
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)

    limits = spec["limits"]
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))
    # The address space already holds torch; the cap is what the submission may add.
    # Only Linux reports it (and enforces RLIMIT_AS); elsewhere the other limits apply.
    if os.path.exists("/proc/self/status"):
        with open("/proc/self/status") as f:
            vm_kb = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
        address_space = vm_kb * 1024 + limits["memory_bytes"]
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    if spec.get("uid") is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"], limits["processes"]))
        os.setgroups([])
        os.setgid(spec["gid"])
        os.setuid(spec["uid"])
    os.chdir(spec["workdir"])
    os.environ.clear()
    os.environ.update(spec["env"])

    import torch

    from grader.sandbox.landlock import enforce  # bound now: the grader cannot be imported once it is hidden

    torch.set_num_threads(1)  # same result every time, and no oversubscription
    # The grader's modules leave sys.modules, and importing them (or the reference) is refused. This
    # is not a wall (the submission shares this process: see the README's threat model); it keeps
    # honest code from depending on the grader, and the judge trusts nothing this process says.
    # The names come from the zygote: walking sys.modules here would write to (and so copy) thousands of
    # pages shared with it; the modules are kept alive, as freeing them would too.
    names = spec.get("grader_modules") or _grader_modules()
    _UNLISTED.extend(sys.modules.pop(name, None) for name in names)
    sys.meta_path.insert(0, _BlockReference())
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]
    if spec.get("landlock"):  # last: after this, only the allow-list below can be read or written
        base = spec.get("base_rules") or _base_rules(tuple(spec["private"]))
        own = base.plus(read=[spec["submission"]], write=allowed_writes(spec["workdir"]))
        return enforce(own).describe()
    return ""


# What a confined worker may still read: the interpreter, its libraries, the system's shared
# libraries and programs. Everything it needs of the grader was imported by the zygote.
SYSTEM_READ = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/bin", "/usr/bin", "/usr/local/bin",
               "/etc/ld.so.cache", "/etc/localtime", "/dev/urandom",
               # what torch's cpuinfo reads at its first operation (else it prints an error into the output)
               "/proc/cpuinfo", "/sys/devices/system/cpu")
SYSTEM_WRITE = ("/dev/null",)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _allow_around(path: str, private: list[str], found: list[str], depth: int = 0) -> None:
    """Allow path, or, if it holds a private folder, each of its entries that does not (recursively)."""
    if any(_inside(path, p) for p in private):
        return
    if not any(_inside(p, path) for p in private):
        found.append(path)
        return
    if depth < 8 and os.path.isdir(path):
        for entry in sorted(os.listdir(path)):
            _allow_around(os.path.join(path, entry), private, found, depth + 1)


def allowed_paths(workdir: str, private: list[str]) -> tuple[list[str], list[str]]:
    """(read, write) allow-lists for the worker: never a private path nor any folder above one.

    private: the reference, the grader (checks and hidden checks), the results; copies of our
    packages in site-packages (a non-editable install) are added here.
    """
    import site

    site_dirs = [d for d in [*site.getsitepackages(), site.getusersitepackages(), *sys.path]
                 if d and os.path.basename(d) in ("site-packages", "dist-packages")]
    private = [os.path.realpath(p) for p in private]
    private += [os.path.realpath(os.path.join(d, name)) for d in site_dirs for name in BLOCKED_TOP_LEVEL
                if os.path.exists(os.path.join(d, name))]  # only there after a non-editable install
    read: list[str] = []
    for path in dict.fromkeys([*sys.path, *SYSTEM_READ]):
        if path and os.path.exists(path):
            _allow_around(os.path.realpath(path), private, read)
    return read, allowed_writes(workdir)


def allowed_writes(workdir: str) -> list[str]:
    """The write allow-list for the worker: its scratch folder and ``SYSTEM_WRITE``."""
    return [os.path.realpath(workdir), *SYSTEM_WRITE]


_GRADER_MODULES: dict = {}  # sys.modules' size -> the names _grader_modules found at that size


def _grader_modules() -> tuple[str, ...]:
    """The names in sys.modules of the grader's (and the reference's) modules, looked up again only
    when sys.modules has changed size."""
    if len(sys.modules) not in _GRADER_MODULES:
        _GRADER_MODULES.clear()
        _GRADER_MODULES[len(sys.modules)] = tuple(name for name in list(sys.modules) if _blocked(name))
    return _GRADER_MODULES[len(sys.modules)]


@functools.lru_cache(maxsize=4)
def _base_rules(private: tuple[str, ...]):
    """The Landlock rules every worker shares: reading what ``allowed_paths`` allows (a stat per path)."""
    from grader.sandbox import landlock

    read, _ = allowed_paths(os.devnull, list(private))
    return landlock.rules(read=read)


def worker_main(sock: socket.socket, output_fd: int, spec: dict) -> None:
    decode_request, encode_reply, recv_frame, send_frame = (wire.decode_request, wire.encode_reply,
                                                           wire.recv_frame, wire.send_frame)
    try:
        confinement = _confine(sock, output_fd, spec)
        hello = {"confinement": confinement}
    except Exception as err:  # told to the judge before any submitted code runs: it decides what to do
        hello = {"confinement": "", "error": f"{type(err).__name__}: {err}"}
    send_frame(sock, json.dumps(hello).encode())
    if "error" in hello:
        os._exit(71)

    state = {"module": None, "path": spec["submission"]}
    while True:
        try:
            request = decode_request(recv_frame(sock))
        except (EOFError, OSError):
            os._exit(0)
        state["section"] = None
        try:
            value = ops.OPS[request["op"]](state, request)  # looked up in ops at each request
            reply = {"ok": True, "value": ops._to_plain(value)}
        except BaseException as err:  # SystemExit and KeyboardInterrupt are the submission's too
            error = ops.describe(err, state["path"])
            reply = {"ok": False, "error": f"{error}; in {state['section']}" if state["section"] else error}
        send_frame(sock, encode_reply(reply))
