"""``litlabs audit``: how much of what students get wrong do the checks catch?

A lab's *mistakes* (``grader/mistakes/LAB.py``, plus an instructor's own with ``--mistakes DIR``)
are the reference with one misunderstanding written in, as a student would write it; its
*alternatives* are correct implementations written another way. The audit grades all of them in
one warm batch (the machinery of ``litlabs grade-all``) and reports, per lab:

- the check x mistake matrix (which checks fail on which mistake),
- the **mutation score**: the share of mistakes that at least one check catches,
- the checks that catch nothing, the mistakes nothing catches,
- the alternatives that lose points (a check that is too strict is a defect too).

Mistakes hold the reference's text: they live in the instructor's repository only (never in the
student release, the Gradescope bundle, or anything the sandbox can read).
"""
from __future__ import annotations

import importlib.util
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.course import REPO_ROOT, LabError, checks_of, get_lab
from grader.judge.results import Results

MISTAKES_DIR = REPO_ROOT / "grader" / "mistakes"  # the pinned tables: each mistake names the checks that catch it
STUDENTS_DIR = MISTAKES_DIR / "students"  # written by independent students: "caught by some check" is the bar


class AuditError(LabError):
    """A mistake file that cannot be used (missing, malformed, an edit whose text is not in the reference)."""


@dataclass(frozen=True)
class Mistake:
    """The reference with ``replace``'s edits, each ``(old, new)`` applied once in order.

    ``caught_by``: the checks that must fail on it, where the tables pin them (the tests assert the
    set exactly); None where only "caught by some check" is asserted. ``checks``: a pytest -k
    expression naming the checks a quick audit (``--quick``, the tests) grades it with, to leave out
    long trainings the mistake cannot reach; the full audit grades every check.
    """
    name: str
    replace: tuple[tuple[str, str], ...]
    caught_by: frozenset[str] | None = None
    checks: str | None = None  # a pytest -k expression: the checks a quick audit grades (None: all)
    kind: str = ""
    why: str = ""

    def __post_init__(self):  # tables are written with lists and sets; keep them hashable and fixed
        object.__setattr__(self, "replace", tuple((old, new) for old, new in self.replace))
        if self.caught_by is not None:
            object.__setattr__(self, "caught_by", frozenset(self.caught_by))


@dataclass(frozen=True)
class Alternative(Mistake):
    """A correct implementation written another way: it must keep full marks."""


def apply(reference: str, variant: Mistake) -> str:
    """The submission a variant stands for; AuditError names an edit whose text is missing."""
    source = reference
    for number, (old, new) in enumerate(variant.replace, start=1):
        if old not in source:
            raise AuditError(f"{variant.name!r}: edit {number}'s text is not in the reference "
                             f"(was the reference changed?): {old[:80]!r}")
        source = source.replace(old, new, 1)
    return source


