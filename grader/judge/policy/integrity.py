"""``scan``: the integrity policy that every submission meets, whatever the lab (the rules of ``scan`` in the
package's docstring)."""
from __future__ import annotations

import ast

from grader.judge.policy.allowlist import _INTROSPECTION_MODULES, _dotted_problem, _module_problem, _private_component
from grader.judge.policy.analysis import _analyse, _Analysis, _text, _Unreadable
from grader.judge.policy.scopes import _FUNCTIONS
from grader.judge.policy.tables import (
    _ALLOWED_DUNDER_NAMES,
    _ALLOWED_DUNDERS,
    _ATTRIBUTE_BUILTINS,
    _BANNED_BUILTINS,
    _INTROSPECTION_ATTRIBUTES,
    _INTROSPECTIVE_DUNDERS,
    _MODULE_ATTRIBUTES,
    _MUTATORS,
    _PRIVATE_CLASS,
    _SUPER_ONLY_DUNDERS,
    _SYSTEM_NAMES,
    _TORCH_HOOK_METHODS,
    _is_dunder,
    _is_super_call,
    _short,
)
from grader.judge.policy.violation import (
    _WHY_CLASS_AT_RUN_TIME,
    _WHY_DUNDER,
    _WHY_DYNAMIC,
    _WHY_DYNAMIC_ATTRIBUTE,
    _WHY_IMPORT_FORM,
    _WHY_INTROSPECTION,
    _WHY_MONKEYPATCH,
    _WHY_PRIVATE,
    _WHY_SETTINGS,
    _WHY_SOURCE,
    _WHY_SYSTEM,
    _WHY_TORCH_INTERNALS,
    Violation,
    _Found,
)


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
