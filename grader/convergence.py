"""Convergence checks for any lab: train the submitted LightningModule in the worker, score it here.

The worker trains with the trainer factory on the offline data (the ``fit`` op) and
returns only logits on probe inputs the judge chose; the loss and the held-out accuracy
are computed here, from the judge's own copy of the data.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from . import expect


@lru_cache(maxsize=4)
def offline_data(name: str = "mnist", classes: tuple | None = None):
    """The judge's copy of an offline data set, set up (the same split the worker trains on)."""
    from datamodules import build_datamodule

    datamodule = build_datamodule(name, classes=list(classes) if classes else None)
    datamodule.setup()
    return datamodule


def fit_and_score(submission, cls, data, max_epochs, loss_fn, predict, init=None):
    """Train ``cls(**init)`` in the worker; return (train loss before, after, held-out accuracy), computed here.

    data: ``build_datamodule`` arguments (name, batch_size, classes); the probes are the first
    1,000 training images (for the loss) and the whole test split (for the accuracy).
    """
    classes = data.get("classes")
    datamodule = offline_data(data.get("name", "mnist"), tuple(classes) if classes else None)
    train_x, train_y = datamodule.split("train")
    test_x, test_y = datamodule.split("test")
    probe_x, probe_y = train_x[:1000], train_y[:1000]
    got = submission.fit(cls, data=data, max_epochs=max_epochs, probes={"train": probe_x, "test": test_x},
                         init=init)
    before = expect.tensor(got["before"]["train"], f"{cls}.forward")
    after = expect.tensor(got["after"]["train"], f"{cls}.forward")
    test_logits = expect.tensor(got["after"]["test"], f"{cls}.forward")
    for name, value in (("before training", before), ("after training", after), ("on the test set", test_logits)):
        if not torch.isfinite(value).all():
            raise expect.CheckFailed(f"{cls} produced NaN or infinite logits {name}")
    accuracy = (predict(test_logits) == test_y).float().mean().item()
    return loss_fn(before, probe_y).item(), loss_fn(after, probe_y).item(), accuracy


def require_learning(before: float, after: float, accuracy: float, min_accuracy: float, loss_fall: float) -> None:
    """Fail unless the training loss fell below loss_fall × its start and the held-out accuracy is high enough."""
    if not after < loss_fall * before:
        raise expect.CheckFailed(f"training loss went from {before:.3f} to {after:.3f}; expected it to fall below "
                                 f"{loss_fall * before:.3f}")
    if accuracy < min_accuracy:
        raise expect.CheckFailed(f"held-out accuracy {accuracy:.3f}, expected at least {min_accuracy:g} "
                                 f"(training loss {before:.3f} → {after:.3f})")
