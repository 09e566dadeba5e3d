"""Lab 4's pretrained backbones and training: the shipped checkpoint, ResNet-18 from the cache, the regimes."""
import re

import pytest
import torch

from data_files import write_cifar10

from datamodules import DataError, build_datamodule
from datamodules.pretrained import SHIPPED, load_backbone, pretrain_digit_backbone
from grader.cli import main
from test_train import _train_here, _train_subprocess


def test_the_shipped_backbone_is_what_pretraining_makes():
    """The checkpoint cannot rot: `python -m datamodules.pretrained` makes the same bits."""
    made, shipped = pretrain_digit_backbone(), torch.load(SHIPPED, weights_only=True)
    assert sorted(made) == sorted(shipped)
    assert all(torch.equal(made[name], shipped[name]) for name in made)


def test_resnet18_is_read_from_the_torch_cache_and_a_missing_file_is_explained(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(DataError, match=f"no ResNet-18 weights at {tmp_path}/hub/checkpoints/resnet18-f37072fd.pth"):
        load_backbone("resnet18")
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    backbone = load_backbone("resnet18")
    assert backbone.num_features == 512
    assert torch.equal(backbone.conv1.weight, reference.conv1.weight)
    backbone.eval()
    assert backbone(torch.zeros(2, 3, 32, 32)).shape == (2, 512)


def test_resnet18_fine_tunes_on_cifar10_files_offline(tmp_path, monkeypatch, capsys):
    """`litlabs train transfer --backbone resnet18 --data-dir DIR`: the real loading code, on small files."""
    import torchvision
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    (tmp_path / "torch" / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(),
               tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    write_cifar10(tmp_path / "data")
    assert main(["train", "transfer", "--backbone", "resnet18", "--data-dir", str(tmp_path / "data"), "--batch-size", "8",
                 "--max-steps", "2", "--accelerator", "cpu", "--run-dir", str(tmp_path / "runs"),
                 "--no-progress-bar"]) == 0
    out = capsys.readouterr().out
    assert "final test accuracy" in out and "torchvision" in out


def test_labels_per_class_keeps_a_few_training_images_and_every_test_image():
    data = build_datamodule("mnist", classes=(5, 6, 7, 8, 9), labels_per_class=10)
    _, y = data.split("train")
    assert torch.bincount(y).tolist() == [10] * 5
    assert len(data.split("test")[1]) == 250


def test_train_transfer_prints_the_probe_and_the_comparison(tmp_path, capsys):
    assert main(["train", "transfer", "--run-dir", str(tmp_path / "probe"), "--no-progress-bar"]) == 0
    accuracy = float(re.search(r"final test accuracy: (\d\.\d+)", capsys.readouterr().out).group(1))
    assert accuracy >= 0.65
    assert main(["train", "transfer", "--model", "compare", "--run-dir", str(tmp_path / "compare"),
                 "--no-progress-bar"]) == 0
    out = capsys.readouterr().out
    row = re.search(r"10 │\s+(\d\.\d+) │\s+(\d\.\d+) │\s+(\d\.\d+)", out)
    scratch, probe, fine_tune = map(float, row.groups())
    assert probe > scratch + 0.15 and fine_tune > scratch + 0.15  # few labels: transfer wins clearly
    assert (tmp_path / "compare" / "version_0" / "comparison.png").stat().st_size > 10_000


@pytest.mark.slow
def test_linear_probe_on_two_processes_equals_one_with_twice_the_batch(tmp_path):
    single = _train_here(tmp_path / "single", "--batch-size", "50", lab="transfer")
    ddp, out = _train_subprocess(tmp_path / "ddp", "--batch-size", "25", "--devices", "2", "--strategy", "ddp",
                                 lab="transfer")
    for name in single:
        assert torch.allclose(single[name].double(), ddp[name].double(), rtol=1e-4, atol=1e-6), name
    assert "final test accuracy" in out
