"""One trainer factory for every lab.

``build_trainer`` turns the few choices a lab run needs into a ``lightning.Trainer``:
where to run (accelerator, devices, strategy), how exactly (precision, seed,
determinism), for how long, and what to show and keep (progress bar, CSV log,
run directory). On CPU, ``strategy="ddp"`` runs one process per device and uses
the gloo backend, so distributed code is exercised without a GPU.
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import CSVLogger


@dataclass
class TrainConfig:
    accelerator: str = "auto"  # "auto", "cpu" or "gpu"
    devices: int = 1  # per node
    num_nodes: int = 1  # machines; torchrun or SLURM starts the processes on each (Lightning detects both)
    strategy: str = "auto"  # "auto", "ddp" or "ddp_spawn"
    precision: str = "32-true"
    sync_batchnorm: bool = False  # several processes: batch norm with the global batch's statistics
    max_epochs: int = 10
    max_steps: int = -1  # stop after this many optimizer steps (-1: no limit), for quick runs
    seed: int = 0
    deterministic: bool = True
    run_dir: str | Path = "runs/default"  # each run logs into its own run_dir/version_N
    version: int | None = None  # N; None: the next free one
    progress_bar: bool | None = None  # None: on a terminal only, never in CI
    logger: bool = True


def show_progress_bar() -> bool:
    """A progress bar helps a person at a terminal; in CI or a grader it is noise."""
    return sys.stdout.isatty() and not os.environ.get("CI")


def build_trainer(config: TrainConfig, **overrides) -> L.Trainer:
    """Build a ``lightning.Trainer`` from a ``TrainConfig``; ``overrides`` go to the Trainer."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    progress_bar = show_progress_bar() if config.progress_bar is None else config.progress_bar
    callbacks = list(overrides.pop("callbacks", []))  # a caller's own callbacks, plus ours
    if progress_bar:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar(leave=True))
    run_dir = Path(config.run_dir)
    # One version_N folder per run: a second run into the same run directory keeps the first one's logs.
    logger = CSVLogger(save_dir=str(run_dir), name="", version=config.version) if config.logger else False
    strategy = config.strategy
    if strategy == "ddp" and config.devices * config.num_nodes == 1:
        strategy = "auto"  # a one-process "DDP" only adds start-up cost
    _quiet_lightning()
    return L.Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=strategy,
        precision=config.precision,
        **_batchnorm_sync(config),
        max_epochs=config.max_epochs,
        max_steps=config.max_steps,
        deterministic=config.deterministic,
        default_root_dir=str(run_dir),
        logger=logger,
        callbacks=callbacks,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        enable_checkpointing=False,
        # Our datamodules shard the in-memory batches themselves (see TensorBatches).
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        log_every_n_steps=50,
        **overrides,
    )


def _batchnorm_sync(config: TrainConfig) -> dict:
    """Trainer arguments for synchronised batch norm: torch's SyncBatchNorm on GPUs, ours on CPU processes."""
    if not config.sync_batchnorm:
        return {}
    import torch

    if config.accelerator == "gpu" or (config.accelerator == "auto" and torch.cuda.is_available()):
        return {"sync_batchnorm": True}
    from grader.training.sync_batchnorm import SyncBatchNormAnyDevice

    return {"plugins": [SyncBatchNormAnyDevice()]}  # torch's refuses CPU tensors


def _quiet_lightning() -> None:
    """Silence Lightning's start-up tips, which say nothing to a student here."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.fabric.utilities.seed", "lightning.pytorch.trainer.connectors.data_connector"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import warnings

    # Data lives in memory and is batched in the main process on purpose.
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    # Our modules log once per epoch, so a per-step logging interval does not apply.
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*configure_optimizers` returned `None`.*")
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    # Frozen batch-norm layers (Lab 4) are in eval mode at the start of training on purpose.
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode at the start of training.*")
    # A lab model that augments its batches in on_after_batch_transfer does so on purpose.
    warnings.filterwarnings("ignore", message=".*overridden `on_after_batch_transfer`.*")


def next_version(run_dir: str | Path) -> int:
    """The first N for which run_dir/version_N does not exist yet."""
    taken = [int(p.name.split("_")[1]) for p in Path(run_dir).glob("version_*") if p.name.split("_")[1].isdigit()]
    return max(taken, default=-1) + 1
