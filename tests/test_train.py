"""`litlabs train`: the trainer factory on the offline data, DDP over CPU processes, errors."""
import re
import subprocess
import sys

import pytest
import torch

from grader.cli import main
from grader.training.train import train_lab
from grader.training.trainer import TrainConfig


def test_reference_softmax_regression_reaches_90_percent_offline(tmp_path):
    results = train_lab("logreg", "softmax", config=TrainConfig(run_dir=tmp_path, progress_bar=False))
    assert results["test_acc"] >= 0.90
    run = tmp_path / "version_0"
    assert results["run_dir"] == str(run)
    assert (run / "learning_curve.png").stat().st_size > 10_000
    assert (run / "weights.pt").exists()
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert {"train_loss", "val_acc", "test_acc"} <= set(header.split(","))


def test_reference_binary_logistic_regression_separates_two_digits(tmp_path):
    results = train_lab("logreg", "binary", config=TrainConfig(run_dir=tmp_path, max_epochs=3, progress_bar=False))
    assert results["test_acc"] >= 0.93


def test_same_seed_same_weights(tmp_path):
    weights = []
    for run in ("a", "b"):
        train_lab("logreg", "softmax", config=TrainConfig(run_dir=tmp_path / run, max_epochs=1, progress_bar=False))
        weights.append(torch.load(tmp_path / run / "version_0" / "weights.pt"))
    assert torch.equal(weights[0]["linear.weight"], weights[1]["linear.weight"])


def test_cli_prints_accuracy_and_a_second_run_keeps_the_first(tmp_path, capsys, recwarn):
    for _ in range(2):
        assert main(["train", "logreg", "--max-epochs", "1", "--run-dir", str(tmp_path), "--no-progress-bar"]) == 0
    out = capsys.readouterr().out
    assert "final test accuracy:" in out and "learning curve:" in out
    assert f"run directory: {tmp_path / 'version_1'}" in out
    for version in ("version_0", "version_1"):
        assert (tmp_path / version / "metrics.csv").read_text().count("\n") >= 2
        assert (tmp_path / version / "weights.pt").exists()
    assert not [w for w in recwarn if "will be deleted" in str(w.message)]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "nolab"], "unknown lab 'nolab'; known labs: logreg"),
        (["train", "logreg", "--model", "mlp"], "has no model 'mlp'; choose from softmax, binary"),
        (["train", "logreg", "--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist does not exist"),
        (["train", "logreg", "--impl", "/nonexistent/dir"], "no implementation of lab 'logreg' at /nonexistent/dir"),
        (["train", "logreg", "--impl", "labs"],
         "the logreg code is not finished: SoftmaxRegression.__init__ still raises NotImplementedError"),
    ],
)
def test_bad_input_gives_one_clear_error(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split())
    assert "Traceback" not in err


