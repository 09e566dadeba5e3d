"""MNIST, FashionMNIST and CIFAR-10 read by torchvision from a data directory.

torchvision does the parsing (IDX files, CIFAR's pickled batches); this module
turns the result into tensors and hands them to ``InMemoryDataModule``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .base import DataError, InMemoryDataModule

SPLIT_SEED = 1234


def _hold_out(x, y, n_val, seed=SPLIT_SEED):
    """Split the official training set into train and a fixed validation split."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


class _TorchvisionDataModule(InMemoryDataModule):
    dataset_class = ""  # name in torchvision.datasets
    folder = ""  # where torchvision looks, under data_dir
    val_size = 5000

    def __init__(self, data_dir: str | Path, download: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.data_dir = Path(data_dir)
        self.download = download

    def _dataset(self, train: bool):
        import torchvision.datasets

        cls = getattr(torchvision.datasets, self.dataset_class)
        try:
            return cls(str(self.data_dir), train=train, download=self.download)
        except RuntimeError as err:
            if "download=True" not in str(err):
                raise
            raise DataError(
                f"{self.dataset_class} files were not found in {self.data_dir / self.folder}. "
                f"Put the original files there, pass --download on a machine with internet, "
                f"or leave out --data-dir to use the offline MNIST subset."
            ) from None

    def _tensors(self, dataset):
        raise NotImplementedError

    def load(self):
        if not self.data_dir.is_dir() and not self.download:
            raise DataError(
                f"data directory {self.data_dir} does not exist. Create it and put the "
                f"{self.dataset_class} files in {self.data_dir / self.folder}, pass --download, "
                f"or leave out --data-dir to use the offline MNIST subset."
            )
        train_x, train_y = self._tensors(self._dataset(train=True))
        test_x, test_y = self._tensors(self._dataset(train=False))
        n_val = min(self.val_size, len(train_x) // 10)
        (train_x, train_y), (val_x, val_y) = _hold_out(train_x, train_y, n_val)
        self.source = f"torchvision {self.dataset_class} from {self.data_dir}"
        return {"train": (train_x, train_y), "val": (val_x, val_y), "test": (test_x, test_y)}


class MNISTDataModule(_TorchvisionDataModule):
    """The full MNIST (60,000 + 10,000 images of shape (1, 28, 28))."""

    name = "mnist (torchvision)"
    dataset_class = "MNIST"
    folder = "MNIST/raw"
    dims = (1, 28, 28)

    def _tensors(self, dataset):
        x = dataset.data.to(torch.float32).unsqueeze(1) / 255.0  # (N, 1, 28, 28)
        return x, torch.as_tensor(dataset.targets, dtype=torch.long)


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST: same format as MNIST, clothing instead of digits."""

    name = "fashion-mnist (torchvision)"
    dataset_class = "FashionMNIST"
    folder = "FashionMNIST/raw"


class CIFAR10DataModule(_TorchvisionDataModule):
    """CIFAR-10 (50,000 + 10,000 colour images of shape (3, 32, 32))."""

    name = "cifar10 (torchvision)"
    dataset_class = "CIFAR10"
    folder = "cifar-10-batches-py"
    dims = (3, 32, 32)

    def _tensors(self, dataset):
        x = torch.as_tensor(dataset.data).permute(0, 3, 1, 2).to(torch.float32) / 255.0
        return x, torch.as_tensor(dataset.targets, dtype=torch.long)
