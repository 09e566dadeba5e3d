"""`litlabs grade` and `litlabs check` as commands: results files, exit codes, the sandbox user."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from gradescope_format import assert_gradescope_results
from sandbox_python import sandbox_python

from grader.cli import main
from grader.course import REPO_ROOT
from grader.sandbox.identity import _others_can_read, interpreter_files


@pytest.fixture(autouse=True)
def walls_behind_the_policy(monkeypatch):
    """Several submissions here break the static policy (grader/judge/policy/) on purpose, to reach the walls behind
    it: the policy is off in this module, so those walls are what is tested (tests/test_hostile.py tests the
    policy's own verdicts)."""
    monkeypatch.setenv("LITLABS_NO_POLICY", "1")


def test_grade_writes_gradescope_results_for_the_stub(tmp_path, capsys):
    results = tmp_path / "out" / "results.json"
    assert main(["grade", "labs", "--lab", "logreg", "--results", str(results)]) == 0
    document = json.loads(results.read_text())
    assert_gradescope_results(document)
    assert document["score"] == 0 and len(document["tests"]) == 22
    assert {t["visibility"] for t in document["tests"]} == {"visible", "after_published"}
    assert "total: 0 / 27" in capsys.readouterr().out


def test_grade_json_format_prints_the_results(tmp_path, capsys):
    (tmp_path / "logreg.py").write_text("raise RuntimeError('broken on purpose')\n")
    assert main(["grade", str(tmp_path), "--format", "json"]) == 0  # grading completed: exit 0
    document = json.loads(capsys.readouterr().out)
    assert document["score"] == 0
    assert "RuntimeError: broken on purpose" in document["output"]


def test_missing_submission_dir_still_leaves_a_results_file(tmp_path, capsys):
    results = tmp_path / "results.json"
    assert main(["grade", str(tmp_path / "nope"), "--results", str(results)]) == 2
    document = json.loads(results.read_text())
    assert document["score"] == 0 and "does not exist" in document["output"]
    assert "does not exist" in capsys.readouterr().err


def test_unknown_lab_still_leaves_a_results_file(tmp_path, capsys):
    results = tmp_path / "results.json"
    assert main(["grade", "labs", "--lab", "nolab", "--results", str(results)]) == 2
    assert "unknown lab 'nolab'" in json.loads(results.read_text())["output"]


def test_check_shows_only_visible_checks(capsys):
    assert main(["check", "logreg", "--impl", "solutions"]) == 0
    out = capsys.readouterr().out
    assert "total: 22 / 22" in out and "hidden" not in out


# --- as root: the submission runs as an unprivileged user -----------------------------

def _ran_unprivileged(output: str) -> bool:
    """The report says the submission ran as an unprivileged user with nobody's rights (not as root)."""
    return "unprivileged user" in output and "'nobody'" in output and "WARNING" not in output


def _grade_as_root(python, submission, results):
    done = subprocess.run([python, "-m", "grader.cli", "grade", str(submission), "--lab", "logreg",
                           "--results", str(results), "--format", "json"], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(results.read_text())


@pytest.mark.slow
def test_as_root_the_submission_runs_as_nobody_and_cannot_reach_the_grader(tmp_path):
    python = str(sandbox_python())
    reference = (REPO_ROOT / "solutions" / "logreg.py").read_text()
    full = _grade_as_root(python, REPO_ROOT / "solutions", tmp_path / "full.json")
    assert full["score"] == 27 and _ran_unprivileged(full["output"]), full["output"]

    # A submission that reads the reference from disk and signals the processes above it.
    attack = tmp_path / "attack"
    attack.mkdir()
    (attack / "logreg.py").write_text(
        "import os, signal\n"
        f"exec(open({str(REPO_ROOT / 'solutions' / 'logreg.py')!r}).read())\n")
    document = _grade_as_root(python, attack, tmp_path / "attack.json")
    assert document["score"] == 0 and "PermissionError" in document["tests"][0]["output"]

    (attack / "logreg.py").write_text(
        "import os, signal\n"
        "for pid in (os.getppid(), os.getppid() - 1, 1):\n"
        "    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError:  # refused, or no such process\n        pass\n"
        + reference.replace("from __future__ import annotations\n", ""))
    document = _grade_as_root(python, attack, tmp_path / "kill.json")
    assert document["score"] == 27  # the kill attempts changed nothing


def _says_nobody_cannot_read_python(message: str, unreadable: list[str]) -> None:
    """What the report must tell: submitted code ran as root, because user nobody cannot read the Python
    installation (naming one file it cannot read, whichever this layout has), and what to do about it."""
    assert "WARNING: the submission ran with the grader's privileges (root)" in message
    assert "user 'nobody' cannot read the Python installation (" in message
    named = message.split("cannot read the Python installation (", 1)[1].split(")", 1)[0]
    assert named in unreadable, (named, unreadable)
    assert "Install litlabs in an environment outside /root" in message


def test_without_root_or_a_readable_interpreter_the_report_says_so(tmp_path, capsys):
    assert main(["grade", "solutions", "--lab", "logreg", "--results", str(tmp_path / "r.json")]) == 0
    output = json.loads((tmp_path / "r.json").read_text())["output"]
    unreadable = [str(p) for p in interpreter_files() if not _others_can_read(p)]  # what choose_identity looks at
    if os.geteuid() != 0:
        assert "ran as the grader's own user" in output
    elif unreadable:  # e.g. a pyenv under /root, or a venv whose torch lives there
        _says_nobody_cannot_read_python(output, unreadable)
    else:
        assert _ran_unprivileged(output), output


def test_as_root_with_a_python_nobody_cannot_read_the_identity_says_so(tmp_path, monkeypatch):
    """The same message whatever this machine's layout: a file of the installation that nobody cannot read."""
    import grader.sandbox.identity as sandbox

    hidden = tmp_path / "private" / "torch" / "__init__.py"  # pytest's tmp_path lies in a folder only we can enter
    hidden.parent.mkdir(parents=True)
    hidden.write_text("")
    hidden.parent.parent.chmod(0o700)
    monkeypatch.setattr(sandbox, "interpreter_files", lambda: [Path(sys.executable), hidden])
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
    identity = sandbox.choose_identity("nobody")
    assert not identity.isolated and identity.uid is None
    _says_nobody_cannot_read_python(identity.note, [str(p) for p in sandbox.interpreter_files()
                                                    if not _others_can_read(p)])


@pytest.mark.slow
def test_as_a_normal_user_check_and_grade_work():
    python = str(sandbox_python())
    # pytest's tmp_path lies under a root-only folder; this one user nobody can use
    tmp_path = Path(tempfile.mkdtemp(prefix="litlabs-nobody-"))
    tmp_path.chmod(0o777)
    submission = tmp_path / "submission"
    submission.mkdir()
    shutil.copy(REPO_ROOT / "solutions" / "logreg.py", submission / "logreg.py")
    submission.chmod(0o755)
    results = tmp_path / "results.json"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}  # this checkout, whatever the venv was installed from
    done = subprocess.run(["runuser", "-u", "nobody", "--", python, "-m", "grader.cli", "grade", str(submission),
                           "--results", str(results)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(results.read_text())
    assert document["score"] == 27 and "ran as the grader's own user (nobody)" in document["output"]
    done = subprocess.run(["runuser", "-u", "nobody", "--", python, "-m", "grader.cli", "check", "logreg"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 0 and "total: 0 / 22" in done.stdout
    shutil.rmtree(tmp_path)
