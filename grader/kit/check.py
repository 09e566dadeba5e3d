"""``@check(points=…, hint=…)``: the one way to declare a check.

    @check(points=2, hint="Subtract the row maximum before exp: softmax is unchanged by a shift.")
    def test_softmax_is_stable_for_large_logits(submission):
        \"\"\"softmax stays finite for logits in the thousands\"\"\"   # the check's name in reports
        ...

A check is worth ``points`` (a positive number); ``hint`` is shown when it fails and points at the idea,
not the answer. Whether a check is hidden comes from its folder alone: ``grader/hidden/`` is graded and
never shipped or shown before grades are published; ``grader/checks/`` is what students run themselves.
"""
from __future__ import annotations

import math

from grader.course import CHECK_ATTRIBUTE, CheckSpec


class CheckDeclarationError(TypeError):
    """A check declared wrongly: raised when its module is imported, so a typo never grades silently."""


def check(*, points: float, hint: str = ""):
    """Declare the decorated ``test_*`` function a check worth ``points``, with a ``hint`` for a failure."""
    if isinstance(points, bool) or not isinstance(points, (int, float)) or not math.isfinite(points) or points <= 0:
        raise CheckDeclarationError(f"@check(points=…) takes a positive number of points, not {points!r}")
    if not isinstance(hint, str):
        raise CheckDeclarationError(f"@check(hint=…) takes a string, not {type(hint).__name__}")

    def declare(function):
        name = getattr(function, "__name__", repr(function))
        if not callable(function) or not name.startswith("test_"):
            raise CheckDeclarationError(f"@check decorates a function named test_…, not {name}")
        if not (function.__doc__ or "").strip():
            raise CheckDeclarationError(f"check {name} needs a docstring: its first line is its name in reports")
        if hasattr(function, CHECK_ATTRIBUTE):
            raise CheckDeclarationError(f"check {name} is declared twice")
        setattr(function, CHECK_ATTRIBUTE, CheckSpec(float(points), hint))
        return function

    return declare
