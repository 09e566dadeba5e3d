"""Helpers for checks that build nn.Modules in the worker and read back their flags and state.

Shared by the labs whose checks freeze, probe or compare backbones (Labs 4 and 5).
"""
from __future__ import annotations

import torch


def small_backbone(features: int = 7) -> torch.nn.Module:
    """A backbone that is not the labs', with another feature size: conv → BN → ReLU → conv → BN → pool.

    Images (N, 1, H, W) with H, W ≥ 5 → features (N, features); ``num_features`` says how many.
    """
    backbone = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                   torch.nn.Conv2d(4, features, 3), torch.nn.BatchNorm2d(features),
                                   torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    backbone.num_features = features
    return backbone


BACKBONE_PARAMETERS = [name for name, _ in small_backbone().named_parameters()]
BATCHNORMS = ["1", "4"]  # the batch-norm layers of small_backbone


def flags(program, module, names) -> dict:
    """Refs to requires_grad of each dotted parameter name, e.g. "1.weight", of a module in the worker."""
    refs = {}
    for name in names:
        target = module
        for part in name.split("."):
            target = program.attr(target, part)
        refs[name] = program.attr(target, "requires_grad")
    return refs


def read(got, refs: dict) -> dict:
    """The values behind a dict of refs, once the program has run."""
    return {name: got[ref] for name, ref in refs.items()}


def changed(before: dict, after: dict, prefix: str) -> list[str]:
    """The names under ``prefix`` of the state_dict tensors that differ between two states, bit for bit."""
    return sorted(name for name in before if name.startswith(prefix) and not torch.equal(before[name], after[name]))


def learned(before: dict, after: dict, prefix: str) -> list[str]:
    """Like ``changed``, for what training learns only: the running statistics of batch norm move without any
    gradient (a backbone run under torch.no_grad() still changes them), the weights do not."""
    return [name for name in changed(before, after, prefix) if not name.rsplit(".", 1)[-1].startswith(
        ("running_", "num_batches"))]


def batch_companions(program, model) -> tuple:
    """Refs to the model's logits for one image in two batches with different companions, in whatever
    mode the model is in (call it after ``model.train()``).

    A batch-norm layer in training mode normalises with the batch's statistics, so the image's logits
    depend on its companions; in eval mode they do not. This is what the layer does, not what its
    ``training`` flag says (a submission can make the flag say anything).
    """
    from grader.kit.expect import random_tensor

    image = random_tensor(1, 1, 9, 9, seed=41)
    first = program.call(model, "forward", torch.cat([image, random_tensor(3, 1, 9, 9, seed=42)]))
    second = program.call(model, "forward", torch.cat([image, 3 * random_tensor(3, 1, 9, 9, seed=43) + 1]))
    return first, second


def depends_on_companions(got, refs, what: str) -> bool:
    """True if the image's logits changed with its batch companions (see ``batch_companions``)."""
    from grader.kit import expect

    first, second = (expect.tensor(got[ref], what, floating=True, finite=True) for ref in refs)
    if first.ndim < 1 or first.shape != second.shape or len(first) != 4:
        raise expect.CheckFailed(f"{what}: expected logits for the 4 images of each batch, got shapes "
                                 f"{tuple(first.shape)} and {tuple(second.shape)}")
    return not torch.allclose(first[0], second[0], rtol=1e-4, atol=1e-5)


def optimizer_groups(submission, cls: str, init: dict) -> list:
    """The param_groups of the first optimizer ``cls(**init).configure_optimizers()`` returns, in any of the forms
    Lightning accepts (an optimizer; a list or tuple of them; ([optimizers], [schedulers]); {"optimizer": ...}).

    Returns them as plain data: a list of dicts whose "params" are tensors.
    """
    from grader.kit.expect import CheckFailed
    from grader.kit.program import Program

    what = f"{cls}.configure_optimizers"

    def reach(path):  # a program that builds the model and walks path from what configure_optimizers returns
        program = Program()
        step = program.call(program.call(None, cls, **init), "configure_optimizers")
        for key in path:
            step = program.call(step, "__getitem__", key)
        return program, step

    path = []  # a container holding an optimizer comes back as {"$object": "list"}: step in until it is not one
    while len(path) < 3:
        program, step = reach(path)
        kind = submission.run(program, what=what)[step]
        key = {"list": 0, "tuple": 0, "dict": "optimizer"}.get(kind.get("$object") if type(kind) is dict else None)
        if key is None:
            break
        path.append(key)
    program, step = reach(path)
    param_groups = program.attr(step, "param_groups")
    groups = submission.run(program, what=what)[param_groups]
    if type(groups) is not list or not all(type(g) is dict for g in groups):
        raise CheckFailed(f"{what}: expected an optimizer (or Lightning's list / dict of one)")
    return groups
