"""The lab registry: adding a lab is one ``Lab(...)`` line in ``LABS``.

Each lab has a reference module ``solutions/NAME.py``, a generated stub
``labs/NAME.py``, checks ``grader/checks/NAME.py`` (and hidden ones in
``grader/hidden/NAME.py``), and a handout ``labs/NAME.md``.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path


class LabError(Exception):
    """A lab name, implementation or file that cannot be used; the message says why."""


@dataclass(frozen=True)
class Model:
    """How ``litlabs train`` builds and feeds one of a lab's LightningModules."""

    class_name: str
    dataset: str = "mnist"
    classes: tuple[int, ...] | None = None  # keep only these labels, renumbered 0..k-1
    batch_size: int = 64
    max_epochs: int = 10


@dataclass(frozen=True)
class Lab:
    name: str
    title: str
    models: dict[str, Model] = field(default_factory=dict)

    @property
    def default_model(self) -> str:
        return next(iter(self.models))

    @property
    def filename(self) -> str:
        return f"{self.name}.py"


LABS = {
    lab.name: lab
    for lab in [
        Lab("logreg", "Logistic regression: perceptron, logistic and softmax regression",
            {"softmax": Model("SoftmaxRegression"),
             "binary": Model("BinaryLogisticRegression", classes=(3, 8), max_epochs=5)}),
    ]
}

REPO_ROOT = Path(__file__).resolve().parent.parent


def get_lab(name: str) -> Lab:
    if name not in LABS:
        raise LabError(f"unknown lab {name!r}; known labs: {', '.join(LABS)}")
    return LABS[name]


def implementation_path(lab: Lab, impl: str) -> Path:
    """Where the code of ``impl`` lives: "solutions", "labs", a directory or a .py file."""
    if impl in ("solutions", "labs"):
        path = REPO_ROOT / impl / lab.filename
    else:
        path = Path(impl)
        if path.is_dir():
            path = path / lab.filename
    if not path.is_file():
        raise LabError(f"no implementation of lab {lab.name!r} at {path}: "
                       f"expected a file {lab.filename} (or pass --impl solutions|labs)")
    return path


def load_module(path: Path, module_name: str):
    """Import a lab file in *this* process. Only for code the user trusts (train, validate)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # Lightning's DDP launcher and pickling need it
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[module_name]
        raise LabError(f"{path} could not be imported: {type(err).__name__}: {err}") from err
    return module
