"""The first half of the analysis of one source: its tree, scopes and bindings, and names resolved through
imports and aliases (``_Tree``, a base class of ``analysis._Analysis``)."""
from __future__ import annotations

import ast
from functools import cache

# ---------------------------------------------------------------------------
# Scopes, bindings and name resolution
# ---------------------------------------------------------------------------
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


class _Tree:
    """The tree of one source, its scopes and bindings, and what its names resolve to (part of ``_Analysis``,
    whose ``__init__`` sets the attributes these methods use)."""

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