def _load_file(path: Path) -> tuple[list[Mistake], list[Alternative]]:
    spec = importlib.util.spec_from_file_location(f"litlabs_mistakes_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # an instructor's file: say which and why, not a traceback
        raise AuditError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from exc
    mistakes, alternatives = list(getattr(module, "MISTAKES", [])), list(getattr(module, "ALTERNATIVES", []))
    for table, entries, kind in (("MISTAKES", mistakes, Mistake), ("ALTERNATIVES", alternatives, Alternative)):
        wrong = next((entry for entry in entries if type(entry) is not kind), None)  # Alternative is a Mistake too
        if wrong is not None:
            raise AuditError(f"{path}: {table} must hold grader.instructor.audit.{kind.__name__}, not {type(wrong).__name__}")
    return mistakes, alternatives


def variants_of(lab: str, extra_dirs: list[Path] = (), students: bool = True,
                shipped: bool = True) -> tuple[list[Mistake], list[Alternative]]:
    """The lab's pinned table, the independent students' (``students``), then each extra folder's LAB.py.

    ``shipped=False``: the extra folders' tables only.
    """
    mistakes, alternatives = [], []
    shipped = ([MISTAKES_DIR] + ([STUDENTS_DIR] if students else [])) if shipped else []
    for folder in [*shipped, *map(Path, extra_dirs)]:
        path = folder / f"{lab}.py"
        if folder not in shipped and not folder.is_dir():
            raise AuditError(f"--mistakes {folder}: no such directory (it should hold LAB.py files, e.g. {lab}.py)")
        if path.is_file():
            more, others = _load_file(path)
            mistakes += more
            alternatives += others
    names = [v.name for v in mistakes + alternatives]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise AuditError(f"lab {lab}: two mistakes or alternatives share the name {twice[0]!r}")
    return mistakes, alternatives


@dataclass
class Row:
    variant: Mistake
    failed: set[str]  # check names
    graded: set[str]  # the checks that ran (a quick audit leaves some out)
    lost: float  # points lost
    problem: str = ""  # a grader error: the variant was not graded
    reasons: dict[str, str] = field(default_factory=dict)  # check name -> what the report says on failure

    @property
    def is_alternative(self) -> bool:
        return isinstance(self.variant, Alternative)


@dataclass
class LabAudit:
    lab: str
    checks: list  # catalog.CheckInfo, in grading order
    rows: list[Row] = field(default_factory=list)
    wall_seconds: float = 0.0

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.variant.name == name)

    @property
    def mistakes(self) -> list[Row]:
        return [r for r in self.rows if not r.is_alternative]

    @property
    def alternatives(self) -> list[Row]:
        return [r for r in self.rows if r.is_alternative]

    @property
    def caught(self) -> list[Row]:
        return [r for r in self.mistakes if r.failed and not r.problem]

    @property
    def mutation_score(self) -> float:
        return len(self.caught) / len(self.mistakes) if self.mistakes else 1.0

    @property
    def uncaught(self) -> list[Row]:
        return [r for r in self.mistakes if not r.failed or r.problem]

    @property
    def idle_checks(self) -> list[str]:
        """Checks that catch none of the mistakes."""
        used = set().union(*(r.failed for r in self.mistakes)) if self.mistakes else set()
        return [c.name for c in self.checks if c.name not in used]

    @property
    def strict_on(self) -> list[Row]:
        """Alternatives that lose points (or could not be graded)."""
        return [r for r in self.alternatives if r.failed or r.lost or r.problem]


def _row(variant: Mistake, results: Results | None) -> Row:
    """What one variant's grading says, by check name (None: it was never graded, after Ctrl-C)."""
    if results is None:
        return Row(variant, failed=set(), graded=set(), lost=0.0, problem="not graded")
    row = Row(variant, failed=set(), graded=set(), lost=0.0, problem=results.error)
    for outcome in results.outcomes:
        row.graded.add(outcome.check)
        row.lost += outcome.points - outcome.score
        if not outcome.passed:
            row.failed.add(outcome.check)
            row.reasons[outcome.check] = outcome.reason + (f"\nHint: {outcome.hint}" if outcome.hint else "")
    return row


def audit_lab(lab: str, extra_dirs: list[Path] = (), jobs: int = 2, quick: bool = False, students: bool = True,
              shipped: bool = True) -> LabAudit:
    """Grade every mistake and alternative of one lab's tables (see ``variants_of``).

    ``quick``: each mistake only with the checks its ``checks`` expression selects.
    """
    from grader.instructor.grade_all import STUDENT_TIMEOUT, grade_students
    from grader.judge.session import GradingSession

    started = time.monotonic()
    lab_info = get_lab(lab)
    reference = (REPO_ROOT / "solutions" / lab_info.filename).read_text()
    mistakes, alternatives = variants_of(lab, extra_dirs, students, shipped)
    audit = LabAudit(lab, checks_of(lab))
    if not mistakes + alternatives:
        return audit  # nothing to grade: no zygote, no batch
    by_key: dict[str, Mistake] = {}
    with tempfile.TemporaryDirectory(prefix=f"litlabs-audit-{lab}-") as tmp:
        todo, keywords = [], {}
        for number, variant in enumerate(mistakes + alternatives):
            key = f"{number:03d}"
            folder = Path(tmp) / "submissions" / key
            folder.mkdir(parents=True)
            (folder / lab_info.filename).write_text(apply(reference, variant))
            by_key[key] = variant
            if quick and variant.checks:
                keywords[key] = variant.checks
            todo.append((key, folder, Path(tmp) / f"{key}.json"))
        graded: dict[str, Results] = {}
        with GradingSession() as session:
            grade_students(todo, [lab], session, max(1, jobs), STUDENT_TIMEOUT, graded.__setitem__, keywords)
    # every judge's results come through on_done (a grader error's too); none only after Ctrl-C
    audit.rows = [_row(by_key[key], graded.get(key)) for key in by_key]
    audit.wall_seconds = time.monotonic() - started
    return audit


