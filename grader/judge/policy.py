"""A static integrity policy for a submitted lab file, checked by the trusted judge before the file runs.

A submission is one Python file that the grader imports in a sandboxed worker process. Everything in
that process belongs to the submission, so a guard that runs there (a stand-in autograd engine, a look
at the autograd graph) can be reached and forged by the submission itself. This module reads the
submitted *source* with ``ast``, never importing or running it, and reports what a submission may not
do. It takes a few milliseconds (about 8 ms of CPU for the 459 lines of ``solutions/mlp.py``).

API
---
``scan(source, filename) -> list[Violation]``
    The integrity policy that every submission meets, whatever the lab.
``uses_in(source, scope, forbidden, *, filename, why) -> list[Violation]``
    A rule that holds in part of the file only. The code that ``scope`` names, and everything of the
    submission it reaches by name, must not use what ``forbidden`` (a ``Forbidden``) lists.
``lab_rules(lab, source, filename=None) -> list[Violation]``
    The scoped rules of one lab, ``LAB_RULES[lab]``: ready-made ``Rule`` constants
    (``HAND_WRITTEN_BACKWARD``, ``OWN_SCALAR_AUTOGRAD``, ``OWN_CONV_AND_POOL``, ``OWN_BATCH_NORM``,
    ``LOGREG_WITHOUT_AUTOGRAD``).
``check(source, filename, lab=None) -> list[Violation]``
    ``scan`` and then ``lab_rules``, sorted by line.

A ``Violation`` is a frozen dataclass (line, what, why, filename, rule, column). Its ``str()`` is one
line for the student, e.g. ``mlp.py, line 12: imports gc (introspection of the grader's process is not
allowed in a submission)``. Pass the file's text decoded as UTF-8, exactly the bytes the worker
imports; a ``bytes`` source is decoded here. A file that cannot be parsed is one violation ("cannot
be read as Python source: SyntaxError: ...") from ``scan`` and none from the scoped rules.

The rules of ``scan``
---------------------
Each rule forbids a kind of thing, not a list of known attacks.

1. **Source.** The source must parse with the judge's Python and must declare no encoding other than
   UTF-8. Under another declared encoding, such as utf-7, the interpreter would run different code from
   the code read here.
2. **Imports.** Only an allow-list may be imported: torch, torchvision, torchmetrics, lightning
   (and pytorch_lightning), numpy, datamodules, labs.common, ``__future__``, and math, cmath, random,
   functools, itertools, collections, dataclasses, typing, typing_extensions, abc, numbers, operator,
   warnings, enum, statistics, fractions, decimal, heapq, bisect, copy, time, re and contextlib.
   Refused: the process and introspection machinery (gc, inspect, ctypes, sys, os, importlib, builtins,
   types, weakref, pickle, io, pathlib, ...), the grader's own code (grader, solutions, tests, labs
   other than labs.common), private modules (``torch._C``, ``numpy._core``), relative imports and
   ``import *``. From a public torch module, a private *class* such as ``_BatchNorm`` may be imported
   (``from torch.nn.modules.batchnorm import _BatchNorm``). Private functions and variables may not.
3. **Code built at run time and dynamic attribute names.** These may not be used: eval, exec,
   compile, ``__import__``, globals, locals, vars, breakpoint, open, input, help, exit and quit. Also
   refused: getattr, setattr, delattr and hasattr with a name that is not a written-out string (or
   used as values), ``type()`` with three arguments or used other than as ``type(x)``, metaclass calls
   (``SomethingMeta(name, bases, ns)``), ``operator.attrgetter``/``methodcaller`` with names that are
   not written out, and ``str.format`` on a template that is not written out. Written-out format
   templates are read like attribute accesses.
4. **Introspection attributes.** A dunder attribute outside a small allow-list of protocol dunders
   (``__init__``, ``__class__``, ``__name__``, the operators, ...) is refused. That covers
   ``__globals__``, ``__code__``, ``__closure__``, ``__subclasses__``, ``__bases__``, ``__mro__``,
   ``__self__``, ``__traceback__``, and ``__dict__`` of anything but ``self``. So are frame, code,
   generator and traceback attributes (``f_locals``, ``f_back``, ``gi_frame``, ``tb_frame``,
   ``co_code``, ``mro``, ...) and dunder names other than ``__name__``, ``__doc__``, ``__all__``, ...
   (``__builtins__``). Reaching a refused module as an attribute of an allowed one is refused too
   (``torch.os``, ``warnings.sys``, ``numpy.ctypeslib``), and so are well-known functions and classes of
   refused modules that an allowed module imports under its own name (``datamodules.base.Path``,
   ``x.Popen``, ``x.environ``).
5. **Private attributes.** ``x._name`` is allowed on ``self``, ``cls`` and ``ctx``, on ``super()``
   (without arguments) for names the submission defines, and on anything else that is not a module or
   class of another package when the submission itself defines or assigns ``_name`` somewhere
   (micrograd's ``v._backward()``, ``child._prev``). ``torch._C``, ``torch._*`` and every private
   component of a dotted name reached from an import are refused. One exception is allowed: a private
   class of a public submodule (``nn.modules.batchnorm._BatchNorm``). ``torch.ops`` and
   ``torch.classes`` are refused as well.
6. **Other torch, numpy, lightning and torchvision machinery that escapes the sandbox's intent.**
   Refused: torch.library, torch.overrides, torch.fx, torch.jit, torch.export, torch.hub,
   torch.package, torch.utils.cpp_extension, torch.multiprocessing, torch.distributed.rpc/elastic/run,
   torch.load/save/from_file, numpy file and ctypes helpers, torchvision.io/datasets,
   typing.get_type_hints (it evaluates annotations), dataclasses.make_dataclass, lightning's
   getattr/setattr helpers and its cloud_io, ``__torch_function__``/``__torch_dispatch__`` hooks,
   global hooks (``register_module_*``), and calls that change torch's global settings
   (``torch.set_*``, ``torch.use_deterministic_algorithms``). ``torch.set_grad_enabled`` and
   ``set_detect_anomaly`` are allowed only as ``with`` blocks.
7. **Monkeypatching.** Assigning to, augmenting or deleting an attribute or item of a module, class or
   function that another package defined is refused. So is ``setattr``/``delattr`` on one, and calling
   a container mutator (append, update, ...) or ``.register`` on one. "Defined by another package"
   follows values through the file: import aliases, ``M = torch.nn.Module``, loops and containers of
   classes, attributes that store a class, own functions that return one, parameters of own functions
   that are passed one, ``type(x)``, ``x.__class__``, ``.mro()``, and exceptions raised with one.
   Assigning to ``x.__dunder__`` is refused on everything.

Scoped rules (``uses_in``)
--------------------------
A scope is a tuple of specs: ``"name"`` (a module-level function or whole class, bases included, or
whatever the name is bound to: ``conv2d = F.conv2d`` counts), ``"Class.method"``, ``"Class.*"``
(every method), or ``"{pattern|pattern}"`` / ``"{pattern}.method"`` / ``"{pattern}.*"`` (classes whose
bases resolve to a dotted name matching a pattern, directly or through the submission's own classes; a
class whose base cannot be resolved counts as matching). A class's members include those of its own
ancestor classes (a mixin's ``backward``), its decorators, and whatever the file assigns to it from
outside (``LinearFunction.backward = staticmethod(helper)``, ``setattr(LinearFunction, ...)``). The body
of the scope is searched, including default values and decorators. The search then continues by name
through everything it reaches: a name bound in the submission (function, class, module-level value,
alias) and ``obj.name`` for every method, class-level value or ``x.name = value`` assignment of that
name in the file, unless ``obj`` is another package's module or class. ``super().name`` reaches that
method of the class's own bases. ``Forbidden`` lists dotted names (fnmatch patterns on what names resolve to
through imports and aliases), attribute names (unless the attribute is a member the submission's own
class defines; written-out names given to operator.attrgetter/methodcaller count), attributes of
``super()``, and, for autograd, anything that turns ``requires_grad`` on (``requires_grad_()``,
``requires_grad=True``, ``x.requires_grad = True``) or Lightning's ``automatic_optimization``.

The lab rules: ``mlp``: every ``torch.autograd.Function`` subclass (all its methods, so gradients
cannot be computed by autograd in ``forward`` and stored for ``backward`` either) and the ``Value``
engine use no autograd. ``cnn``: ``conv2d``, ``max_pool2d``, the ``Conv2d``/``MaxPool2d`` classes
(which must define their own ``forward``) and anything derived from torch's convolution or pooling
modules use no convolution or pooling of torch's. ``BatchNorm2d`` (its bases included) uses no batch
normalisation of torch's. ``logreg``: ``logistic_gradients`` and ``BinaryLogisticRegression`` use no
autograd and no ``torch.optim``, and do not switch Lightning's automatic optimisation (autograd) back
on. The stub's docstrings say so: "Use no autograd here: write the formula"; "trained by the
hand-derived SGD rule, without autograd". ``transfer`` and ``rotation`` have none.

What it stops and what it cannot (known limits)
-----------------------------------------------
Static analysis of Python cannot be complete. This policy closes the routes from the submission's
own code to the grader's objects that Python offers by name: frames, ``gc``, ``sys.modules``, function
globals and closures, ``__subclasses__``, ctypes, and refused modules re-exported by allowed ones. It
also closes dynamic code and dynamic attribute names, and changes to torch or any other package that
the file makes through values it can follow. In the scoped rules, it catches torch's own autograd,
convolution, pooling or batch norm reached by name through the submission's functions, classes,
aliases, defaults, decorators, dunder methods or wrapper ``autograd.Function``\\s. What it cannot stop:

- The scoped search follows names, not types. It errs towards including code: ``obj.name`` reaches
  every method, class-level value and attribute assignment called ``name`` in the file, and the dunder
  methods of all the submission's classes belong to every scope, since Python calls them implicitly
  (``a * b``, ``obj(x)``). It cannot see an own object handed into the scope at run time (through a
  Function's arguments, say) whose work is done by an ordinary method that torch calls for it, such as
  the ``forward`` of an ``nn.Module`` subclass called as ``module(x)``. Nor can it see into an object
  that torch or another allowed package builds and returns: a model holding torch's own layers from an
  API the rules do not list (``torchvision.models`` and ``datamodules.pretrained`` are listed for
  convolution), or a torch function found in a registry keyed by strings, if an allowed package offers
  one.
- Re-exports are recognised by name: a module of an allowed package that imports a function of a refused
  module under an unusual name (``from os import system as run``) exposes it as ``module.run``, which is
  not refused here. The sandbox (Landlock, rlimits, user nobody) still confines what it can do.
- Objects that the grader itself hands to the submission (a model, a ctx, tensors) are ordinary
  instances here. Setting attributes on them is allowed, and a private attribute of one is allowed
  when the submission defines an attribute of the same name somewhere. A decoy ``self._cdata = 0``
  thus makes ``t._cdata`` readable, which leaks a pointer but cannot be used without ctypes.
- Semantics of allowed libraries: torch's own Python code may call arbitrary callables the
  submission passes in (hooks, ``Module.apply``, DataLoader workers), and those run with the
  submission's rights, which the sandbox limits. Code that only returns wrong values (a Tensor
  subclass whose ``__eq__`` always says True) is the runtime checks' business, not this policy's.
- It can be too strict, never silently: a report always names the line. Its search by name may pull
  in honest code that merely shares a name (a helper class's ``__call__`` that calls ``.backward()``
  is part of every mlp Function's scope), and a computed ``getattr``, ``type(x)`` used as a value, an
  ``import os`` or a ``torch.backends`` setting is refused even where it would do no harm.
- It checks the file it is given. The worker must import that same text: no other file of the
  submission (a stale ``__pycache__``, a second module) may be importable, and the judge and the
  worker must run the same Python version, or the tree read here can differ from the code that runs.
"""
from __future__ import annotations

