"""Given code that the labs' LightningModules share. Not generated from solutions/ and not graded.

``EpochMetrics`` is the bookkeeping every classifier in the labs does the same way: a mean loss
and an accuracy for each stage, accumulated batch by batch and logged once per epoch.
``fit_and_test`` is how the labs' experiments train one model and read its test accuracy.
"""
from __future__ import annotations

import lightning as L
import torch
import torchmetrics

STAGES = {"fit": "train", "val": "val", "test": "test"}  # Lightning's stage -> the prefix of the logged names


class EpochMetrics(torch.nn.Module):
    """Mean loss and accuracy of each stage over an epoch, logged as ``train_loss``, ``val_acc``, ...

    torchmetrics objects accumulate batch by batch and synchronise across DDP processes when
    computed, so the epoch figures cover the whole data set, whatever the number of processes.
    Logging once per epoch instead of once per step keeps Lightning's per-step cost low.

    num_classes: K for logits (N, K); None for a binary task, with logits (N,) and targets 0/1.
    Use: ``self.metrics = EpochMetrics(num_classes)`` in ``__init__``;
    ``self.metrics.update(stage, loss, logits, targets)`` in each step (stage: "fit", "val", "test");
    ``self.metrics.log_epoch(self, stage)`` in ``on_train_epoch_end`` and its siblings.
    """

    def __init__(self, num_classes: int | None):
        super().__init__()

        def accuracy():
            if num_classes is None:
                return torchmetrics.classification.BinaryAccuracy(validate_args=False)
            return torchmetrics.classification.MulticlassAccuracy(num_classes, average="micro", validate_args=False)

        self.stages = torch.nn.ModuleDict({
            stage: torchmetrics.MetricCollection({"loss": torchmetrics.MeanMetric(), "acc": accuracy()})
            for stage in STAGES})

    def update(self, stage: str, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Add one batch: the batch's mean loss (a scalar), logits (N, K) or (N,), and targets (N,)."""
        self.stages[stage]["loss"].update(loss.detach(), weight=len(targets))
        self.stages[stage]["acc"].update(logits.detach(), targets)

    def log_epoch(self, module: L.LightningModule, stage: str) -> None:
        """Log the stage's epoch figures through ``module.log_dict`` (progress bar too), then start afresh."""
        figures = self.stages[stage].compute()
        module.log_dict({f"{STAGES[stage]}_{name}": value for name, value in figures.items()}, prog_bar=True)
        self.stages[stage].reset()


def fit_and_test(model: L.LightningModule, datamodule, max_epochs: int, accelerator: str = "cpu") -> float:
    """Train ``model`` quietly (no logger, checkpoints, progress bar or validation) and return its test accuracy.

    The model is trained in place, on one device; an experiment seeds before building model and data.
    """
    trainer = L.Trainer(accelerator=accelerator, devices=1, max_epochs=max_epochs, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, deterministic=True)
    trainer.fit(model, datamodule=datamodule)
    return float(trainer.test(model, datamodule=datamodule, verbose=False)[0]["test_acc"])
