"""Stubs and handouts from the reference, `release --check`, the student release, validate."""
import ast
import os
import re
import shutil
import subprocess
import sys

import pytest

import grader.instructor.release as release_module
import grader.instructor.validate as validate_module
from grader.cli import main
from grader.course import LABS, REPO_ROOT, CheckInfo, check_files, checks_of
from grader.instructor.release import (
    REFERENCE_NOTE,
    STUB_BEGIN,
    STUB_END,
    STUDENT_NOTE,
    ReleaseError,
    find_regions,
    make_stub,
)

REFERENCE = (REPO_ROOT / "solutions" / "logreg.py").read_text()


def solution_lines(source):
    """Every non-blank line inside a solution region of a reference file."""
    lines = source.splitlines()
    return [lines[i].strip() for r in find_regions(source) for i in range(r.begin, r.end - 1) if lines[i].strip()]


def test_stub_keeps_everything_outside_the_regions_byte_for_byte():
    stub = make_stub(REFERENCE)
    regions = find_regions(REFERENCE)
    lines = REFERENCE.splitlines(keepends=True)
    kept = [line for number, line in enumerate(lines, 1) if not any(r.begin <= number <= r.end for r in regions)]
    region_lines = (STUB_BEGIN, "raise NotImplementedError(", STUB_END)
    stub_lines = stub.splitlines(keepends=True)
    outside = [line for line in stub_lines if not line.strip().startswith(region_lines)]
    assert "".join(outside) == "".join(kept).replace(REFERENCE_NOTE, STUDENT_NOTE)  # the docstring's note differs
    assert sum("raise NotImplementedError(" in line for line in stub_lines) == len(regions) == 10
    ast.parse(stub)


def test_a_stub_region_is_the_todo_once_then_begin_a_short_raise_and_end():
    source = ("class A:\n    def f(self, x):\n        # TODO: double x,\n        # then return it.\n"
              "        ### BEGIN SOLUTION\n        return 2 * x\n        ### END SOLUTION\n")
    stub = make_stub(source)
    assert stub == ("class A:\n    def f(self, x):\n        # TODO: double x,\n        # then return it.\n"
                    "        ### BEGIN YOUR SOLUTION\n        raise NotImplementedError(\"A.f\")\n"
                    "        ### END YOUR SOLUTION\n")
    namespace = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match="^A.f$"):
        namespace["A"]().f(1)


def test_a_region_is_labelled_by_where_it_is():
    def body(indent):
        return f"{indent}### BEGIN SOLUTION\n{indent}pass\n{indent}### END SOLUTION\n"

    source = ("class Value:\n    def __mul__(self, other):\n        def _backward():\n" + body(" " * 12)
              + "        return _backward\n\n    def g(self):\n" + body(" " * 8) + "        x = 1\n" + body(" " * 8))
    labels = [line.strip() for line in make_stub(source).splitlines() if "NotImplementedError" in line]
    assert labels == ['raise NotImplementedError("Value.__mul__ backward")',
                      'raise NotImplementedError("Value.g (part 1)")', 'raise NotImplementedError("Value.g (part 2)")']


def test_the_reference_note_addresses_the_instructor_and_the_stub_note_the_student():
    for lab in LABS:
        reference = (REPO_ROOT / "solutions" / f"{lab}.py").read_text()
        stub = (REPO_ROOT / "labs" / f"{lab}.py").read_text()
        assert REFERENCE_NOTE in reference and STUDENT_NOTE not in reference, lab
        assert STUDENT_NOTE in stub and REFERENCE_NOTE not in stub and "### BEGIN SOLUTION" not in stub, lab


def test_every_stub_line_fits_in_120_columns():
    long = [f"labs/{path.name}:{number}: {len(line)} columns"
            for path in sorted((REPO_ROOT / "labs").glob("*.py"))
            for number, line in enumerate(path.read_text().splitlines(), start=1) if len(line) > 120]
    assert long == []


@pytest.mark.parametrize("lab", list(LABS))
def test_every_stub_region_shows_its_begin_and_end_line(lab):
    reference = (REPO_ROOT / "solutions" / f"{lab}.py").read_text()
    lines = (REPO_ROOT / "labs" / f"{lab}.py").read_text().splitlines()
    raises = [i for i, line in enumerate(lines) if line.strip().startswith("raise NotImplementedError(")]
    assert len(raises) == len(find_regions(reference))
    for i in raises:
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        assert lines[i - 1] == indent + STUB_BEGIN and lines[i + 1] == indent + STUB_END, (lab, i + 1)
        assert lines[i - 2].strip().startswith("#"), (lab, i + 1)  # the TODO comment, once: not in the raise
        assert len(lines[i].strip()) <= 80, (lab, i + 1)
    assert sum(line.strip() == STUB_BEGIN for line in lines) == sum(line.strip() == STUB_END for line in lines) \
        == len(raises)