import ast
import dataclasses
import re
from collections import deque
from dataclasses import dataclass
from fnmatch import translate
from functools import cache, lru_cache

__all__ = [
    "Violation", "Forbidden", "Rule", "scan", "uses_in", "lab_rules", "check",
    "AUTOGRAD", "AUTOGRAD_OR_OPTIMIZER", "TORCH_CONV_AND_POOL", "TORCH_BATCH_NORM",
    "HAND_WRITTEN_BACKWARD", "OWN_SCALAR_AUTOGRAD", "OWN_CONV_AND_POOL", "OWN_BATCH_NORM",
    "LOGREG_WITHOUT_AUTOGRAD", "LAB_RULES", "ALLOWED_MODULES",
]


# ---------------------------------------------------------------------------
# What a report looks like
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Violation:
    """One breach of the policy: where (line), what the code does, and why a submission may not."""

    line: int
    what: str
    why: str
    filename: str = "submission.py"
    rule: str = "integrity"
    column: int = 0

    def __str__(self) -> str:
        return f"{self.filename}, line {self.line}: {self.what} ({self.why})"


@dataclass(frozen=True)
class Forbidden:
    """What a scoped rule forbids.

    label: what it is, in words ("autograd"); qualified: fnmatch patterns on the dotted names that
    names and attribute chains resolve to through imports and aliases (``torch.autograd.*``), minus
    ``allowed``; attributes: fnmatch patterns on attribute names, on any object but one of the
    submission's own classes that defines them; super_attributes: attributes of ``super()``;
    gradient_switches: anything that turns ``requires_grad`` on.
    """

    label: str
    qualified: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    super_attributes: tuple[str, ...] = ()
    gradient_switches: bool = False


@dataclass(frozen=True)
class Rule:
    """A scoped rule: the code in ``scope`` (see ``uses_in``) must not use what ``forbidden`` lists.

    requires: ``"Class.method"`` entries; where the submission binds Class, Class must be its own class
    and must define method itself (or through its own bases) when it derives from another package's
    class, so that the inherited method cannot do the work.
    """

    name: str
    scope: tuple[str, ...]
    forbidden: Forbidden
    why: str
    requires: tuple[str, ...] = ()

    def check(self, source: str | bytes, filename: str = "submission.py") -> list[Violation]:
        try:
            analysis = _analyse(_text(source))
            found = _Found(filename, self.name)
            _uses_in(analysis, self.scope, self.forbidden, self.why, found)
            for spec in self.requires:
                _require(analysis, spec, self.why, found)
        except (_Unreadable, RecursionError):
            return []  # scan reports it
        return found.sorted()


# ---------------------------------------------------------------------------
# Policy tables
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

_WHY_INTROSPECTION = "introspection of the grader's process is not allowed in a submission"
_WHY_SYSTEM = "a submission may not reach files, processes, signals or the network"
_WHY_GRADER = "a submission may not use the grader's or the reference solutions' code"
_WHY_NOT_ALLOWED = ("a submission may import only torch, torchvision, torchmetrics, lightning, numpy, datamodules, "
                    "labs.common and a few standard modules such as math, random, functools, itertools, collections")
_WHY_IMPORT_FORM = "name each thing you import from an allowed module (no relative or star imports)"
_WHY_DYNAMIC = "running code built at run time is not allowed in a submission"
_WHY_DYNAMIC_ATTRIBUTE = "attribute names must be written out: a computed name can reach the grader's internals"
_WHY_PRIVATE = "private attributes of torch and of other packages are internals that a submission may not touch"
_WHY_TORCH_INTERNALS = "torch's internals (torch._C, torch.ops, torch._*) are not allowed in a submission"
_WHY_MONKEYPATCH = "a submission may not change torch or another package: it would change what the grader sees"
_WHY_SETTINGS = "a submission may not change torch's global settings"
_WHY_CLASS_AT_RUN_TIME = "classes must be written out as class statements"
_WHY_SOURCE = "the grader reads the source before it runs it: it must be valid Python in UTF-8"

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
_WHY_DUNDER = "dunder attributes are for the language itself (operators, with, super().__init__), not for direct use"
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


