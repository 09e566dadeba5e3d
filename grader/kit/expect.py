"""Assertions for checks, with messages that say what was expected and what came back."""
from __future__ import annotations

import math

import torch


def random_tensor(*shape, seed=0, dtype=torch.float32, scale=1.0) -> torch.Tensor:
    """A seeded standard-normal tensor (drawn in float64, then cast): the same numbers on every machine."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=generator, dtype=torch.float64) * scale).to(dtype)


def random_labels(n: int, num_classes: int, seed=0) -> torch.Tensor:
    """n seeded int64 labels in 0..num_classes-1."""
    return torch.randint(0, num_classes, (n,), generator=torch.Generator().manual_seed(seed))


class CheckFailed(AssertionError):
    """A check's verdict: the message is shown to the student as the reason."""


def describe(t) -> str:
    if isinstance(t, torch.Tensor):
        return f"tensor of shape {tuple(t.shape)} and dtype {str(t.dtype).replace('torch.', '')}"
    return type(t).__name__


def tensor(value, what: str, shape: tuple | None = None, floating: bool = False, finite: bool = False) -> torch.Tensor:
    """The value as a tensor, or a failure naming what came back instead.

    Everything a worker sends is the submission's: check what the judge relies on (``shape``, a
    ``floating`` dtype, ``finite`` values) before any torch function of the judge touches it.
    """
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(f"{what} returned a {describe(value)}, expected a tensor")
    if shape is not None:
        _exactly(value, shape, what)
    if floating and not value.dtype.is_floating_point:
        raise CheckFailed(f"{what}: expected floating-point values, got dtype {str(value.dtype).replace('torch.', '')}")
    if finite and not torch.isfinite(value).all():
        raise CheckFailed(f"{what}: {int((~torch.isfinite(value)).sum())} value(s) are NaN or infinite")
    return value


def shape(value, expected_shape: tuple, what: str) -> torch.Tensor:
    """The value as a tensor of exactly ``expected_shape``, or a failure naming what, the expected and the got shape."""
    return _exactly(tensor(value, what), expected_shape, what)


def _exactly(value: torch.Tensor, expected_shape: tuple, what: str) -> torch.Tensor:
    if tuple(value.shape) != tuple(expected_shape):
        raise CheckFailed(f"{what}: expected shape {tuple(expected_shape)}, got {tuple(value.shape)}")
    return value


def number(value, what: str) -> float:
    """The value as a finite float (a bool is not a number), or a failure naming what came back instead.

    Comparisons with NaN are always False, so ``abs(x - y) > tol`` lets NaN through: every number
    the worker sends goes through here before it is compared.
    """
    if type(value) not in (int, float) or not math.isfinite(value):
        raise CheckFailed(f"{what} is {value!r}, expected a finite number" if type(value) in (int, float)
                          else f"{what} is a {describe(value)}, expected a number")
    return float(value)


def within(value: float, expected: float, what: str, rel: float = 0.0, abs_tol: float = 0.0) -> None:
    """Fail unless value is finite and within rel·|expected| + abs_tol of expected (NaN fails)."""
    value = number(value, what)
    if not abs(value - expected) <= rel * abs(expected) + abs_tol:
        raise CheckFailed(f"{what}: expected {expected:.6g}, got {value:.6g}")


def pair(value, what: str) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise CheckFailed(f"{what} returned a {describe(value)}, expected a tuple of two tensors")
    return tuple(value)


def close(got, expected: torch.Tensor, what: str, inputs: str = "", atol: float = 1e-6, rtol: float = 1e-5,
          check_dtype: bool = True) -> None:
    """Fail unless got is a tensor like expected: shape, dtype, finite, values within tolerance."""
    where = f" for {inputs}" if inputs else ""
    got = tensor(got, what)
    if got.shape != expected.shape:
        raise CheckFailed(f"{what}{where}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}")
    if check_dtype and got.dtype != expected.dtype:
        raise CheckFailed(f"{what}{where}: expected dtype {expected.dtype}, got {got.dtype} (keep the input's dtype)")
    if not torch.isfinite(got).all():
        bad = (~torch.isfinite(got)).sum().item()
        raise CheckFailed(f"{what}{where}: {bad} value(s) are NaN or infinite, expected all finite")
    got, expected = got.to(torch.float64), expected.to(torch.float64)
    if not torch.allclose(got, expected, atol=atol, rtol=rtol):
        error = (got - expected).abs()
        index = tuple(int(i) for i in torch.nonzero(error == error.max())[0])
        raise CheckFailed(
            f"{what}{where}: max abs error {error.max().item():.3g} (tolerance {atol:g} + {rtol:g}·|expected|); "
            f"at index {index} expected {expected[index].item():.6g}, got {got[index].item():.6g}"
        )
