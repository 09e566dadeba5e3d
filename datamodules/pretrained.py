"""Pretrained backbones for transfer learning, offline: one litlabs makes itself, and torchvision's.

- ``"digits04"``: a small CNN pretrained on the digits 0–4 of the offline MNIST subset, shipped
  with the package (``digits04_backbone.pt``, about 100 KB) so grading never waits for it.
  ``python -m grader.instructor.backbones`` makes it again: the same bits every time on one machine;
  another machine (vector width, library kernels) may round differently and make other bits that
  serve as well. The tests check both: two runs on one machine are identical, and the lab's linear
  probe does as well on a freshly made backbone as on the shipped one. ``python -m
  grader.instructor.backbones --check`` says whether this machine makes the shipped bits.
- ``"rotation"``: the same CNN pretrained *without labels* on Lab 5's rotation pretext (predict
  which of four quarter turns an image shows), shipped as ``rotation_backbone.pt``; made by
  ``python -m grader.instructor.backbones`` with the reference's ``rotate_batch``.
- ``"resnet18"``: torchvision's ImageNet ResNet-18, read from the local torch cache
  (``$TORCH_HOME/hub/checkpoints``); nothing is downloaded.

Every backbone maps images (N, C, H, W) to features (N, backbone.num_features).
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import torch
from torch import nn

from datamodules.errors import DataError

SHIPPED = Path(__file__).with_name("digits04_backbone.pt")
SHIPPED_ROTATION = Path(__file__).with_name("rotation_backbone.pt")
SHIPPED_FILES = {"digits04": SHIPPED, "rotation": SHIPPED_ROTATION}
SOURCE_CLASSES = (0, 1, 2, 3, 4)
RESNET18_FILE = "resnet18-f37072fd.pth"  # the name torchvision gives ResNet18_Weights.IMAGENET1K_V1


class DigitBackbone(nn.Module):
    """Three 3×3 convolution blocks (conv → batch norm → ReLU → pool), then global average pooling.

    Input: (N, 1, H, W) normalised images. Output: features (N, 64).
    """

    num_features = 64

    def __init__(self):
        super().__init__()

        def block(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.features = nn.Sequential(*block(1, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2),
                                      *block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.features(x)


def resnet18_backbone() -> nn.Module:
    """torchvision's ResNet-18 with ImageNet weights from the torch cache, its classifier removed."""
    import torchvision

    path = Path(torch.hub.get_dir()) / "checkpoints" / RESNET18_FILE
    if not path.is_file():
        raise DataError(
            f"no ResNet-18 weights at {path}: on a machine with internet run "
            "`python -c \"import torchvision; torchvision.models.resnet18(weights='IMAGENET1K_V1')\"` "
            "(it saves them there), or copy the file there; set TORCH_HOME to use another cache")
    model = torchvision.models.resnet18(weights=None)
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as err:
        raise DataError(f"{path} is not a ResNet-18 checkpoint ({type(err).__name__}: {err})") from err
    model.num_features = model.fc.in_features
    model.fc = nn.Identity()
    return model


def load_backbone(name: str = "digits04") -> nn.Module:
    """A pretrained backbone by name: "digits04" or "rotation" (shipped), "resnet18" (from the torch cache)."""
    if name == "resnet18":
        return resnet18_backbone()
    if name not in SHIPPED_FILES:
        raise DataError(f"unknown backbone {name!r}; known backbones: {', '.join(SHIPPED_FILES)}, resnet18")
    backbone = DigitBackbone()
    backbone.load_state_dict(shipped_state(name))
    return backbone


@cache
def shipped_state(name: str = "digits04") -> dict[str, torch.Tensor]:
    """The weights of a shipped backbone, read once (the grader's workers inherit them)."""
    return torch.load(SHIPPED_FILES[name], weights_only=True)