@cache
def _rx(patterns: tuple[str, ...]):
    """One compiled regular expression for a tuple of fnmatch patterns (None for no pattern)."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{translate(p)})" for p in patterns))


_DENIED_RX = tuple((_rx(patterns), why) for patterns, why in _DENIED)
_SETTINGS_RX, _SETTINGS_ALLOWED_RX = _rx(_SETTINGS), _rx(_SETTINGS_ALLOWED)
_SETTINGS_IN_WITH_RX = _rx(_SETTINGS_IN_WITH)


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


# ---------------------------------------------------------------------------
# The analysis of one source: scopes, bindings, name resolution, and what holds another package's objects
# ---------------------------------------------------------------------------
class _Unreadable(Exception):
    def __init__(self, message: str, line: int = 1):
        super().__init__(message)
        self.line = line


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


class _Scope:
    __slots__ = ("kind", "node", "parent", "bound", "global_names", "nonlocal_names", "imports", "bindings",
                 "taint", "aliases")

    def __init__(self, kind: str, node: ast.AST, parent: _Scope | None):
        self.kind, self.node, self.parent = kind, node, parent
        self.bound: set[str] = set()
        self.global_names: set[str] = set()
        self.nonlocal_names: set[str] = set()
        self.imports: dict[str, str | None] = {}  # name -> the dotted name it imports (None: relative)
        self.bindings: dict[str, list[ast.AST]] = {}  # name -> what binds it (def, class, value, alias, arg)
        self.taint: dict[str, int] = {}  # name -> 1 (an own container of foreign objects) or 2 (foreign)
        self.aliases: dict[str, set[str]] = {}  # name -> the dotted names it is assigned


def _text(source: str | bytes) -> str:
    if isinstance(source, bytes):
        try:
            return source.decode("utf-8")
        except UnicodeDecodeError as err:
            raise _Unreadable(f"the file is not UTF-8 ({err.reason} at byte {err.start})") from None
    return source


@lru_cache(maxsize=16)
def _analyse(source: str) -> _Analysis:
    return _Analysis(source)


class _Analysis:
    """Everything the rules ask about one source, computed once (the object is cached per source)."""

    def __init__(self, source: str, rewrite_getattr: bool = True):
        source = source.removeprefix("\ufeff")  # a UTF-8 byte-order mark: Python ignores it too
        for number, line in enumerate(source.splitlines()[:2], 1):
            match = _CODING.match(line)
            if match and match.group(1).lower().replace("_", "-") not in ("utf-8", "utf8", "utf-8-sig"):
                raise _Unreadable(f"declares the source encoding {match.group(1)}; only UTF-8 is accepted", number)
        try:
            tree = ast.parse(source)
        except SyntaxError as err:
            raise _Unreadable(f"SyntaxError: {err.msg}", err.lineno or 1) from None
        except (ValueError, RecursionError, MemoryError) as err:
            raise _Unreadable(f"{type(err).__name__}: {err}") from None
        self.tree = tree
        self.future_annotations = any(
            isinstance(s, ast.ImportFrom) and s.module == "__future__" and any(a.name == "annotations" for a in s.names)
            for s in tree.body)
        self.scope_of: dict[ast.AST, _Scope] = {}
        self.parent: dict[ast.AST, ast.AST | None] = {}
        self.children: dict[ast.AST, list[ast.AST]] = {}
        self.nodes: list[ast.AST] = []
        self.annotations: set[ast.AST] = set()  # the nodes of annotations that run (no future import)
        self.own_scope: dict[ast.AST, _Scope] = {}  # function, lambda, class or comprehension -> its scope
        self.qualname: dict[ast.AST, str] = {}
        self.classes: list[ast.ClassDef] = []
        self.module = _Scope("module", tree, None)
        self._events: list[tuple[_Scope, str, ast.AST | None]] = []
        self._rewrite = rewrite_getattr
        self._rewrote = False
        self._build(tree)
        self._bind()
        if self._rewrote and any("getattr" in s.bound for s in (self.module, *self.own_scope.values())):
            # getattr is not the builtin somewhere: read the file again without treating getattr(x, "a") as x.a
            self.__init__(source, rewrite_getattr=False)
            return
        self.attr_index: dict[str, list[ast.AST]] = {}
        self.own_names: set[str] = set()
        self._index()
        self.foreign_attrs: dict[str, int] = {}
        self.foreign_returns: dict[str, int] = {}
        self.raises_foreign = self.sends_foreign = False
        self._frozen = False
        self._resolved: dict[ast.AST, tuple[str, ...]] = {}
        self._propagate()
        self._frozen = True

    # -- the tree ----------------------------------------------------------
    def _as_attribute(self, node: ast.Call) -> bool:
        """Turn ``getattr(x, "name"[, default])`` into the attribute access ``x.name`` it is, in place."""
        args = node.args
        if not (self._rewrite and type(node.func) is ast.Name and node.func.id == "getattr" and 2 <= len(args) <= 3
                and not node.keywords and type(args[1]) is ast.Constant and type(args[1].value) is str
                and not any(type(a) is ast.Starred for a in args)):
            return False
        obj, name, default = args[0], args[1].value, args[2] if len(args) == 3 else None
        node.__class__ = ast.Attribute  # the parent keeps pointing at the same object
        del node.func, node.args, node.keywords
        node.value, node.attr, node.ctx = obj, name, ast.Load()
        node.getattr_default = default
        self._rewrote = True
        return True

    def _build(self, root: ast.Module) -> None:
        stack: list[tuple[ast.AST, _Scope, ast.AST | None]] = [(root, self.module, None)]
        events, future = self._events, self.future_annotations
        while stack:
            node, scope, parent = stack.pop()
            if parent in self.annotations:
                self.annotations.add(node)  # inside an annotation (evaluated: no future import)
            kind = type(node)
            if kind is ast.Call and self._as_attribute(node):
                kind = ast.Attribute
            self.scope_of[node] = scope
            self.parent[node] = parent
            self.nodes.append(node)
            if kind in _FUNCTIONS or kind is ast.Lambda:
                inner = _Scope("function", node, scope)
                self.own_scope[node] = inner
                if kind is ast.Lambda:
                    kids = [(node.args, scope), (node.body, inner)]
                else:
                    events.append((scope, node.name, node))
                    self.qualname[node] = self._qualify(parent, node.name)
                    kids = [(d, scope) for d in node.decorator_list]
                    kids.append((node.args, scope))
                    if node.returns is not None and not future:
                        kids.append((node.returns, scope))
                        self.annotations.add(node.returns)
                    kids.extend((s, inner) for s in node.body)
            elif kind is ast.arguments:
                inner = self.own_scope[parent]
                kids = [(d, scope) for d in (*node.defaults, *node.kw_defaults) if d is not None]
                kids.extend((a, inner) for a in (*node.posonlyargs, *node.args, node.vararg, *node.kwonlyargs,
                                                 node.kwarg) if a is not None)
            elif kind is ast.arg:
                events.append((scope, node.arg, node))
                kids = [(node.annotation, scope)] if node.annotation is not None and not future else []
                self.annotations.update(child for child, _ in kids)
            elif kind is ast.ClassDef:
                inner = _Scope("class", node, scope)
                self.own_scope[node] = inner
                events.append((scope, node.name, node))
                self.qualname[node] = self._qualify(parent, node.name)
                self.classes.append(node)
                kids = [(e, scope) for e in (*node.decorator_list, *node.bases, *node.keywords)]
                kids.extend((s, inner) for s in node.body)
            elif kind in _COMPREHENSIONS:
                inner = _Scope("function", node, scope)
                self.own_scope[node] = inner
                kids = [(g, inner) for g in node.generators]
                kids.extend([(node.key, inner), (node.value, inner)] if kind is ast.DictComp else [(node.elt, inner)])
            elif kind is ast.comprehension:
                first = node is self.parent_generators_first(parent)
                kids = [(node.iter, scope.parent if first else scope), (node.target, scope)]
                kids.extend((c, scope) for c in node.ifs)
                events.extend((scope, n, node.iter) for n in _target_names(node.target))
            elif kind is ast.Attribute:
                kids = [(node.value, scope)]
                default = getattr(node, "getattr_default", None)
                if default is not None:
                    kids.append((default, scope))
            elif kind is ast.Name:
                if type(node.ctx) is not ast.Load:
                    events.append((scope, node.id, None))
                kids = []
            elif kind is ast.Constant:
                kids = []
            else:
                if kind is ast.Global:
                    scope.global_names.update(node.names)
                elif kind is ast.Nonlocal:
                    scope.nonlocal_names.update(node.names)
                elif kind is ast.Import:
                    for a in node.names:
                        name = a.asname or a.name.split(".")[0]
                        scope.imports[name] = a.name if a.asname else a.name.split(".")[0]
                        events.append((scope, name, a))
                elif kind is ast.ImportFrom:
                    for a in node.names:
                        if a.name != "*":
                            name = a.asname or a.name
                            scope.imports[name] = None if node.level else f"{node.module}.{a.name}"
                            events.append((scope, name, a))
                elif kind is ast.Assign:
                    for target in node.targets:
                        events.extend((scope, n, node.value) for n in _target_names(target))
                elif kind is ast.AugAssign:
                    events.extend((scope, n, node.value) for n in _target_names(node.target))
                elif kind is ast.AnnAssign:
                    if node.value is not None:
                        events.extend((scope, n, node.value) for n in _target_names(node.target))
                elif kind in (ast.For, ast.AsyncFor):
                    events.extend((scope, n, node.iter) for n in _target_names(node.target))
                elif kind is ast.withitem:
                    if node.optional_vars is not None:
                        events.extend((scope, n, node.context_expr) for n in _target_names(node.optional_vars))
                elif kind is ast.NamedExpr:
                    events.append((scope, node.target.id, node.value))
                elif kind is ast.ExceptHandler:
                    if node.name:
                        events.append((scope, node.name, node))
                elif kind in (ast.MatchAs, ast.MatchStar):
                    if node.name:
                        events.append((scope, node.name, node))
                elif kind is ast.MatchMapping:
                    if node.rest:
                        events.append((scope, node.rest, node))
                kids = []
                for field in _child_fields(kind):
                    if kind is ast.AnnAssign and field == "annotation":
                        if future:
                            continue  # never evaluated: a string at run time
                        self.annotations.add(node.annotation)
                    value = getattr(node, field, None)
                    if type(value) is list:
                        kids.extend((v, scope) for v in value if isinstance(v, ast.AST))
                    elif value is not None and isinstance(value, ast.AST):
                        kids.append((value, scope))
            self.children[node] = [child for child, _ in kids]
            stack.extend((child, child_scope, node) for child, child_scope in reversed(kids))

    @staticmethod
    def parent_generators_first(comprehension_node: ast.AST) -> ast.AST | None:
        generators = getattr(comprehension_node, "generators", None)
        return generators[0] if generators else None

    def _qualify(self, parent: ast.AST | None, name: str) -> str:
        while parent is not None and not (type(parent) in _FUNCTIONS or type(parent) is ast.ClassDef):
            parent = self.parent.get(parent)
        return f"{self.qualname[parent]}.{name}" if parent is not None else name

    def _bind(self) -> None:
        for scope, name, value in self._events:
            target = scope
            if name in scope.global_names:
                target = self.module
            elif name in scope.nonlocal_names:
                target = scope.parent
                while target is not None and (target.kind != "function" or name not in target.bound):
                    target = target.parent
                target = target or scope.parent or self.module
            target.bound.add(name)
            if value is not None:
                target.bindings.setdefault(name, []).append(value)
        del self._events

    def lookup(self, name: str, scope: _Scope | None) -> _Scope | None:
        """The scope whose binding of name a use in scope sees; None for builtins and unbound names."""
        first = True
        while scope is not None:
            if scope.kind == "class" and not first:
                scope = scope.parent
                continue
            if name in scope.global_names:
                return self.module if name in self.module.bound else None
            if name in scope.bound and name not in scope.nonlocal_names:
                return scope
            first = False
            scope = scope.parent
        return None

    def is_builtin(self, node: ast.Name) -> bool:
        return node in self.scope_of and self.lookup(node.id, self.scope_of[node]) is None

    # -- what the submission defines -----------------------------------------
    def _index(self) -> None:
        """attr_index: attribute name -> what defines it (methods, class-level values, ``x.name = value``);
        own_names: every name the submission defines or assigns as a variable, function, class or attribute."""
        index, own = self.attr_index, self.own_names
        self.class_stores: dict[ast.ClassDef, list[tuple[str, ast.AST]]] = {}  # Cls.name = value, setattr(Cls, ...)
        for node in self.nodes:
            kind = type(node)
            if kind in _FUNCTIONS:
                own.add(node.name)
                if type(self.parent[node]) is ast.ClassDef:
                    index.setdefault(node.name, []).append(node)
            elif kind is ast.ClassDef:
                own.add(node.name)
            elif kind is ast.Attribute and not isinstance(node.ctx, ast.Load):
                own.add(node.attr)
                holder = self.parent[node]
                if type(holder) in (ast.Assign, ast.AugAssign, ast.AnnAssign) and holder.value is not None:
                    index.setdefault(node.attr, []).append(holder.value)
                    for cls in self._own_class(node.value):
                        self.class_stores.setdefault(cls, []).append((node.attr, holder.value))
            elif kind is ast.Call and isinstance(node.func, (ast.Name, ast.Attribute)):
                # setattr(obj, "name", value) and register_buffer("name", value) and its siblings define attributes
                called = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                position = 1 if called == "setattr" else 0 if called in _REGISTERS else None
                if position is not None and len(node.args) >= position + 2:
                    name, value = node.args[position], node.args[position + 1]
                    if isinstance(name, ast.Constant) and isinstance(name.value, str):
                        own.add(name.value)
                        index.setdefault(name.value, []).append(value)
                        if called == "setattr":
                            for cls in self._own_class(node.args[0]):
                                self.class_stores.setdefault(cls, []).append((name.value, value))
        for scope in {*self.own_scope.values(), self.module}:
            own.update(scope.bound)
            if scope.kind == "class":
                for name, values in scope.bindings.items():
                    index.setdefault(name, []).extend(v for v in values if type(v) not in _FUNCTIONS)

    # -- names resolved through imports and aliases ---------------------------
    def resolve(self, node: ast.AST) -> tuple[str, ...]:
        """The dotted names (``torch.nn.functional.conv2d``) a Name or attribute chain is known to refer to."""
        if self._frozen:
            cached = self._resolved.get(node)
            if cached is not None:
                return cached
        kind = type(node)
        result: tuple[str, ...] = ()
        if kind is ast.Name:
            scope = self.lookup(node.id, self.scope_of.get(node))
            if scope is not None:
                found = []
                dotted = scope.imports.get(node.id)
                if dotted:
                    found.append(dotted)
                found.extend(sorted(scope.aliases.get(node.id, ())))
                result = tuple(found)
        elif kind is ast.Attribute:
            result = tuple(f"{base}.{node.attr}" for base in self.resolve(node.value))
        if self._frozen:
            self._resolved[node] = result
        return result

    def is_outermost(self, node: ast.AST) -> bool:
        parent = self.parent.get(node)
        return not (type(parent) is ast.Attribute and parent.value is node)

    # -- what holds another package's modules, classes and functions ----------
    def level(self, node: ast.AST, depth: int = 0) -> int:
        """0: the submission's own value or an instance; 1: an own container that holds foreign objects;
        2: a module, class or function of another package (or an object reached from one)."""
        if depth > 40:
            return 2  # too deep to follow: assume the worst
        kind = type(node)
        if kind is ast.Name:
            scope = self.lookup(node.id, self.scope_of.get(node))
            if scope is None:
                return 0
            if node.id in scope.imports or scope.aliases.get(node.id):
                return 2
            return scope.taint.get(node.id, 0)
        if kind is ast.Attribute:
            if node.attr in _CLASS_REACHING:
                return 2
            if _is_super_call(node.value):
                return self.foreign_attrs.get(node.attr, 0)
            if self.level(node.value, depth + 1) == 2:
                return 2
            return self.foreign_attrs.get(node.attr, 0)
        if kind is ast.Subscript:
            return 2 if self.level(node.value, depth + 1) else 0
        if kind is ast.Call:
            return self._call_level(node, depth)
        if kind in (ast.Tuple, ast.List, ast.Set):
            return 1 if any(self.level(e, depth + 1) for e in node.elts) else 0
        if kind is ast.Dict:
            return 1 if any(e is not None and self.level(e, depth + 1) for e in (*node.keys, *node.values)) else 0
        if kind in (ast.ListComp, ast.SetComp, ast.GeneratorExp):
            return 1 if self.level(node.elt, depth + 1) else 0
        if kind is ast.DictComp:
            return 1 if self.level(node.value, depth + 1) or self.level(node.key, depth + 1) else 0
        if kind is ast.IfExp:
            return max(self.level(node.body, depth + 1), self.level(node.orelse, depth + 1))
        if kind is ast.BoolOp:
            return max(self.level(v, depth + 1) for v in node.values)
        if kind in (ast.NamedExpr, ast.Starred, ast.Await):
            return self.level(node.value, depth + 1)
        if kind in (ast.Yield, ast.YieldFrom):
            return 2 if self.sends_foreign else 0
        return 0

    def _call_level(self, node: ast.Call, depth: int) -> int:
        func = node.func
        arguments = [*node.args, *(k.value for k in node.keywords)]
        if type(func) is ast.Name:
            scope = self.lookup(func.id, self.scope_of.get(func))
            if scope is None:
                if func.id in ("type", "super"):
                    return 2
                if func.id in _ELEMENT_BUILTINS:
                    return 2 if any(self.level(a, depth + 1) for a in arguments) else 0
                if func.id in _CONTAINER_BUILTINS:
                    return 1 if any(self.level(a, depth + 1) for a in arguments) else 0
                return 0
            found = self.foreign_returns.get(func.id, 0)
            for bound in scope.bindings.get(func.id, ()):
                if type(bound) is ast.Lambda:
                    found = max(found, self.level(bound.body, depth + 1))
            return found
        if type(func) is ast.Attribute:
            if func.attr == "mro":
                return 2
            if _is_super_call(func.value) or self.level(func.value, depth + 1) < 2:
                return self.foreign_returns.get(func.attr, 0)
            return 0
        if type(func) is ast.Lambda:
            return self.level(func.body, depth + 1)
        return 0

    def _raise(self, table: dict[str, int], key: str, level: int) -> None:
        if level > table.get(key, 0):
            table[key] = level
            self._changed = True

    def _taint(self, target: ast.AST, level: int) -> None:
        if not level:
            return
        kind = type(target)
        if kind is ast.Name:
            scope = self.lookup(target.id, self.scope_of.get(target)) or self.scope_of.get(target) or self.module
            self._raise(scope.taint, target.id, level)
            if scope.kind == "class":
                self._raise(self.foreign_attrs, target.id, level)
        elif kind in (ast.Tuple, ast.List):
            for element in target.elts:
                self._taint(element, level)
        elif kind is ast.Starred:
            self._taint(target.value, level)
        elif kind is ast.Attribute:
            self._raise(self.foreign_attrs, target.attr, level)
        elif kind is ast.Subscript:
            self._taint_holder(target.value)

    def _taint_holder(self, node: ast.AST) -> None:
        """An own container now holds a foreign object."""
        while type(node) is ast.Subscript:
            node = node.value
        if type(node) is ast.Name:
            self._taint(node, 1)
        elif type(node) is ast.Attribute:
            self._raise(self.foreign_attrs, node.attr, 1)

    def _assign(self, target: ast.AST, value: ast.AST) -> None:
        if (type(target) in (ast.Tuple, ast.List) and type(value) in (ast.Tuple, ast.List)
                and len(target.elts) == len(value.elts)
                and not any(type(e) is ast.Starred for e in (*target.elts, *value.elts))):
            for t, v in zip(target.elts, value.elts):
                self._assign(t, v)
            return
        self._taint(target, self.level(value))
        if type(target) is ast.Name:
            dotted = self.resolve(value)
            if dotted:
                scope = self.lookup(target.id, self.scope_of.get(target)) or self.scope_of.get(target) or self.module
                known = scope.aliases.setdefault(target.id, set())
                if not known.issuperset(dotted):
                    known.update(dotted)
                    self._changed = True

    def _own_class(self, node: ast.AST) -> list[ast.ClassDef]:
        if type(node) is not ast.Name:
            return []
        scope = self.lookup(node.id, self.scope_of.get(node))
        return [] if scope is None else [b for b in scope.bindings.get(node.id, ()) if type(b) is ast.ClassDef]

    def _callees(self, call: ast.Call) -> list[tuple[ast.AST, bool]]:
        """The submission's functions a call may run, each with whether its first parameter is bound (self)."""
        func, found = call.func, []
        if type(func) is ast.Name:
            scope = self.lookup(func.id, self.scope_of.get(func))
            for bound in (scope.bindings.get(func.id, ()) if scope is not None else ()):
                if type(bound) in _FUNCTIONS or type(bound) is ast.Lambda:
                    found.append((bound, False))
                elif type(bound) is ast.ClassDef:
                    found.extend((s, True) for s in bound.body if type(s) in _FUNCTIONS and s.name == "__init__")
        elif type(func) is ast.Attribute:
            if not _is_super_call(func.value) and self.level(func.value) == 2:
                return found
            via_class = bool(self._own_class(func.value))
            for bound in self.attr_index.get(func.attr, ()):
                if type(bound) in _FUNCTIONS:
                    decorators = {d.id for d in bound.decorator_list if type(d) is ast.Name}
                    method = type(self.parent.get(bound)) is ast.ClassDef and "staticmethod" not in decorators
                    found.append((bound, method and (not via_class or "classmethod" in decorators)))
                elif type(bound) is ast.Lambda:
                    found.append((bound, False))
        return found

    def _taint_parameters(self, function: ast.AST, level: int, skip_first: bool = False) -> None:
        scope, args = self.own_scope[function], function.args
        every = [*args.posonlyargs, *args.args, args.vararg, *args.kwonlyargs, args.kwarg]
        for i, a in enumerate(every):
            if a is not None and not (skip_first and i == 0):
                self._raise(scope.taint, a.arg, level)

    def _pass_arguments(self, call: ast.Call) -> None:
        levels = [self.level(a) for a in call.args]
        keywords = [(k, self.level(k.value)) for k in call.keywords]
        if not any(levels) and not any(lv for _, lv in keywords):
            return
        for function, bound in self._callees(call):
            args, scope = function.args, self.own_scope[function]
            positional = [*args.posonlyargs, *args.args][1 if bound else 0:]
            named = {a.arg: a for a in (*positional, *args.kwonlyargs)}
            for i, (argument, level) in enumerate(zip(call.args, levels)):
                if not level:
                    continue
                if type(argument) is ast.Starred:
                    self._taint_parameters(function, 2, skip_first=bound)
                elif i < len(positional):
                    self._raise(scope.taint, positional[i].arg, level)
                elif args.vararg is not None:
                    self._raise(scope.taint, args.vararg.arg, 1)
            for keyword, level in keywords:
                if not level:
                    continue
                if keyword.arg is None:
                    self._taint_parameters(function, 2, skip_first=bound)
                elif keyword.arg in named:
                    self._raise(scope.taint, keyword.arg, level)
                elif args.kwarg is not None:
                    self._raise(scope.taint, args.kwarg.arg, 1)
        # a function of the submission handed to something together with a foreign object (partial, map, ...)
        for argument in (*call.args, *(k.value for k in call.keywords)):
            for function, bound in self._functions_named_by(argument):
                self._taint_parameters(function, 2, skip_first=bound)

    def _functions_named_by(self, node: ast.AST) -> list[tuple[ast.AST, bool]]:
        if type(node) is ast.Lambda:
            return [(node, False)]
        if type(node) is ast.Starred:
            node = node.value
        if type(node) is ast.Name:
            scope = self.lookup(node.id, self.scope_of.get(node))
            return [(b, False) for b in (scope.bindings.get(node.id, ()) if scope else ())
                    if type(b) in _FUNCTIONS or type(b) is ast.Lambda]
        if type(node) is ast.Attribute and self.level(node.value) < 2:
            return [(b, type(self.parent.get(b)) is ast.ClassDef) for b in self.attr_index.get(node.attr, ())
                    if type(b) in _FUNCTIONS or type(b) is ast.Lambda]
        return []

    def enclosing_function(self, node: ast.AST) -> ast.AST | None:
        scope = self.scope_of.get(node)
        while scope is not None and not (scope.kind == "function" and type(scope.node) is not ast.Lambda
                                         and type(scope.node) not in _COMPREHENSIONS):
            scope = scope.parent
        return scope.node if scope is not None else None

    def _propagate(self) -> None:
        """Follow foreign objects through the file until nothing changes (a monotone fixed point)."""
        kinds = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor, ast.withitem, ast.NamedExpr,
                 ast.comprehension, ast.Call, ast.Return, ast.Yield, ast.YieldFrom, ast.Raise, ast.ExceptHandler)
        sites = [n for n in self.nodes if isinstance(n, kinds)]
        for _ in range(50):
            self._changed = False
            for node in sites:
                kind = type(node)
                if kind is ast.Assign:
                    for target in node.targets:
                        self._assign(target, node.value)
                elif kind in (ast.AugAssign, ast.AnnAssign):
                    if node.value is not None:
                        self._assign(node.target, node.value)
                elif kind in (ast.For, ast.AsyncFor, ast.comprehension):
                    if self.level(node.iter):
                        self._taint(node.target, 2)
                elif kind is ast.withitem:
                    if node.optional_vars is not None and self.level(node.context_expr):
                        self._taint(node.optional_vars, 2)
                elif kind is ast.NamedExpr:
                    self._assign(node.target, node.value)
                elif kind is ast.Call:
                    self._propagate_call(node)
                elif kind in (ast.Return, ast.Yield, ast.YieldFrom):
                    level = self.level(node.value) if node.value is not None else 0
                    function = self.enclosing_function(node)
                    if level and function is not None:
                        self._raise(self.foreign_returns, function.name, level)
                        self._raise(self.foreign_attrs, function.name, level)
                elif kind is ast.Raise:
                    if node.exc is not None and not self.raises_foreign and (
                            self.level(node.exc) or (type(node.exc) is ast.Call
                                                     and any(self.level(a) for a in node.exc.args))):
                        self.raises_foreign = self._changed = True
                elif kind is ast.ExceptHandler:
                    if node.name and self.raises_foreign:
                        scope = self.scope_of[node]
                        target = self.lookup(node.name, scope) or scope
                        self._raise(target.taint, node.name, 2)
            if not self._changed:
                break

    def _propagate_call(self, node: ast.Call) -> None:
        func = node.func
        if type(func) is ast.Attribute:
            if func.attr in _MUTATORS and any(self.level(a) for a in (*node.args, *(k.value for k in node.keywords))):
                self._taint_holder(func.value)
            if func.attr in ("send", "asend", "throw") and any(self.level(a) for a in node.args):
                if not self.sends_foreign:
                    self.sends_foreign = self._changed = True
        elif type(func) is ast.Name and func.id == "setattr" and len(node.args) == 3 and self.is_builtin(func):
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                self._raise(self.foreign_attrs, name.value, self.level(node.args[2]))
        self._pass_arguments(node)

    # -- helpers for the rules ------------------------------------------------
    def where(self, node: ast.AST) -> str | None:
        """The qualified name of the innermost function or class around a node."""
        while node is not None:
            if type(node) in _FUNCTIONS or type(node) is ast.ClassDef:
                return self.qualname.get(node)
            node = self.parent.get(node)
        return None

    def enclosing_class(self, node: ast.AST) -> ast.ClassDef | None:
        function = self.enclosing_function(node)
        parent = self.parent.get(function) if function is not None else None
        return parent if type(parent) is ast.ClassDef else None

    def class_defines(self, cls: ast.ClassDef, name: str, seen: set | None = None) -> bool:
        seen = set() if seen is None else seen
        if cls in seen:
            return False
        seen.add(cls)
        if name in self.own_scope[cls].bound:
            return True
        return any(self.class_defines(base, name, seen) for expr in cls.bases for base in self._own_class(expr))

    def own_bases(self, cls: ast.ClassDef) -> list[ast.ClassDef]:
        """The submission's own classes among cls's ancestors."""
        found, stack = [], [cls]
        while stack:
            for expr in stack.pop().bases:
                for base in self._own_class(expr):
                    if base not in found and base is not cls:
                        found.append(base)
                        stack.append(base)
        return found

    def own_member(self, base: ast.AST, name: str) -> bool:
        """Whether ``base.name`` is a member that one of the submission's own classes defines."""
        if type(base) is not ast.Name:
            return False
        if base.id in ("self", "cls") and self.level(base) < 2:
            cls = self.enclosing_class(base)
            if cls is not None and self.class_defines(cls, name):
                return True
        return any(self.class_defines(cls, name) for cls in self._own_class(base))

    def derives(self, cls: ast.ClassDef, rx, seen: set | None = None) -> bool:
        """Whether a class derives from one whose dotted name matches rx (unresolvable bases count)."""
        seen = set() if seen is None else seen
        if cls in seen:
            return False
        seen.add(cls)
        for base in cls.bases:
            dotted = self.resolve(base)
            if any(rx.match(d) for d in dotted):
                return True
            own = self._own_class(base)
            if own:
                if any(self.derives(c, rx, seen) for c in own):
                    return True
            elif not dotted and not (type(base) is ast.Name and self.is_builtin(base)):
                return True  # a base computed at run time: assume the worst
        return False


