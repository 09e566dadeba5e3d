"""Generate the student stubs in labs/ from the reference in solutions/.

In a reference file, everything a student writes sits in a region

    # TODO: what to do, in one or more comment lines
    ### BEGIN SOLUTION
    ...reference code...
    ### END SOLUTION

The stub keeps every other byte (the TODO comment included) and replaces each region, at its
indentation, by

    ### BEGIN YOUR SOLUTION
    raise NotImplementedError("SoftmaxRegression.forward")
    ### END YOUR SOLUTION

whose short label names where the region is (the function, ``Value.__mul__ backward`` for a function
nested in a method), so the stub imports and every check fails with a clear reason. The reference's
module docstring paragraph ``REFERENCE_NOTE`` (for the instructor) becomes ``STUDENT_NOTE`` in the stub.
"""
from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from grader.course import LABS, REPO_ROOT

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"  # the reference's markers
STUB_BEGIN, STUB_END = "### BEGIN YOUR SOLUTION", "### END YOUR SOLUTION"  # the stub's
TODO = re.compile(r"^\s*# TODO:?\s?(.*)$")

REFERENCE_NOTE = """\
This is the reference. ``litlabs release`` makes the student's stub from it: each region between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes ``raise NotImplementedError`` between
``### BEGIN YOUR SOLUTION`` and ``### END YOUR SOLUTION``; the ``# TODO`` comment above it stays and
says what to do. Do not change the signatures: the grader calls these functions by name.
"""
STUDENT_NOTE = """\
Fill in every region between ``### BEGIN YOUR SOLUTION`` and ``### END YOUR SOLUTION``: replace its
``raise NotImplementedError`` with your code. The ``# TODO`` comment just above each region says what
to do. Do not change the signatures: the grader calls these functions by name.
"""


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
            regions.append(Region(open_at, number, indent, _todo_above(lines, open_at - 1)))
            open_at = None
        elif marker.startswith("###") and "SOLUTION" in marker.upper():
            raise ReleaseError(f"{filename}:{number}: malformed marker {marker!r}; use {BEGIN!r} / {END!r}")
    if open_at is not None:
        raise ReleaseError(f"{filename}:{open_at}: {BEGIN} is never closed with {END}")
    return regions


def _todo_above(lines: list[str], index: int) -> str:
    """The TODO comment just above lines[index]: '# TODO: ...' and its continuation comment lines."""
    comment = []
    above = index - 1
    while above >= 0 and lines[above].strip().startswith("#"):
        comment.insert(0, lines[above].strip())
        if TODO.match(lines[above]):
            first = TODO.match(lines[above]).group(1).strip()
            rest = [line.lstrip("#").strip() for line in comment[1:]]
            return " ".join([first, *rest])
        above -= 1
    return "complete this part"


def region_labels(source: str, regions: list[Region], filename: str = "<source>") -> list[str]:
    """Each region's short label: where it is, e.g. ``sigmoid``, ``LeNet5.__init__``, ``Value.__mul__ backward``.

    Classes and the outermost function join with dots; a function nested in a function adds its name
    after a space, without leading underscores. Two regions of one place are told apart: ``(part 2)``.
    """
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as err:
        raise ReleaseError(f"{filename}:{err.lineno}: the reference is not valid Python ({err.msg})") from None
    places = []
    for region in regions:
        label, in_function, scope = "", False, tree
        while True:
            inner = next((node for node in ast.iter_child_nodes(scope)
                          if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                          and node.lineno <= region.begin <= node.end_lineno), None)
            if inner is None:
                break
            if in_function:
                label += " " + inner.name.lstrip("_")
            else:
                label += ("." if label else "") + inner.name
            in_function = in_function or not isinstance(inner, ast.ClassDef)
            scope = inner
        places.append(label or "this part")
    labels = []
    for number, place in enumerate(places):
        if places.count(place) > 1:
            place += f" (part {places[:number + 1].count(place)})"
        labels.append(place)
    return labels


def _quoted(label: str) -> str:
    return f'"{label}"' if '"' not in label and "\\" not in label else repr(label)


def make_stub(source: str, filename: str = "<source>") -> str:
    """The student version of a reference file's text."""
    regions = find_regions(source, filename)
    labels = region_labels(source, regions, filename)
    lines = source.splitlines(keepends=True)
    out, skip_until = [], 0
    region_at = {r.begin: (r, label) for r, label in zip(regions, labels)}
    for number, line in enumerate(lines, start=1):
        if number <= skip_until:
            continue
        if number not in region_at:
            out.append(line)
            continue
        region, label = region_at[number]
        out += [f"{region.indent}{STUB_BEGIN}\n", f"{region.indent}raise NotImplementedError({_quoted(label)})\n",
                f"{region.indent}{STUB_END}\n"]
        skip_until = region.end
    stub = "".join(out).replace(REFERENCE_NOTE, STUDENT_NOTE, 1)
    try:
        ast.parse(stub, filename)
    except SyntaxError as err:
        raise ReleaseError(f"{filename}:{err.lineno}: the generated stub is not valid Python ({err.msg})") from None
    return stub


