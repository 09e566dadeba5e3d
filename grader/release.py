"""Generate the student stubs in labs/ from the reference in solutions/.

In a reference file, everything a student writes sits in a region

    # TODO: what to do, in one or more comment lines
    ### BEGIN SOLUTION
    ...reference code...
    ### END SOLUTION

The stub keeps every other byte and replaces each region by
``raise NotImplementedError("<the TODO text>")`` at the region's indentation,
so the stub imports and every check fails with a clear reason.
"""
from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from .labs import LABS, REPO_ROOT

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
TODO = re.compile(r"^\s*# TODO:?\s?(.*)$")


class ReleaseError(Exception):
    """A reference file whose solution markers cannot be turned into a stub."""


@dataclass
class Region:
    begin: int  # 1-based line numbers of the markers
    end: int
    indent: str
    todo: str


def find_regions(source: str, filename: str = "<source>") -> list[Region]:
    lines = source.splitlines()
    regions, open_at = [], None
    for number, line in enumerate(lines, start=1):
        marker = line.strip()
        if marker == BEGIN:
            if open_at is not None:
                raise ReleaseError(f"{filename}:{number}: {BEGIN} inside the region opened at line {open_at}")
            open_at = number
        elif marker == END:
            if open_at is None:
                raise ReleaseError(f"{filename}:{number}: {END} without a {BEGIN} before it")
            indent = lines[open_at - 1][: len(lines[open_at - 1]) - len(lines[open_at - 1].lstrip())]
            if not indent:
                raise ReleaseError(f"{filename}:{open_at}: a region at module level would leave the stub "
                                   f"without that code; put regions inside functions")
            todo = []
            above = open_at - 2
            while above >= 0 and TODO.match(lines[above]):
                todo.insert(0, TODO.match(lines[above]).group(1).strip())
                above -= 1
            regions.append(Region(open_at, number, indent, " ".join(todo) or "complete this part"))
            open_at = None
        elif marker.startswith("###") and "SOLUTION" in marker.upper():
            raise ReleaseError(f"{filename}:{number}: malformed marker {marker!r}; use {BEGIN!r} / {END!r}")
    if open_at is not None:
        raise ReleaseError(f"{filename}:{open_at}: {BEGIN} is never closed with {END}")
    return regions


def make_stub(source: str, filename: str = "<source>") -> str:
    """The student version of a reference file's text."""
    regions = find_regions(source, filename)
    lines = source.splitlines(keepends=True)
    out, skip_until = [], 0
    region_at = {r.begin: r for r in regions}
    for number, line in enumerate(lines, start=1):
        if number <= skip_until:
            continue
        region = region_at.get(number)
        if region is None:
            out.append(line)
            continue
        out.append(f"{region.indent}raise NotImplementedError({region.todo!r})\n")
        skip_until = region.end
    stub = "".join(out)
    try:
        ast.parse(stub, filename)
    except SyntaxError as err:
        raise ReleaseError(f"{filename}:{err.lineno}: the generated stub is not valid Python ({err.msg})") from None
    return stub


def lab_sources(names=None) -> list[tuple[Path, Path]]:
    names = names or list(LABS)
    return [(REPO_ROOT / "solutions" / f"{n}.py", REPO_ROOT / "labs" / f"{n}.py") for n in names]


def release(names=None, check: bool = False) -> list[str]:
    """Write labs/ from solutions/, or with check=True return diffs where they differ."""
    diffs = []
    for reference, stub_path in lab_sources(names):
        if not reference.exists():
            raise ReleaseError(f"{reference} does not exist: litlabs release needs the instructor repository "
                               "(with solutions/)")
        stub = make_stub(reference.read_text(), str(reference.relative_to(REPO_ROOT)))
        current = stub_path.read_text() if stub_path.exists() else ""
        if check:
            if current != stub:
                diffs.append("".join(difflib.unified_diff(
                    current.splitlines(keepends=True), stub.splitlines(keepends=True),
                    f"labs/{stub_path.name} (committed)", f"labs/{stub_path.name} (generated)")))
        elif current != stub:
            stub_path.write_text(stub)
    return diffs
