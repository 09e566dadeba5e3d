"""How much does Lightning cost? Lab 1's softmax regression, plain loop vs the trainer factory.

Both train the reference SoftmaxRegression on the offline MNIST subset for the
same epochs and batch size, with one validation pass per epoch, in this process.
Prints the median wall time of each over several runs and their ratio, and
how Lightning's extra time splits into a fixed cost per optimisation step and
per epoch (from a second, short run at another batch size), since that fixed
cost, not the model, is what decides the ratio for a model this small.

    python benchmarks/train_overhead.py [--repeats 5] [--epochs 10] [--batch-size 64]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from datamodules import build_datamodule
from grader.trainer import TrainConfig, build_trainer
from solutions.logreg import SoftmaxRegression, cross_entropy


def plain_loop(datamodule, epochs: int, seed: int) -> float:
    """The same training written as the lecture notes' PyTorch loop.

    It keeps the same epoch metrics as the LightningModule (mean loss and
    accuracy of train and val), so the difference is Lightning's machinery alone.
    """
    torch.manual_seed(seed)
    model = SoftmaxRegression()
    optimizer = torch.optim.SGD(model.parameters(), lr=model.hparams.lr)
    train_loader, val_loader = datamodule.train_dataloader(), datamodule.val_dataloader()
    history = []
    for _ in range(epochs):
        model.train()
        for x, y in train_loader:
            logits = model(x)
            loss = cross_entropy(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            model.metrics["fit"].update(loss, logits, y)
        model.eval()
        with torch.no_grad():
            for x, y in val_loader:
                logits = model(x)
                model.metrics["val"].update(cross_entropy(logits, y), logits, y)
        epoch = {}
        for stage in ("fit", "val"):
            metrics = model.metrics[stage]
            epoch[stage] = (metrics.loss.compute().item(), metrics.acc.compute().item())
            metrics.loss.reset()
            metrics.acc.reset()
        history.append(epoch)
    return history[-1]["val"][1]


def lightning_fit(datamodule, epochs: int, seed: int) -> float:
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = build_trainer(TrainConfig(max_epochs=epochs, seed=seed, run_dir=run_dir, progress_bar=False,
                                            accelerator="cpu"))
        model = SoftmaxRegression()
        trainer.fit(model, datamodule=datamodule)
        return float(trainer.callback_metrics["val_acc"])


def median_times(datamodule, epochs: int, repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds of the plain loop and of Lightning, alternating runs; and each one's last val acc."""
    timings = {"plain loop": [], "lightning": []}
    accuracy = {}
    for repeat in range(repeats):
        for name, run in (("plain loop", plain_loop), ("lightning", lightning_fit)):
            start = time.perf_counter()
            accuracy[name] = run(datamodule, epochs, seed=repeat)
            timings[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in timings.items()}, accuracy


def steps_per_epoch(datamodule) -> int:
    return len(datamodule.train_dataloader()) + len(datamodule.val_dataloader())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    datamodule = build_datamodule("mnist", batch_size=args.batch_size)
    datamodule.setup()
    lightning_fit(datamodule, 1, 0)  # warm-up: first-call imports and allocations
    median, accuracy = median_times(datamodule, args.epochs, args.repeats)

    print(f"softmax regression, offline MNIST subset, {args.epochs} epochs, batch {args.batch_size}, "
          f"{args.repeats} runs, torch threads {torch.get_num_threads()}")
    for name, seconds in median.items():
        print(f"  {name:<11} median {seconds:.3f} s  last val acc {accuracy[name]:.3f}")
    print(f"  ratio lightning / plain loop: {median['lightning'] / median['plain loop']:.2f}x")

    # Lightning's extra time = per_step * steps + per_epoch * epochs. A second
    # batch size gives a second equation; the two unknowns follow.
    other = build_datamodule("mnist", batch_size=args.batch_size * 8)
    other.setup()
    other_median, _ = median_times(other, args.epochs, args.repeats)
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
