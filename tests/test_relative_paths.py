"""Every path a user types means what it means in the user's shell: relative to the working directory.

Each test runs from a temporary folder that is not the repository, with relative paths.
"""
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from data_files import write_mnist

from grader.cli import main
from grader.course import REPO_ROOT


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Path.cwd() != REPO_ROOT
    return tmp_path


def test_grade_submission_and_results(elsewhere):
    Path("work/sub").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "solutions" / "logreg.py", "work/sub/logreg.py")
    assert main(["grade", "work/sub", "--results", "out/results.json", "--format", "json"]) == 0
    assert json.loads((elsewhere / "out" / "results.json").read_text())["score"] == 27


def test_check_impl_and_a_folder_named_labs_here_wins(elsewhere, capsys):
    Path("labs").mkdir()  # the user's own labs/ folder, holding a finished lab
    shutil.copy(REPO_ROOT / "solutions" / "logreg.py", "labs/logreg.py")
    assert main(["check", "logreg", "--impl", "labs"]) == 0
    assert "total: 22 / 22" in capsys.readouterr().out  # the repository's labs/ holds the stub (0 / 22)


def test_student_release_and_gradescope_bundle(elsewhere):
    assert main(["release", "--student", "student"]) == 0
    assert (elsewhere / "student" / "labs" / "logreg.py").read_text() == (REPO_ROOT / "labs" / "logreg.py").read_text()
    assert main(["gradescope", "bundles/autograder.zip"]) == 0
    with zipfile.ZipFile(elsewhere / "bundles" / "autograder.zip") as bundle:
        assert "run_autograder" in bundle.namelist()


def test_train_data_dir_and_run_dir(elsewhere, capsys):
    write_mnist(elsewhere / "data", "MNIST", n_train=300)
    assert main(["train", "logreg", "--data-dir", "data", "--run-dir", "runs/mine", "--max-epochs", "1",
                 "--no-progress-bar"]) == 0
    assert "torchvision" in capsys.readouterr().out  # the files in ./data were read, not the offline subset
    assert (elsewhere / "runs" / "mine" / "version_0" / "weights.pt").exists()
    assert (elsewhere / "runs" / "mine" / "version_0" / "learning_curve.png").exists()


def test_check_k_as_the_cnn_handout_types_it(elsewhere, capsys):
    Path("labs").mkdir()
    shutil.copy(REPO_ROOT / "solutions" / "cnn.py", "labs/cnn.py")
    assert main(["check", "cnn", "-k", "batchnorm"]) == 0
    out = capsys.readouterr().out
    assert "total: 6 / 6" in out and "LeNet5" not in out  # only the four visible batch-norm checks ran
    assert main(["check", "cnn", "-k", "no_such_check"]) == 2  # a usage error, not a grading failure
    assert "no check matches -k 'no_such_check'" in " ".join(capsys.readouterr().err.split())