def audit_labs(names: list[str], extra_dirs: list[Path], min_score: float, *, console, errors, jobs: int = 2,
               quick: bool = False, shipped: bool = True) -> bool:
    """``litlabs audit``: audit each lab in turn and print its report as soon as it is done.

    False when a lab's mutation score is below ``min_score`` or a correct alternative loses points
    (each said in one line on ``errors``). Raises AuditError when no lab had anything to grade.
    """
    ok, audited = True, 0
    for name in names:
        audit = audit_lab(name, extra_dirs, jobs=jobs, quick=quick, shipped=shipped)
        if not audit.rows:
            console.print(f"Lab {name}: no mistakes or alternatives to grade", highlight=False)
            continue
        audited += 1
        for line in report_lines(audit):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
        failing = [f"mutation score {100 * audit.mutation_score:.1f}% is below {100 * min_score:g}%"
                   if audit.mutation_score < min_score else "",
                   f"{len(audit.strict_on)} correct alternative(s) lose points" if audit.strict_on else ""]
        if any(failing):
            ok = False
            errors.print(f"[red]lab {name}:[/] " + "; ".join(filter(None, failing)), highlight=False)
    if not audited:
        raise AuditError("no lab had mistakes to grade: a --mistakes folder holds one LAB.py per lab, e.g. logreg.py")
    return ok


# --- the report -------------------------------------------------------------------------

def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def report_lines(audit: LabAudit) -> list[str]:
    """The plain-text report of one lab: matrix, score, and what needs attention."""
    numbers = {c.name: i for i, c in enumerate(audit.checks, start=1)}
    lines = [f"Lab {audit.lab}: mutation score {len(audit.caught)}/{len(audit.mistakes)} "
             f"({100 * audit.mutation_score:.1f}%); alternatives at full marks "
             f"{len(audit.alternatives) - len(audit.strict_on)}/{len(audit.alternatives)}; "
             f"{audit.wall_seconds:.0f} s", "checks:"]
    lines += [f"  {i:>2}  {c.title}" for c, i in ((c, numbers[c.name]) for c in audit.checks)]
    header = " ".join(f"{i % 100:>2}" for i in numbers.values())
    lines.append(f"  {'x: the check fails on it, .: passes, -: not graded':<58} {header}")
    for tag, rows in (("M", audit.mistakes), ("A", audit.alternatives)):
        for n, row in enumerate(rows, start=1):
            cells = " ".join(" x" if c.name in row.failed else " ." if c.name in row.graded else " -"
                             for c in audit.checks)
            label = _short(f"{tag}{n:02d} {row.variant.name}", 58)
            extra = f"  grader error: {row.problem}" if row.problem else ""
            lines.append(f"  {label:<58} {cells}{extra}")
    if audit.uncaught:
        lines.append("mistakes no check catches:")
        lines += [f"  - {r.variant.name}" + (f" ({r.variant.why})" if r.variant.why else "") for r in audit.uncaught]
    if audit.idle_checks:
        lines.append("checks that catch none of these mistakes: " + ", ".join(audit.idle_checks))
    if audit.strict_on:
        lines.append("alternatives that lose points (a check too strict?):")
        lines += [f"  - {r.variant.name}: {r.lost:g} points, failing " + ", ".join(sorted(r.failed))
                  + (f"; grader error: {r.problem}" if r.problem else "") for r in audit.strict_on]
    return lines


__all__ = ["Alternative", "AuditError", "LabAudit", "Mistake", "apply", "audit_lab", "audit_labs", "report_lines",
           "variants_of"]
