"""Convergence checks for any lab: train the submitted LightningModule in the worker, score it here.

The worker trains with the trainer factory on the offline data (the ``fit`` op) and
returns only logits on probe inputs the judge chose; the loss and the held-out accuracy
are computed here, from the judge's own copy of the data.
"""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from grader.kit import expect


@lru_cache(maxsize=4)
def offline_data(name: str = "mnist", classes: tuple | None = None):
    """The judge's copy of an offline data set, set up as the datamodule sets it up (the same split the
    worker trains on): ``split(name)``, ``output_classes``. Torch only: the judge never imports Lightning."""
    from datamodules.splits import PreparedData

    return PreparedData(name, classes=list(classes) if classes else None)


@lru_cache(maxsize=4)
def training_splits(name: str = "mnist") -> tuple[dict, tuple, int]:
    """What the worker may train on: the train and validation splits of an offline data set, as its
    datamodule's ``load()`` gives them (never the test split the judge scores on), its dims and its number
    of classes."""
    from datamodules.splits import offline_splits

    splits, dims, num_classes = offline_splits(name)
    return {split: splits[split] for split in ("train", "val")}, tuple(dims), num_classes


# The CPU-time budget of a training request: what the reference needs there, times a margin, on a
# machine as fast as the one the reference figures were measured on (benchmarks/request_usage.py).
BUDGET_FACTOR, BUDGET_SLACK = 2.5, 0.5  # budget = 2.5 × reference + 0.5 s, × machine speed
# (reference_seconds is a whole training request, the Trainer's start included: benchmarks/request_usage.py;
# a larger slack let a small model train 10 times as many epochs: tests/hostile/mlp_3_max_epochs.py)
CALIBRATION_SECONDS = 0.055  # calibration_workload() (CPU time) on the machine the reference figures come from


def calibration_workload() -> float:
    """CPU seconds one thread takes for a fixed small training workload (the best of five runs)."""
    import time

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(256, 784, generator=generator)
        w1 = torch.randn(784, 256, generator=generator, requires_grad=True)
        w2 = torch.randn(256, 10, generator=generator, requires_grad=True)
        best = float("inf")
        for _ in range(5):
            start = time.thread_time()  # CPU time: other processes on the machine do not count
            for _ in range(20):
                (x @ w1).relu().matmul(w2).logsumexp(dim=1).sum().backward()
            best = min(best, time.thread_time() - start)
        return best
    finally:
        torch.set_num_threads(threads)


@lru_cache(maxsize=1)
def machine_slowness() -> float:
    """How much slower this machine is than the one the reference figures were measured on (never below 1)."""
    return max(1.0, calibration_workload() / CALIBRATION_SECONDS)


def cpu_budget(reference_seconds: float) -> float:
    """The CPU seconds a training request may use, where the reference uses ``reference_seconds``.

    The worker trains on one thread, so its CPU time hardly depends on the machine's load; the
    budget is enforced from outside the worker (RLIMIT_CPU, and a wall-clock deadline), so a model
    that raises its own epoch count is stopped, not rewarded.
    """
    return (BUDGET_FACTOR * reference_seconds + BUDGET_SLACK) * machine_slowness()


def fit_and_score(submission, cls, data, max_epochs, loss_fn, predict, init=None, reference_cpu: float = 20.0):
    """Train ``cls(**init)`` in the worker; return (train loss before, after, held-out accuracy), computed here.

    reference_cpu: the CPU seconds the reference needs for this training (benchmarks/request_usage.py).

    data: ``build_datamodule`` arguments (name, batch_size, classes); the probes are the first
    1,000 training images (for the loss) and the whole test split (for the accuracy).
    """
    classes = data.get("classes")
    datamodule = offline_data(data.get("name", "mnist"), tuple(classes) if classes else None)
    train_x, train_y = datamodule.split("train")
    test_x, test_y = datamodule.split("test")
    probe_x, probe_y = train_x[:1000].clone(), train_y[:1000]  # a copy: a slice would send all of its storage
    got = submission.fit(cls, data=data, max_epochs=max_epochs, probes={"train": probe_x, "test": test_x},
                         before=["train"], init=init, cpu_seconds=cpu_budget(reference_cpu))
    before, after, test_logits = (
        checked_logits(logits, len(x), datamodule, classes, f"{cls}.forward {name}")
        for logits, x, name in ((got["before"].get("train"), probe_x, "before training"),
                                (got["after"].get("train"), probe_x, "after training"),
                                (got["after"].get("test"), test_x, "on the test set")))
    accuracy = (predict(test_logits) == test_y).float().mean().item()
    return loss_fn(before, probe_y).item(), loss_fn(after, probe_y).item(), accuracy


def fit_and_test(submission, cls, data, max_epochs, init=None, reference_cpu: float = 20.0, states: bool = False,
                 what: str = "") -> tuple[float, dict]:
    """Train ``cls(**init)`` in the worker (nothing evaluated before training); return the held-out accuracy of
    the argmax of its (N, C) logits on the data's test split, computed here, and the fit's reply (with
    ``states``: the model's state before and after)."""
    classes = data.get("classes")
    datamodule = offline_data(data.get("name", "mnist"), tuple(classes) if classes else None)
    test_x, test_y = datamodule.split("test")
    got = submission.fit(cls, data=data, max_epochs=max_epochs, probes={"test": test_x}, before=(), init=init,
                         states=states, cpu_seconds=cpu_budget(reference_cpu))
    logits = expect.tensor(got["after"].get("test"), what or f"{cls}.forward after training",
                           shape=(len(test_y), datamodule.output_classes), floating=True, finite=True)
    return (logits.argmax(dim=1) == test_y).float().mean().item(), got


def require_classifier_learns(submission, cls, data, max_epochs, min_accuracy: float, loss_fall: float,
                              reference_cpu: float, init=None) -> None:
    """``fit_and_score`` a classifier of (N, C) logits (cross-entropy, argmax), then ``require_learning``."""
    before, after, accuracy = fit_and_score(submission, cls, data, max_epochs, init=init, loss_fn=F.cross_entropy,
                                            predict=lambda logits: logits.argmax(dim=1), reference_cpu=reference_cpu)
    require_learning(before, after, accuracy, min_accuracy=min_accuracy, loss_fall=loss_fall)


def checked_logits(logits, n: int, datamodule, classes, what: str) -> torch.Tensor:
    """Finite floating logits for n examples, (n, K) for K classes, (n,) or (n, 1) for a binary task;
    checked before the judge computes anything from them."""
    binary = classes is not None and len(classes) == 2
    logits = expect.tensor(logits, what, floating=True)
    shapes = [(n,), (n, 1)] if binary else [(n, datamodule.output_classes)]
    if tuple(logits.shape) not in shapes:
        raise expect.CheckFailed(f"{what}: expected logits of shape {' or '.join(map(str, shapes))}, "
                                 f"got {tuple(logits.shape)}")
    return expect.tensor(logits, what, finite=True)


def require_learning(before: float, after: float, accuracy: float, min_accuracy: float, loss_fall: float) -> None:
    """Fail unless the training loss fell below loss_fall × its start and the held-out accuracy is high enough."""
    if not after < loss_fall * before:
        raise expect.CheckFailed(f"training loss went from {before:.3f} to {after:.3f}; expected it to fall below "
                                 f"{loss_fall * before:.3f}")
    if accuracy < min_accuracy:
        raise expect.CheckFailed(f"held-out accuracy {accuracy:.3f}, expected at least {min_accuracy:g} "
                                 f"(training loss {before:.3f} → {after:.3f})")
