"""Lab 3 — convolutional networks.

Notation (lecture notes: CNNs, padding and stride, pooling, weight sharing, LeNet-5;
batch normalisation in training and in evaluation; data augmentation):
- x: a batch of images, shape (N, C_in, H, W); N images, C_in channels, H rows, W columns
- weight: a convolution's filters, shape (C_out, C_in, kH, kW); bias: one number per filter (C_out,)
- out: the feature maps, shape (N, C_out, H_out, W_out)
- H_out = floor((H + 2·padding − dilation·(kH − 1) − 1) / stride) + 1, and the same for W
- batch norm: x̂ = (x − μ) / √(σ² + ε), y = γ·x̂ + β, with μ, σ² per channel

Fill in every region between ``### BEGIN YOUR SOLUTION`` and ``### END YOUR SOLUTION``: replace its
``raise NotImplementedError`` with your code. The ``# TODO`` comment just above each region says what
to do. Do not change the signatures: the grader calls these functions by name.
"""
from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from labs.common import ClassifierHooks, EpochMetrics


def pair(value) -> tuple[int, int]:
    """An int or a pair of ints as a pair (for height, width): 3 → (3, 3), (3, 5) → (3, 5)."""
    return (value, value) if isinstance(value, int) else tuple(value)


# ---------------------------------------------------------------------------
# Part 1: convolution arithmetic
# ---------------------------------------------------------------------------
def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """The length of a convolution's (or pooling's) output along one spatial dimension.

    The kernel covers dilation·(kernel_size − 1) + 1 input positions; the input has
    ``padding`` zeros added at each end; the kernel moves ``stride`` positions at a time
    and only positions where it fits entirely count.

    Inputs: ints; size ≥ 1, kernel_size ≥ 1, stride ≥ 1, padding ≥ 0, dilation ≥ 1.
    Returns: an int, the output length (the formula's floor).
    """
    # TODO: return the output-size formula from the notes (integer division does the floor).
    ### BEGIN YOUR SOLUTION
    raise NotImplementedError("conv_output_size")
    ### END YOUR SOLUTION


def conv_parameter_count(in_channels: int, out_channels: int, kernel_size, bias: bool = True) -> int:
    """How many numbers a convolution layer learns: weights (and one bias per output channel).

    Every output channel has one filter of shape (in_channels, kH, kW) that is shared by all
    positions of the image, so the count does not depend on the image size.

    Inputs: channel counts (ints), kernel_size an int or a pair (kH, kW), bias a bool.
    Returns: an int.
    """
    kernel_h, kernel_w = pair(kernel_size)
    # TODO: count the filters' weights, plus the biases if bias is True.
    ### BEGIN YOUR SOLUTION
    raise NotImplementedError("conv_parameter_count")
    ### END YOUR SOLUTION


# ---------------------------------------------------------------------------
# Part 2: convolution and pooling, by hand
# ---------------------------------------------------------------------------
def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride=1, padding=0):
    """2-D convolution (cross-correlation, as in every deep-learning library) as one matrix product.

    ``F.unfold`` (im2col) copies every kH×kW patch of the padded input into a column:
    (N, C_in·kH·kW, H_out·W_out). Each filter, flattened to a row of C_in·kH·kW numbers, is
    multiplied with every column at once; the result is reshaped into feature maps.
    Gradients come from autograd through these operations.

    Inputs:
    - x: (N, C_in, H, W)
    - weight: (C_out, C_in, kH, kW)
    - bias: (C_out,) or None
    - stride, padding: an int, or a pair (for the rows, for the columns)

    Returns: out, (N, C_out, H_out, W_out) in x's dtype.
    """
    n, _, height, width = x.shape
    c_out, _, kernel_h, kernel_w = weight.shape
    (stride_h, stride_w), (pad_h, pad_w) = pair(stride), pair(padding)
    # TODO: compute H_out and W_out with conv_output_size; unfold x into columns; multiply the flattened
    # filters (C_out, C_in·kH·kW) with the columns; add the bias per output channel; reshape to
    # (N, C_out, H_out, W_out). Do not call F.conv2d or torch.nn.Conv2d.
    ### BEGIN YOUR SOLUTION
    raise NotImplementedError("conv2d")
    ### END YOUR SOLUTION


