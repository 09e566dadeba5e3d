"""Minibatches of in-memory tensors, split across processes the way DDP needs.

The course data sets are small enough to live in memory as tensors. Indexing a
tensor with a batch of indices is far cheaper than a ``DataLoader`` that builds
each batch one sample at a time, so every datamodule hands out ``TensorBatches``.
"""
from __future__ import annotations

import math

import torch


class TensorBatches:
    """An iterable of ``(x, y)`` minibatches taken from tensors held in memory.

    Training order: one permutation of the whole data set per epoch, drawn from
    ``seed`` and the epoch number, cut into *global* batches of
    ``batch_size * world_size`` examples; process ``rank`` takes its slice of each
    global batch. So ``world_size`` processes with batch ``B`` see, step by step,
    exactly the examples one process with batch ``world_size * B`` sees, which is
    what makes a DDP run equivalent to a single-process run.

    Evaluation order (``shuffle=False``): process ``rank`` takes every
    ``world_size``-th example, so every example is evaluated exactly once.

    Inputs:
    - x: tensor of shape (N, ...)
    - y: tensor of shape (N,)
    - batch_size: examples per process per step
    - shuffle: reshuffle every epoch (training) or keep the order (evaluation)
    - drop_last: drop a final global batch that is not full (keeps every process
      on the same number of steps)
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"x has {len(x)} examples but y has {len(y)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def _my_indices(self) -> list[torch.Tensor]:
        n = len(self.x)
        if not self.shuffle:
            mine = torch.arange(self.rank, n, self.world_size)
            return list(mine.split(self.batch_size))
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(n, generator=generator)
        global_batch = self.batch_size * self.world_size
        batches = []
        for start in range(0, n, global_batch):
            chunk = order[start : start + global_batch]
            if self.drop_last and len(chunk) < global_batch:
                break
            mine = chunk[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
            if len(mine):
                batches.append(mine)
        return batches

    def __len__(self) -> int:
        n = len(self.x)
        if not self.shuffle:
            mine = len(range(self.rank, n, self.world_size))
            return math.ceil(mine / self.batch_size)
        global_batch = self.batch_size * self.world_size
        return n // global_batch if self.drop_last else math.ceil(n / global_batch)

    def __iter__(self):
        batches = self._my_indices()
        if self.shuffle:
            self.epoch += 1  # the next pass over the data gets a new order
        for index in batches:
            yield self.x[index], self.y[index]
