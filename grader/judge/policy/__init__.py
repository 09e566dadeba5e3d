"""A static integrity policy for a submitted lab file, checked by the trusted judge before the file runs.

A submission is one Python file that the grader imports in a sandboxed worker process. Everything in
that process belongs to the submission, so a guard that runs there (a stand-in autograd engine, a look
at the autograd graph) can be reached and forged by the submission itself. This package reads the
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

Layout
------
The package's modules, bottom to top; each imports only modules above it in this list:
``violation`` (``Violation``, the reasons the reports give, ``_Found``); ``tables`` (the policy's tables
and small helpers on names, nodes and patterns); ``allowlist`` (the import allow-list and the dotted
names refused everywhere); ``scopes`` (the tree, scopes, bindings and name resolution); ``flow`` (what
holds another package's objects); ``analysis`` (``_Analysis``, cached per source); ``integrity``
(``scan``); ``scoped`` (``Forbidden``, ``Rule``, ``uses_in``); ``labs`` (the ready-made rules,
``LAB_RULES``, ``lab_rules``, ``check``).
"""
from __future__ import annotations

from grader.judge.policy.allowlist import ALLOWED_MODULES
from grader.judge.policy.analysis import _analyse as _analyse  # tests clear its cache
from grader.judge.policy.integrity import scan
from grader.judge.policy.labs import (
    AUTOGRAD,
    AUTOGRAD_OR_OPTIMIZER,
    HAND_WRITTEN_BACKWARD,
    LAB_RULES,
    LOGREG_WITHOUT_AUTOGRAD,
    OWN_BATCH_NORM,
    OWN_CONV_AND_POOL,
    OWN_SCALAR_AUTOGRAD,
    TORCH_BATCH_NORM,
    TORCH_CONV_AND_POOL,
    check,
    lab_rules,
)
from grader.judge.policy.scoped import Forbidden, Rule, uses_in
from grader.judge.policy.violation import Violation

__all__ = [
    "Violation", "Forbidden", "Rule", "scan", "uses_in", "lab_rules", "check",
    "AUTOGRAD", "AUTOGRAD_OR_OPTIMIZER", "TORCH_CONV_AND_POOL", "TORCH_BATCH_NORM",
    "HAND_WRITTEN_BACKWARD", "OWN_SCALAR_AUTOGRAD", "OWN_CONV_AND_POOL", "OWN_BATCH_NORM",
    "LOGREG_WITHOUT_AUTOGRAD", "LAB_RULES", "ALLOWED_MODULES",
]
