"""The second half of the analysis of one source: what holds another package's modules, classes and functions,
followed through the file to a fixed point (``_Flow``, a base class of ``analysis._Analysis``)."""
from __future__ import annotations

import ast

from grader.judge.policy.scopes import _COMPREHENSIONS, _FUNCTIONS
from grader.judge.policy.tables import (
    _CLASS_REACHING,
    _CONTAINER_BUILTINS,
    _ELEMENT_BUILTINS,
    _MUTATORS,
    _is_super_call,
)


class _Flow:
    """Where another package's objects go in one source (part of ``_Analysis``, whose ``__init__`` sets the
    attributes these methods use and runs ``_propagate``)."""

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
