"""The grader against deliberately wrong, hostile and differently written Lab 1 submissions.

Each wrong submission is the reference with one mistake (the lab's table, grader/mistakes/logreg.py,
what `litlabs audit` grades), so the checks that fail are exactly the ones that should catch it.
"""
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from gradescope_format import assert_gradescope_results
from mutations import (
    LabSources,
    assert_caught_as_pinned,
    assert_every_check_catches_something,
    assert_full_marks,
    audited,
)

from grader.course import REPO_ROOT
from grader.files import write_json_atomically
from grader.judge.grade import grade
from grader.sandbox.identity import choose_identity
from grader.sandbox.limits import Limits


@pytest.fixture(autouse=True)
def walls_behind_the_policy(monkeypatch):
    """Several submissions here break the static policy (grader/judge/policy/) on purpose, to reach the walls behind
    it: the policy is off in this module, so those walls are what is tested (tests/test_hostile.py tests the
    policy's own verdicts)."""
    monkeypatch.setenv("LITLABS_NO_POLICY", "1")


LOGREG = LabSources("logreg")
REFERENCE = (REPO_ROOT / "solutions" / "logreg.py").read_text()
STUB = (REPO_ROOT / "labs" / "logreg.py").read_text()
FULL = 27.0
ALL_CHECKS = {
    "test_perceptron_updates_on_a_mistake", "test_perceptron_keeps_weights_when_right",
    "test_sigmoid_values_and_shapes", "test_sigmoid_is_stable", "test_binary_cross_entropy_values",
    "test_binary_cross_entropy_is_stable", "test_logistic_gradients_match_autograd", "test_softmax_values_and_shapes",
    "test_softmax_is_stable", "test_cross_entropy_values", "test_cross_entropy_is_stable",
    "test_binary_sgd_step_moves_weights_by_minus_lr_grad", "test_softmax_regression_forward_shapes",
    "test_softmax_regression_trains_on_cross_entropy_of_logits", "test_softmax_regression_converges",
    "test_logistic_gradients_match_finite_differences", "test_perceptron_uses_the_learning_rate",
    "test_functions_keep_float64", "test_binary_logistic_regression_separates_two_digits",
    "test_perceptron_leaves_its_inputs_alone", "test_binary_validation_and_test_leave_the_weights_alone",
    "test_softmax_regression_trains_w_and_b_by_plain_sgd_at_its_lr",
}
# Short limits keep the hanging submissions quick to grade.
LIMITS = Limits(call_seconds=4, import_seconds=6)


@pytest.fixture(scope="module")
def identity():
    return choose_identity()


def mutate(*replacements, source=REFERENCE):
    for old, new in replacements:
        assert old in source, f"mutation target not found: {old!r}"
        source = source.replace(old, new, 1)
    return source


def prepend(code, source=REFERENCE):
    """Put code at the top of the module, after its `from __future__` import."""
    future = "from __future__ import annotations\n"
    return source.replace(future, future + code, 1)


def run_grade(tmp_path, zygote, identity, source=None, files=None):
    submission = tmp_path / "submission"
    submission.mkdir(exist_ok=True)
    if source is not None:
        (submission / "logreg.py").write_text(source)
    for name, text in (files or {}).items():
        (submission / name).parent.mkdir(parents=True, exist_ok=True)
        (submission / name).write_text(text)
    results = grade(submission, "logreg", zygote=zygote, identity=identity, limits=LIMITS)
    # every grading leaves a valid Gradescope results file
    path = write_json_atomically(results.gradescope(), tmp_path / "results.json")
    assert_gradescope_results(json.loads(path.read_text()))
    return results


def failed(results):
    return {o.check for o in results.outcomes if not o.passed}


def test_reference_gets_full_marks(tmp_path, zygote, identity):
    results = run_grade(tmp_path, zygote, identity, REFERENCE)
    assert failed(results) == set() and results.score == results.max_score == FULL
    assert {o.check for o in results.outcomes} == ALL_CHECKS


def test_untouched_stub_gets_zero_and_says_what_is_missing(tmp_path, zygote, identity):
    results = run_grade(tmp_path, zygote, identity, STUB)
    assert results.score == 0 and failed(results) == ALL_CHECKS
    sigmoid = next(o for o in results.outcomes if o.check == "test_sigmoid_is_stable")
    assert sigmoid.reason.startswith("NotImplementedError: sigmoid") and sigmoid.hint


audit = audited("logreg")


# What the report must say for some mistakes, beyond which checks fail.
REASONS = {
    "an endless loop inside a function": "softmax() did not finish within",
    "an exception": "ValueError: oops (logreg.py, line",
    "a tensor subclass that claims to equal anything": "at index (4,) expected 1, got 0",
    "wrong gradient sign": "grad_w for x of shape (1, 3): max abs error",
}


@pytest.mark.parametrize("mistake", LOGREG.mistake_names)
def test_each_mistake_is_caught_by_the_checks_meant_for_it(mistake, audit):
    assert_caught_as_pinned(audit, mistake)
    reasons = " ".join(audit.row(mistake).reasons.values())
    assert REASONS.get(mistake, "") in reasons