@cache
def _child_fields(kind: type) -> tuple[str, ...]:
    """The fields of a node type that can hold child nodes (not contexts, operators or plain values)."""
    return tuple(f for f in kind._fields if f not in ("ctx", "op", "ops", "id", "attr", "name", "arg", "asname",
                                                      "module", "level", "type_comment", "kind", "conversion",
                                                      "is_async", "lineno", "simple"))


def _target_names(target: ast.AST) -> list[str]:
    kind = type(target)
    if kind is ast.Name:
        return [target.id]
    if kind in (ast.Tuple, ast.List):
        return [n for e in target.elts for n in _target_names(e)]
    if kind is ast.Starred:
        return _target_names(target.value)
    return []


# ---------------------------------------------------------------------------
# Collecting violations
# ---------------------------------------------------------------------------
class _Found:
    """Violations in the order found, one per source position."""

    def __init__(self, filename: str, rule: str):
        self.filename, self.rule = filename, rule
        self.items: list[Violation] = []
        self.seen: set[tuple[int, int]] = set()

    def add(self, node: ast.AST, what: str, why: str) -> None:
        key = (getattr(node, "lineno", 1), getattr(node, "col_offset", 0))
        if key not in self.seen:
            self.seen.add(key)
            self.items.append(Violation(key[0], what, why, self.filename, self.rule, key[1]))

    def sorted(self) -> list[Violation]:
        return sorted(self.items, key=lambda v: v.line)


