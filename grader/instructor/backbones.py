"""Making the backbones the data layer ships: ``python -m grader.instructor.backbones [--check]``.

The digits04 backbone learns the digits 0–4 with labels; the rotation backbone learns Lab 5's pretext with the
reference's ``rotate_batch`` (so this lives with the instructor's tools: datamodules never imports solutions/).
A plain loop on one thread with a fixed seed: the same machine makes the same bits; another machine may round
differently and make other bits that serve as well (the tests check what a backbone does, not its bits).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from datamodules.pretrained import SHIPPED, SHIPPED_FILES, SHIPPED_ROTATION, SOURCE_CLASSES, DigitBackbone


def _pretrain(data: dict, batches, num_outputs: int, epochs: int, seed: int) -> dict[str, torch.Tensor]:
    """Train DigitBackbone with a linear head of num_outputs on the offline training split; its state_dict.

    data: ``build_datamodule`` arguments choosing the images; batches(x, y) → (inputs, targets) of one
    step. A plain loop on one thread with a fixed seed, so the same machine makes the same bits.
    """
    from datamodules import build_datamodule

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

    parser = argparse.ArgumentParser(prog="python -m grader.instructor.backbones",
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
