"""Scoped rules: ``uses_in`` and ``Rule``. The code in a scope, and everything of the submission it reaches by
name, must not use what a ``Forbidden`` lists (the scoped rules in the package's docstring)."""
from __future__ import annotations

import ast
import re
from collections import deque
from dataclasses import dataclass

from grader.judge.policy.analysis import _analyse, _Analysis, _text, _Unreadable
from grader.judge.policy.integrity import _describe
from grader.judge.policy.scopes import _FUNCTIONS, _target_names
from grader.judge.policy.tables import _is_dunder, _is_false, _is_super_call, _rx, _short
from grader.judge.policy.violation import Violation, _Found


# ---------------------------------------------------------------------------
# What a scoped rule forbids, and the rule
# ---------------------------------------------------------------------------
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