# ---------------------------------------------------------------------------
# scan: the integrity policy
# ---------------------------------------------------------------------------
def scan(source: str | bytes, filename: str = "submission.py") -> list[Violation]:
    """Every breach of the integrity policy in a submitted source file (empty: none), in line order."""
    try:
        return _scan(_analyse(_text(source)), filename)
    except _Unreadable as err:
        return [Violation(err.line, f"cannot be read as Python source: {err}", _WHY_SOURCE, filename, "integrity")]
    except RecursionError:
        return [Violation(1, "is nested too deeply to be checked", _WHY_SOURCE, filename, "integrity")]


def _scan(analysis: _Analysis, filename: str) -> list[Violation]:
    found = _Found(filename, "integrity")
    for node in analysis.nodes:
        kind = type(node)
        if kind is ast.Import:
            _check_import(node, found)
        elif kind is ast.ImportFrom:
            _check_import_from(node, found)
        elif kind is ast.Name:
            _check_name(analysis, node, found)
        elif kind is ast.Attribute:
            _check_attribute(analysis, node.value, node.attr, node, node.ctx, found)
            _check_chain(analysis, node, found)
        elif kind is ast.Call:
            _check_call(analysis, node, found)
        elif kind is ast.Subscript and not isinstance(node.ctx, ast.Load) and analysis.level(node.value) == 2:
            verb = "deletes an item of" if isinstance(node.ctx, ast.Del) else "changes an item of"
            found.add(node, f"{verb} {_describe(analysis, node.value)}", _WHY_MONKEYPATCH)
        elif kind in _FUNCTIONS and node.name in _TORCH_HOOK_METHODS:
            found.add(node, f"defines {node.name}, which intercepts torch's own operations", _WHY_MONKEYPATCH)
    return found.sorted()