POINTS_PLACEHOLDER = "<!-- litlabs:points -->"


def points_table(lab: str) -> str:
    """The handout's table of visible checks and their points, and the hidden total."""
    from grader.course import checks_of

    checks = checks_of(lab)
    visible = [c for c in checks if not c.hidden]
    hidden_points = sum(c.points for c in checks if c.hidden)
    rows = ["| check | points |", "| --- | ---: |"]
    rows += [f"| {c.title} | {c.points:g} |" for c in visible]
    rows.append(f"| hidden checks, graded after the deadline | {hidden_points:g} |")
    rows.append(f"| **total** | **{sum(c.points for c in checks):g}** |")
    return "\n".join(rows)


def make_handout(source: str, lab: str, filename: str = "<handout>") -> str:
    if POINTS_PLACEHOLDER not in source:
        raise ReleaseError(f"{filename}: the handout has no {POINTS_PLACEHOLDER} line for the points table")
    return source.replace(POINTS_PLACEHOLDER, points_table(lab))


def generated_files(names=None) -> dict[Path, str]:
    """{path under labs/: its generated text} for the stubs and handouts of the labs."""
    if not (REPO_ROOT / "solutions").is_dir():
        raise ReleaseError("there is no solutions/ here: litlabs release and validate need the instructor "
                           "repository, not a student release")
    files = {}
    for name in names or list(LABS):
        reference = REPO_ROOT / "solutions" / f"{name}.py"
        handout = REPO_ROOT / "solutions" / f"{name}.md"
        for path in (reference, handout):
            if not path.exists():
                raise ReleaseError(f"{path.relative_to(REPO_ROOT)} does not exist")
        files[REPO_ROOT / "labs" / f"{name}.py"] = make_stub(reference.read_text(), f"solutions/{name}.py")
        files[REPO_ROOT / "labs" / f"{name}.md"] = make_handout(handout.read_text(), name, f"solutions/{name}.md")
    return files


def release(names=None, check: bool = False) -> list[str]:
    """Write labs/ from solutions/; with check=True write nothing and return the diffs."""
    diffs = []
    for path, text in generated_files(names).items():
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        if check:
            label = path.relative_to(REPO_ROOT)
            diffs.append("".join(difflib.unified_diff(current.splitlines(keepends=True), text.splitlines(keepends=True),
                                                      f"{label} (committed)", f"{label} (generated)")))
        else:
            path.write_text(text)
    return diffs


STUDENT_README = """\
# {title}

```bash
pip install -e . && litlabs check {first_lab}
litlabs train {first_lab} --impl labs
```

The first command installs the labs and checks your work; run `litlabs check LAB`
again after every change. The second trains your model on the offline MNIST subset,
shows a progress bar and saves a learning curve under `runs/`.

Your work goes in `labs/` (one file per lab, with its handout beside it):

{labs}

Fill in each region between `### BEGIN YOUR SOLUTION` and `### END YOUR SOLUTION`: replace its
`raise NotImplementedError(...)` with your code; the `# TODO` comment just above it says what to do.
`litlabs check` runs the visible checks in a sandbox and prints, for each, its points,
whether it passed, and for a failure the reason and a hint. Hidden checks are graded
after the deadline and test the same ideas on other inputs.

Needs Python 3.10 or newer. No internet is needed: the data ships with the installed packages.
"""

STUDENT_PACKAGES = '["datamodules*", "labs*", "grader*"]'


def _copy_tree(source: Path, target: Path, skip=()) -> None:
    import shutil

    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", *skip)
    shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True)


def student_release(out_dir) -> Path:
    """Write a self-contained student repository: stubs, handouts, data, visible checks only."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise ReleaseError(f"{out} exists and is not empty: choose a new directory for the student release")
    diffs = release(check=True)
    if diffs:
        raise ReleaseError("labs/ is not what solutions/ generates: run `litlabs release` first")
    out.mkdir(parents=True, exist_ok=True)
    _copy_tree(REPO_ROOT / "labs", out / "labs")
    _copy_tree(REPO_ROOT / "datamodules", out / "datamodules")
    _copy_tree(REPO_ROOT / "grader", out / "grader", skip=("hidden", "mistakes", "instructor"))
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    include = re.search(r"^include = .*$", pyproject, re.M)
    if include is None:
        raise ReleaseError("pyproject.toml has no [tool.setuptools.packages.find] include line to adapt")
    (out / "pyproject.toml").write_text(pyproject.replace(include.group(0), f"include = {STUDENT_PACKAGES}"))
    lab_lines = "\n".join(f"- `labs/{lab.name}.py` — {lab.title} (handout: `labs/{lab.name}.md`)"
                          for lab in LABS.values())
    (out / "README.md").write_text(STUDENT_README.format(title="Deep learning labs", first_lab=next(iter(LABS)),
                                                         labs=lab_lines))
    (out / ".gitignore").write_text("__pycache__/\n*.egg-info/\nruns/\nlightning_logs/\n")
    return out
