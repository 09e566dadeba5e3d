"""``litlabs train LAB``: train one of a lab's models and show how it learned."""
from __future__ import annotations

import inspect
import json
import logging
import os
from dataclasses import replace
from pathlib import Path

import torch

from datamodules import build_datamodule
from grader.course import LabError, data_shape_kwargs, get_lab, implementation_path, load_module
from grader.training.plots import plot_comparison, plot_learning_curves
from grader.training.trainer import TrainConfig, build_trainer, next_version

VERSION_VARIABLE = "LITLABS_RUN_VERSION"


def train_lab(
    lab_name: str,
    model_name: str | None = None,
    impl: str = "solutions",
    data_dir: str | None = None,
    download: bool = False,
    batch_size: int | None = None,
    config: TrainConfig | None = None,
    console=None,
    model_args: dict | None = None,
) -> dict:
    """Train a lab model end to end; return {"val_acc": ..., "test_acc": ..., "run_dir": ...}.

    Writes metrics.csv, learning_curve.png and weights.pt into a new ``version_N`` folder
    of the run directory, so every run keeps its own history.
    """
    lab = get_lab(lab_name)
    model_name = model_name or lab.default_model
    if model_name not in lab.models:
        raise LabError(f"lab {lab.name!r} has no model {model_name!r}; choose from {', '.join(lab.models)}")
    spec = lab.models[model_name]
    config = config or TrainConfig(max_epochs=spec.max_epochs)
    path = implementation_path(lab, impl)
    module = load_module(path)
    if inspect.isfunction(getattr(module, spec.class_name, None)):
        return _experiment(lab, model_name, getattr(module, spec.class_name), config, console)

    datamodule = build_datamodule(
        spec.dataset, data_dir=data_dir, download=download,
        batch_size=batch_size or spec.batch_size, seed=config.seed, classes=spec.classes,
        **({"labels_per_class": spec.labels_per_class} if spec.labels_per_class else {}),
    )
    datamodule.setup()
    # Every process of a DDP run must log into the same version_N: the first process picks it,
    # and the processes Lightning starts read it from the environment they inherit.
    chosen_here = VERSION_VARIABLE not in os.environ
    if chosen_here:
        os.environ[VERSION_VARIABLE] = str(next_version(config.run_dir))
    try:
        return _fit(lab, model_name, spec, module, path, datamodule,
                    replace(config, version=int(os.environ[VERSION_VARIABLE])), console, model_args)
    finally:
        if chosen_here:
            os.environ.pop(VERSION_VARIABLE, None)


def _fit(lab, model_name, spec, module, path, datamodule, config, console, model_args) -> dict:
    trainer = build_trainer(config)
    model_class = getattr(module, spec.class_name, None)
    if model_class is None:
        raise LabError(f"{path} has no {spec.class_name}: is it the {lab.name} lab file?")
    kwargs = {**data_shape_kwargs(model_class, datamodule), **spec.init, **(model_args or {})}
    accepted = inspect.signature(model_class).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        raise LabError(f"{spec.class_name} has no argument {unknown[0]!r}; it takes: {', '.join(accepted)}")
    model = model_class(**kwargs)

    if trainer.is_global_zero and console is not None:
        console.print(f"[bold]{lab.name}[/] / {model_name}: {spec.class_name} from {path}")
        console.print(f"data: {datamodule.name} — {datamodule.source}")
    trainer.fit(model, datamodule=datamodule)
    val_acc = float(trainer.callback_metrics.get("val_acc", float("nan")))
    (test_metrics,) = trainer.test(model, datamodule=datamodule, verbose=False)
    results = {"val_acc": val_acc, "test_acc": float(test_metrics["test_acc"])}

    run_dir = Path(trainer.logger.log_dir if trainer.logger else config.run_dir)
    results["run_dir"] = str(run_dir)
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), run_dir / "weights.pt")
        plot = plot_learning_curves(run_dir, title=f"{lab.name} / {model_name}")
        if console is not None:
            console.print(f"final val accuracy:  {results['val_acc']:.4f}")
            console.print(f"final test accuracy: {results['test_acc']:.4f}")
            console.print(f"run directory: {run_dir} (earlier runs are kept beside it)")
            console.print(f"learning curve: {plot}   weights: {run_dir / 'weights.pt'}")
    logging.getLogger("litlabs").debug("results %s", results)
    return results


def _experiment(lab, name, function, config, console) -> dict:
    """Run a lab's experiment (a function returning {row: {column: accuracy}}); print it and plot it."""
    from grader.training.trainer import _quiet_lightning

    _quiet_lightning()  # the experiment builds its own Trainers
    table = function(seed=config.seed, accelerator=config.accelerator)  # "auto" is the Trainer's to resolve
    run_dir = Path(config.run_dir) / f"version_{next_version(config.run_dir)}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(json.dumps({str(k): v for k, v in table.items()}, indent=2))
    plot = plot_comparison(table, run_dir / "comparison.png", title=f"{lab.name} / {name}")
    if console is not None:
        from rich.table import Table

        columns = list(next(iter(table.values())))
        shown = Table(title=f"{lab.name} / {name}: test accuracy")
        for column in ["labels per class", *columns]:
            shown.add_column(column, justify="right")
        for row, values in table.items():
            shown.add_row(str(row), *(f"{values[c]:.3f}" for c in columns))
        console.print(shown)
        console.print(f"results: {run_dir / 'results.json'}   plot: {plot}")
    return {"table": table, "run_dir": str(run_dir)}