def _check_import(node: ast.Import, found: _Found) -> None:
    for alias in node.names:
        why = _module_problem(alias.name) or _dotted_problem(alias.name)
        if why:
            found.add(alias, f"imports {alias.name}", why)


def _check_import_from(node: ast.ImportFrom, found: _Found) -> None:
    if node.level:
        found.add(node, f"imports from {'.' * node.level}{node.module or ''} (a relative import)", _WHY_IMPORT_FORM)
        return
    module = node.module or ""
    for alias in node.names:
        if alias.name == "*":
            why = _module_problem(module) or _dotted_problem(module) or _WHY_IMPORT_FORM
            found.add(node, f"imports everything from {module} (import *)", why)
            continue
        dotted = f"{module}.{alias.name}"
        why = _module_problem(dotted) or _dotted_problem(dotted)
        if why is None and alias.name.startswith("_") and not _is_dunder(alias.name):
            # a private class of a public torch submodule is allowed (_BatchNorm); anything else private is not
            if not (_PRIVATE_CLASS.match(alias.name) and "." in module):
                why = _WHY_TORCH_INTERNALS if module.split(".")[0] == "torch" else _WHY_PRIVATE
        if why:
            found.add(alias, f"imports {alias.name} from {module}", why)


def _check_name(analysis: _Analysis, node: ast.Name, found: _Found) -> None:
    name = node.id
    if _is_dunder(name) and name not in _ALLOWED_DUNDER_NAMES:
        # a class body may name its own protocol methods (__radd__ = __add__)
        scope = analysis.scope_of.get(node)
        if not (name in _ALLOWED_DUNDERS and scope is not None and scope.kind == "class"):
            why = _WHY_DYNAMIC if name == "__import__" else \
                _WHY_INTROSPECTION if name in _INTROSPECTIVE_DUNDERS else _WHY_DUNDER
            found.add(node, f"uses {name}", why)
            return
    if not isinstance(node.ctx, ast.Load):
        return
    parent = analysis.parent.get(node)
    called = type(parent) is ast.Call and parent.func is node
    if analysis.is_builtin(node):
        if name in _BANNED_BUILTINS:
            found.add(node, f"calls {name}()" if called else f"uses {name}", _BANNED_BUILTINS[name])
        elif name in _ATTRIBUTE_BUILTINS and not called:
            found.add(node, f"uses {name} as a value", _WHY_DYNAMIC_ATTRIBUTE)
        elif name == "type" and not (called and len(parent.args) == 1 and not parent.keywords) \
                and node not in analysis.annotations:
            in_check = (type(parent) is ast.Call and type(parent.func) is ast.Name
                        and parent.func.id in ("isinstance", "issubclass") and node in parent.args[1:])
            if not in_check:
                what = "calls type() with three arguments" if called else "uses type other than as type(x)"
                found.add(node, what, _WHY_CLASS_AT_RUN_TIME)
        return
    _check_chain(analysis, node, found)


def _check_chain(analysis: _Analysis, node: ast.AST, found: _Found) -> None:
    """A Name or attribute chain that resolves to a refused dotted name (checked once, on the whole chain)."""
    if not analysis.is_outermost(node):
        return
    parent = analysis.parent.get(node)
    in_with = (type(parent) is ast.Call and parent.func is node
               and type(analysis.parent.get(parent)) is ast.withitem)
    for dotted in analysis.resolve(node):
        why = _dotted_problem(dotted, in_with)
        if why:
            private = _private_component(dotted)
            what = f"uses {private or dotted}"
            if why == _WHY_SETTINGS:
                what = f"changes a global setting with {dotted}"
            found.add(node, what, why)
            return


def _describe(analysis: _Analysis, node: ast.AST) -> str:
    dotted = analysis.resolve(node)
    return dotted[0] if dotted else _short(node)


def _attribute_name_problem(analysis: _Analysis, name: str) -> tuple[str, str] | None:
    """What is wrong with reading an attribute of this name from an unknown object (format fields, attrgetter)."""
    if _is_dunder(name):
        if name in _ALLOWED_DUNDERS:
            return None
        return f"reads .{name}", _WHY_INTROSPECTION if name in _INTROSPECTIVE_DUNDERS else _WHY_DUNDER
    if name in _INTROSPECTION_ATTRIBUTES:
        return f"reads .{name}", _WHY_INTROSPECTION
    if name in _MODULE_ATTRIBUTES:
        return f"reaches the {name} module through another object", _module_attribute_why(name)
    if name.startswith("_") and name not in analysis.own_names:
        return f"reads ._{name[1:]}, a private attribute", _WHY_PRIVATE
    return None


def _module_attribute_why(name: str) -> str:
    return _WHY_INTROSPECTION if name in _INTROSPECTION_MODULES or name in ("ctypeslib", "pythonapi") else _WHY_SYSTEM


def _check_attribute(analysis: _Analysis, base: ast.AST, name: str, node: ast.AST, ctx: ast.AST,
                     found: _Found) -> None:
    store = not isinstance(ctx, ast.Load)
    deleting = isinstance(ctx, ast.Del)
    if store and analysis.level(base) == 2:
        verb = "deletes" if deleting else "changes"
        found.add(node, f"{verb} {_describe(analysis, base)}.{name}", _WHY_MONKEYPATCH)
        return
    if _is_dunder(name):
        if store:
            found.add(node, f"{'deletes' if deleting else 'assigns to'} {_short(base)}.{name}", _WHY_MONKEYPATCH)
        elif name in _ALLOWED_DUNDERS:
            pass
        elif name == "__dict__" and type(base) is ast.Name and base.id == "self" and analysis.level(base) < 2:
            pass
        elif name in _SUPER_ONLY_DUNDERS and _is_super_call(base):
            pass
        else:
            why = _WHY_INTROSPECTION if name in _INTROSPECTIVE_DUNDERS else _WHY_DUNDER
            found.add(node, f"reads {_short(base)}.{name}", why)
        return
    if name in _INTROSPECTION_ATTRIBUTES:
        found.add(node, f"reads {_short(base)}.{name}", _WHY_INTROSPECTION)
        return
    if name in _MODULE_ATTRIBUTES:
        found.add(node, f"reaches the {name} module through {_short(base)}", _module_attribute_why(name))
        return
    if name in _SYSTEM_NAMES and analysis.level(base) == 2:
        found.add(node, f"uses {_describe(analysis, base)}.{name}", _WHY_SYSTEM)
        return
    if name.startswith("_") and not _private_allowed(analysis, base, name):
        dotted = [f"{d}.{name}" for d in analysis.resolve(base)]
        private = next((p for p in map(_private_component, dotted) if p), None)
        if private:
            why = _WHY_TORCH_INTERNALS if private.startswith("torch.") else _WHY_PRIVATE
            found.add(node, f"uses {private}", why)
        else:
            found.add(node, f"uses {_short(base)}.{name}, a private attribute of an object it did not define",
                      _WHY_PRIVATE)


def _private_allowed(analysis: _Analysis, base: ast.AST, name: str) -> bool:
    if _is_super_call(base):
        return name in analysis.own_names
    level = analysis.level(base)
    if level == 2:
        dotted = analysis.resolve(base)
        return bool(dotted) and bool(_PRIVATE_CLASS.match(name)) and all(
            "." in d and _private_component(d) is None for d in dotted)
    if type(base) is ast.Name and base.id in ("self", "cls", "ctx"):
        return True
    return name in analysis.own_names


def _check_call(analysis: _Analysis, node: ast.Call, found: _Found) -> None:
    func = node.func
    if type(func) is ast.Name and func.id in _ATTRIBUTE_BUILTINS and analysis.is_builtin(func):
        name = node.args[1] if len(node.args) >= 2 else None
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)) or any(
                type(a) is ast.Starred for a in node.args) or node.keywords:
            found.add(node, f"calls {func.id}() with a computed attribute name", _WHY_DYNAMIC_ATTRIBUTE)
        elif func.id != "getattr":
            ctx = ast.Store() if func.id == "setattr" else ast.Del() if func.id == "delattr" else ast.Load()
            _check_attribute(analysis, node.args[0], name.value, node, ctx, found)
            dotted = [f"{d}.{name.value}" for d in analysis.resolve(node.args[0])]
            for d in dotted:
                why = _dotted_problem(d)
                if why:
                    found.add(node, f"uses {d}", why)
                    break
        return
    for dotted in analysis.resolve(func):
        last = dotted.rsplit(".", 1)[-1]
        if last.endswith("Meta") or last.lower().endswith("metaclass"):
            found.add(node, f"calls {dotted}() to make a class at run time", _WHY_CLASS_AT_RUN_TIME)
            return
        if dotted in ("operator.attrgetter", "operator.methodcaller"):
            names = node.args if dotted == "operator.attrgetter" else node.args[:1]
            for argument in names:
                if not (isinstance(argument, ast.Constant) and isinstance(argument.value, str)):
                    found.add(node, f"calls {dotted}() with a computed attribute name", _WHY_DYNAMIC_ATTRIBUTE)
                    return
                for part in argument.value.split("."):
                    problem = _attribute_name_problem(analysis, part)
                    if problem:
                        found.add(node, f"{problem[0]} through {dotted}()", problem[1])
                        return
    if type(func) is ast.Attribute:
        if func.attr in ("format", "format_map"):
            _check_format(analysis, node, found)
        elif (func.attr in _MUTATORS or func.attr == "register") and analysis.level(func.value) == 2:
            found.add(node, f"calls {_describe(analysis, func.value)}.{func.attr}(), changing another package",
                      _WHY_MONKEYPATCH)