def max_pool2d(x: torch.Tensor, kernel_size, stride=None):
    """Max pooling: the largest value of every kH×kW window, per channel.

    The gradient flows only to the maximum of each window; where a window holds several equal
    maxima it goes to the first one in reading order (row by row), as ``F.max_pool2d`` does —
    ``Tensor.max(dim)`` picks that one.

    Inputs:
    - x: (N, C, H, W)
    - kernel_size: an int or a pair (kH, kW)
    - stride: an int, a pair, or None for stride = kernel_size (windows that do not overlap)

    Returns: (N, C, H_out, W_out), with H_out = conv_output_size(H, kH, stride).
    """
    n, channels, height, width = x.shape
    kernel_h, kernel_w = pair(kernel_size)
    stride_h, stride_w = pair(kernel_size if stride is None else stride)
    # TODO: unfold x into windows, view them as (N, C, kH·kW, H_out·W_out), take the max over the window
    # dimension and reshape to (N, C, H_out, W_out). Do not call F.max_pool2d or torch.nn.MaxPool2d.
    ### BEGIN YOUR SOLUTION
    raise NotImplementedError("max_pool2d")
    ### END YOUR SOLUTION


class Conv2d(torch.nn.Conv2d):
    """``torch.nn.Conv2d``'s parameters and initialisation, with this lab's ``conv2d`` as the forward pass."""

    def forward(self, x):
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)


class MaxPool2d(torch.nn.MaxPool2d):
    """``torch.nn.MaxPool2d``'s settings, with this lab's ``max_pool2d`` as the forward pass."""

    def forward(self, x):
        return max_pool2d(x, self.kernel_size, self.stride)


