"""The Gradescope bundle, unpacked into a fake /autograder tree and run there as Gradescope would."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from sandbox_python import SANDBOX_PYTHON, sandbox_python

from grader.cli import main
from grader.course import LABS, REPO_ROOT


def test_bundle_follows_gradescope_layout(tmp_path):
    out = tmp_path / "autograder.zip"
    assert main(["gradescope", str(out)]) == 0
    with zipfile.ZipFile(out) as bundle:
        names = set(bundle.namelist())
        run = bundle.read("run_autograder").decode()
        mode = bundle.getinfo("run_autograder").external_attr >> 16
    assert {"setup.sh", "run_autograder", "pyproject.toml", "grader/hidden/test_logreg.py",
            "grader/checks/test_logreg.py", "labs/logreg.py", "datamodules/offline.py"} <= names
    assert not any(name.startswith(("solutions/", "grader/mistakes/")) for name in names)
    assert (REPO_ROOT / "grader" / "mistakes" / "logreg.py").is_file()  # so the line above can fail
    assert mode & 0o111, "run_autograder must be executable"
    assert f"labs=({' '.join(LABS)})" in run and "--require-sandbox-user" in run  # every lab unless --lab
    assert main(["gradescope", str(tmp_path / "one.zip"), "--lab", "mlp"]) == 0
    with zipfile.ZipFile(tmp_path / "one.zip") as bundle:
        assert "labs=(mlp)" in bundle.read("run_autograder").decode()


def test_bundle_is_reproducible(tmp_path):
    main(["gradescope", str(tmp_path / "a.zip")])
    main(["gradescope", str(tmp_path / "b.zip")])
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_unknown_lab_is_refused(tmp_path, capsys):
    assert main(["gradescope", str(tmp_path / "x.zip"), "--lab", "nolab"]) == 2
    assert "unknown lab 'nolab'" in capsys.readouterr().err
    assert not (tmp_path / "x.zip").exists()


@pytest.fixture(scope="module")
def fake_autograder():
    """Unpack the bundle into a fake /autograder tree that user nobody can reach, as on Gradescope."""
    sandbox_python()
    root = Path(tempfile.mkdtemp(prefix="litlabs-autograder-"))
    root.chmod(0o755)
    bundle = root / "autograder.zip"
    assert main(["gradescope", str(bundle), "--lab", "logreg"]) == 0  # one bundle per assignment
    with zipfile.ZipFile(bundle) as z:
        z.extractall(root / "source")
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    os.chmod(root / "source" / "grader" / "hidden", 0o700)  # what setup.sh does
    yield root
    shutil.rmtree(root)


def run_autograder(root: Path, submission_files: dict) -> dict:
    submission = root / "submission"
    shutil.rmtree(submission, ignore_errors=True)
    shutil.rmtree(root / "results", ignore_errors=True)
    submission.mkdir()
    for name, text in submission_files.items():
        (submission / name).write_text(text)
    env = {**os.environ, "LITLABS_AUTOGRADER_ROOT": str(root), "LITLABS_PYTHON": str(SANDBOX_PYTHON)}
    done = subprocess.run(["bash", str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((root / "results" / "results.json").read_text())


@pytest.mark.slow
def test_run_autograder_grades_reference_stub_and_broken_submissions(fake_autograder):
    reference = run_autograder(fake_autograder, {"logreg.py": (REPO_ROOT / "solutions" / "logreg.py").read_text()})
    assert reference["score"] == 27 and "unprivileged user: a uid of its own" in reference["output"]
    assert {t["visibility"] for t in reference["tests"]} == {"visible", "after_published"}
    stub = run_autograder(fake_autograder, {"logreg.py": (REPO_ROOT / "labs" / "logreg.py").read_text()})
    assert stub["score"] == 0 and len(stub["tests"]) == 22
    broken = run_autograder(fake_autograder, {"logreg.py": "import numpy as np\ndef broken(:\n"})
    assert broken["score"] == 0 and "could not be imported: SyntaxError" in broken["output"]
    assert (fake_autograder / "results").stat().st_mode & 0o077 == 0


@pytest.mark.slow
def test_run_autograder_refuses_to_run_code_as_root(fake_autograder, tmp_path):
    # Needs an interpreter that user nobody cannot run (one under /root); in a venv others can read it cannot happen.
    from grader.sandbox.identity import choose_identity
    if os.geteuid() != 0 or choose_identity().isolated:
        pytest.skip("this interpreter can be run by user nobody, so the grader would not refuse")
    env = {**os.environ, "LITLABS_AUTOGRADER_ROOT": str(fake_autograder), "LITLABS_PYTHON": sys.executable}
    (fake_autograder / "submission").mkdir(exist_ok=True)
    (fake_autograder / "submission" / "logreg.py").write_text("print('should never run')\n")
    done = subprocess.run(["bash", str(fake_autograder / "run_autograder")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0
    document = json.loads((fake_autograder / "results" / "results.json").read_text())
    assert document["score"] == 0 and "refusing to run the submission" in document["output"]
