"""Given code that the labs' LightningModules share. Not generated from solutions/ and not graded.

``EpochMetrics`` is the bookkeeping every classifier in the labs does the same way: a mean loss
and an accuracy for each stage, accumulated batch by batch and logged once per epoch.
``ClassifierHooks`` is Lightning's step and epoch-end hooks of such a classifier, written once:
Lab 1 writes them out, Labs 2–5's models inherit them.
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


class ClassifierHooks:
    """Lightning's step and epoch-end hooks of a classifier, around the model's own ``_shared_step``.

    A mixin: list it before ``L.LightningModule``, so that its hooks replace Lightning's defaults::

        class LeNet5(ClassifierHooks, L.LightningModule):
            def __init__(self, num_classes=10):
                ...
                self.metrics = EpochMetrics(num_classes)

            def _shared_step(self, batch, stage):
                x, y = batch                          # x (N, ...), y (N,) class indices
                logits = self(x)                      # (N, num_classes)
                loss = F.cross_entropy(logits, y)     # a scalar: the batch's mean loss
                self.metrics.update(stage, loss, logits, y)
                return loss

    The model supplies ``self.metrics`` (an ``EpochMetrics``) and ``_shared_step(batch, stage)``: one
    batch ``(x, y)`` of the stage ("fit", "val" or "test") in, the batch's mean loss (shape ()) out,
    with ``self.metrics`` updated for that stage. The hooks then do what Lab 1's models write out:

    - ``training_step`` returns the loss, which Lightning backpropagates and steps the optimizer on;
    - ``validation_step`` and ``test_step`` only measure: they return nothing, so nothing learns;
    - each ``on_STAGE_epoch_end`` logs the stage's epoch figures (``train_loss``, ``val_acc``, ...)
      once per epoch and starts the stage afresh.

    A model that needs something else in a hook overrides it (and may call ``super()``).
    """

    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "fit")

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._shared_step(batch, "test")

    def on_train_epoch_end(self):
        self.metrics.log_epoch(self, "fit")

    def on_validation_epoch_end(self):
        self.metrics.log_epoch(self, "val")

    def on_test_epoch_end(self):
        self.metrics.log_epoch(self, "test")


def fit_and_test(model: L.LightningModule, datamodule, max_epochs: int, accelerator: str = "cpu") -> float:
    """Train ``model`` quietly (no logger, checkpoints, progress bar or validation) and return its test accuracy.

    The model is trained in place, on one device; an experiment seeds before building model and data.
    """
    trainer = L.Trainer(accelerator=accelerator, devices=1, max_epochs=max_epochs, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, deterministic=True)
    trainer.fit(model, datamodule=datamodule)
    return float(trainer.test(model, datamodule=datamodule, verbose=False)[0]["test_acc"])
