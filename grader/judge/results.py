"""Grading results: a typed ``Results``, saved as (and loaded from) Gradescope's results.json, and a rich table.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from grader.files import write_json_atomically
from grader.judge.plugin import Outcome

# A row's status: the submission was graded (whatever it earned), or the grader failed.
GRADED, GRADER_ERROR = "graded", "grader error"


class ResultsFileError(ValueError):
    """A results file that is missing, half-written by something else, or not litlabs's."""


@dataclass
class Results:
    lab: str
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # about the submission and the sandbox
    error: str = ""  # set when grading itself could not be completed: a grader error
    problem: str = ""  # why a graded submission earned little: no lab file, did not import
    confinement: str = ""  # the layers that walled the submission in (grader.sandbox.identity.describe_layers)
    execution_time: float = 0.0  # seconds the judge spent on it
    wall_time: float | None = None  # seconds from a grade-all judge's start to its results file

    @property
    def status(self) -> str:
        return GRADER_ERROR if self.error else GRADED

    @property
    def score(self) -> float:
        return 0.0 if self.error else sum(o.score for o in self.outcomes)

    @property
    def max_score(self) -> float:
        return sum(o.points for o in self.outcomes)

    def gradescope(self) -> dict:
        """The results.json document of Gradescope's autograder specification."""
        lines = [f"litlabs: lab {self.lab}"]
        if self.error:
            lines.append(f"Grading could not be completed, score 0: {self.error}")
        lines += self.notes
        tests = []
        for number, o in enumerate(self.outcomes, start=1):
            output = "passed" if o.passed else o.reason + (f"\nHint: {o.hint}" if o.hint else "")
            tests.append({
                "name": o.title, "number": str(number), "score": o.score, "max_score": o.points,
                "status": "passed" if o.passed else "failed", "output": output,
                "visibility": "after_published" if o.hidden else "visible",
                "extra_data": {"check": o.check, "reason": o.reason, "hint": o.hint, "grader_error": o.grader_error},
            })
        return {"score": self.score, "execution_time": round(self.execution_time, 3),
                "output": "\n".join(lines), "output_format": "text", "visibility": "visible",
                "stdout_visibility": "hidden", "tests": tests,
                "extra_data": {"litlabs": {"lab": self.lab, "max_score": self.max_score, "status": self.status,
                                           "problem": self.error or self.problem,
                                           "confinement": self.confinement, "error": self.error,
                                           "notes": self.notes,
                                           **({"wall_time": round(self.wall_time, 3)} if self.wall_time is not None
                                              else {})}}}

    def save(self, path: str | Path) -> Path:
        """Write the results.json document atomically: a reader sees the old file or the whole new one."""
        return write_json_atomically(self.gradescope(), path)

    @classmethod
    def load(cls, path: str | Path) -> Results:
        """Read a results.json that ``save`` wrote. Raises ResultsFileError for a missing or malformed one."""
        try:
            document = json.loads(Path(path).read_text())
            info = document["extra_data"]["litlabs"]
            outcomes = [Outcome(check=t["extra_data"]["check"], title=t["name"], points=float(t["max_score"]),
                                hidden=t["visibility"] == "after_published", passed=t["status"] == "passed",
                                reason=t["extra_data"]["reason"], hint=t["extra_data"]["hint"],
                                grader_error=bool(t["extra_data"]["grader_error"])) for t in document["tests"]]
            # the status is what a reader of the file (and an edit of it) goes by: not graded means an error
            error = "" if info["status"] == GRADED else info.get("error") or info["problem"] or "grader error"
            return cls(lab=info["lab"], outcomes=outcomes, notes=list(info.get("notes", [])), error=error,
                       problem="" if error else info["problem"], confinement=info.get("confinement", ""),
                       execution_time=float(document.get("execution_time", 0.0)), wall_time=info.get("wall_time"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise ResultsFileError(f"{path} is not a litlabs results file ({type(err).__name__}: {err})") from err


def merge(parts: list[Results]) -> Results:
    """One Results for several labs graded from the same submission."""
    if len(parts) == 1:
        return parts[0]
    merged = Results(lab=" + ".join(p.lab for p in parts))
    for part in parts:
        for outcome in part.outcomes:
            outcome.title = f"[{part.lab}] {outcome.title}"
            merged.outcomes.append(outcome)
        merged.notes += [n for n in part.notes if n not in merged.notes]
        if part.error:
            merged.error = "; ".join(filter(None, [merged.error, f"{part.lab}: {part.error}"]))
        merged.confinement = merged.confinement or part.confinement
        if part.problem:
            merged.problem = "; ".join(filter(None, [merged.problem, f"{part.lab}: {part.problem}"]))
    merged.execution_time = sum(p.execution_time for p in parts)
    return merged


def print_table(results: Results, console, show_hidden: bool = True) -> None:
    from rich.table import Table

    table = Table(title=f"litlabs — {results.lab}", show_lines=False)
    table.add_column("check")
    table.add_column("points", justify="right")
    table.add_column("result")
    table.add_column("reason and hint", overflow="fold")
    for o in results.outcomes:
        if o.hidden and not show_hidden:
            continue
        mark = "[green]pass[/]" if o.passed else "[red]FAIL[/]"
        detail = "" if o.passed else o.reason + (f"\n[dim]hint: {o.hint}[/]" if o.hint else "")
        title = o.title + (" [dim](hidden)[/]" if o.hidden else "")
        table.add_row(title, f"{o.score:g}/{o.points:g}", mark, detail)
    console.print(table)
    shown = [o for o in results.outcomes if show_hidden or not o.hidden]
    total, out_of = sum(o.score for o in shown), sum(o.points for o in shown)
    for note in results.notes:
        console.print(f"[dim]{note}[/]", highlight=False)
    if results.error:
        console.print(f"[red]grading could not be completed:[/] {results.error}", highlight=False)
    console.print(f"[bold]total: {total:g} / {out_of:g}[/]")
