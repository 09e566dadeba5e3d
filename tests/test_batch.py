"""`litlabs grade-all`: a folder of submissions into a CSV gradebook, as an instructor types it.

Every test runs from a working directory that is not the repository, with the
relative paths the README shows.
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sandbox_python import sandbox_python

from grader.cli import main
from grader.course import REPO_ROOT
from grader.instructor.grade_all import grade_all
from grader.judge.session import GradingSession


@pytest.fixture(autouse=True)
def walls_behind_the_policy(monkeypatch):
    """Several submissions here break the static policy (grader/judge/policy/) on purpose, to reach the walls behind
    it: the policy is off in this module, so those walls are what is tested (tests/test_hostile.py tests the
    policy's own verdicts)."""
    monkeypatch.setenv("LITLABS_NO_POLICY", "1")


REFERENCE = (REPO_ROOT / "solutions" / "logreg.py").read_text()
STUB = (REPO_ROOT / "labs" / "logreg.py").read_text()
FUTURE = "from __future__ import annotations\n"
LITLABS = str(Path(sys.executable).parent / "litlabs")  # this environment's, activated or not (README line 2)
README_COMMAND = ["grade-all", "submissions/", "--out", "grades.csv", "--jobs", "2"]


def at_top(code):
    return REFERENCE.replace(FUTURE, FUTURE + code, 1)


# Changes the world it can reach, then grades like the reference: the next student must not notice.
TAMPERER = at_top(
    "import torch, torch.nn.functional as F, os\n"
    "torch.softmax = lambda *a, **k: None\n"
    "F.cross_entropy = lambda *a, **k: torch.tensor(0.0)\n"
    "torch.manual_seed = lambda *a, **k: None\n"
    "for name in ('logreg.py', 'scratch.txt', os.path.join(os.environ.get('TMPDIR', '.'), 'left.txt')):\n"
    "    open(name, 'w').write('def sigmoid(z):\\n    return z\\n')\n")

SUBMISSIONS = {  # student -> (source of logreg.py, expected score, what the problem column says)
    "ada": (REFERENCE, 27, ""),
    "bo": (REFERENCE.replace("def softmax(logits):", "def softmax(logits):\n    return torch.softmax(logits, 1)"),
           27, ""),
    "cy": (STUB, 0, ""),
    "ed": (REFERENCE.replace("err = a - y.to(a.dtype)", "err = y.to(a.dtype) - a"), 20, ""),
    "fa": (REFERENCE.replace("    shifted = logits - logits.max(dim=1, keepdim=True).values\n    exp",
                             "    shifted = logits\n    exp"), 26, ""),
    "gu": (at_top("raise RuntimeError('crash at import')\n"), 0, "RuntimeError: crash at import"),
    "hu": (at_top("import os\nos.kill(os.getpid(), 9)\n"), 0, "process ended during importing"),
    "io": (at_top("while True:\n    pass\n"), 0, "did not finish within"),
    "jo": (at_top("for _ in range(200_000):\n    print('flood ' * 20)\n"), 27, ""),
    "ka": (TAMPERER, 27, ""),
    "lu": ("def broken(:\n", 0, "SyntaxError"),
}


def make_submissions(folder, submissions):
    for student, (source, *_) in submissions.items():
        (folder / "submissions" / student).mkdir(parents=True)
        (folder / "submissions" / student / "logreg.py").write_text(source)


def read_gradebook(path):
    return {row["student"]: row for row in csv.DictReader(open(path))}


def assert_gradebook(rows, submissions):
    assert sorted(rows) == sorted(submissions)
    for student, (_, score, problem) in submissions.items():
        row = rows[student]
        assert float(row["score"]) == score, row
        assert row["status"] == "graded" and row["lab"] == "logreg" and row["max"] == "27.0", row
        assert problem in row["problem"] and (problem or not row["problem"]), row
        assert float(row["time_s"]) >= 0
        assert "rlimits" in row["confinement"] or problem, row  # the layers in force, when a worker ran


@pytest.mark.slow
def test_the_readme_command_verbatim_gives_the_right_gradebook_and_reruns_only_what_is_not_graded(tmp_path):
    make_submissions(tmp_path, SUBMISSIONS)

    def litlabs(*argv):  # the installed command, from the folder holding submissions/
        return subprocess.run([LITLABS, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=600)

    done = litlabs(*README_COMMAND)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = read_gradebook(tmp_path / "grades.csv")
    assert_gradebook(rows, SUBMISSIONS)
    assert rows["ed"]["logistic_gradients equals autograd's gradient of the mean BCE"] == "0.0"
    assert rows["ed"]["softmax is finite and exact for logits of ±1000"] == "1.0"
    assert float(rows["io"]["time_s"]) >= 10  # its wall time: the endless import ran until its CPU limit (10 s + 2)
    summary = " ".join(done.stdout.split())
    assert "11 student(s): graded 11 now" in summary and "status: graded 11" in summary
    assert "min 0, median 20, max 27 (out of 27); full marks 4" in summary
    assert not (tmp_path / "submissions" / "ka" / "scratch.txt").exists()

    # A grader error (here: a results file the judge never finished) is regraded by the next run;
    # graded rows are kept as they are.
    results = tmp_path / "grades-results"
    before = {p.name: p.stat().st_mtime_ns for p in results.iterdir()}
    document = json.loads((results / "ada.json").read_text())
    document["extra_data"]["litlabs"]["status"] = "grader error"
    document["score"] = 0
    (results / "ada.json").write_text(json.dumps(document))
    (results / "cy.json").unlink()
    done = litlabs(*README_COMMAND)
    assert done.returncode == 0, done.stderr[-3000:]
    after = {p.name: p.stat().st_mtime_ns for p in results.iterdir()}
    assert {name for name in after if after[name] != before.get(name)} == {"ada.json", "cy.json"}
    assert "graded 2 now" in done.stdout and "collected 9 earlier result(s)" in " ".join(done.stdout.split())
    assert_gradebook(read_gradebook(tmp_path / "grades.csv"), SUBMISSIONS)


def test_a_student_cannot_change_the_next_students_score(tmp_path, monkeypatch):
    """One judge at a time, the tamperer first: monkeypatched torch and written files die with its workers.
    Every judge forks its workers from the batch's one zygote (a judge that started its own would pay
    Lightning's import per student and leave that zygote to die after the batch)."""
    import grader.judge.session

    started = tmp_path / "zygotes-started-by"

    class CountedZygote(grader.judge.session.Zygote):
        def __init__(self, *args, **kwargs):
            with open(started, "a") as f:
                f.write(f"{os.getpid()}\n")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(grader.judge.session, "Zygote", CountedZygote)
    students = {"a_tamperer": (TAMPERER, 27, ""), "b_reference": (REFERENCE, 27, ""),
                "c_stub": (STUB, 0, "")}
    make_submissions(tmp_path, students)
    monkeypatch.chdir(tmp_path)
    batch = grade_all("submissions", "grades.csv", ["logreg"], jobs=1)
    assert_gradebook(read_gradebook("grades.csv"), students)
    assert batch.graded_now == ["a_tamperer", "b_reference", "c_stub"]
    assert sorted(os.listdir("submissions/a_tamperer")) == ["logreg.py"]
    assert started.read_text().split() == [str(os.getpid())]  # one zygote, the batch's own


def test_a_failing_judge_is_a_grader_error_not_a_zero_and_the_rerun_regrades_it(tmp_path, monkeypatch, capsys):
    make_submissions(tmp_path, {"ada": (REFERENCE,), "broken": (REFERENCE,)})
    monkeypatch.chdir(tmp_path)
    real = GradingSession.grade_labs  # what each forked judge grades its student with

    def judge_that_fails_on_broken(session, directory, *args, **kwargs):
        if Path(directory).name == "broken":
            raise RuntimeError("the judge fell over")
        return real(session, directory, *args, **kwargs)

    monkeypatch.setattr(GradingSession, "grade_labs", judge_that_fails_on_broken)
    assert main(["grade-all", "submissions/", "--out", "grades.csv"]) == 1  # a grader error: not success
    out = " ".join(capsys.readouterr().out.split())
    assert "status: graded 1, grader error 1" in out
    assert "grader errors (1), regraded by the next run: broken:" in out
    rows = read_gradebook("grades.csv")
    assert rows["broken"]["status"] == "grader error" and "without leaving a results file" in rows["broken"]["problem"]
    assert rows["ada"]["status"] == "graded" and float(rows["ada"]["score"]) == 27

    monkeypatch.setattr(GradingSession, "grade_labs", real)
    assert main(["grade-all", "submissions/", "--out", "grades.csv"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "graded 1 now" in out and "collected 1 earlier result(s)" in out
    assert float(read_gradebook("grades.csv")["broken"]["score"]) == 27


def test_a_student_past_the_time_limit_is_a_grader_error(tmp_path, monkeypatch):
    make_submissions(tmp_path, {"slow": (REFERENCE,)})
    monkeypatch.chdir(tmp_path)
    batch = grade_all("submissions", "out/grades.csv", ["logreg"], timeout=0.5)
    assert batch.grader_errors() == {"slow": "grading did not finish within 0.5 s"}
    assert read_gradebook("out/grades.csv")["slow"]["status"] == "grader error"
    assert json.loads(Path("out/grades-results/slow.json").read_text())["score"] == 0


def test_results_placed_by_litlabs_grade_elsewhere_are_collected_not_regraded(tmp_path, monkeypatch, capsys):
    """Past one machine: a job array runs `litlabs grade` per student, then grade-all assembles the CSV."""
    make_submissions(tmp_path, {"ada": (REFERENCE,), "cy": (STUB,)})
    monkeypatch.chdir(tmp_path)
    for student in ("ada", "cy"):
        assert main(["grade", f"submissions/{student}", "--results", f"grades-results/{student}.json"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(GradingSession, "grade_labs", None)  # grading anything now would fail loudly
    assert main(["grade-all", "submissions/", "--out", "grades.csv"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "graded 0 now" in out and "collected 2 earlier result(s)" in out
    rows = read_gradebook("grades.csv")
    assert (float(rows["ada"]["score"]), float(rows["cy"]["score"])) == (27, 0)


@pytest.mark.parametrize("argv, message", [
    (["grade-all", "nowhere/", "--out", "grades.csv"], "submissions directory nowhere/ does not exist"),
    (["grade-all", "submissions/", "--out", "grades.csv", "--lab", "nolab"], "unknown lab 'nolab'"),
    (["grade-all", "submissions/", "--out", "submissions"], "is a directory; give the CSV file to write"),
    (["grade-all", "submissions/ada", "--out", "grades.csv"], "submissions/ada holds no student folders"),
])
def test_bad_input_is_one_clear_error_and_writes_nothing(tmp_path, monkeypatch, capsys, argv, message):
    (tmp_path / "submissions" / "ada").mkdir(parents=True)
    (tmp_path / "submissions" / "ada" / "logreg.py").write_text(STUB)
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in " ".join(capsys.readouterr().err.split())
    assert not Path("grades.csv").exists() and not Path("grades-results").exists()


# --- the same command as the other users an instructor's machine has --------------------

FEW = {student: SUBMISSIONS[student] for student in ("ada", "cy", "gu", "ka")}


@pytest.mark.slow
@pytest.mark.parametrize("user", ["root", "nobody"])
def test_the_readme_command_as_root_with_the_opt_venv_and_as_a_normal_user(user):
    litlabs = sandbox_python().parent / "litlabs"
    folder = Path(tempfile.mkdtemp(prefix="litlabs-batch-"))  # tmp_path is under a root-only folder
    try:
        make_submissions(folder, FEW)
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o644)
        prefix = ["runuser", "-u", "nobody", "--"] if user == "nobody" else []
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}  # this checkout, whatever the venv was installed from
        done = subprocess.run([*prefix, str(litlabs), *README_COMMAND], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert_gradebook(read_gradebook(folder / "grades.csv"), FEW)
        output = json.loads((folder / "grades-results" / "ada.json").read_text())["output"]
        assert ("unprivileged user: a uid of its own" if user == "root" else "grader's own user (nobody)") in output
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_readme_shows_this_command():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "litlabs " + " ".join(README_COMMAND) in readme


@pytest.mark.slow
def test_ctrl_c_keeps_the_rows_already_graded_and_leaves_no_process(tmp_path):
    import signal
    import time

    from grader.sandbox.processes import descendants

    students = {f"s{i}": (at_top("while True:\n    pass\n") if i == 1 else REFERENCE,) for i in range(4)}
    make_submissions(tmp_path, students)
    # Ctrl-C's default action even where the tests run in the background (a shell's `cmd &` ignores SIGINT).
    batch = subprocess.Popen([LITLABS, "grade-all", "submissions/", "--out", "grades.csv", "--jobs", "1"],
                             cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    results = tmp_path / "grades-results"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (results / "s0.json").exists():
        time.sleep(0.1)
    time.sleep(1)  # s1 hangs at import: the batch is busy with it for 20 s
    below = descendants(batch.pid)
    batch.send_signal(signal.SIGINT)
    out, err = batch.communicate(timeout=60)
    assert batch.returncode == 130 and "interrupted" in err
    assert list(read_gradebook(tmp_path / "grades.csv")) == ["s0"]  # the finished row, written
    time.sleep(0.5)
    alive = [pid for pid in below if Path(f"/proc/{pid}").exists()
             and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    assert alive == []
