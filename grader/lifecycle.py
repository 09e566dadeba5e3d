"""Checks of a LightningModule's own hooks, run outside a Trainer: what each stage logs, and from what loss.

A lab's model computes its loss in ``training_step`` and its epoch figures with ``EpochMetrics``
(``labs/common.py``); a copied hook that updates or logs the wrong stage trains as well as the right
one, so only running every stage shows it. ``log_dict`` is stood in for (see ``worker.StandIn``), so
no Trainer is needed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import expect
from .grade import Program

STAGES = (("training", "train"), ("validation", "val"), ("test", "test"))  # hook prefix, logged name


def check_stages(submission, cls: str, init: dict, x: torch.Tensor, y: torch.Tensor, loss_node: str | None = None,
                 what: str = "") -> None:
    """Run ``cls(**init)`` through one batch of every stage and its epoch end; fail unless each stage logs
    its own ``STAGE_loss`` and ``STAGE_acc``, the training loss is the one ``training_step`` returned (made by
    ``loss_node``, an autograd node type, where given), and validation and test report the cross-entropy
    and accuracy of the model's eval-mode logits on the batch.

    x: a batch of inputs (N, ...); y: its labels (N,).
    """
    what = what or cls
    program = Program()
    model = program.call(None, cls, **init)
    logged = program.stand_in(model, "log_dict", returns=[None])
    program.call(model, "train")
    loss = program.call(model, "training_step", [x, y], 0)
    nodes = program.graph(loss) if loss_node else None
    program.call(model, "on_train_epoch_end")
    program.call(model, "eval")
    logits = program.call(model, "forward", x)
    for hook, _ in STAGES[1:]:
        program.call(model, f"{hook}_step", [x, y], 0)
        program.call(model, f"on_{hook}_epoch_end")
    calls = program.call(logged, "recorded")
    got = submission.run(program, what=f"{what}: training_step, validation_step, test_step and their epoch ends")
    if loss_node and loss_node not in got[nodes]:
        raise expect.CheckFailed(f"{what}.training_step's loss is not made by {loss_node[:-len('Backward')]} "
                                 f"(autograd nodes behind it: {', '.join(got[nodes]) or 'none'})")
    loss = expect.tensor(got[loss], f"{what}.training_step's loss", shape=(), floating=True, finite=True)
    logits = expect.tensor(got[logits], f"{what}.forward", floating=True, finite=True)
    if logits.ndim != 2 or len(logits) != len(y):
        raise expect.CheckFailed(f"{what}.forward: expected logits ({len(y)}, K), got {tuple(logits.shape)}")
    calls = got[calls] if type(got[calls]) is list else []
    logs = [call.get("dictionary") for call in calls]
    names = [sorted(log) if type(log) is dict else log for log in logs]
    wanted = [[f"{name}_acc", f"{name}_loss"] for _, name in STAGES]
    if names != wanted:
        raise expect.CheckFailed(f"{what}: one batch of each stage, then each epoch end, logged {names}; expected "
                                 f"{wanted}: each stage updates and logs its own figures")
    expected = {"train_loss": loss.item(), "val_loss": F.cross_entropy(logits, y).item(),
                "val_acc": (logits.argmax(dim=1) == y).float().mean().item()}
    expected |= {"test_loss": expected["val_loss"], "test_acc": expected["val_acc"]}
    for log in logs:
        for name, value in log.items():
            number = value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value
            if name == "train_acc":  # of the training-mode logits, which the judge does not see
                if not isinstance(number, float) or not 0 <= number <= 1:
                    raise expect.CheckFailed(f"{what}: train_acc logged {number!r}, expected an accuracy in [0, 1]")
                continue
            if not isinstance(number, float) or not abs(number - expected[name]) <= 1e-4 * max(1.0, abs(expected[name])):
                raise expect.CheckFailed(f"{what}: {name} logged {number!r} for one batch, expected "
                                         f"{expected[name]:.5g} (from the step's loss and the eval-mode logits)")