# ---------------------------------------------------------------------------
# Part 3: batch normalisation
# ---------------------------------------------------------------------------
class BatchNorm2d(torch.nn.Module):
    """Batch normalisation over (N, H, W) for each of C channels, as ``torch.nn.BatchNorm2d``.

    Training mode: normalise with the batch's own mean and *biased* variance (divide by
    m = N·H·W) and update the running estimates,
        running_mean ← (1 − momentum)·running_mean + momentum·μ
        running_var  ← (1 − momentum)·running_var  + momentum·σ²·m/(m − 1)   (unbiased)
    Evaluation mode: normalise with running_mean and running_var, so an image's output does
    not depend on the other images in the batch.

    Parameters and buffers (the same names as torch's, so state_dicts load either way):
    - weight γ (C,), initialised to 1; bias β (C,), initialised to 0
    - running_mean (C,) = 0, running_var (C,) = 1, num_batches_tracked (a long scalar) = 0

    Input and output: (N, C, H, W).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        # TODO: create the learnable weight and bias (torch.nn.Parameter) and register the three buffers
        # (self.register_buffer) with the names and initial values in the docstring.
        ### BEGIN YOUR SOLUTION
        raise NotImplementedError("BatchNorm2d.__init__")
        ### END YOUR SOLUTION

    def forward(self, x):
        # TODO: in training mode take μ and the biased σ² over dims (0, 2, 3) and update the running
        # buffers without recording gradients (torch.no_grad()), counting the batch in num_batches_tracked;
        # in eval mode use the running buffers. Then return γ·x̂ + β, broadcasting (C,) as (1, C, 1, 1).
        ### BEGIN YOUR SOLUTION
        raise NotImplementedError("BatchNorm2d.forward")
        ### END YOUR SOLUTION


# ---------------------------------------------------------------------------
# Part 4: data augmentation
# ---------------------------------------------------------------------------
def train_transforms(image_size=28, max_shift: int = 2) -> v2.Transform:
    """The training pipeline for one image tensor (C, H, W) — already normalised per channel.

    Label-preserving augmentation: a random shift of up to ``max_shift`` pixels in each
    direction (pad by replicating the border — the background — then crop back to
    ``image_size``), then a float32 image. No flips: a mirrored 2 or 7 is not a digit.
    Random numbers come from torch's global generator, so ``torch.manual_seed`` repeats them.
    Called as ``transform(image)`` or ``transform(image, label)`` (the label passes untouched).
    """
    # TODO: return a v2.Compose of v2.RandomCrop (with padding=max_shift and padding_mode="edge")
    # and v2.ToDtype(torch.float32).
    ### BEGIN YOUR SOLUTION
    raise NotImplementedError("train_transforms")
    ### END YOUR SOLUTION


def eval_transforms(image_size=28) -> v2.Transform:
    """The evaluation pipeline: deterministic — the centre ``image_size`` crop as a float32 image.

    An image of the right size passes unchanged: a model is evaluated on the data as it is.
    """
    # TODO: return a v2.Compose of v2.CenterCrop(image_size) and v2.ToDtype(torch.float32).
    ### BEGIN YOUR SOLUTION
    raise NotImplementedError("eval_transforms")
    ### END YOUR SOLUTION


# ---------------------------------------------------------------------------
# Part 5: LeNet-5
# ---------------------------------------------------------------------------
class LeNet5(ClassifierHooks, L.LightningModule):
    """LeNet-5 with ReLU and (optionally) batch normalisation, built from this lab's layers.

    features:   Conv2d(C, 6, 5, padding=2) → [BatchNorm2d(6)] → ReLU → MaxPool2d(2)
                Conv2d(6, 16, 5)           → [BatchNorm2d(16)] → ReLU → MaxPool2d(2)
    classifier: flatten → Linear(16·h·w, 120) → ReLU → Linear(120, 84) → ReLU → Linear(84, num_classes)
    With batch norm the convolutions have no bias (the mean subtraction would cancel it).
    The batch-norm layers are torch's, so that Lightning's ``sync_batchnorm`` can replace them
    with ``SyncBatchNorm`` when training on several processes.

    Inputs to ``forward``: images (N, C, H, W) as in ``input_shape``. Output: logits (N, num_classes).
    Trained with SGD (Nesterov momentum 0.9, weight decay 5e-4) and a one-cycle schedule;
    ``augment`` applies ``train_transforms`` to every training image.
    """

    def __init__(self, num_classes: int = 10, input_shape: tuple[int, int, int] = (1, 28, 28),
                 batch_norm: bool = True, augment: bool = True, max_shift: int = 2, lr: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        channels, height, width = input_shape
        # TODO: build self.features (a torch.nn.Sequential of Conv2d, torch.nn.BatchNorm2d when batch_norm,
        # torch.nn.ReLU and MaxPool2d, as in the docstring) and self.classifier (torch.nn.Flatten, then
        # torch.nn.Linear and ReLU layers). Find h and w, the feature maps' size, with conv_output_size.
        ### BEGIN YOUR SOLUTION
        raise NotImplementedError("LeNet5.__init__")
        ### END YOUR SOLUTION
        self.train_transform = train_transforms((height, width), max_shift)
        self.eval_transform = eval_transforms((height, width))
        self.metrics = EpochMetrics(num_classes)

    def forward(self, x):
        """Return logits (N, num_classes) for images x of shape (N, C, H, W)."""
        # TODO: the features, then the classifier.
        ### BEGIN YOUR SOLUTION
        raise NotImplementedError("LeNet5.forward")
        ### END YOUR SOLUTION

    def on_after_batch_transfer(self, batch, dataloader_idx):
        # Lightning calls this on every batch, on the model's device: augment while training only.
        x, y = batch
        transform = self.train_transform if self.training and self.hparams.augment else self.eval_transform
        return torch.stack([transform(image) for image in x]), y

    def _shared_step(self, batch, stage):
        """One batch of a stage: its mean loss, with self.metrics updated (ClassifierHooks' steps call this)."""
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.metrics.update(stage, loss, logits, y)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9, nesterov=True,
                                    weight_decay=5e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.hparams.lr,
                                                       total_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
