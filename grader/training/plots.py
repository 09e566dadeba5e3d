"""Learning curves and comparison plots from a run's CSV metrics.
"""
from __future__ import annotations

import csv
from pathlib import Path


def read_metrics(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Read the CSV logger's metrics.csv: {metric name: [(epoch, value), ...]}."""
    path = Path(run_dir) / "metrics.csv"
    curves: dict[str, list[tuple[int, float]]] = {}
    if not path.exists():
        return curves
    with path.open() as f:
        for row in csv.DictReader(f):
            for name, value in row.items():
                if name in ("epoch", "step") or value in ("", None):
                    continue
                curves.setdefault(name, []).append((int(float(row["epoch"])), float(value)))
    return curves


def plot_learning_curves(run_dir: str | Path, title: str = "") -> Path:
    """Save learning_curve.png in the run directory: loss and accuracy per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = read_metrics(run_dir)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for name, points in sorted(curves.items()):
        if not name.startswith(("train_", "val_")):
            continue
        axis = ax_loss if name.endswith("loss") else ax_acc
        epochs, values = zip(*points)
        axis.plot(epochs, values, marker="o", label=name)
    for axis, ylabel in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        axis.set_xlabel("epoch")
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
        if axis.has_data():
            axis.legend()
    fig.suptitle(title)
    fig.tight_layout()
    out = Path(run_dir) / "learning_curve.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_comparison(table: dict, out: str | Path, title: str = "") -> Path:
    """Save a grouped bar chart of {row: {column: accuracy}} (e.g. label budget × training regime)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, columns = list(table), list(next(iter(table.values())))
    width = 0.8 / len(columns)
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, column in enumerate(columns):
        ax.bar([r + i * width for r in range(len(rows))], [table[row][column] for row in rows], width, label=column)
    ax.set_xticks([r + width * (len(columns) - 1) / 2 for r in range(len(rows))], [str(r) for r in rows])
    ax.set_xlabel("labelled examples per class")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)
