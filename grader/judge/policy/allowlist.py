"""The import allow-list, and the dotted names refused everywhere: what ``import`` and ``from ... import`` may
name, and why using the object a dotted name resolves to is refused (rules 2, 5 and 6 of ``scan``)."""
from __future__ import annotations

from grader.judge.policy.tables import _PRIVATE_CLASS, _SYSTEM_NAMES, _is_dunder, _rx, _tree
from grader.judge.policy.violation import (
    _WHY_DYNAMIC,
    _WHY_GRADER,
    _WHY_INTROSPECTION,
    _WHY_NOT_ALLOWED,
    _WHY_PRIVATE,
    _WHY_SETTINGS,
    _WHY_SYSTEM,
    _WHY_TORCH_INTERNALS,
)

# ---------------------------------------------------------------------------
# The modules a submission may import, and those it may not
# ---------------------------------------------------------------------------
ALLOWED_MODULES = (
    "torch", "torchvision", "torchmetrics", "lightning", "pytorch_lightning", "lightning_fabric", "numpy",
    "datamodules", "labs.common", "__future__",
    "math", "cmath", "random", "functools", "itertools", "collections", "dataclasses", "typing",
    "typing_extensions", "abc", "numbers", "operator", "warnings", "enum", "statistics", "fractions", "decimal",
    "heapq", "bisect", "copy", "time", "re", "contextlib",
)
_INTROSPECTION_MODULES = frozenset("""
    gc inspect ctypes sys importlib builtins types weakref code codeop marshal dis traceback linecache ast
    tokenize copyreg faulthandler tracemalloc sysconfig site pkgutil runpy zipimport imp pickle pickletools
    dill cloudpickle opcode symtable pyclbr pdb bdb trace cProfile profile gettext
""".split())
_SYSTEM_MODULES = frozenset("""
    os posix nt posixpath ntpath socket subprocess multiprocessing threading signal resource shutil pathlib io
    tempfile shelve dbm sqlite3 mmap select selectors asyncio concurrent urllib http ftplib smtplib ssl glob
    zipfile tarfile gzip bz2 lzma zlib fcntl pty tty termios atexit webbrowser platform getpass pwd grp
    logging socketserver xmlrpc email mailbox uuid filecmp fileinput csv json shlex sched queue
""".split())
_GRADER_CODE = frozenset({"grader", "solutions", "tests", "conftest", "labs", "mutations", "sandbox_python",
                          "gradescope_format", "data_files"})


_DENIED = (  # (patterns on resolved dotted names, why), checked everywhere
    (_tree("torch.ops", "torch.classes", "torch.library", "torch.overrides"), _WHY_TORCH_INTERNALS),
    (_tree("torch.fx", "torch.jit", "torch.export", "typing.get_type_hints", "typing.ForwardRef",
           "typing_extensions.get_type_hints", "typing_extensions.ForwardRef", "dataclasses.make_dataclass",
           "lightning.pytorch.utilities.parsing", "pytorch_lightning.utilities.parsing")
     + ("*.lightning_getattr", "*.lightning_setattr", "*.lightning_hasattr"), _WHY_DYNAMIC),
    (_tree("torch.load", "torch.save", "torch.from_file", "torch.serialization", "torch.hub", "torch.package",
           "torch.utils.cpp_extension", "torch.multiprocessing", "torch.distributed.rpc", "torch.distributed.elastic",
           "torch.distributed.launch", "torch.distributed.run", "numpy.load", "numpy.save", "numpy.savez",
           "numpy.savez_compressed", "numpy.savetxt", "numpy.loadtxt", "numpy.genfromtxt", "numpy.fromfile",
           "numpy.fromregex", "numpy.memmap", "numpy.ctypeslib", "numpy.lib.npyio", "numpy.lib.format",
           "numpy.DataSource", "numpy.f2py", "numpy.distutils", "torchvision.io", "torchvision.datasets",
           "torchvision.utils.save_image", "lightning.fabric.utilities.cloud_io", "lightning_fabric.utilities.cloud_io",
           "lightning.pytorch.utilities.cloud_io", "pytorch_lightning.utilities.cloud_io")
     + ("*.from_file", "*.tofile"), _WHY_SYSTEM),
    (("torch.nn.modules.module.register_module_*", "torch.nn.modules.register_module_*", "*.register_module_*_hook"),
     "a submission may not install hooks on every module of the process"),
)
_SETTINGS = ("torch.set_*", "torch.autograd.set_*", "torch.autograd.grad_mode.set_*",
             "torch.use_deterministic_algorithms", "torch.backends.*.set_*")
_SETTINGS_ALLOWED = ("torch.set_rng_state",)
_SETTINGS_IN_WITH = ("torch.set_grad_enabled", "torch.autograd.set_grad_enabled", "torch.autograd.set_detect_anomaly",
                     "torch.autograd.grad_mode.set_grad_enabled")


_DENIED_RX = tuple((_rx(patterns), why) for patterns, why in _DENIED)
_SETTINGS_RX, _SETTINGS_ALLOWED_RX = _rx(_SETTINGS), _rx(_SETTINGS_ALLOWED)
_SETTINGS_IN_WITH_RX = _rx(_SETTINGS_IN_WITH)


def _module_problem(dotted: str) -> str | None:
    """Why ``import dotted`` (or ``from a import b`` as a.b) is refused, or None."""
    parts = dotted.split(".")
    top = parts[0]
    if dotted == "__future__" or dotted.startswith("__future__."):
        return None
    if top in _GRADER_CODE and not (dotted == "labs.common" or dotted.startswith("labs.common.")):
        return _WHY_GRADER
    if top in _INTROSPECTION_MODULES:
        return _WHY_INTROSPECTION
    if top in _SYSTEM_MODULES:
        return _WHY_SYSTEM
    if top.startswith("_"):
        return _WHY_INTROSPECTION
    if not any(dotted == m or dotted.startswith(m + ".") for m in ALLOWED_MODULES):
        return _WHY_NOT_ALLOWED
    return None


def _private_component(dotted: str) -> str | None:
    """The first private component of a dotted name that is not a private class of a public submodule."""
    parts = dotted.split(".")
    for i, part in enumerate(parts[1:], 1):
        if part.startswith("_") and not _is_dunder(part):
            if i >= 2 and _PRIVATE_CLASS.match(part) and all(not p.startswith("_") for p in parts[1:i]):
                continue
            return ".".join(parts[: i + 1])
    return None


def _dotted_problem(dotted: str, in_with: bool = False) -> str | None:
    """Why using the object a dotted name resolves to is refused (everywhere), or None."""
    top = dotted.split(".")[0]
    if top in _GRADER_CODE and not (dotted == "labs.common" or dotted.startswith("labs.common.")):
        return _WHY_GRADER
    if _private_component(dotted):
        return _WHY_TORCH_INTERNALS if top == "torch" else _WHY_PRIVATE
    for rx, why in _DENIED_RX:
        if rx.match(dotted):
            return why
    if dotted.rsplit(".", 1)[-1] in _SYSTEM_NAMES and "." in dotted:
        return _WHY_SYSTEM
    if _SETTINGS_RX.match(dotted) and not _SETTINGS_ALLOWED_RX.match(dotted):
        if not (in_with and _SETTINGS_IN_WITH_RX.match(dotted)):
            return _WHY_SETTINGS
    return None
