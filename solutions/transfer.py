"""Lab 4 — transfer learning.

Notation (lecture notes: transfer learning; "very little / quite a lot of data × similar /
different data"):
- backbone: a network pretrained on a source task (here: digits 0–4), images (N, C, H, W) →
  features (N, D) with D = backbone.num_features
- head: a new linear layer for the target task (here: digits 5–9), features (N, D) → logits (N, K)
- linear probe: the backbone frozen, only the head learns; fine-tuning: everything learns, the
  backbone with a smaller learning rate; last_k: only the last k layers of the backbone and the head
- frozen: a parameter with requires_grad False, absent from the optimizer; a frozen batch-norm
  layer also stays in eval mode, so its running statistics do not move

This is the reference. ``litlabs release`` makes the student's stub from it: each region between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes ``raise NotImplementedError`` between
``### BEGIN YOUR SOLUTION`` and ``### END YOUR SOLUTION``; the ``# TODO`` comment above it stays and
says what to do. Do not change the signatures: the grader calls these functions by name.
"""
from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import BaseFinetuning
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from datamodules.pretrained import load_backbone
from labs.common import ClassifierHooks, EpochMetrics, fit_and_test

MODES = ("linear_probe", "fine_tune", "last_k", "gradual", "scratch")


def layers_with_parameters(module: nn.Module) -> list[nn.Module]:
    """The module's layers that own parameters, in order (for a CNN: conv, bn, conv, bn, ...)."""
    return [m for m in module.modules() if any(True for _ in m.parameters(recurse=False))]


# ---------------------------------------------------------------------------
# Part 1: freezing
# ---------------------------------------------------------------------------
def freeze(module: nn.Module) -> None:
    """Stop a module from learning: no parameter gets a gradient, and batch norm stops counting.

    Every parameter gets ``requires_grad = False``; every batch-norm layer goes to eval mode, so it
    normalises with its pretrained running statistics and never updates them.
    """
    # TODO: turn off requires_grad for every parameter and put every _BatchNorm layer in eval mode.
    ### BEGIN SOLUTION
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    for layer in module.modules():
        if isinstance(layer, _BatchNorm):
            layer.eval()
    ### END SOLUTION


def unfreeze(module: nn.Module) -> None:
    """Let a module learn again: every parameter requires a gradient, and the module is in training mode."""
    # TODO: turn requires_grad back on for every parameter and put the module in training mode.
    ### BEGIN SOLUTION
    for parameter in module.parameters():
        parameter.requires_grad_(True)
    module.train()
    ### END SOLUTION


def reinitialise(module: nn.Module) -> None:
    """Forget what a module learned: every layer that can, draws fresh initial parameters."""
    for layer in module.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
        if isinstance(layer, _BatchNorm):
            layer.reset_running_stats()


# ---------------------------------------------------------------------------
# Part 2: the classifier
# ---------------------------------------------------------------------------
class TransferClassifier(ClassifierHooks, L.LightningModule):
    """A new linear head on a backbone's features, trained in one of five regimes (``mode``):

    - "linear_probe": the backbone frozen, only the head learns
    - "fine_tune": everything learns; the backbone with ``backbone_lr``, the head with ``lr``
    - "last_k": the backbone frozen except its last ``k`` layers with parameters (then as fine_tune)
    - "gradual": a linear probe until epoch ``unfreeze_at``, then fine-tuning (``UnfreezeBackbone``)
    - "scratch": the same network re-initialised, everything learning with ``lr``: the baseline

    Inputs to ``forward``: images (N, C, H, W). Output: logits (N, num_classes).
    Trained with SGD (momentum 0.9) on the cross-entropy; the optimizer holds trainable
    parameters only, in two groups: the head's (lr) and the backbone's (backbone_lr).
    """

    def __init__(self, backbone="digits04", num_classes: int = 5, mode: str = "linear_probe", k: int = 2,
                 lr: float = 0.5, backbone_lr: float = 0.01, unfreeze_at: int = 5):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.save_hyperparameters(ignore=[] if isinstance(backbone, str) else ["backbone"])
        self.backbone = load_backbone(backbone) if isinstance(backbone, str) else backbone
        # TODO: make self.head, a torch.nn.Linear from the backbone's feature size (backbone.num_features,
        # never a number written here) to num_classes; then set the backbone up for the mode: freeze it for
        # "linear_probe" and "gradual"; for "last_k" freeze it and unfreeze the last k of
        # layers_with_parameters(backbone); for "scratch" reinitialise it.
        ### BEGIN SOLUTION
        self.head = nn.Linear(self.backbone.num_features, num_classes)
        if mode in ("linear_probe", "gradual", "last_k"):
            freeze(self.backbone)
        if mode == "last_k":
            for layer in layers_with_parameters(self.backbone)[-k:]:
                unfreeze(layer)
        if mode == "scratch":
            reinitialise(self.backbone)
        ### END SOLUTION
        self.metrics = EpochMetrics(num_classes)

    def forward(self, x):
        """Return logits (N, num_classes) for images x (N, C, H, W)."""
        return self.head(self.backbone(x))

    def train(self, mode: bool = True):
        """Training mode for the model — except frozen batch-norm layers, which stay in eval mode."""
        super().train(mode)
        # TODO: put back in eval mode every _BatchNorm layer of the backbone whose parameters are all frozen
        # (torch's train() would wake them up; Lightning ≥ 2.2 restores each layer's mode after validation
        # instead of calling it, but training loops, callbacks and the checks call model.train()).
        ### BEGIN SOLUTION
        for layer in self.backbone.modules():
            if isinstance(layer, _BatchNorm) and not any(p.requires_grad for p in layer.parameters()):
                layer.eval()
        ### END SOLUTION
        return self

    def configure_optimizers(self):
        # TODO: SGD with momentum 0.9 over two parameter groups: the head's parameters with self.hparams.lr, and
        # the backbone's parameters that require a gradient with self.hparams.backbone_lr ("scratch": lr too).
        # Leave out a group with no parameters; never put a frozen parameter in the optimizer.
        ### BEGIN SOLUTION
        backbone_lr = self.hparams.lr if self.hparams.mode == "scratch" else self.hparams.backbone_lr
        groups = [{"params": list(self.head.parameters()), "lr": self.hparams.lr}]
        trainable = [p for p in self.backbone.parameters() if p.requires_grad]
        if trainable:
            groups.append({"params": trainable, "lr": backbone_lr})
        return torch.optim.SGD(groups, lr=self.hparams.lr, momentum=0.9)
        ### END SOLUTION

    def configure_callbacks(self):
        # Lightning adds the callbacks a model asks for to the Trainer's.
        return [UnfreezeBackbone(self.hparams.unfreeze_at)] if self.hparams.mode == "gradual" else []

    def _shared_step(self, batch, stage):
        """One batch of a stage: its mean loss, with self.metrics updated (ClassifierHooks' steps call this)."""
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.metrics.update(stage, loss, logits, y)
        return loss


