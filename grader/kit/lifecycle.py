"""Checks of a LightningModule's own hooks, run outside a Trainer: what each stage logs, and from what loss.

A lab's model computes its loss in ``training_step`` and its epoch figures with ``EpochMetrics``
(``labs/common.py``); a copied hook that updates or logs the wrong stage trains as well as the right
one, so only running every stage shows it. ``log_dict`` is stood in for (see ``ops.StandIn``), so
no Trainer is needed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from grader.kit import expect
from grader.kit.program import Program

STAGES = (("training", "train"), ("validation", "val"), ("test", "test"))  # hook prefix, logged name


def require_stages(submission, cls: str, init: dict, x: torch.Tensor, y: torch.Tensor, loss_node: str | None = None,
                 what: str = "", judged: tuple | None = None) -> None:
    """Run ``cls(**init)`` through one batch of every stage and its epoch end; fail unless each stage logs
    its own ``STAGE_loss`` and ``STAGE_acc``; the training loss is the one ``training_step`` returned (made by
    ``loss_node``, an autograd node type, where given), and it and the training accuracy are the cross-entropy
    and accuracy of the model's training-mode logits on the batch, as validation's and test's are of its
    eval-mode logits. The model must be deterministic in training mode (no dropout: pass p = 0 in ``init``).

    x: a batch of inputs (N, ...); y: its labels (N,). ``judged``: (inputs, targets) the validation and test
    figures are of, where the model does not classify x into y (a pretext task: the rotated batch and its
    rotation labels); default (x, y).
    """
    what = what or cls
    program = Program()
    model = program.call(None, cls, **init)
    logged = program.stand_in(model, "log_dict", returns=[None])
    program.call(model, "train")
    inputs, targets = judged or (x, y)
    training_logits = program.call(model, "forward", inputs)  # batch norm: the batch's statistics, as in the step
    loss = program.call(model, "training_step", [x, y], 0)
    nodes = program.graph(loss) if loss_node else None
    program.call(model, "on_train_epoch_end")
    program.call(model, "eval")
    logits = program.call(model, "forward", inputs)
    for hook, _ in STAGES[1:]:
        program.call(model, f"{hook}_step", [x, y], 0)
        program.call(model, f"on_{hook}_epoch_end")
    calls = program.call(logged, "recorded")
    got = submission.run(program, what=f"{what}: training_step, validation_step, test_step and their epoch ends")
    if loss_node and loss_node not in got[nodes]:
        raise expect.CheckFailed(f"{what}.training_step's loss is not made by {loss_node[:-len('Backward')]} "
                                 f"(autograd nodes behind it: {', '.join(got[nodes]) or 'none'})")
    loss = got[loss].get("loss") if type(got[loss]) is dict else got[loss]  # Lightning takes {"loss": ...} too
    loss = expect.tensor(loss, f"{what}.training_step's loss", shape=(), floating=True, finite=True)
    logits, training_logits = (expect.tensor(got[ref], f"{what}.forward", floating=True, finite=True)
                               for ref in (logits, training_logits))
    if logits.ndim != 2 or len(logits) != len(targets) or training_logits.shape != logits.shape:
        raise expect.CheckFailed(f"{what}.forward: expected logits ({len(targets)}, K), got {tuple(logits.shape)}")
    calls = got[calls] if type(got[calls]) is list else []
    logs = [call.get("dictionary") for call in calls]
    names = [sorted(log) if type(log) is dict else log for log in logs]
    wanted = [[f"{name}_acc", f"{name}_loss"] for _, name in STAGES]
    if names != wanted:
        raise expect.CheckFailed(f"{what}: one batch of each stage, then each epoch end, logged {names}; expected "
                                 f"{wanted}: each stage updates and logs its own figures")
    train_loss = F.cross_entropy(training_logits, targets).item()
    if not abs(loss.item() - train_loss) <= 1e-4 * max(1.0, abs(train_loss)):
        raise expect.CheckFailed(f"{what}.training_step returned the loss {loss.item():.5g}; the cross-entropy of "
                                 f"the model's logits on the batch{' (rotated)' if judged else ''} is "
                                 f"{train_loss:.5g}")
    expected = {"train_loss": train_loss, "train_acc": _accuracy(training_logits, targets),
                "val_loss": F.cross_entropy(logits, targets).item(), "val_acc": _accuracy(logits, targets)}
    expected |= {"test_loss": expected["val_loss"], "test_acc": expected["val_acc"]}
    for log in logs:
        for name, value in log.items():
            number = value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value
            if not isinstance(number, float) or not abs(number - expected[name]) <= 1e-4 * max(1.0, abs(expected[name])):
                raise expect.CheckFailed(f"{what}: {name} logged {number!r} for one batch, expected "
                                         f"{expected[name]:.5g} (from the model's logits on the batch)")


def _accuracy(logits, targets) -> float:
    return (logits.argmax(dim=1) == targets).float().mean().item()


def require_augmentation(submission, cls: str, x: torch.Tensor, y: torch.Tensor, cases) -> None:
    """``on_after_batch_transfer`` shifts training batches only: each case (init, mode, shifted) builds
    ``cls(**init)``, puts it in mode ("train" or "eval") and expects the images changed (shifted True) or
    exactly as they were (False). x: images (N, C, H, W); y: labels (N,). Where x holds copies of one image,
    the shifted copies must differ: each image draws its own shift."""
    program, batches = Program(), []
    for init, mode, _ in cases:
        model = program.call(None, cls, **init)
        program.call(model, mode)
        batches.append(program.call(model, "on_after_batch_transfer", [x, y], 0))
    got = submission.run(program, what=f"{cls}.on_after_batch_transfer")
    for (init, mode, shifted), batch in zip(cases, batches):
        images = expect.tensor(got[batch][0] if type(got[batch]) is list and got[batch] else None,
                               f"{cls}({init}).on_after_batch_transfer in {mode} mode", shape=x.shape)
        labels = got[batch][1] if len(got[batch]) == 2 else None
        if not isinstance(labels, torch.Tensor) or not torch.equal(labels, y):
            raise expect.CheckFailed(f"{cls}.on_after_batch_transfer must return (images, labels) with the labels "
                                     "untouched")
        if torch.equal(images, x.to(images.dtype)) == shifted:
            raise expect.CheckFailed(f"{cls}({init}) in {mode} mode: the batch was "
                                     f"{'left alone' if not shifted else 'changed'}; images are augmented in "
                                     "training mode only, and only when the model's arguments ask for it")
        if shifted and len(x) > 1 and all(torch.equal(x[0], image) for image in x) and \
                all(torch.equal(images[0], image) for image in images):
            raise expect.CheckFailed(f"{cls}({init}) in {mode} mode: {len(x)} copies of one image all came out the "
                                     "same: each image draws its own shift")


def _configured(submission, cls: str, init: dict, path: list, read) -> list:
    """Build ``cls(**init)`` with a stand-in trainer, walk ``path`` (keys and indices) from what its
    configure_optimizers returns, and run ``read(program, step)``'s steps there; their results."""
    program = Program()
    model = program.call(None, cls, **init)
    program.call(model, "__setattr__", "_trainer", program.namespace(estimated_stepping_batches=10))
    step = program.call(model, "configure_optimizers")
    for key in path:
        step = program.call(step, "__getitem__", key)
    refs = read(program, step)
    got = submission.run(program, what=f"{cls}.configure_optimizers")
    return [got[ref] for ref in refs]