@pytest.mark.parametrize("source, message", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "f.py:2: ### BEGIN SOLUTION is never closed"),
    ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    ### END SOLUTION\n", "f.py:3: ### BEGIN SOLUTION inside"),
    ("def f():\n    return 1\n    ### END SOLUTION\n", "f.py:3: ### END SOLUTION without"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "f.py:1: a region at module level"),
    ("def f():\n    ### BEGIN SOLUTIONS\n    return 1\n", "f.py:2: malformed marker"),
    ("def f():\n    if True:\n    ### BEGIN SOLUTION\n        return 1\n    ### END SOLUTION\n", "f.py:"),
])
def test_malformed_markers_stop_the_release_with_file_and_line(source, message):
    with pytest.raises(ReleaseError, match=re.escape(message)):
        make_stub(source, "f.py")


def test_committed_labs_are_in_sync(capsys):
    assert main(["release", "--check"]) == 0
    assert "in sync" in capsys.readouterr().out


@pytest.fixture
def instructor_copy(tmp_path, monkeypatch):
    for name in ("solutions", "labs"):
        shutil.copytree(REPO_ROOT / name, tmp_path / name)
    monkeypatch.setattr(release_module, "REPO_ROOT", tmp_path)
    return tmp_path


def test_release_check_shows_the_diff_when_labs_is_stale(instructor_copy, capsys):
    stub = instructor_copy / "labs" / "logreg.py"
    stub.write_text(stub.read_text().replace("def sigmoid(z):", "def sigmoid(z):  # edited by hand"))
    assert main(["release", "--check"]) == 1
    out = capsys.readouterr()
    assert "-def sigmoid(z):  # edited by hand" in out.out and "run `litlabs release`" in out.err
    assert main(["release"]) == 0
    assert main(["release", "--check"]) == 0


def test_handout_points_come_from_the_checks(instructor_copy, monkeypatch):
    handout = (instructor_copy / "labs" / "logreg.md").read_text()
    checks = checks_of("logreg")
    for check in checks:
        if not check.hidden:
            assert f"| {check.title} | {check.points:g} |" in handout
    assert f"| **total** | **{sum(c.points for c in checks):g}** |" in handout
    # a check's points change: the committed handout is now stale, and release --check says so
    changed = [CheckInfo(c.name, c.title, c.points + (1 if i == 0 else 0), c.hidden, c.hint)
               for i, c in enumerate(checks)]
    real = checks_of
    monkeypatch.setattr("grader.course.checks_of",
                        lambda lab, include_hidden=True: changed if lab == "logreg" else real(lab, include_hidden))
    diffs = release_module.release(check=True)
    assert len(diffs) == 1 and "labs/logreg.md" in diffs[0]


@pytest.mark.parametrize("lab", list(LABS))
def test_student_release_has_no_solution_and_no_hidden_check(tmp_path, lab):
    out = tmp_path / "student"
    assert main(["release", "--student", str(out)]) == 0
    texts = {p: p.read_bytes().decode("utf-8", errors="replace") for p in out.rglob("*") if p.is_file()}  # .pt too
    assert out / "labs" / f"{lab}.py" in texts and out / "grader" / "checks" / f"test_{lab}.py" in texts
    assert not (out / "solutions").exists() and not (out / "grader" / "hidden").exists()
    assert not (out / "grader" / "mistakes").exists()  # the audit's tables quote the reference
    assert not (out / "grader" / "instructor").exists()  # release, validate, audit, grade-all: instructors' tools
    # A solution line is secret unless the stub or the grader's own machinery holds it anyway ("return loss").
    public = (REPO_ROOT / "labs" / f"{lab}.py").read_text() + "".join(
        path.read_text() for folder in ("grader", "datamodules") for path in (REPO_ROOT / folder).rglob("*.py")
        if not {"checks", "hidden", "mistakes"} & set(path.relative_to(REPO_ROOT).parts))
    secrets = [line for line in solution_lines((REPO_ROOT / "solutions" / f"{lab}.py").read_text())
               if line not in public]
    visible_files = [path for name in LABS for path in check_files(name, include_hidden=False)]  # all shipped
    hidden_source = "".join(path.read_text() for path in check_files(lab) if path not in visible_files)
    visible_source = "".join(path.read_text() for path in visible_files)
    hidden = [c for c in checks_of(lab) if c.hidden]
    assert hidden, f"lab {lab} has no hidden checks"
    secrets += [c.name for c in hidden] + [c.title for c in hidden]
    # the bodies of hidden checks: every distinctive line of the hidden modules not also in a shipped one
    secrets += [line.strip() for line in hidden_source.splitlines()
                if len(line.strip()) > 30 and line.strip() not in visible_source and line.strip() not in public
                and not line.strip().startswith(("import", "from", "@"))]
    leaks = [(str(path.relative_to(out)), s) for s in secrets for path, text in texts.items() if s in text]
    assert leaks == []
    readme = texts[out / "README.md"]
    commands = re.search(r"```bash\n(.*?)```", readme, re.S).group(1).strip().splitlines()
    assert commands[0] == "pip install -e . && litlabs check logreg"
    assert f"`labs/{lab}.py`" in readme


