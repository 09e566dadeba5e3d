"""The package's shape: imports run one way between grader's wings, with no circle, and no module is long.

Wings, bottom to top (README, "Layout"): course and files; training; sandbox; kit; judge; instructor; cli.
A module may import its own wing and the wings below it, never one above. Check files import the kit
(and the course); the audit's tables import the instructor's audit. The data layer imports nothing of
the grader or the reference; the reference imports nothing of the grader.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from grader.course import REPO_ROOT

RANK = {"course": 0, "files": 0, "training": 1, "sandbox": 2, "kit": 3, "judge": 4, "instructor": 5, "cli": 6}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function (absolute names)."""
    package = module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from grader.kit import expect`
    return found


def our_modules() -> dict[str, Path]:
    folders = ("grader", "datamodules", "solutions", "labs")
    return {module_name(p): p for folder in folders for p in (REPO_ROOT / folder).rglob("*.py")}


def graph() -> dict[str, set[str]]:
    modules = our_modules()
    return {name: {i for i in imports_of(path) if i in modules} - {name} for name, path in modules.items()}


def wing(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "grader" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in RANK else parts[1]  # checks, hidden, mistakes: their own rules below


def test_imports_never_run_from_a_lower_wing_to_a_higher_one():
    wrong = []
    for module, imported in graph().items():
        for target in imported:
            here, there = wing(module), wing(target)
            if module.startswith(("grader.checks", "grader.hidden")):
                if there not in ("kit", "course", "checks") and target.startswith("grader"):
                    wrong.append((module, target))
            elif module.startswith("grader.mistakes"):
                if target.startswith("grader") and target not in ("grader.instructor", "grader.instructor.audit"):
                    wrong.append((module, target))
            elif here in RANK and there in RANK and RANK[there] > RANK[here]:
                wrong.append((module, target))
            elif module.split(".")[0] in ("datamodules", "labs", "solutions") and target.startswith(
                    ("grader", "solutions") if not module.startswith("solutions") else ("grader",)):
                wrong.append((module, target))
            elif here in RANK and there in ("checks", "hidden", "mistakes") and here != "instructor":
                wrong.append((module, target))
    assert wrong == []


def test_the_worker_side_imports_nothing_of_the_judge_side():
    edges = graph()
    judge_side = {"grader.sandbox.client", "grader.sandbox.zygote", "grader.sandbox.hiding", "grader.sandbox.identity"}
    seen, todo = set(), ["grader.sandbox.worker"]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(edges.get(module, ()))
    assert seen & judge_side == set()
    assert not any(m.startswith(("grader.kit", "grader.judge", "grader.instructor", "grader.cli")) for m in seen)


def test_no_import_circle():
    edges = graph()
    circles = []
    state: dict[str, int] = {}

    def visit(module, path):
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target] if target in path else [module, target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    # a package importing its own submodules (`from grader.sandbox import wire`) is not a circle
    circles = [c for c in circles if not any(b.startswith(a + ".") for a, b in zip(c, c[1:]))]
    assert circles == []


@pytest.mark.parametrize("folder", ["grader", "datamodules"])
def test_no_module_is_over_400_lines(folder):
    # grader/mistakes/ is data, not code: tables of student mistakes, each an edit of the reference
    long = {str(p.relative_to(REPO_ROOT)): n for p in (REPO_ROOT / folder).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES and "mistakes" not in p.relative_to(REPO_ROOT).parts}
    assert long == {}
