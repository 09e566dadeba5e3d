"""How much does Lightning cost? Lab 1's softmax regression, plain loop vs the trainer factory.

Both train the reference SoftmaxRegression on the offline MNIST subset for the
same epochs and batch size, with one validation pass per epoch, in this process.
Prints the median wall time of each over several runs and their ratio.

    python benchmarks/train_overhead.py [--repeats 5] [--epochs 10]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    datamodule = build_datamodule("mnist", batch_size=args.batch_size)
    datamodule.setup()
    timings = {"plain loop": [], "lightning": []}
    accuracy = {}
    lightning_fit(datamodule, 1, 0)  # warm-up: first-call imports and allocations
    for repeat in range(args.repeats):
        for name, run in (("plain loop", plain_loop), ("lightning", lightning_fit)):
            start = time.perf_counter()
            accuracy[name] = run(datamodule, args.epochs, seed=repeat)
            timings[name].append(time.perf_counter() - start)

    print(f"softmax regression, offline MNIST subset, {args.epochs} epochs, batch {args.batch_size}, "
          f"{args.repeats} runs, torch threads {torch.get_num_threads()}")
    for name, times in timings.items():
        print(f"  {name:<11} median {statistics.median(times):.3f} s  "
              f"(min {min(times):.3f}, max {max(times):.3f})  last val acc {accuracy[name]:.3f}")
    ratio = statistics.median(timings["lightning"]) / statistics.median(timings["plain loop"])
    print(f"  ratio lightning / plain loop: {ratio:.2f}x")


if __name__ == "__main__":
    main()