@pytest.mark.parametrize("alternative", LOGREG.alternative_names)
def test_each_correct_alternative_keeps_full_marks(alternative, audit):
    assert_full_marks(audit, alternative)


def test_every_check_catches_at_least_one_mistake(audit):
    assert_every_check_catches_something(audit)


ZERO = {
    "an endless loop at import": (prepend("while True:\n    pass\n"), "did not finish within"),
    "sys.exit(0) at import": (prepend("import sys\nsys.exit(0)\n"), "called sys.exit(0)"),
    "os._exit(0) at import": (prepend("import os\nos._exit(0)\n"), "process ended during importing"),
    "importing the reference solution": ("from solutions.logreg import *\n", "'solutions' is not available"),
    "a syntax error": (REFERENCE.replace("def sigmoid(z):", "def sigmoid(z)"), "SyntaxError"),
}


@pytest.mark.parametrize("case", list(ZERO))
def test_submissions_that_cannot_be_imported_get_zero_with_the_reason(case, tmp_path, zygote, identity):
    source, reason = ZERO[case]
    results = run_grade(tmp_path, zygote, identity, source)
    assert results.score == 0 and failed(results) == ALL_CHECKS
    assert reason in results.outcomes[0].reason
    assert results.notes[0].startswith("the submission could not be imported")


def test_processes_the_submission_starts_are_gone_after_grading(tmp_path, zygote, identity, monkeypatch):
    # The submission reports its pids in a file outside its scratch folder, which Landlock would refuse:
    # this test is about the process-tree kill, a layer that holds without Landlock too.
    monkeypatch.setenv("LITLABS_NO_LANDLOCK", "1")
    marker = writable_by_anyone() / "pids"  # the worker may run as another uid
    spawn = (f"import subprocess\n"
             f"_a = subprocess.Popen(['sleep', '300'])\n"
             f"_b = subprocess.Popen(['sleep', '301'], process_group=0)  # leaves the process group\n"
             f"_c = subprocess.Popen(['sleep', '302'], start_new_session=True)  # leaves the session\n"
             # a daemon: its own session, and its parent (the shell) exits at once, so it is orphaned
             f"_d = subprocess.run(['sh', '-c', 'setsid sleep 303 > /dev/null 2>&1 & echo $!'],\n"
             f"                    capture_output=True, text=True).stdout.strip()\n"
             f"open({str(marker)!r}, 'w').write(f'{{_a.pid}} {{_b.pid}} {{_c.pid}} {{_d}}')\n")
    results = run_grade(tmp_path, zygote, identity, prepend(spawn))
    assert results.score == FULL
    assert_not_running(map(int, marker.read_text().split()))


def writable_by_anyone() -> Path:
    """A folder any uid can write (tmp_path lies under a root-only folder)."""
    folder = Path(tempfile.mkdtemp(prefix="litlabs-marker-"))
    folder.chmod(0o777)
    return folder


def assert_not_running(pids):
    for pid in pids:
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        assert state == "Z", f"process {pid} started by the submission is still running"


def test_processes_the_submission_starts_are_gone_when_the_judge_is_killed(tmp_path):
    marker = writable_by_anyone() / "pids"  # the worker may run as another uid
    submission = tmp_path / "submission"
    submission.mkdir()
    daemon = (f"import subprocess, time\n"
              f"_d = subprocess.run(['sh', '-c', 'setsid sleep 304 > /dev/null 2>&1 & echo $!'],\n"
              f"                    capture_output=True, text=True).stdout.strip()\n"
              f"open({str(marker)!r}, 'w').write(_d)\n"
              f"time.sleep(60)\n")  # the judge is killed while it waits for the import
    (submission / "logreg.py").write_text(prepend(daemon))
    judge = subprocess.Popen([sys.executable, "-m", "grader.cli", "grade", str(submission),
                              "--results", str(tmp_path / "results.json")],
                             cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "LITLABS_NO_LANDLOCK": "1"})  # the marker is outside the scratch
    try:
        deadline = time.monotonic() + 120
        while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the submission was never imported"
    finally:
        judge.kill()
        judge.wait()
    time.sleep(2)  # the zygote sees the judge's socket close and sweeps its offspring
    assert_not_running([int(marker.read_text())])


def test_memory_cap_fails_only_the_check_that_allocates(tmp_path, zygote, identity):
    source = mutate(("    e = torch.exp(-z.abs())", "    e = torch.exp(-z.abs())\n    _ = torch.ones(2 ** 34)"))
    results = run_grade(tmp_path, zygote, identity, source)
    sigmoid = next(o for o in results.outcomes if o.check == "test_sigmoid_is_stable")
    assert not sigmoid.passed and "RuntimeError" in sigmoid.reason and "memory" in sigmoid.reason
    softmax = next(o for o in results.outcomes if o.check == "test_softmax_is_stable")
    assert softmax.passed