@pytest.mark.parametrize("source, message", [
    ("def broken(:\n", "could not be imported: SyntaxError"),
    ("x = 1\n", "has no SoftmaxRegression: is it the logreg lab file?"),
])
def test_bad_implementation_file_gives_one_clear_error(tmp_path, capsys, source, message):
    (tmp_path / "logreg.py").write_text(source)
    assert main(["train", "logreg", "--impl", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def _train_subprocess(run_dir, *extra, lab="logreg"):
    cmd = [sys.executable, "-m", "grader.cli", "train", lab, "--accelerator", "cpu", "--max-epochs", "2",
           "--run-dir", str(run_dir), "--no-progress-bar", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(run_dir / "version_0" / "weights.pt"), done.stdout


def _train_here(run_dir, *extra, lab="logreg"):
    """The one-process baseline of a DDP comparison, run in this process (torch is imported already)."""
    assert main(["train", lab, "--accelerator", "cpu", "--max-epochs", "2", "--run-dir", str(run_dir),
                 "--no-progress-bar", *extra]) == 0
    return torch.load(run_dir / "version_0" / "weights.pt")


@pytest.mark.slow
def test_mlp_on_two_ddp_processes_equals_one_process_with_twice_the_batch(tmp_path):
    """Dropout and shifts off: their random draws are per process, so with them on the two runs differ by design."""
    off = ("--set", "dropout=0", "--set", "max_shift=0")
    single = _train_here(tmp_path / "single", "--batch-size", "64", *off, lab="mlp")
    ddp, out = _train_subprocess(tmp_path / "ddp", "--batch-size", "32", "--devices", "2", "--strategy", "ddp", *off,
                                 lab="mlp")
    for name in single:
        assert torch.allclose(single[name], ddp[name], atol=1e-5), name
    assert "final test accuracy" in out


def test_reference_mlp_reaches_95_percent_offline(tmp_path, capsys):
    assert main(["train", "mlp", "--run-dir", str(tmp_path), "--no-progress-bar"]) == 0
    out = capsys.readouterr().out
    accuracy = float(re.search(r"final test accuracy: (\d\.\d+)", out).group(1))
    assert accuracy >= 0.95, out
    assert (tmp_path / "version_0" / "learning_curve.png").stat().st_size > 10_000


@pytest.mark.parametrize("argv, message", [
    (["train", "mlp", "--set", "dropout"], "--set takes NAME=VALUE"),
    (["train", "mlp", "--set", "depth=3"], "MLP has no argument 'depth'"),
])
def test_bad_model_arguments_give_one_clear_error(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


# --- Lab 3: batch norm across processes, and across machines ----------------------------------

CNN_QUICK = ("--max-steps", "15", "--set", "augment=False")  # each process draws its own shifts: off


def _max_difference(a, b):
    return max((a[name].double() - b[name].double()).abs().max().item() for name in a)


@pytest.fixture(scope="module")
def cnn_runs(tmp_path_factory):
    """LeNet-5 trained for 15 steps: one process with batch 64, two synchronised DDP processes with batch 32."""
    root = tmp_path_factory.mktemp("cnn")
    assert main(["train", "cnn", "--accelerator", "cpu", "--batch-size", "64", *CNN_QUICK,
                 "--run-dir", str(root / "single"), "--no-progress-bar"]) == 0  # here: torch is imported already
    single = torch.load(root / "single" / "version_0" / "weights.pt")
    synced, out = _train_subprocess(root / "synced", "--batch-size", "32", "--devices", "2", "--strategy", "ddp",
                                    "--sync-batchnorm", *CNN_QUICK, lab="cnn")
    assert "final test accuracy" in out
    return single, synced


@pytest.mark.slow
def test_sync_batchnorm_makes_two_processes_with_batch_b_equal_one_with_2b(cnn_runs, tmp_path):
    single, synced = cnn_runs
    assert sorted(single) == sorted(synced)  # the same state_dict: the synchronised layers were swapped back
    for name in single:
        assert torch.allclose(single[name].double(), synced[name].double(), rtol=1e-4, atol=1e-5), name
    assert (single["features.1.running_var"] - 1).abs().max() > 0.1  # trained: the statistics moved
    # Without synchronisation each process normalises with the statistics of its own 32 images.
    # (This run also covers the other launcher, ddp_spawn.)
    unsynced, _ = _train_subprocess(tmp_path / "unsynced", "--batch-size", "32", "--devices", "2",
                                    "--strategy", "ddp_spawn", *CNN_QUICK, lab="cnn")
    assert _max_difference(single, unsynced) > 100 * max(_max_difference(single, synced), 1e-6)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_torchrun_node_ranks_on_loopback_equal_the_two_process_run(cnn_runs, tmp_path):
    """What a cluster runs on each of two machines (README, 'Several machines'), here both on this one."""
    port = str(_free_port())
    nodes = []
    for rank in (0, 1):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(rank),
               "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", port,
               "-m", "grader.cli", "train", "cnn", "--accelerator", "cpu", "--devices", "1", "--num-nodes", "2",
               "--strategy", "ddp", "--sync-batchnorm", "--batch-size", "32", *CNN_QUICK,
               "--run-dir", f"node{rank}", "--no-progress-bar"]
        nodes.append(subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        outputs = [node.communicate(timeout=300)[0] for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "final test accuracy" in outputs[0]  # printed by global rank 0 only
    assert not (tmp_path / "node1" / "version_0" / "weights.pt").exists()
    two_nodes = torch.load(tmp_path / "node0" / "version_0" / "weights.pt")
    _, synced = cnn_runs
    for name in synced:  # float32 sums in another order: as close as the two-process run is to one process
        assert torch.allclose(two_nodes[name].double(), synced[name].double(), rtol=1e-4, atol=1e-5), name