def _check_format(analysis: _Analysis, node: ast.Call, found: _Found) -> None:
    template = node.func.value
    if not (isinstance(template, ast.Constant) and isinstance(template.value, str)):
        found.add(node, f"formats with a template that is not written out ({_short(node.func)})",
                  "str.format can read attributes, so its template must be a written-out string")
        return
    for name in _format_attributes(template.value):
        problem = _attribute_name_problem(analysis, name)
        if problem:
            found.add(node, f"{problem[0]} in a format template", problem[1])
            return


def _format_attributes(template: str, depth: int = 0) -> list[str]:
    """The attribute names that the replacement fields of a str.format template read."""
    import _string  # the parser str.format itself uses

    names: list[str] = []
    if depth > 3:
        return names
    try:
        for _, field, spec, _ in _string.formatter_parser(template):
            if field:
                _, rest = _string.formatter_field_name_split(field)
                names.extend(key for is_attribute, key in rest if is_attribute)
            if spec and "{" in spec:
                names.extend(_format_attributes(spec, depth + 1))
    except (ValueError, TypeError):
        pass  # str.format would raise on it
    return names


# ---------------------------------------------------------------------------
# Scoped rules
# ---------------------------------------------------------------------------
_SPEC = re.compile(r"(?:\{(?P<bases>[^}]+)\}|(?P<name>[A-Za-z_]\w*))(?:\.(?P<member>\*|[A-Za-z_]\w*))?\Z")


def uses_in(source: str | bytes, scope, forbidden: Forbidden, *, filename: str = "submission.py",
            why: str | None = None) -> list[Violation]:
    """Where the code in ``scope``, or anything of the submission it reaches by name, uses what ``forbidden`` lists.

    scope: a spec or a tuple of specs (see the module docstring): ``"conv2d"``, ``"BatchNorm2d"``,
    ``"Conv2d.forward"``, ``"Value.*"``, ``"{torch.autograd.Function}.*"``. A spec that names nothing in the
    source selects nothing.
    """
    found = _Found(filename, forbidden.label)
    try:
        analysis = _analyse(_text(source))
        _uses_in(analysis, (scope,) if isinstance(scope, str) else tuple(scope), forbidden,
                 why or f"this part of the lab must not use {forbidden.label}", found)
    except (_Unreadable, RecursionError):
        return []  # scan reports it
    return found.sorted()


def _roots(analysis: _Analysis, spec: str) -> list[tuple[ast.AST, str]]:
    match = _SPEC.match(spec)
    if not match:
        raise ValueError(f"not a scope spec: {spec!r}")
    member = match["member"]
    if match["bases"]:
        rx = _rx(tuple(p.strip() for p in match["bases"].split("|")))
        classes = [c for c in analysis.classes if analysis.derives(c, rx)]
        if member is None:
            return [(c, analysis.qualname[c]) for c in classes]
    else:
        name = match["name"]
        if member is None:
            return [(b, analysis.qualname.get(b, name)) for b in analysis.module.bindings.get(name, ())
                    if type(b) is not ast.arg]
        classes = [c for c in analysis.classes if c.name == name]
    roots = []
    for selected in classes:
        # the class, and its own ancestors (a mixin's backward is the class's backward), with their decorators
        # and whatever the file assigns to them from outside (Cls.backward = staticmethod(helper))
        for cls in (selected, *analysis.own_bases(selected)):
            roots.extend((d, analysis.qualname[cls]) for d in cls.decorator_list)
            for statement in cls.body:
                if type(statement) in _FUNCTIONS and member in ("*", statement.name):
                    roots.append((statement, analysis.qualname[statement]))
                elif type(statement) in (ast.Assign, ast.AnnAssign, ast.AugAssign) and statement.value is not None:
                    targets = statement.targets if type(statement) is ast.Assign else [statement.target]
                    names = [n for t in targets for n in _target_names(t)]
                    if names and (member == "*" or member in names):
                        roots.append((statement.value, f"{analysis.qualname[cls]}.{names[0]}"))
            for name, value in analysis.class_stores.get(cls, ()):
                if member in ("*", name):
                    roots.append((value, f"{analysis.qualname[cls]}.{name}"))
    return roots


_CONSTRUCTION = frozenset({"__init__", "__new__", "__init_subclass__", "__class_getitem__", "__set_name__"})


def _uses_in(analysis: _Analysis, scope: tuple[str, ...], forbidden: Forbidden, why: str, found: _Found) -> None:
    queue = deque((node, label, label) for spec in scope for node, label in _roots(analysis, spec))
    if queue:
        # Python calls an object's dunder methods implicitly (a * b, obj(x), for v in obj, str(obj)), so any of the
        # submission's objects that reaches the scope at run time may run them: they are part of every scope.
        first = queue[0][2]
        queue.extend((method, analysis.qualname[method], first) for cls in analysis.classes for method in cls.body
                     if type(method) in _FUNCTIONS and _is_dunder(method.name) and method.name not in _CONSTRUCTION)
    walked: set[ast.AST] = set()
    qualified, allowed = _rx(forbidden.qualified), _rx(forbidden.allowed)
    attributes, super_attributes = _rx(forbidden.attributes), _rx(forbidden.super_attributes)
    while queue:
        unit, label, root = queue.popleft()
        if unit in walked:
            continue
        if type(unit) is ast.alias:  # a name bound by an import: the import itself is the use
            walked.add(unit)
            dotted = analysis.scope_of[unit].imports.get(unit.asname or unit.name.split(".")[0]) or ""
            if type(analysis.parent[unit]) is ast.Import and not unit.asname:
                dotted = unit.name
            if qualified and qualified.match(dotted) and not (allowed and allowed.match(dotted)):
                found.add(unit, f"{label} is {dotted}", why)
            continue
        stack = [unit]
        while stack:
            node = stack.pop()
            if node in walked:
                continue
            walked.add(node)
            hit = _hit(analysis, node, qualified, allowed, attributes, super_attributes, forbidden.gradient_switches)
            if hit:
                where = analysis.where(node) or label
                inside = where == root or where.startswith(root + ".")
                found.add(node, f"{where} {hit}" + ("" if inside else f" (reached from {root})"), why)
            for target in _references(analysis, node):
                if target not in walked:
                    queue.append((target, analysis.qualname.get(target, _binding_label(analysis, node)), root))
            stack.extend(analysis.children.get(node, ()))


def _binding_label(analysis: _Analysis, node: ast.AST) -> str:
    return node.id if type(node) is ast.Name else node.attr if type(node) is ast.Attribute else "?"


def _references(analysis: _Analysis, node: ast.AST) -> list[ast.AST]:
    """What of the submission a node reaches by name: the bindings of a name, the definitions of an attribute."""
    kind = type(node)
    if kind is ast.Name and isinstance(node.ctx, ast.Load):
        scope = analysis.lookup(node.id, analysis.scope_of.get(node))
        if scope is None:
            return []
        return [b for b in scope.bindings.get(node.id, ()) if type(b) not in (ast.arg, ast.alias, ast.ExceptHandler)]
    if kind is ast.Attribute and isinstance(node.ctx, ast.Load):
        if _is_super_call(node.value):  # super().name: that method of the enclosing class's own bases
            cls = analysis.enclosing_class(node)
            bases = analysis.own_bases(cls) if cls is not None else []
            return [s for base in bases for s in base.body
                    if type(s) in _FUNCTIONS and s.name == node.attr]
        if analysis.level(node.value) < 2:
            return analysis.attr_index.get(node.attr, [])
    return []


def _hit(analysis: _Analysis, node: ast.AST, qualified, allowed, attributes, super_attributes,
         gradient_switches: bool) -> str | None:
    kind = type(node)
    if qualified is not None and kind in (ast.Name, ast.Attribute) and analysis.is_outermost(node):
        for dotted in analysis.resolve(node):
            if qualified.match(dotted) and not (allowed is not None and allowed.match(dotted)):
                return f"uses {dotted}"
    if kind is ast.Attribute:
        if _is_super_call(node.value):
            if super_attributes is not None and super_attributes.match(node.attr):
                return f"calls super().{node.attr}, the inherited one"
        elif attributes is not None and attributes.match(node.attr) and not analysis.own_member(node.value, node.attr):
            chain = node  # torch.autograd inside the allowed torch.autograd.Function is not a use of torch.autograd
            while type(analysis.parent.get(chain)) is ast.Attribute and analysis.parent[chain].value is chain:
                chain = analysis.parent[chain]
            if not any(allowed is not None and allowed.match(d) for d in analysis.resolve(chain)):
                return f"uses {_short(node)}"
    if kind is ast.Call and attributes is not None and any(
            d in ("operator.attrgetter", "operator.methodcaller") for d in analysis.resolve(node.func)):
        for argument in node.args:
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                for part in argument.value.split("."):
                    if attributes.match(part):
                        return f"uses .{part} through {_short(node.func)}()"
    if gradient_switches:
        if kind is ast.Call:
            func = node.func
            if type(func) is ast.Attribute and func.attr == "requires_grad_":
                value = node.args[0] if node.args else next(
                    (k.value for k in node.keywords if k.arg == "requires_grad"), None)
                if value is None or not _is_false(value):
                    return f"turns requires_grad on ({_short(node)})"
            for keyword in node.keywords:
                if keyword.arg == "requires_grad" and not _is_false(keyword.value):
                    return f"asks for requires_grad ({_short(node)})"
            if (type(func) is ast.Name and func.id == "setattr" and len(node.args) == 3
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value == "requires_grad"
                    and not _is_false(node.args[2])):
                return "turns requires_grad on with setattr"
        elif (kind is ast.Attribute and node.attr in ("requires_grad", "automatic_optimization")
              and isinstance(node.ctx, ast.Store)):
            holder = analysis.parent.get(node)
            value = getattr(holder, "value", None)
            if value is None or not _is_false(value):
                what = "requires_grad" if node.attr == "requires_grad" else "Lightning's automatic optimisation"
                return f"turns {what} on ({_short(node)} = ...)"
    return None


