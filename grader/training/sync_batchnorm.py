"""Synchronised batch norm on any device, for ``TrainConfig(sync_batchnorm=True)`` on CPU processes.

With DDP every process normalises with the statistics of its own part of the batch, so
two processes with batch B do not compute what one process with batch 2B computes.
``torch.nn.SyncBatchNorm`` fixes that but runs on GPUs only (DDP refuses it on CPU), so
the trainer factory uses it on GPUs and this layer-sync plugin on CPU processes (gloo):
it swaps every batch-norm layer for ``SyncedBatchNorm``, whose training-mode statistics
are sums over all processes, and swaps them back after fitting, as Lightning does with
its own plugin.
"""
from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
from lightning.pytorch.plugins.layer_sync import LayerSync
from torch.distributed.nn.functional import all_reduce  # differentiable: gradients are summed back
from torch.nn.modules.batchnorm import _BatchNorm

# Its replacement in torch._functional_collectives is private and not differentiable the same way.
warnings.filterwarnings("ignore", message=".*torch.distributed.nn.functional.all_reduce is deprecated.*")


class SyncedBatchNorm(_BatchNorm):
    """Batch norm whose training statistics cover the global batch: the examples of every process.

    Per channel, the count, the sum and then the sum of squared deviations are added up over
    all processes (``all_reduce``, differentiable, so gradients reach every process's inputs
    through the shared statistics). Evaluation mode and a single process behave as
    ``torch.nn.BatchNorm2d``. Input: (N, C, ...) of any number of spatial dimensions.
    """

    original_class: type = torch.nn.BatchNorm2d

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected an input of shape (N, C, ...), got {tuple(x.shape)}")

    def forward(self, x):
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = (1, -1) + (1,) * (x.dim() - 2)
        count = all_reduce(x.new_full((1,), x.numel() // x.shape[1]))
        mean = all_reduce(x.sum(dims)) / count
        centred = x - mean.reshape(shape)
        var = all_reduce((centred * centred).sum(dims)) / count  # biased: what normalises
        if self.track_running_stats:
            momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked + 1)
            with torch.no_grad():
                self.num_batches_tracked += 1
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                unbiased = var * count / (count - 1)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        out = centred / torch.sqrt(var.reshape(shape) + self.eps)
        if self.affine:
            out = out * self.weight.reshape(shape) + self.bias.reshape(shape)
        return out


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
