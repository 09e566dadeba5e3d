"""Pretrained backbones for transfer learning, offline: one litlabs makes itself, and torchvision's.

- ``"digits04"``: a small CNN pretrained on the digits 0–4 of the offline MNIST subset, shipped
  with the package (``digits04_backbone.pt``, about 100 KB) so grading never waits for it.
  ``python -m datamodules.pretrained`` makes it again: the same bits every time on one machine;
  another machine (vector width, library kernels) may round differently and make other bits that
  serve as well. The tests check both: two runs on one machine are identical, and the lab's linear
  probe does as well on a freshly made backbone as on the shipped one. ``python -m
  datamodules.pretrained --check`` says whether this machine makes the shipped bits.
- ``"rotation"``: the same CNN pretrained *without labels* on Lab 5's rotation pretext (predict
  which of four quarter turns an image shows), shipped as ``rotation_backbone.pt``; made by
  ``python -m datamodules.pretrained`` with the reference's ``rotate_batch``.
- ``"resnet18"``: torchvision's ImageNet ResNet-18, read from the local torch cache
  (``$TORCH_HOME/hub/checkpoints``); nothing is downloaded.

Every backbone maps images (N, C, H, W) to features (N, backbone.num_features).
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import DataError

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


def _pretrain(data: dict, batches, num_outputs: int, epochs: int, seed: int) -> dict[str, torch.Tensor]:
    """Train DigitBackbone with a linear head of num_outputs on the offline training split; its state_dict.

    data: ``build_datamodule`` arguments choosing the images; batches(x, y) → (inputs, targets) of one
    step. A plain loop on one thread with a fixed seed, so the same machine makes the same bits.
    """
    from . import build_datamodule

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a sum split over threads can round differently
    try:
        torch.manual_seed(seed)
        x, y = build_datamodule("mnist", batch_size=64, seed=seed, **data).split("train")
        backbone, head = DigitBackbone(), nn.Linear(DigitBackbone.num_features, num_outputs)
        parameters = [*backbone.parameters(), *head.parameters()]
        optimizer = torch.optim.SGD(parameters, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for index in torch.randperm(len(x), generator=generator).split(64):
                inputs, targets = batches(x[index], y[index])
                loss = F.cross_entropy(head(backbone(inputs)), targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return backbone.state_dict()  # the head is thrown away
    finally:
        torch.set_num_threads(threads)


def pretrain_digit_backbone(epochs: int = 4, seed: int = 0, images_per_class: int | None = None
                            ) -> dict[str, torch.Tensor]:
    """The digits04 backbone: DigitBackbone with a linear head, trained on the digits 0–4.

    images_per_class: only the first ones of each digit (a quick run); None, the shipped one: all of them.
    """
    data = {"classes": SOURCE_CLASSES, **({"labels_per_class": images_per_class} if images_per_class else {})}
    return _pretrain(data, lambda x, y: (x, y), len(SOURCE_CLASSES), epochs, seed)


def pretrain_rotation_backbone(rotate_batch, images_per_class: int = 100, epochs: int = 5,
                               seed: int = 0) -> dict[str, torch.Tensor]:
    """The rotation backbone: DigitBackbone with a 4-way head, trained to predict rotations.

    rotate_batch: Lab 5's function, images (N, C, H, W) → (4N rotated images, 4N rotation labels).
    The images: the first ``images_per_class`` training images of each digit, their labels unused.
    """
    return _pretrain({"labels_per_class": images_per_class}, lambda x, _: rotate_batch(x), 4, epochs, seed)


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


def reproduction(made: dict[str, dict[str, torch.Tensor]]) -> str:
    """One line: are the backbones made here the shipped bits? (Informative: other bits can serve as well.)"""
    differing = []
    for name, state in made.items():
        shipped = torch.load(SHIPPED_FILES[name], weights_only=True)
        if sorted(state) != sorted(shipped):
            differing.append(f"{SHIPPED_FILES[name].name} (other tensors: {sorted(set(state) ^ set(shipped))[:3]})")
            continue
        gaps = {key: (state[key].double() - shipped[key].double()).abs().max().item() for key in state
                if not torch.equal(state[key], shipped[key])}
        if gaps:
            worst = max(gaps, key=gaps.get)
            differing.append(f"{SHIPPED_FILES[name].name} ({len(gaps)} of {len(state)} tensors differ, "
                             f"by up to {gaps[worst]:.2g} in {worst})")
    files = " and ".join(SHIPPED_FILES[name].name for name in made)
    if not differing:
        return f"this machine makes the shipped bits of {files}"
    return (f"this machine does not make the shipped bits of {'; '.join(differing)}: it rounds differently "
            "(vector width, threads, library kernels); the tests check what a backbone does, not its bits")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m datamodules.pretrained",
                                     description="Make the shipped backbones digits04_backbone.pt and rotation_backbone.pt.")
    parser.add_argument("--check", action="store_true",
                        help="make them here and print one line: whether they are the shipped bits (writes nothing, "
                             "exits 0 either way)")
    args = parser.parse_args(argv)
    from solutions.rotation import rotate_batch  # the reference: only in the instructor's checkout

    made = {"digits04": pretrain_digit_backbone(), "rotation": pretrain_rotation_backbone(rotate_batch)}
    if args.check:
        print(reproduction(made))
        return 0
    for name, state in made.items():
        torch.save(state, SHIPPED_FILES[name])
    print(f"wrote {SHIPPED} and {SHIPPED_ROTATION}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
