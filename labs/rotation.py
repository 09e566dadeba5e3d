"""Lab 5 — self-supervised learning: predict rotations, then reuse the features with few labels.

Notation (lecture notes: "Regularization: self-supervised learning"; Gidaris et al. 2018, RotNet):
- pretext task: a task whose labels come free with the data; here: by how much was an image
  rotated? k ∈ {0, 1, 2, 3} means a rotation by k·90° (``torch.rot90`` with k, counter-clockwise)
- x: images (N, C, H, W) with H == W; rotated: (4N, C, H, W), every image in all four rotations;
  rotations: (4N,) the pretext labels k, aligned with rotated
- backbone: images (N, C, H, W) → features (N, D), D = backbone.num_features (a Lab 4 backbone)
- pretext head: features (N, D) → rotation logits (N, 4)
- linear probe: the pretext backbone frozen, a new linear head trained on a few labelled images,
  features (N, D) → logits (N, num_classes)

Fill in every region between ``### BEGIN YOUR SOLUTION`` and ``### END YOUR SOLUTION``: replace its
``raise NotImplementedError`` with your code. The ``# TODO`` comment just above each region says what
to do. Do not change the signatures: the grader calls these functions by name.
"""
from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from datamodules.pretrained import DigitBackbone, load_backbone
from labs.common import ClassifierHooks, EpochMetrics, fit_and_test

NUM_ROTATIONS = 4


