"""The analysis of one source, computed once and cached: ``_Analysis`` reads the tree (``scopes._Tree``), indexes
what the submission defines, follows another package's objects (``flow._Flow``) and answers the rules' questions.
"""
from __future__ import annotations

import ast
from functools import lru_cache

from grader.judge.policy.flow import _Flow
from grader.judge.policy.scopes import _FUNCTIONS, _Scope, _Tree
from grader.judge.policy.tables import _CODING, _REGISTERS


# ---------------------------------------------------------------------------
# The analysis of one source: scopes, bindings, name resolution, and what holds another package's objects
# ---------------------------------------------------------------------------
class _Unreadable(Exception):
    def __init__(self, message: str, line: int = 1):
        super().__init__(message)
        self.line = line


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


class _Analysis(_Tree, _Flow):
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