def test_the_leak_scan_would_catch_a_leak(tmp_path):
    # The scan above is only worth something if it finds a solution line in a student file.
    assert any(line in REFERENCE for line in solution_lines(REFERENCE))
    assert "return exp / exp.sum(dim=1, keepdim=True)" in solution_lines(REFERENCE)


def test_student_release_refuses_a_non_empty_directory(tmp_path, capsys):
    (tmp_path / "x").write_text("")
    assert main(["release", "--student", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err


@pytest.mark.slow
def test_student_release_check_runs_and_instructor_commands_explain(tmp_path):
    out = tmp_path / "student"
    main(["release", "--student", str(out)])
    env = {**os.environ, "PYTHONPATH": str(out)}

    def run(*argv):
        return subprocess.run([sys.executable, "-m", "grader.cli", *argv], cwd=out, env=env,
                              capture_output=True, text=True, timeout=300)

    assert not (out / "grader" / "instructor").exists() and not (out / "solutions").exists()
    check = run("check", "logreg")
    assert check.returncode == 0, check.stderr[-2000:]
    assert "total: 0 / 22" in check.stdout and "NotImplementedError" in check.stdout
    for argv in (["validate"], ["release"], ["release", "--check"], ["audit", "logreg"],
                 ["grade-all", "submissions", "--out", "grades.csv"], ["gradescope", "autograder.zip"]):
        done = run(*argv)
        message = f"`litlabs {argv[0]}` is an instructor tool, not part of the student release"
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.slow
def test_validate_passes_on_the_repository(capsys):
    assert main(["validate", "logreg"]) == 0
    out = capsys.readouterr().out
    assert "all 22 checks pass on the reference, fail on the stub" in out
    # Not a terminal (a log, CI): one line per check, not a table whose rows wrap.
    assert sum(line.startswith("ok   logreg") for line in out.splitlines()) == 22
    assert "━" not in out and "│" not in out


def test_a_bad_verdict_in_a_log_says_what_is_wrong_on_its_line():
    verdict = validate_module.CheckVerdict("mlp", "test_x", "ReLU backward", 2, True, True, False, True,
                                           "passes on the untouched stub: it does not test the student's code")
    assert validate_module.verdict_line(verdict) == (
        "BAD  mlp        2 pt  ReLU backward (hidden)  -- passes on the untouched stub: it does not test the student's code")


@pytest.mark.slow
def test_validate_catches_checks_that_pass_on_the_stub_or_fail_on_the_reference(tmp_path, monkeypatch):
    from grader.judge.session import GradingSession

    # The "stub" is the reference itself: every check passes on it.
    monkeypatch.setattr(validate_module, "generated_files",
                        lambda names: {REPO_ROOT / "labs" / "logreg.py": REFERENCE})
    with GradingSession() as session:
        verdicts = validate_module.validate_lab("logreg", session)
        assert not any(v.fails_on_stub for v in verdicts) and not any(v.ok for v in verdicts)
        # A reference with the wrong gradient sign: the gradient checks fail on it.
        (tmp_path / "solutions").mkdir()
        (tmp_path / "solutions" / "logreg.py").write_text(
            REFERENCE.replace("err = a - y.to(a.dtype)", "err = y.to(a.dtype) - a"))
        monkeypatch.setattr(validate_module, "REPO_ROOT", tmp_path)
        verdicts = validate_module.validate_lab("logreg", session)
    failing = {v.check for v in verdicts if not v.passes_on_reference}
    assert "test_logistic_gradients_match_autograd" in failing