def _kind(program, step):
    return [program.attr(program.attr(step, "__class__"), "__name__")]


def _paths(submission, cls: str, init: dict) -> tuple[list, list | None]:
    """Where the optimizer and its scheduler (config) are in what configure_optimizers returns, in any of
    Lightning's forms: an optimizer; a list of them; ([optimizers], [schedulers]); {"optimizer", "lr_scheduler"}."""
    kind, = _configured(submission, cls, init, [], _kind)
    if kind == "dict":
        return ["optimizer"], ["lr_scheduler"]
    if kind in ("list", "tuple"):
        first, = _configured(submission, cls, init, [0], _kind)
        if first in ("list", "tuple"):
            return [0, 0], [1, 0]
        return [0], None
    return [], None


def require_optimizer(submission, cls: str, init: dict, settings: dict, schedule: str | None = None) -> None:
    """``cls(**init).configure_optimizers()`` gives the handout's optimizer, in any form Lightning accepts: its
    class and ``defaults`` (``settings``, e.g. {"type": "SGD", "lr": 0.03, "nesterov": True}), and where
    ``schedule`` names one, that scheduler stepped every batch over the Trainer's ``estimated_stepping_batches``
    (a stand-in trainer says 10)."""
    optimizer, scheduler = _paths(submission, cls, init)
    kind, defaults = _configured(submission, cls, init, optimizer,
                                 lambda program, step: [*_kind(program, step), program.attr(step, "defaults")])
    found = {name: defaults.get(name) for name in settings if name != "type"} if type(defaults) is dict else {}
    found = {"type": kind, **found}
    if found != settings:
        raise expect.CheckFailed(f"{cls}({init}).configure_optimizers gave {found}, expected {settings}")
    if not schedule:
        return
    scheduled = None
    if scheduler is not None:
        config, = _configured(submission, cls, init, scheduler, _kind)
        if config == "dict":  # {"scheduler": ..., "interval": ...}
            scheduled = _configured(submission, cls, init, scheduler, lambda program, step: [
                *_kind(program, program.call(step, "__getitem__", "scheduler")),
                program.attr(program.call(step, "__getitem__", "scheduler"), "total_steps"),
                program.call(step, "get", "interval", "epoch")])
        else:  # a bare scheduler: Lightning steps it every epoch
            scheduled = [config, "?", "epoch"]
    if scheduled != [schedule, 10, "step"]:
        raise expect.CheckFailed(f"{cls}.configure_optimizers: scheduler {scheduled} (class, total steps, interval); "
                                 f"expected {schedule} over the trainer's estimated_stepping_batches (10 here), "
                                 "stepped every batch")