# ---------------------------------------------------------------------------
# Part 3: gradual unfreezing, with Lightning's BaseFinetuning
# ---------------------------------------------------------------------------
class UnfreezeBackbone(BaseFinetuning):
    """Keep ``pl_module.backbone`` frozen until epoch ``at_epoch``, then fine-tune it with its own learning rate.

    Lightning calls ``freeze_before_training`` once before the optimizer is built, and
    ``finetune_function(pl_module, epoch, optimizer)`` at the start of every training epoch.
    """

    def __init__(self, at_epoch: int = 10):
        super().__init__()
        self.at_epoch = at_epoch

    def freeze_before_training(self, pl_module):
        # TODO: freeze the backbone with this lab's freeze (batch norm in eval mode).
        ### BEGIN SOLUTION
        freeze(pl_module.backbone)
        ### END SOLUTION

    def finetune_function(self, pl_module, current_epoch, optimizer):
        # TODO: at epoch self.at_epoch, and only then: unfreeze the backbone (this lab's unfreeze) and add its
        # parameters to the optimizer as a new group with lr = pl_module.hparams.backbone_lr
        # (self.unfreeze_and_add_param_group does the adding).
        ### BEGIN SOLUTION
        if current_epoch == self.at_epoch:
            unfreeze(pl_module.backbone)
            self.unfreeze_and_add_param_group(pl_module.backbone, optimizer, lr=pl_module.hparams.backbone_lr)
        ### END SOLUTION


# ---------------------------------------------------------------------------
# Part 4: the notes' table as an experiment
# ---------------------------------------------------------------------------
TARGET_CLASSES = (5, 6, 7, 8, 9)  # the backbone learned 0–4; the new task is 5–9
REGIMES = ("scratch", "linear_probe", "fine_tune")


def train_and_test(mode: str, labels_per_class: int, max_epochs: int = 10, seed: int = 0,
                   accelerator: str = "cpu") -> float:
    """Train a TransferClassifier in one mode on labels_per_class images of each target digit; test accuracy."""
    from datamodules import build_datamodule

    L.seed_everything(seed, verbose=False)
    data = build_datamodule("mnist", classes=TARGET_CLASSES, labels_per_class=labels_per_class,
                            batch_size=min(25, 5 * labels_per_class), seed=seed)
    model = TransferClassifier(num_classes=len(TARGET_CLASSES), mode=mode)
    return fit_and_test(model, data, max_epochs, accelerator)


def compare_regimes(budgets=(10, 100), max_epochs: int = 10, seed: int = 0, accelerator: str = "cpu") -> dict:
    """Test accuracy of scratch, linear probe and fine-tuning on digits 5–9, at each label budget.

    Returns {labels per class: {regime: accuracy}}, e.g. {10: {"scratch": 0.4, ...}, 100: {...}}.
    """
    # TODO: for every budget and every regime in REGIMES, record train_and_test(regime, budget, ...).
    ### BEGIN SOLUTION
    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}
            for budget in budgets}
    ### END SOLUTION
