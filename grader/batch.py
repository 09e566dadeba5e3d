"""``litlabs grade-all``: grade a folder of submissions on this machine into a CSV gradebook.

Each student is graded by its own ``litlabs grade`` process (its own judge,
zygote and sandbox), a few at a time, so one submission that hangs, crashes or
floods its output costs only its own row. Each student's results.json is kept
beside the gradebook; a rerun reuses them unless ``force`` is set.

Past one machine, use an engine that exists: Gradescope's per-submission
containers, or a cluster job array running ``litlabs grade`` per student.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from .catalog import PRIVATE_PATHS
from .labs import REPO_ROOT
from .report import Results, write_json_atomically, write_text_atomically
from .sandbox import hidden_from_sandbox

STUDENT_TIMEOUT = 1800  # seconds for one student, all labs; the per-call limits usually stop far earlier


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "_"


def results_dir_for(out_csv: Path) -> Path:
    return out_csv.with_name(f"{out_csv.stem}-results")


def _load_results(path: Path) -> dict | None:
    try:
        document = json.loads(path.read_text())
        return document if isinstance(document, dict) and "score" in document else None
    except (OSError, ValueError):
        return None


def grade_student(directory: Path, labs: list[str], results_path: Path, timeout: float = STUDENT_TIMEOUT) -> dict:
    """Run ``litlabs grade`` for one student; always leaves a results file and returns it."""
    started = time.monotonic()
    command = [sys.executable, "-m", "grader.cli", "grade", str(directory), "--lab", *labs,
               "--results", str(results_path), "--format", "json"]
    try:
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                       timeout=timeout, cwd=REPO_ROOT)
        problem = ""
    except subprocess.TimeoutExpired:
        problem = f"grading did not finish within {timeout:g} s"
    document = _load_results(results_path)
    if document is None or problem:
        failed = Results(lab=" ".join(labs), error=problem or "the grader left no results file")
        failed.execution_time = time.monotonic() - started
        document = failed.gradescope()
        write_json_atomically(document, results_path)
    return document


def gradebook_rows(graded: dict[str, dict]) -> tuple[list[str], list[list]]:
    """CSV header and rows: student, lab, score, max, one column per check, status, time."""
    checks: list[str] = []
    for document in graded.values():
        for test in document.get("tests", []):
            if test["name"] not in checks:
                checks.append(test["name"])
    header = ["student", "lab", "score", "max", *checks, "status", "time_s"]
    rows = []
    for student, document in sorted(graded.items()):
        info = document.get("extra_data", {}).get("litlabs", {})
        earned = {t["name"]: t["score"] for t in document.get("tests", [])}
        rows.append([student, info.get("lab", ""), document["score"], info.get("max_score", ""),
                     *[earned.get(c, "") for c in checks], info.get("status", "error"),
                     round(float(document.get("execution_time", 0)), 1)])
    return header, rows


def write_csv_atomically(header, rows, path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomically(buffer.getvalue(), path)


def grade_all(submissions_dir, out_csv, labs: list[str], jobs: int = 2, force: bool = False, console=None,
              timeout: float = STUDENT_TIMEOUT) -> dict[str, dict]:
    """Grade every sub-directory of submissions_dir; write the gradebook; return {student: results}."""
    from .labs import LabError, get_lab

    root = Path(submissions_dir)
    if not root.is_dir():
        raise LabError(f"submissions directory {root} does not exist or is not a directory")
    for lab in labs:
        get_lab(lab)
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    results_dir = results_dir_for(out_csv)
    results_dir.mkdir(exist_ok=True)
    students = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    graded, todo = {}, []
    for student in students:
        path = results_dir / f"{_safe(student.name)}.json"
        previous = None if force else _load_results(path)
        if previous is not None:
            graded[student.name] = previous
        else:
            todo.append((student, path))

    progress = None
    if console is not None and console.is_terminal:
        from rich.progress import Progress

        progress = Progress(console=console)
    # As root, hide the reference and hidden checks for the whole batch: each `litlabs grade`
    # restores the modes it found, and would otherwise unhide them while others still run.
    with hidden_from_sandbox(PRIVATE_PATHS if os.geteuid() == 0 else []), ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(grade_student, student, labs, path, timeout): student for student, path in todo}
        task = progress.add_task("grading", total=len(futures)) if progress else None
        if progress:
            progress.start()
        try:
            for future in as_completed(futures):
                graded[futures[future].name] = future.result()
                if progress:
                    progress.advance(task)
        finally:
            if progress:
                progress.stop()
    header, rows = gradebook_rows(graded)
    write_csv_atomically(header, rows, out_csv)
    if console is not None:
        console.print(f"graded {len(todo)}, reused {len(students) - len(todo)} earlier result(s); "
                      f"gradebook: {out_csv}; results: {results_dir}/")
    return graded