def _require(analysis: _Analysis, spec: str, why: str, found: _Found) -> None:
    """``Class.method``: a Class the submission binds is its own class and defines method itself."""
    class_name, method = spec.split(".")
    for bound in analysis.module.bindings.get(class_name, ()):
        if type(bound) is ast.ClassDef:
            foreign_bases = [b for b in bound.bases if analysis.level(b) == 2 or not analysis._own_class(b)]
            foreign_bases = [b for b in foreign_bases if not (type(b) is ast.Name and analysis.is_builtin(b))]
            if foreign_bases and not analysis.class_defines(bound, method):
                found.add(bound, f"{class_name} does not define {method}, so {_describe(analysis, foreign_bases[0])}."
                                 f"{method} would do the work", why)
        elif type(bound) is ast.alias:
            found.add(bound, f"{class_name} is imported, not written in the submission", why)
        elif type(bound) not in _FUNCTIONS and type(bound) is not ast.arg:
            if analysis.level(bound) or analysis.resolve(bound):
                found.add(bound, f"{class_name} is {_short(bound)}, not a class of the submission", why)


# ---------------------------------------------------------------------------
# Ready-made rules and the labs that use them
# ---------------------------------------------------------------------------
AUTOGRAD = Forbidden(
    label="autograd",
    qualified=(*_tree("torch.autograd", "torch.func", "functorch"), "torch.enable_grad", "torch.set_grad_enabled",
               "torch.inference_mode", "torch.is_inference_mode_enabled", "torch.Tensor.backward",
               "torch.Tensor.register_hook", "torch.Tensor.retain_grad", "torch.Tensor.grad_fn",
               "torch.vmap", "*.manual_backward"),
    allowed=("torch.autograd.Function", "torch.autograd.Function.*", "torch.autograd.function.Function",
             "torch.autograd.function.Function.*", "torch.autograd.function.once_differentiable",
             "torch.autograd.function.FunctionCtx", "torch.autograd.function.InplaceFunction",
             "torch.autograd.function.NestedIOFunction"),
    attributes=("backward", "grad_fn", "next_functions", "register_hook", "register_post_accumulate_grad_hook",
                "retain_grad", "manual_backward", "run_backward", "_execution_engine", "enable_grad",
                "set_grad_enabled", "inference_mode", "autograd"),
    gradient_switches=True,
)

TORCH_CONV_AND_POOL = Forbidden(
    label="torch's convolution or pooling",
    qualified=("torch.conv*", "torch.convolution", "torch.cudnn_*", "torch.mkldnn_*", "torch.miopen_*",
               "torch.slow_conv*", "torch.thnn_conv*", "torch.nn.functional.conv*", "torch.nn.functional.*pool*",
               "torch.*pool*", "torch.nn.Conv*", "torch.nn.LazyConv*", "torch.nn.*Pool*",
               *_tree("torch.nn.modules.conv", "torch.nn.modules.pooling", "torch.nn.grad", "torch.ao",
                      "torch.nn.quantized", "torch.nn.intrinsic", "torchvision.ops", "torchvision.models",
                      "datamodules.pretrained"),
               "numpy.convolve", "numpy.correlate"),
    attributes=("conv[123]d", "conv_transpose*", "conv_tbc", "convolution", "*_convolution*", "max_pool*", "avg_pool*",
                "adaptive_*pool*", "lp_pool*", "fractional_max_pool*", "max_unpool*", "_conv_forward",
                "Conv[123]d", "ConvTranspose*", "LazyConv*", "MaxPool*", "AvgPool*", "Adaptive*Pool*", "LPPool*",
                "FractionalMaxPool*", "MaxUnpool*", "_ConvNd", "_MaxPoolNd", "_AvgPoolNd", "conv*_input",
                "conv*_weight"),
    super_attributes=("forward", "__call__", "_conv_forward"),
)

TORCH_BATCH_NORM = Forbidden(
    label="torch's batch normalisation",
    qualified=("torch.batch_norm*", "torch.native_batch_norm*", "torch.cudnn_batch_norm*", "torch.miopen_batch_norm*",
               "torch.instance_norm", "torch.layer_norm", "torch.group_norm", "torch.native_layer_norm",
               "torch.native_group_norm", "torch.nn.functional.batch_norm", "torch.nn.functional.instance_norm",
               "torch.nn.functional.layer_norm", "torch.nn.functional.group_norm", "torch.nn.BatchNorm*",
               "torch.nn.LazyBatchNorm*", "torch.nn.SyncBatchNorm*", "torch.nn.InstanceNorm*",
               "torch.nn.LazyInstanceNorm*", "torch.nn.LayerNorm*", "torch.nn.GroupNorm*",
               *_tree("torch.nn.modules.batchnorm", "torch.nn.modules.instancenorm", "torch.nn.modules.normalization",
                      "torch.nn.utils.fusion")),
    attributes=("batch_norm*", "*_batch_norm*", "BatchNorm*", "LazyBatchNorm*", "SyncBatchNorm*", "_BatchNorm",
                "_NormBase", "instance_norm", "layer_norm", "group_norm", "InstanceNorm*", "LayerNorm", "GroupNorm"),
    super_attributes=("forward", "__call__"),
)

_FUNCTION_CLASSES = "{torch.autograd.Function|torch.autograd.function.*Function}"

HAND_WRITTEN_BACKWARD = Rule(
    "hand-written backward",
    scope=(f"{_FUNCTION_CLASSES}.*",),
    forbidden=AUTOGRAD,
    why="a torch.autograd.Function of this lab computes its gradients by hand: no autograd in any of its methods "
        "or in what they call",
)
OWN_SCALAR_AUTOGRAD = Rule(
    "own scalar autograd",
    scope=("Value",),
    forbidden=AUTOGRAD,
    why="Value is this lab's own automatic-differentiation engine: it may not use torch's",
)
OWN_CONV_AND_POOL = Rule(
    "own convolution and pooling",
    scope=("conv2d", "max_pool2d", "Conv2d.*", "MaxPool2d.*",
           "{torch.nn.Conv*|torch.nn.LazyConv*|torch.nn.modules.conv.*}.*",
           "{torch.nn.*Pool*|torch.nn.modules.pooling.*}.*"),
    forbidden=TORCH_CONV_AND_POOL,
    why="conv2d, max_pool2d and the layers built on them compute convolution and pooling themselves "
        "(F.unfold, reshapes and matrix products), never with torch's own",
    requires=("Conv2d.forward", "MaxPool2d.forward"),
)
OWN_BATCH_NORM = Rule(
    "own batch norm",
    scope=("BatchNorm2d",),
    forbidden=TORCH_BATCH_NORM,
    why="BatchNorm2d normalises by hand (batch statistics, running buffers), never with torch's batch norm",
)
AUTOGRAD_OR_OPTIMIZER = dataclasses.replace(
    AUTOGRAD, label="autograd or an optimizer",
    qualified=(*AUTOGRAD.qualified, *_tree("torch.optim")))

LOGREG_WITHOUT_AUTOGRAD = Rule(
    "gradients by hand",
    scope=("logistic_gradients", "BinaryLogisticRegression"),
    forbidden=AUTOGRAD_OR_OPTIMIZER,
    why="logistic_gradients writes the gradient formula and BinaryLogisticRegression trains with it, without autograd",
)

LAB_RULES: dict[str, tuple[Rule, ...]] = {
    "logreg": (LOGREG_WITHOUT_AUTOGRAD,),  # the handout: "Use no autograd here: write the formula"
    "mlp": (HAND_WRITTEN_BACKWARD, OWN_SCALAR_AUTOGRAD),
    "cnn": (OWN_CONV_AND_POOL, OWN_BATCH_NORM),
    "transfer": (),
    "rotation": (),
}


def lab_rules(lab: str, source: str | bytes, filename: str | None = None) -> list[Violation]:
    """The breaches of one lab's scoped rules (``LAB_RULES[lab]``) in a submission, in line order."""
    if lab not in LAB_RULES:
        raise ValueError(f"no rules for lab {lab!r}; the labs are {', '.join(LAB_RULES)}")
    filename = filename or f"{lab}.py"
    found = [v for rule in LAB_RULES[lab] for v in rule.check(source, filename)]
    # one report per spot: where two rules reach the same code, keep the rule that names it directly
    best: dict[tuple[int, int], Violation] = {}
    for v in found:
        kept = best.get((v.line, v.column))
        if kept is None or ("(reached from " in kept.what and "(reached from " not in v.what):
            best[v.line, v.column] = v
    return _unique(list(best.values()))


def check(source: str | bytes, filename: str = "submission.py", lab: str | None = None) -> list[Violation]:
    """scan, then the lab's scoped rules when lab is given: every violation, in line order."""
    found = scan(source, filename)
    if lab is not None:
        found += lab_rules(lab, source, filename)
    return _unique(found)


def _unique(violations: list[Violation]) -> list[Violation]:
    seen, out = set(), []
    for v in sorted(violations, key=lambda v: v.line):
        if (v.line, v.what) not in seen:
            seen.add((v.line, v.what))
            out.append(v)
    return out
