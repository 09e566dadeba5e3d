"""A LightningDataModule over train/val/test tensors held in memory (the data logic: ``datamodules.splits``)."""
from __future__ import annotations

import logging

import lightning as L
import torch

from .batches import TensorBatches
from .errors import DataError  # noqa: F401 -- also importable from here
from .splits import first_per_class, keep_classes, prepare, standardize  # noqa: F401 -- torch only: the judge uses them

log = logging.getLogger("litlabs.data")
EVAL_BATCH_SIZE = 500  # examples per evaluation step (training uses the batch size asked for)


class InMemoryDataModule(L.LightningDataModule):
    """Subclasses implement ``load()``; this class normalises, filters and batches.

    Args:
    - batch_size: examples per process per step
    - seed: seeds the training order (the splits have their own fixed seed)
    - classes: keep only these labels and renumber them 0..k-1, e.g. (0, 1)
      for a binary task
    - labels_per_class: keep only the first k training examples of each class (few-label
      transfer); validation and test keep every example
    - random_labels: replace every training label by a seeded random class (a control: a model
      that ignores the labels, such as Lab 5's rotation pretext, cannot tell the difference)
    """

    name = "in-memory"
    num_classes = 10

    def __init__(self, batch_size: int = 256, seed: int = 0, classes: tuple[int, ...] | None = None,
                 labels_per_class: int | None = None, random_labels: bool = False):
        super().__init__()
        self.batch_size = batch_size
        self.seed = seed
        self.classes = tuple(classes) if classes is not None else None
        self.labels_per_class = labels_per_class
        self.random_labels = random_labels
        self.source = ""
        self._splits: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Return {"train"|"val"|"test": (images (N, C, H, W) float in [0, 1], labels (N,) int64)}."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self._splits is not None:
            return
        self._splits = prepare(self.load(), self.classes, self.labels_per_class, self.random_labels, self.seed,
                               self.num_classes)
        log.info("data: %s (%s)", self.name, self.source)

    @staticmethod
    def _first_per_class(x, y, k):
        return first_per_class(x, y, k)

    def _keep_classes(self, x, y):
        return keep_classes(x, y, self.classes)

    @property
    def output_classes(self) -> int:
        return len(self.classes) if self.classes is not None else self.num_classes

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised (x, y) tensors of one split: "train", "val" or "test"."""
        self.setup()
        return self._splits[name]

    def _loader(self, name: str, train: bool) -> TensorBatches:
        x, y = self.split(name)
        trainer = self.trainer
        rank = trainer.global_rank if trainer is not None else 0
        world_size = trainer.world_size if trainer is not None else 1
        # Evaluation needs no small batches: larger ones mean fewer steps, and each step has a fixed cost.
        batch_size = self.batch_size if train else max(self.batch_size, EVAL_BATCH_SIZE)
        return TensorBatches(
            x, y, batch_size, shuffle=train, drop_last=train,
            seed=self.seed, rank=rank, world_size=world_size,
        )

    def train_dataloader(self):
        return self._loader("train", train=True)

    def val_dataloader(self):
        return self._loader("val", train=False)

    def test_dataloader(self):
        return self._loader("test", train=False)

    def predict_dataloader(self):
        return self._loader("test", train=False)


class GivenSplits(InMemoryDataModule):
    """Splits handed over as tensors, e.g. the training and validation data the grader sends its worker.

    splits: {"train": (x, y), "val": (x, y), ...} before normalisation, as ``load()`` returns them;
    dims: (C, H, W) of one example; num_classes: the data set's classes before any ``classes`` filter.
    """

    name = "given"

    def __init__(self, splits: dict, dims: tuple[int, ...], num_classes: int = 10, **kwargs):
        super().__init__(**kwargs)
        self._given = {name: (x, y) for name, (x, y) in splits.items()}
        self.dims = tuple(dims)
        self.num_classes = num_classes

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        self.source = "tensors handed over"
        return dict(self._given)
