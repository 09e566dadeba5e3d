"""What a report looks like: the ``Violation`` a rule reports, the reasons (``why``) the reports give, and
``_Found``, which collects the violations of one check, one per source position."""
from __future__ import annotations

import ast
from dataclasses import dataclass


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


# ---------------------------------------------------------------------------
# Why a submission may not: the reasons the reports give
# ---------------------------------------------------------------------------
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
_WHY_DUNDER = "dunder attributes are for the language itself (operators, with, super().__init__), not for direct use"


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