def test_correct_but_differently_written_submission_gets_full_marks(tmp_path, zygote, identity):
    source = textwrap.dedent('''
        import lightning as L
        import torch
        import torch.nn.functional as F

        def perceptron_step(w, b, x, y, lr=1.0):
            prediction = 1.0 if float(w @ x + b) > 0 else 0.0
            return w + lr * (y - prediction) * x, b + lr * (y - prediction)

        sigmoid = torch.sigmoid

        def binary_cross_entropy(logits, targets):
            return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))

        def logistic_gradients(x, y, w, b):
            err = torch.sigmoid(torch.einsum("nd,d->n", x, w) + b) - y.to(w.dtype)
            return torch.einsum("n,nd->d", err, x) / len(x), err.mean()

        def softmax(logits):
            return torch.softmax(logits, dim=-1)

        cross_entropy = F.cross_entropy

        class BinaryLogisticRegression(L.LightningModule):
            def __init__(self, num_features=784, lr=0.1):
                super().__init__()
                self.automatic_optimization = False
                self.lr = lr
                self.register_buffer("w", torch.zeros(num_features))
                self.register_buffer("b", torch.zeros(()))

            def forward(self, x):
                return x.reshape(len(x), -1) @ self.w + self.b

            def sgd_step(self, x, y):
                x = x.reshape(len(x), -1)
                loss = binary_cross_entropy(self(x), y)
                grad_w, grad_b = logistic_gradients(x, y, self.w, self.b)
                self.w.sub_(self.lr * grad_w)
                self.b.sub_(self.lr * grad_b)
                return loss

            def training_step(self, batch, batch_idx):
                return self.sgd_step(*batch)

            def configure_optimizers(self):
                return None

        class SoftmaxRegression(L.LightningModule):
            def __init__(self, num_features=784, num_classes=10, lr=0.05):
                super().__init__()
                self.lr = lr
                self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(num_features, num_classes))

            def forward(self, x):
                return self.net(x)

            def training_step(self, batch, batch_idx):
                x, y = batch
                loss = F.cross_entropy(self(x), y)
                self.log("loss", loss)
                return {"loss": loss}

            def configure_optimizers(self):
                return [torch.optim.SGD(self.net.parameters(), lr=self.lr)]
    ''')
    results = run_grade(tmp_path, zygote, identity, source)
    assert failed(results) == set(), [(o.check, o.reason) for o in results.outcomes if not o.passed]


def test_printing_a_fake_gradescope_result_changes_nothing(tmp_path, zygote, identity):
    fake = json.dumps({"score": 1000, "tests": [{"name": "x", "score": 1000, "max_score": 1}]})
    source = prepend(f"print({fake!r})\n").replace('    e = torch.exp(-z.abs())',
                                                      f'    print({fake!r})\n    e = torch.exp(-z.abs())')
    results = run_grade(tmp_path, zygote, identity, mutate(source=source))
    assert results.score == FULL and len(results.outcomes) == len(ALL_CHECKS)


def test_writing_the_results_file_is_overwritten_by_the_judge(tmp_path, zygote, identity):
    results_path = tmp_path / "results" / "results.json"
    attack = (f"import json, pathlib\npathlib.Path({str(results_path)!r}).parent.mkdir(exist_ok=True)\n"
              f"pathlib.Path({str(results_path)!r}).write_text(json.dumps({{'score': 1000}}))\n")
    results = run_grade(tmp_path, zygote, identity, prepend(attack, source=STUB))
    write_json_atomically(results.gradescope(), results_path)
    assert json.loads(results_path.read_text())["score"] == 0


def test_symlink_to_the_reference_is_ignored(tmp_path, zygote, identity):
    submission = tmp_path / "submission"
    submission.mkdir()
    os.symlink(REPO_ROOT / "solutions" / "logreg.py", submission / "logreg.py")
    results = run_grade(tmp_path, zygote, identity)
    assert results.score == 0
    assert any("ignored logreg.py: not a regular file" in note for note in results.notes)
    assert "no regular file named logreg.py" in results.outcomes[0].reason


def test_conftest_that_forces_passes_is_ignored(tmp_path, zygote, identity):
    conftest = textwrap.dedent('''
        import pytest

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_makereport(item, call):
            outcome = yield
            outcome.get_result().outcome = "passed"
    ''')
    files = {"conftest.py": conftest, "sitecustomize.py": "", "torch/__init__.py": "", "solutions/logreg.py": REFERENCE}
    results = run_grade(tmp_path, zygote, identity, STUB, files=files)
    assert results.score == 0
    for name in ("conftest.py", "sitecustomize.py", "torch", "solutions"):
        assert any(f"ignored {name}:" in note for note in results.notes), name


def test_nested_lab_file_is_found(tmp_path, zygote, identity):
    (tmp_path / "submission" / "labs").mkdir(parents=True)
    (tmp_path / "submission" / "labs" / "logreg.py").write_text(REFERENCE)
    assert run_grade(tmp_path, zygote, identity).score == FULL


def test_same_submission_graded_twice_gets_the_same_outcomes(tmp_path, zygote, identity):
    source = LOGREG.variant("a learning rate that cannot converge")
    first = run_grade(tmp_path, zygote, identity, source)
    second = run_grade(tmp_path, zygote, identity, source)
    assert [(o.check, o.passed, o.reason) for o in first.outcomes] == \
           [(o.check, o.passed, o.reason) for o in second.outcomes]
