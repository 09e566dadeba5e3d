"""The course: its labs (adding a lab is one ``Lab(...)`` line in ``LABS``) and what checks each has.

Each lab has a reference module ``solutions/NAME.py``, a generated stub
``labs/NAME.py``, checks ``grader/checks/test_NAME.py`` (and hidden ones in
``grader/hidden/test_NAME.py``; either may go on in ``test_NAME_PART.py``), and a handout ``labs/NAME.md``.
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
    labels_per_class: int | None = None  # keep only the first k training examples of each class
    batch_size: int = 64
    max_epochs: int = 10
    init: dict = field(default_factory=dict)  # keyword arguments for the class, beyond the data's shape


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

    def model_for(self, model: str | None = None, backbone: str | None = None) -> str:
        """The model ``litlabs train`` builds: the one asked for; else the one built on ``backbone`` (its
        data set comes with it); else the lab's first."""
        if model:
            return model
        on_backbone = (name for name, spec in self.models.items() if backbone and spec.init.get("backbone") == backbone)
        return next(on_backbone, self.default_model)


def data_shape_kwargs(model_class, datamodule) -> dict:
    """What a lab's model needs to know of the data, for the keywords its __init__ takes.

    Any of ``num_features`` (values per example), ``num_classes``, ``in_channels`` and
    ``input_shape`` (C, H, W): a new lab's model takes whichever it needs, and
    ``litlabs train`` builds it without code of its own.
    """
    import inspect
    import math

    dims = tuple(datamodule.dims)
    known = {"num_features": math.prod(dims), "num_classes": datamodule.output_classes,
             "in_channels": dims[0], "input_shape": dims}
    accepted = inspect.signature(model_class).parameters
    return {name: value for name, value in known.items() if name in accepted}


# Lab 4's target task: digits 5–9 (the backbone learned 0–4), 10 labelled images of each.
FEW_DIGITS = dict(classes=(5, 6, 7, 8, 9), labels_per_class=10, batch_size=25, max_epochs=10)

LABS = {
    lab.name: lab
    for lab in [
        Lab("logreg", "Logistic regression: perceptron, logistic and softmax regression",
            {"softmax": Model("SoftmaxRegression"),
             "binary": Model("BinaryLogisticRegression", classes=(3, 8), max_epochs=5)}),
        Lab("mlp", "Backpropagation and the MLP: autograd, hand-written backward passes, initialisation, dropout",
            {"mlp": Model("MLP", max_epochs=30, init={"max_shift": 2})}),
        Lab("cnn", "Convolutional networks: convolution and pooling by hand, batch normalisation, augmentation, LeNet-5",
            {"lenet5": Model("LeNet5", max_epochs=10)}),
        Lab("transfer", "Transfer learning: freeze or fine-tune a pretrained backbone, and measure when transfer wins",
            {"probe": Model("TransferClassifier", **FEW_DIGITS, init={"mode": "linear_probe"}),
             "finetune": Model("TransferClassifier", **FEW_DIGITS, init={"mode": "fine_tune"}),
             "gradual": Model("TransferClassifier", **FEW_DIGITS, init={"mode": "gradual"}),
             "compare": Model("compare_regimes"),  # an experiment: a function, not a model
             "resnet18": Model("TransferClassifier", dataset="cifar10", max_epochs=5,
                               init={"backbone": "resnet18", "mode": "fine_tune"})}),
        Lab("rotation", "Self-supervised learning: a rotation pretext task, then a linear probe with few labels",
            {"pretext": Model("RotationPretext", max_epochs=5),
             "probe": Model("ssl_experiment")}),  # rotation features vs random features, 10 labels per digit
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


def load_module(path: Path):
    """Import a lab file in *this* process. Only for code the user trusts (train).

    The module gets an importable name (``solutions.logreg``, or ``logreg`` with
    its folder put on sys.path) so that processes started by DDP can import it too.
    """
    path = Path(path).resolve()
    if path.parent.parent == REPO_ROOT and path.parent.name in ("solutions", "labs"):
        name = f"{path.parent.name}.{path.stem}"
    else:
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        name = path.stem
        sys.modules.pop(name, None)
    try:
        module = importlib.import_module(name)
    except Exception as err:
        raise LabError(f"{path} could not be imported: {type(err).__name__}: {err}") from err
    if Path(module.__file__).resolve() != path:
        raise LabError(f"importing {name} found {module.__file__} instead of {path}: rename the file or folder")
    return module


# --- What checks a lab has and what they are worth, read from the check modules themselves ---------
# Handouts and the gradebook take points from here, so they cannot drift from the checks that award them.

CHECKS_DIR = REPO_ROOT / "grader" / "checks"
HIDDEN_DIR = REPO_ROOT / "grader" / "hidden"
# What submitted code must never read: hidden from the sandbox user while grading as root.
# git's objects hold the reference too, and the audit's mistakes quote it
PRIVATE_PATHS = (REPO_ROOT / "solutions", HIDDEN_DIR, REPO_ROOT / ".git", REPO_ROOT / "grader" / "mistakes")


CHECK_ATTRIBUTE = "litlabs_check"  # where @check (grader.kit.check) puts a check's CheckSpec


@dataclass(frozen=True)
class CheckSpec:
    """What ``@check(points=…, hint=…)`` declared."""

    points: float
    hint: str


def spec_of(function) -> CheckSpec | None:
    """The declaration of a check function; None for a function that is not one."""
    return getattr(function, CHECK_ATTRIBUTE, None)


def title_of(function) -> str:
    """A check's name in reports: its docstring's first line (``@check`` requires one)."""
    return function.__doc__.strip().splitlines()[0]


def is_hidden(path: str | Path) -> bool:
    """Is the check file at path a hidden one? Its folder alone says: grader/hidden/ is graded, never shipped."""
    return Path(path).resolve().parent.name == HIDDEN_DIR.name


@dataclass(frozen=True)
class CheckInfo:
    name: str
    title: str
    points: float
    hidden: bool
    hint: str


def check_files(lab: str, include_hidden: bool = True) -> list[Path]:
    """A lab's check files in the order they run: ``grader/checks/test_LAB.py``, then its further parts
    ``test_LAB_PART.py`` by name (where one file would be too long), then the hidden ones alike."""
    files = [CHECKS_DIR / f"test_{lab}.py", *_further_parts(CHECKS_DIR, lab)]
    if include_hidden:
        hidden = HIDDEN_DIR / f"test_{lab}.py"
        files += ([hidden] if hidden.exists() else []) + _further_parts(HIDDEN_DIR, lab)
    return files


def _further_parts(folder: Path, lab: str) -> list[Path]:
    others = [name for name in LABS if name.startswith(f"{lab}_")]  # test_LAB_PART.py might be another lab's
    return sorted(path for path in folder.glob(f"test_{lab}_*.py")
                  if not any(path.stem == f"test_{name}" or path.stem.startswith(f"test_{name}_") for name in others))


def _load(path: Path):
    name = f"litlabs_catalog_{path.parent.name}_{path.stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def checks_of(lab: str, include_hidden: bool = True) -> list[CheckInfo]:
    """The lab's checks in the order the grader runs them."""
    found = []
    for path in check_files(lab, include_hidden):
        module = _load(path)
        for name, function in vars(module).items():
            spec = spec_of(function) if name.startswith("test_") else None
            if spec is not None:
                found.append(CheckInfo(name, title_of(function), spec.points, is_hidden(path), spec.hint))
    return found
