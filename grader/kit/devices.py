"""Where new tensors live, checked without a GPU: run the submission on the meta device.

Meta tensors have shapes and dtypes but no data. A function that makes a tensor on the default
device (``torch.eye(C)``, ``torch.arange(4)``) instead of its input's fails on them exactly as it
would for CUDA inputs on a GPU, or returns a result on "cpu". Operations whose output shape
depends on the data (boolean masks, ``nonzero``) cannot run on meta tensors at all: those give
no verdict, so a correct submission written with masks keeps its points.

    program = Program()
    x = meta.tensor(program, _random(2, 1, 4, 4))
    out = program.call(None, "rotate_batch", x)
    devices = {"the labels": meta.device(program, program.call(out, "__getitem__", 1))}
    meta.require(submission, program, devices, what="rotate_batch on meta tensors")
"""
from __future__ import annotations

import re

from grader.kit import expect
from grader.kit.program import Program, Ref
from grader.sandbox.limits import SubmissionError

ADVICE = "make new tensors on the input's device (torch.zeros_like, torch.arange(..., device=x.device))"


def tensor(program: Program, value) -> Ref:
    """The judge's tensor, moved to the meta device in the worker."""
    return program.call(program.value(value), "to", "meta")


def device(program: Program, ref: Ref) -> Ref:
    """The name of the device a result lives on ("meta", "cpu"...)."""
    return program.call(program.attr(ref, "device"), "__str__")


def require(submission, program: Program, devices: dict[str, Ref], what: str) -> None:
    """Run program; fail the check if a result named in ``devices`` is not on meta, or torch complained
    of tensors on two devices. No verdict where the submission uses an operation meta cannot run."""
    try:
        got = submission.run(program, what=what)
    except SubmissionError as err:
        message = str(err).rsplit("; in ", 1)[0]  # the section label is ours
        if re.search(r"\bdevices?\b", message) and not message.startswith("AttributeError"):  # torch's words
            raise expect.CheckFailed(f"{err} ({ADVICE})") from None
        return
    for name, ref in devices.items():
        if got[ref] != "meta":
            raise expect.CheckFailed(f"{what}: {name} came back on {got[ref]!r}, not on the input's device; {ADVICE}")
