"""The policy's tables (dunders, introspection attributes, refused builtins, names of refused modules' objects)
and small helpers on names, nodes and fnmatch patterns that every rule uses."""
from __future__ import annotations

import ast
import re
from fnmatch import translate
from functools import cache

from grader.judge.policy.violation import _WHY_DYNAMIC, _WHY_INTROSPECTION, _WHY_SYSTEM

# ---------------------------------------------------------------------------
# Policy tables
# ---------------------------------------------------------------------------
# Dunder attributes that only follow the language's protocols (reading them reaches nothing new).
_ALLOWED_DUNDERS = frozenset(
    [f"__{name}__" for name in """
        add sub mul matmul truediv floordiv mod divmod pow lshift rshift and xor or
        radd rsub rmul rmatmul rtruediv rfloordiv rmod rdivmod rpow rlshift rrshift rand rxor ror
        iadd isub imul imatmul itruediv ifloordiv imod ipow ilshift irshift iand ixor ior
        neg pos abs invert lt le eq ne gt ge hash bool len length_hint getitem setitem delitem contains
        iter next reversed call await aiter anext init repr str format bytes int
        float complex index round trunc floor ceil class name qualname doc module version post_init
        init_subclass class_getitem set_name missing copy deepcopy array
    """.split()])
_INTROSPECTIVE_DUNDERS = frozenset(f"__{n}__" for n in """
    globals code closure subclasses bases base mro dict self func builtins traceback loader spec wrapped defaults
    kwdefaults reduce reduce_ex getstate setstate file path cached package import objclass weakref annotations
    getattribute getattr setattr delattr context cause frame
""".split())
_SUPER_ONLY_DUNDERS = frozenset({"__getattr__", "__setattr__", "__delattr__", "__getattribute__"})
_ALLOWED_DUNDER_NAMES = frozenset({"__name__", "__doc__", "__all__", "__slots__", "__version__", "__author__",
                                   "__debug__", "__module__", "__qualname__", "__annotations__", "__match_args__"})
# Attributes of frames, code objects, generators, coroutines, tracebacks, cells and classes.
_INTROSPECTION_ATTRIBUTES = frozenset("""
    f_back f_builtins f_code f_globals f_lasti f_lineno f_locals f_trace f_trace_lines f_trace_opcodes f_generator
    gi_frame gi_code gi_yieldfrom gi_suspended gi_running cr_frame cr_code cr_await cr_origin cr_running
    ag_frame ag_code ag_await ag_running tb_frame tb_next tb_lasti tb_lineno
    co_code co_consts co_names co_varnames co_filename co_name co_qualname co_firstlineno co_lnotab co_linetable
    co_exceptiontable co_freevars co_cellvars co_flags co_argcount co_kwonlyargcount co_posonlyargcount co_nlocals
    co_stacksize co_lines co_positions cell_contents func_globals func_code func_closure im_func im_self mro
    _getframe _current_frames currentframe getframeinfo get_referrers get_referents get_objects
""".split())
# Refused modules that allowed ones re-export as attributes (torch.os, warnings.sys, numpy.ctypeslib).
_MODULE_ATTRIBUTES = frozenset("""
    os sys ctypes ctypeslib pythonapi gc inspect importlib builtins subprocess socket pickle marshal weakref shutil
    pathlib tempfile threading multiprocessing posix nt traceback linecache runpy pkgutil copyreg faulthandler
    atexit mmap dill cloudpickle codeop zipimport sysconfig types io
""".split())
# Classes and functions of refused modules that allowed modules import under their own names
# (datamodules does ``from pathlib import Path``): refused when reached from another package's module.
_SYSTEM_NAMES = frozenset("""
    Path PosixPath WindowsPath PurePath PurePosixPath PureWindowsPath Popen popen system open fdopen urlopen
    urlretrieve check_output check_call getoutput getstatusoutput environ getenv putenv kill killpg fork forkpty
    execv execve execvp execl spawnv spawnve import_module reload run_path run_module getsource getmodule getfile
    getmembers socket create_connection Thread Process
""".split())
# Builtins a submission may not use at all.
_BANNED_BUILTINS = {
    "eval": _WHY_DYNAMIC, "exec": _WHY_DYNAMIC, "compile": _WHY_DYNAMIC, "__import__": _WHY_DYNAMIC,
    "globals": _WHY_INTROSPECTION, "locals": _WHY_INTROSPECTION, "vars": _WHY_INTROSPECTION,
    "breakpoint": _WHY_INTROSPECTION, "help": _WHY_INTROSPECTION, "open": _WHY_SYSTEM, "input": _WHY_SYSTEM,
    "exit": _WHY_SYSTEM, "quit": _WHY_SYSTEM, "copyright": _WHY_SYSTEM, "credits": _WHY_SYSTEM, "license": _WHY_SYSTEM,
}
_ATTRIBUTE_BUILTINS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
_CONTAINER_BUILTINS = frozenset({"list", "tuple", "dict", "set", "frozenset", "iter", "reversed", "sorted", "zip",
                                 "enumerate", "map", "filter"})
_ELEMENT_BUILTINS = frozenset({"next", "min", "max"})
_MUTATORS = frozenset({"append", "extend", "insert", "update", "setdefault", "pop", "popitem", "clear", "remove",
                       "discard", "appendleft", "extendleft", "__setitem__", "__delitem__"})
_CLASS_REACHING = frozenset({"__class__", "__bases__", "__base__", "__mro__", "__self__", "__func__", "__globals__",
                             "__wrapped__", "__builtins__", "__closure__"})
_REGISTERS = frozenset({"register_buffer", "register_parameter", "register_module", "add_module"})
_TORCH_HOOK_METHODS = frozenset({"__torch_function__", "__torch_dispatch__"})
_PRIVATE_CLASS = re.compile(r"_[A-Z][a-z]\w*\Z")
_CODING = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.ASCII)


def _tree(*names: str) -> tuple[str, ...]:
    """Each dotted name and everything under it, as fnmatch patterns."""
    return tuple(p for n in names for p in (n, n + ".*"))


@cache
def _rx(patterns: tuple[str, ...]):
    """One compiled regular expression for a tuple of fnmatch patterns (None for no pattern)."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{translate(p)})" for p in patterns))


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _short(node: ast.AST, limit: int = 60) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # noqa: BLE001 - a node this Python cannot print: say what kind it is
        text = type(node).__name__
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_super_call(node: ast.AST) -> bool:
    """``super()`` with no arguments: the enclosing class's next base, seen from self."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
            and not node.args and not node.keywords)


def _is_false(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in (False, 0) and not isinstance(node.value, str)
