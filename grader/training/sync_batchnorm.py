"""Synchronised batch norm on any device, for ``TrainConfig(sync_batchnorm=True)`` on CPU processes.

With DDP every process normalises with the statistics of its own part of the batch, so
two processes with batch B do not compute what one process with batch 2B computes.
``torch.nn.SyncBatchNorm`` fixes that but runs on GPUs only (DDP refuses it on CPU), so
the trainer factory uses it on GPUs and this layer-sync plugin on CPU processes (gloo):
it swaps every batch-norm layer for ``SyncedBatchNorm``, which normalises the global batch,
and swaps them back after fitting, as Lightning does with its own plugin.
"""
from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
import torch.nn.functional as F
from lightning.pytorch.plugins.layer_sync import LayerSync
from torch.distributed.nn.functional import all_gather  # differentiable: each part's gradients go back to its process
from torch.nn.modules.batchnorm import _BatchNorm

# Its replacement in torch._functional_collectives is private and not differentiable the same way.
warnings.filterwarnings("ignore", message=".*torch.distributed.nn.functional.all_gather is deprecated.*")


class SyncedBatchNorm(_BatchNorm):
    """Batch norm whose training statistics cover the global batch: the examples of every process.

    In training mode with several processes, every process gathers the whole global batch
    (``all_gather``, differentiable, so gradients reach every process's inputs through the shared
    statistics), lets torch's ``batch_norm`` normalise it and update the running statistics exactly
    as one process holding that batch would, and keeps its own slice. Evaluation mode and a single
    process behave as ``torch.nn.BatchNorm2d``. Input: (N, C, ...) of any number of spatial dimensions;
    the processes' N may differ (the last batch of an epoch).
    """

    original_class: type = torch.nn.BatchNorm2d

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected an input of shape (N, C, ...), got {tuple(x.shape)}")

    def forward(self, x):
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(dist.get_world_size())]
        dist.all_gather(sizes, torch.tensor([len(x)], device=x.device))
        sizes = [int(size) for size in sizes]
        padding = x.new_zeros((max(sizes) - len(x), *x.shape[1:]))  # all_gather needs one shape everywhere
        parts = all_gather(torch.cat([x, padding]))
        batch = torch.cat([part[:size] for part, size in zip(parts, sizes)])  # the global batch, in rank order
        momentum = self.momentum if self.momentum is not None else 0.0
        if self.track_running_stats:  # counted as torch's batch norm counts (momentum None: a cumulative average)
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        out = F.batch_norm(batch, self.running_mean, self.running_var, self.weight, self.bias, training=True,
                           momentum=momentum, eps=self.eps)
        start = sum(sizes[:dist.get_rank()])
        return out[start:start + len(x)]


def _swap(module: torch.nn.Module, make) -> torch.nn.Module:
    """Replace every batch-norm layer ``make`` accepts, sharing its parameters and buffers."""
    new = make(module)
    if new is not None:
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        if module.track_running_stats:
            new.running_mean, new.running_var = module.running_mean, module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        module = new
    for name, child in module.named_children():
        module.add_module(name, _swap(child, make))
    return module


def _settings(layer):
    return dict(num_features=layer.num_features, eps=layer.eps, momentum=layer.momentum, affine=layer.affine,
                track_running_stats=layer.track_running_stats)


class SyncBatchNormAnyDevice(LayerSync):
    """Lightning's layer-sync plugin interface: batch norm synchronised across processes, on CPU too."""

    def apply(self, model):
        def make(layer):
            if isinstance(layer, _BatchNorm) and not isinstance(layer, (SyncedBatchNorm, torch.nn.SyncBatchNorm)):
                synced = SyncedBatchNorm(**_settings(layer))
                synced.original_class = type(layer)
                return synced
            return None

        return _swap(model, make)

    def revert(self, model):
        return _swap(model, lambda layer: layer.original_class(**_settings(layer))
                     if isinstance(layer, SyncedBatchNorm) else None)