# ---------------------------------------------------------------------------
# Part 1: the pretext labels
# ---------------------------------------------------------------------------
def rotate_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image in all four rotations, with the rotation as its label.

    Input: x (N, C, H, W), square images (H == W). Returns (rotated, rotations):
    - rotated (4N, C, H, W), same dtype and device as x, in blocks of N: rotated[k * N + i] is
      image i turned by k·90° counter-clockwise, ``torch.rot90(x[i], k, dims=(-2, -1))``
    - rotations (4N,) int64 on x's device: rotations[k * N + i] = k
    Non-square images are rejected with a ValueError: a quarter turn would change their shape,
    and the four rotations could not share one batch.
    """
    # TODO: raise ValueError (naming the shape) unless H == W; then concatenate the four rotations of the batch
    # with torch.rot90 on the last two dimensions, k = 0, 1, 2, 3, and make the matching labels on x's device.
    ### BEGIN YOUR SOLUTION
    raise NotImplementedError("rotate_batch")
    ### END YOUR SOLUTION


# ---------------------------------------------------------------------------
# Part 2: the pretext task
# ---------------------------------------------------------------------------
class RotationPretext(ClassifierHooks, L.LightningModule):
    """A backbone and a 4-way head that predict how much each image was rotated.

    The data's class labels are never used: every step turns its batch of N images into 4N
    rotated ones (``rotate_batch``), built on whichever device and process holds the batch, and
    the loss is the cross-entropy of the rotation logits against the rotations. ``train_acc``,
    ``val_acc`` and ``test_acc`` are pretext accuracies (chance: 0.25).

    backbone: a module with ``num_features``, images → features; by default a fresh (randomly
    initialised) ``DigitBackbone``, the same architecture as Lab 4's pretrained one.
    Inputs to ``forward``: images (N, C, H, W). Output: rotation logits (N, 4).
    """

    def __init__(self, backbone: nn.Module | None = None, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters(ignore=["backbone"])
        self.backbone = DigitBackbone() if backbone is None else backbone
        # TODO: make self.head, a torch.nn.Linear from the backbone's feature size (backbone.num_features) to the
        # number of rotations (NUM_ROTATIONS).
        ### BEGIN YOUR SOLUTION
        raise NotImplementedError("RotationPretext.__init__")
        ### END YOUR SOLUTION
        self.metrics = EpochMetrics(NUM_ROTATIONS)

    def forward(self, x):
        """Return rotation logits (N, 4) for images x (N, C, H, W)."""
        return self.head(self.backbone(x))

    def pretext_step(self, batch, stage):
        """The pretext loss of one batch (x, y) of the data; y, the class labels, is ignored."""
        # TODO: take the images from the batch (never the labels), rotate them with rotate_batch, compute the
        # rotation logits and the cross-entropy against the rotations; update self.metrics for the stage with
        # (loss, logits, rotations) and return the loss.
        ### BEGIN YOUR SOLUTION
        raise NotImplementedError("RotationPretext.pretext_step")
        ### END YOUR SOLUTION

    def _shared_step(self, batch, stage):
        return self.pretext_step(batch, stage)  # what ClassifierHooks' steps call

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9, nesterov=True,
                               weight_decay=5e-4)


# ---------------------------------------------------------------------------
# Part 3: the linear probe
# ---------------------------------------------------------------------------
class LinearProbe(ClassifierHooks, L.LightningModule):
    """A linear classifier on a frozen backbone's features: how good are the features?

    Frozen as in Lab 4's ``freeze``: no backbone parameter requires a gradient or sits in the
    optimizer, and the backbone stays in eval mode, so its batch-norm running statistics never
    move — even after ``model.train()``. Only the head learns (SGD, momentum 0.9).

    backbone: a module with ``num_features``; a shipped backbone's name ("rotation": the pretext
    network litlabs ships, "digits04": Lab 4's); or None, a fresh randomly initialised DigitBackbone.
    Inputs to ``forward``: images (N, C, H, W). Output: logits (N, num_classes).
    """

    def __init__(self, backbone: nn.Module | str | None = None, num_classes: int = 10, lr: float = 0.5):
        super().__init__()
        self.save_hyperparameters(ignore=[] if isinstance(backbone, str) else ["backbone"])
        if isinstance(backbone, str):
            backbone = load_backbone(backbone)
        self.backbone = DigitBackbone() if backbone is None else backbone
        # TODO: make self.head, a torch.nn.Linear from backbone.num_features to num_classes; then freeze the
        # backbone: no parameter of it requires a gradient, and it is in eval mode.
        ### BEGIN YOUR SOLUTION
        raise NotImplementedError("LinearProbe.__init__")
        ### END YOUR SOLUTION
        self.metrics = EpochMetrics(num_classes)

    def forward(self, x):
        """Return logits (N, num_classes) for images x (N, C, H, W)."""
        return self.head(self.backbone(x))

    def train(self, mode: bool = True):
        """Training mode for the head; the frozen backbone stays in eval mode."""
        super().train(mode)
        # TODO: put the backbone back in eval mode (torch's train() puts every submodule in training mode, which
        # would make its batch norm update the running statistics; see Lab 4's train()).
        ### BEGIN YOUR SOLUTION
        raise NotImplementedError("LinearProbe.train")
        ### END YOUR SOLUTION
        return self

    def configure_optimizers(self):
        # TODO: SGD with momentum 0.9 and lr self.hparams.lr over the head's parameters only.
        ### BEGIN YOUR SOLUTION
        raise NotImplementedError("LinearProbe.configure_optimizers")
        ### END YOUR SOLUTION

    def _shared_step(self, batch, stage):
        """One batch of a stage: its mean loss, with self.metrics updated (ClassifierHooks' steps call this)."""
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.metrics.update(stage, loss, logits, y)
        return loss


# ---------------------------------------------------------------------------
# Part 4: the experiment — do rotation features beat random ones with 10 labels per class?
# ---------------------------------------------------------------------------
def pretrain(pretext_images: int = 100, max_epochs: int = 5, seed: int = 0, accelerator: str = "cpu"):
    """Train a RotationPretext on the first ``pretext_images`` training images of each digit (their labels
    unused); return (the trained model, its held-out pretext accuracy)."""
    from datamodules import build_datamodule

    L.seed_everything(seed, verbose=False)
    data = build_datamodule("mnist", labels_per_class=pretext_images, batch_size=64, seed=seed)
    model = RotationPretext()
    return model, fit_and_test(model, data, max_epochs, accelerator)


def probe_accuracy(backbone: nn.Module, labels_per_class: int = 10, max_epochs: int = 20, seed: int = 0,
                   accelerator: str = "cpu") -> float:
    """Train a LinearProbe on ``backbone`` with labels_per_class images of each digit; its test accuracy."""
    from datamodules import build_datamodule

    L.seed_everything(seed, verbose=False)
    data = build_datamodule("mnist", labels_per_class=labels_per_class, batch_size=50, seed=seed)
    return fit_and_test(LinearProbe(backbone), data, max_epochs, accelerator)


def ssl_experiment(labels_per_class: int = 10, pretext_images: int = 100, seed: int = 0,
                   accelerator: str = "cpu") -> dict:
    """Linear-probe test accuracy on rotation-pretrained features vs on random features.

    Returns {labels_per_class: {"rotation features": accuracy, "random features": accuracy}}, e.g.
    {10: {"rotation features": 0.5, "random features": 0.2}}; the random backbone is the same
    architecture, freshly initialised, never trained.
    """
    # TODO: pretrain a RotationPretext (pretrain), then probe_accuracy on its backbone and on a fresh DigitBackbone
    # (seed the random one with torch.manual_seed(seed) first, so that it is the same every run).
    ### BEGIN YOUR SOLUTION
    raise NotImplementedError("ssl_experiment")
    ### END YOUR SOLUTION
