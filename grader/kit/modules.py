"""Helpers for checks that build nn.Modules in the worker and read back their logits, flags and state.

``require_logits`` is every lab's first check of its model; the rest serve the labs whose checks freeze,
probe or compare backbones (Labs 4 and 5), and ``optimizer_groups`` any lab's optimizer.
"""
from __future__ import annotations

import torch

from grader.kit import expect
from grader.kit.program import Program


def require_logits(submission, cls: str, cases, classes: int = 10, name=None) -> list[torch.Tensor]:
    """Build ``cls(**init)`` in eval mode and run its forward on x, for each case (init, x), all in one request;
    each must give finite floating-point logits of shape (len(x), init's num_classes, else ``classes``).

    Returns the logits. ``name(init, x)``: how the case is named in a failure (default "cls(init).forward on
    input (shape)").
    """
    name = name or (lambda init, x: f"{cls}({init}).forward on input {tuple(x.shape)}")
    program, outs = Program(), []
    for init, x in cases:
        program.section(name(init, x))
        model = program.call(None, cls, **init)
        model.eval()
        outs.append(model.forward(program.value(x)))
    got = submission.run(program, what=f"{cls}.forward")
    return [expect.tensor(got[out], name(init, x), shape=(len(x), init.get("num_classes", classes)), floating=True,
                          finite=True) for (init, x), out in zip(cases, outs)]


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
    return _attribute_of_each(program, module, names, "requires_grad")


def modes(program, module, names) -> dict:
    """Refs to the ``training`` flag of each dotted submodule name, e.g. "1", of a module in the worker ("" for the
    module itself)."""
    return _attribute_of_each(program, module, names, "training")


def _attribute_of_each(program, module, names, attribute: str) -> dict:
    refs = {}
    for name in names:
        target = module
        for part in filter(None, name.split(".")):
            target = program.attr(target, part)
        refs[name] = program.attr(target, attribute)
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
    image = expect.random_tensor(1, 1, 9, 9, seed=41)
    first = program.call(model, "forward", torch.cat([image, expect.random_tensor(3, 1, 9, 9, seed=42)]))
    second = program.call(model, "forward", torch.cat([image, 3 * expect.random_tensor(3, 1, 9, 9, seed=43) + 1]))
    return first, second


def depends_on_companions(got, refs, what: str) -> bool:
    """True if the image's logits changed with its batch companions (see ``batch_companions``)."""
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
        raise expect.CheckFailed(f"{what}: expected an optimizer (or Lightning's list / dict of one)")
    return groups
