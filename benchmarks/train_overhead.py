"""How much does Lightning cost? A lab's reference model, plain loop vs the trainer factory.

Both train the reference model (``--lab logreg``: SoftmaxRegression; ``--lab mlp``: the
MLP; ``--lab cnn``: LeNet-5 with batch norm and augmentation; ``--lab rotation``: the rotation
pretext task, four rotated copies of every image) on the offline MNIST subset for the same
epochs and batch size, with the same
optimiser and schedule and one validation pass per epoch, in this process.
Prints the median wall time of each over several runs and their ratio, and
how Lightning's extra time splits into a fixed cost per optimisation step and
per epoch (from a second, short run at another batch size), since that fixed
cost, not the model, is what decides the ratio for a model this small.

    python benchmarks/train_overhead.py [--lab logreg|mlp|cnn|rotation] [--repeats 5] [--epochs 10] [--batch-size 64]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from datamodules import build_datamodule
from grader.training.trainer import TrainConfig, build_trainer


def softmax_regression():
    from solutions.logreg import SoftmaxRegression

    model = SoftmaxRegression()
    return model, torch.optim.SGD(model.parameters(), lr=model.hparams.lr), None


def mlp(total_steps: int):
    from solutions.mlp import MLP

    model = MLP()
    optimizer = torch.optim.SGD(model.parameters(), lr=model.hparams.lr, momentum=0.9, nesterov=True)
    return model, optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, model.hparams.lr, total_steps=total_steps)


def lenet5(total_steps: int):
    from solutions.cnn import LeNet5

    model = LeNet5()
    optimizer = torch.optim.SGD(model.parameters(), lr=model.hparams.lr, momentum=0.9, nesterov=True,
                                weight_decay=5e-4)
    return model, optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, model.hparams.lr, total_steps=total_steps)


def rotation_pretext(total_steps: int):
    from solutions.rotation import RotationPretext

    model = RotationPretext()
    return model, model.configure_optimizers(), None


def build(lab: str, total_steps: int):
    """(model, optimiser, schedule or None): what the model's configure_optimizers gives Lightning."""
    return {"logreg": softmax_regression, "mlp": mlp, "cnn": lenet5, "rotation": rotation_pretext}[lab](
        *(() if lab == "logreg" else (total_steps,)))


def epoch_end(model, stage: str) -> float:
    """What the LightningModule's epoch hooks do: compute the stage's metrics, then reset them; the accuracy."""
    figures = model.metrics.stages[stage].compute()
    model.metrics.stages[stage].reset()
    return float(figures["acc"])


def plain_loop(lab: str, datamodule, epochs: int, seed: int) -> float:
    """The same training written as the lecture notes' PyTorch loop.

    It runs the model's own training_step and validation_step (forward, the lab's loss, the metric
    updates) and the same epoch metrics as the LightningModule, so the difference is Lightning's
    machinery alone.
    """
    torch.manual_seed(seed)
    train_loader, val_loader = datamodule.train_dataloader(), datamodule.val_dataloader()
    model, optimizer, schedule = build(lab, epochs * len(train_loader))
    for _ in range(epochs):
        model.train()
        for batch in train_loader:
            batch = model.on_after_batch_transfer(batch, 0)  # a model's own batch hook (LeNet-5 augments)
            loss = model.training_step(batch, 0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
        model.eval()
        with torch.no_grad():
            for batch in val_loader:
                model.validation_step(model.on_after_batch_transfer(batch, 0), 0)
        epoch_end(model, "fit")
        accuracy = epoch_end(model, "val")
    return accuracy


def lightning_fit(lab: str, datamodule, epochs: int, seed: int) -> float:
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = build_trainer(TrainConfig(max_epochs=epochs, seed=seed, run_dir=run_dir, progress_bar=False,
                                            accelerator="cpu"))
        model = build(lab, 1)[0]
        trainer.fit(model, datamodule=datamodule)
        return float(trainer.callback_metrics["val_acc"])


def median_times(lab: str, datamodule, epochs: int, repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds of the plain loop and of Lightning, alternating runs; and each one's last val acc."""
    timings = {"plain loop": [], "lightning": []}
    accuracy = {}
    for repeat in range(repeats):
        for name, run in (("plain loop", plain_loop), ("lightning", lightning_fit)):
            start = time.perf_counter()
            accuracy[name] = run(lab, datamodule, epochs, seed=repeat)
            timings[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in timings.items()}, accuracy


def steps_per_epoch(datamodule) -> int:
    return len(datamodule.train_dataloader()) + len(datamodule.val_dataloader())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab", choices=["logreg", "mlp", "cnn", "rotation"], default="logreg")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    datamodule = build_datamodule("mnist", batch_size=args.batch_size)
    datamodule.setup()
    lightning_fit(args.lab, datamodule, 1, 0)  # warm-up: first-call imports and allocations
    median, accuracy = median_times(args.lab, datamodule, args.epochs, args.repeats)

    model = {"logreg": "softmax regression", "mlp": "MLP 784-256-128-10",
             "cnn": "LeNet-5 (batch norm, augmentation)",
             "rotation": "rotation pretext (DigitBackbone, 4 rotations of every image)"}[args.lab]
    print(f"{model}, offline MNIST subset, {args.epochs} epochs, batch {args.batch_size}, "
          f"{args.repeats} runs, torch threads {torch.get_num_threads()}")
    for name, seconds in median.items():
        print(f"  {name:<11} median {seconds:.3f} s  last val acc {accuracy[name]:.3f}")
    print(f"  ratio lightning / plain loop: {median['lightning'] / median['plain loop']:.2f}x; "
          f"Lightning's extra time per epoch: {(median['lightning'] - median['plain loop']) / args.epochs * 1e3:.1f} ms")

    # Lightning's extra time = per_step * steps + per_epoch * epochs. A second
    # batch size gives a second equation; the two unknowns follow.
    other = build_datamodule("mnist", batch_size=args.batch_size * 8)
    other.setup()
    other_median, _ = median_times(args.lab, other, args.epochs, args.repeats)
    extra = [m["lightning"] - m["plain loop"] for m in (median, other_median)]
    steps = [steps_per_epoch(dm) * args.epochs for dm in (datamodule, other)]
    per_step = (extra[0] - extra[1]) / (steps[0] - steps[1])
    per_epoch = (extra[0] - per_step * steps[0]) / args.epochs
    print(f"  Lightning's extra time: {per_step * 1e3:.2f} ms per step (train or val batch), "
          f"{per_epoch * 1e3:.1f} ms per epoch; the plain loop takes "
          f"{median['plain loop'] / steps[0] * 1e3:.2f} ms per step at batch {args.batch_size}")
    print(f"  (at batch {args.batch_size * 8}: ratio "
          f"{other_median['lightning'] / other_median['plain loop']:.2f}x)")


if __name__ == "__main__":
    main()
