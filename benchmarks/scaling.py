"""Does a second process help? Lab 3's LeNet-5 on 1 and on N DDP processes, same global batch.

Each configuration runs as a fresh ``python`` process (what ``litlabs train cnn --devices N
--strategy ddp`` starts), trains the reference LeNet-5 (batch norm, augmentation) on the
offline MNIST subset with validation off, and reports from global rank 0:
- throughput: training images per second over every step after the first;
- time to first step: from launching the command to the end of the first optimizer step
  (interpreter and torch start-up, process group, data, the first batch);
- scaling efficiency: throughput with N processes / (N × throughput with 1).
Medians over several runs. The accelerator is chosen as ``litlabs train`` does (``auto``):
CPU processes talking over gloo here, GPUs over NCCL where there are some.

    python benchmarks/scaling.py [--devices 2] [--repeats 3] [--epochs 3] [--global-batch 128]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCHED = "LITLABS_BENCH_LAUNCHED"  # wall-clock time the parent started this configuration


def measure(devices: int, epochs: int, global_batch: int, out: str) -> None:
    """Run in the child: train, and have global rank 0 write its timings as JSON to out."""
    import lightning as L
    import torch

    from datamodules import build_datamodule
    from grader.training.trainer import TrainConfig, build_trainer
    from solutions.cnn import LeNet5

    class StepClock(L.Callback):
        def __init__(self):
            self.ends = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.ends.append(time.time())

    clock = StepClock()
    config = TrainConfig(devices=devices, strategy="ddp" if devices > 1 else "auto", max_epochs=epochs,
                         progress_bar=False, logger=False, run_dir=tempfile.mkdtemp())
    trainer = build_trainer(config, callbacks=[clock], limit_val_batches=0)
    datamodule = build_datamodule("mnist", batch_size=global_batch // devices)
    trainer.fit(LeNet5(), datamodule=datamodule)
    if trainer.is_global_zero:
        steps = len(clock.ends) - 1
        Path(out).write_text(json.dumps({
            "first_step_s": clock.ends[0] - float(os.environ[LAUNCHED]),
            "images_per_s": steps * global_batch / (clock.ends[-1] - clock.ends[0]),
            "threads": torch.get_num_threads(), "device": str(trainer.strategy.root_device),
        }))


def run_once(devices: int, epochs: int, global_batch: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "timings.json"
        env = {**os.environ, LAUNCHED: repr(time.time())}
        cmd = [sys.executable, __file__, "--measure", str(devices), "--epochs", str(epochs),
               "--global-batch", str(global_batch), "--out", str(out)]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            sys.exit(f"{devices} process(es) failed:\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=2, help="processes to compare with one")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--global-batch", type=int, default=128, help="images per step, over all processes")
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure, args.epochs, args.global_batch, args.out)

    runs = {n: [] for n in (1, args.devices)}
    for _ in range(args.repeats):
        for n in runs:  # alternate, so a slow moment of the machine does not land on one side only
            runs[n].append(run_once(n, args.epochs, args.global_batch))
    median = {n: {key: statistics.median(r[key] for r in found) for key in ("images_per_s", "first_step_s")}
              for n, found in runs.items()}
    last = {n: found[-1] for n, found in runs.items()}
    print(f"LeNet-5 (batch norm, augmentation), offline MNIST subset, {args.epochs} epochs, global batch "
          f"{args.global_batch}, {args.repeats} runs each, {os.cpu_count()} CPU cores")
    for n, figures in median.items():
        print(f"  {n} process(es) on {last[n]['device']} ({last[n]['threads']} torch thread(s) each): "
              f"median {figures['images_per_s']:.0f} images/s, time to first step {figures['first_step_s']:.1f} s")
    speedup = median[args.devices]["images_per_s"] / median[1]["images_per_s"]
    print(f"  speed-up {speedup:.2f}x with {args.devices} processes; scaling efficiency "
          f"{speedup / args.devices:.0%}")


if __name__ == "__main__":
    main()
