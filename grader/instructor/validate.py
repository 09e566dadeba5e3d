"""``litlabs validate``: prove every check is meaningful before anything ships.

For each lab: grade the reference twice and the stub generated from it once.
Every check must pass on the reference, fail on the stub, and give the same
outcome and message on both runs of the reference.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from grader.course import REPO_ROOT, get_lab
from grader.instructor.release import generated_files
from grader.judge.session import GradingSession


@dataclass
class CheckVerdict:
    lab: str
    check: str
    title: str
    points: float
    hidden: bool
    passes_on_reference: bool
    fails_on_stub: bool
    deterministic: bool
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.passes_on_reference and self.fails_on_stub and self.deterministic


def validate_lab(name: str, session: GradingSession) -> list[CheckVerdict]:
    """Grade the reference twice and the untouched stub once, in an open session; one verdict per check."""
    lab = get_lab(name)
    stub_text = next(text for path, text in generated_files([lab.name]).items() if path.name == lab.filename)
    with tempfile.TemporaryDirectory(prefix="litlabs-validate-") as tmp:
        stub_dir = Path(tmp)
        (stub_dir / lab.filename).write_text(stub_text)
        first = session.grade(REPO_ROOT / "solutions", lab.name)
        second = session.grade(REPO_ROOT / "solutions", lab.name)
        stub = session.grade(stub_dir, lab.name)
    for results in (first, second, stub):
        if results.error:
            raise RuntimeError(f"grading {lab.name} failed: {results.error}")
    again = {o.check: o for o in second.outcomes}
    on_stub = {o.check: o for o in stub.outcomes}
    verdicts = []
    for o in first.outcomes:
        repeat, stubbed = again.get(o.check), on_stub.get(o.check)
        deterministic = repeat is not None and (repeat.passed, repeat.reason) == (o.passed, o.reason)
        detail = "" if o.passed else f"reference: {o.reason}"
        if stubbed is not None and stubbed.passed:
            detail = "passes on the untouched stub: it does not test the student's code"
        if not deterministic:
            detail = f"differs between two runs of the reference: {o.reason!r} vs {repeat.reason if repeat else '-'!r}"
        verdicts.append(CheckVerdict(lab.name, o.check, o.title, o.points, o.hidden, o.passed,
                                     stubbed is not None and not stubbed.passed, deterministic, detail))
    return verdicts


def _mark(good: bool, yes: str, no: str) -> str:
    return f"[green]{yes}[/]" if good else f"[red]{no}[/]"


def verdict_line(v: CheckVerdict) -> str:
    """One line per check for logs (no terminal): a table row would wrap over 3-5 lines at 80 columns."""
    state = "ok" if v.ok else "BAD"
    line = f"{state:<3}  {v.lab:<8} {v.points:>3g} pt  {v.title}" + (" (hidden)" if v.hidden else "")
    return line + (f"  -- {v.detail}" if v.detail else "")


def print_verdicts(verdicts: list[CheckVerdict], console) -> None:
    if console.is_terminal:
        print_tables(verdicts, console)
    else:
        for v in verdicts:
            console.print(verdict_line(v), markup=False, highlight=False, soft_wrap=True)
    bad = [v for v in verdicts if not v.ok]
    if bad:
        console.print(f"[red bold]{len(bad)} check(s) are not meaningful[/]: they must pass on the reference, "
                      "fail on the stub and repeat exactly.")
    else:
        console.print(f"[green bold]all {len(verdicts)} checks pass on the reference, fail on the stub, "
                      "and repeat exactly[/]")


def print_tables(verdicts: list[CheckVerdict], console) -> None:
    from rich.table import Table

    for lab in dict.fromkeys(v.lab for v in verdicts):
        table = Table(title=f"litlabs validate — {lab}")
        for column in ("check", "points", "reference", "stub", "repeatable", "problem"):
            table.add_column(column, justify="right" if column == "points" else "left", overflow="fold")
        for v in (v for v in verdicts if v.lab == lab):
            table.add_row(v.title + (" [dim](hidden)[/]" if v.hidden else ""), f"{v.points:g}",
                          _mark(v.passes_on_reference, "passes", "FAILS"), _mark(v.fails_on_stub, "fails", "PASSES"),
                          _mark(v.deterministic, "yes", "NO"), v.detail)
        console.print(table)
