"""What a check can ask a worker to do: the operations ``worker_main`` serves, one per request.

``OPS`` maps each request's "op" to its function (``op_load``, ``op_call``, ``op_methods``, ``op_fit``,
``op_predict``, ``op_run``); ``worker_main`` (``grader.sandbox.worker``) looks it up at each request, after the
worker confined itself and before the reply goes through ``wire.to_plain``. Also here: what ``op_run``'s steps
use (``PlainContext``, ``StandIn``, the autograd engine swap, ``_graph_nodes``) and ``describe``, the one line
an exception becomes. Everything here runs in the worker, next to the submission.
"""
from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import traceback
import types

from grader.sandbox import wire
from grader.training.trainer import TrainConfig, build_trainer

_to_plain = wire.to_plain

SUBMISSION_MODULE = "submission"


def describe(err: BaseException, submission_path: str) -> str:
    """One line: the exception and where in the submission it was raised."""
    if isinstance(err, SystemExit):
        return f"the submission called sys.exit({err.code!r})"
    message = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
    text = f"{type(err).__name__}: {message}" if message else type(err).__name__
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == submission_path]
    line = err.lineno if isinstance(err, SyntaxError) else frames[-1].lineno if frames else None
    if line:
        text += f" ({os.path.basename(submission_path)}, line {line})"
    return text


# --- what the judge can ask ---------------------------------------------------------

def _seed(request):
    import lightning as L

    L.seed_everything(request.get("seed", 0), verbose=False)


def op_load(state, request):
    spec = importlib.util.spec_from_file_location(SUBMISSION_MODULE, state["path"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[SUBMISSION_MODULE] = module
    spec.loader.exec_module(module)
    state["module"] = module
    return True


def op_call(state, request):
    """Call a module-level function: {"name", "args", "kwargs"}."""
    _seed(request)
    function = getattr(state["module"], request["name"])
    return function(*request.get("args", []), **request.get("kwargs", {}))


def op_methods(state, request):
    """Build an object and call its methods in turn.

    {"class", "init": kwargs, "set": {attr: tensor} copied in before the calls,
     "calls": [[method, args]], "read": [attr]} ->
    {"results": [one per call], "state": {attr: value after the calls}}
    """
    _seed(request)
    obj = getattr(state["module"], request["class"])(**request.get("init", {}))
    import torch

    with torch.no_grad():
        for name, value in request.get("set", {}).items():
            getattr(obj, name).copy_(value)
    results = [getattr(obj, method)(*args) for method, args in request.get("calls", [])]
    return {"results": results, "state": {name: getattr(obj, name) for name in request.get("read", [])}}


def op_fit(state, request):
    """Train a LightningModule with the trainer factory on the data the judge sent.

    {"class", "init", "splits": {"train": (x, y), "val": (x, y)}, "dims", "num_classes",
     "data": datamodule options (batch_size, classes, labels_per_class, random_labels),
     "max_epochs", "seed"} -> {"state_before": state_dict, "state_after": state_dict}

    The worker never holds the split the judge scores on. The judge evaluates the returned
    states itself, in a fresh worker (``op_predict``): what this process says about its model
    counts for no more than the tensors it reports.
    """
    from datamodules.base import GivenSplits

    _seed(request)
    model = getattr(state["module"], request["class"])(**request.get("init", {}))
    state_before = {name: t.clone() for name, t in model.state_dict().items()}
    datamodule = GivenSplits(request["splits"], dims=request["dims"], num_classes=request["num_classes"],
                             seed=request.get("seed", 0), **request.get("data", {}))
    config = TrainConfig(accelerator="cpu", devices=1, max_epochs=request["max_epochs"],
                         seed=request.get("seed", 0), run_dir="run", progress_bar=False, logger=False)
    build_trainer(config).fit(model, datamodule=datamodule)
    return {"state_before": state_before, "state_after": model.state_dict()}


PREDICT_CHUNK = 250  # images per forward pass: less memory, and faster than one pass over 1,000


def op_predict(state, request):
    """Load each state into a new ``class(**init)`` and return its logits on the judge's inputs, in eval mode.

    {"class", "init", "states": [state_dict, ...], "probes": {name: x (N, ...)}, "use": [[name, ...], ...],
    "seed"} -> [{name: logits (N, ...)} for each state], each state on the probes ``use`` names for it
    (all of them where ``use`` is absent).
    """
    import torch

    _seed(request)
    model = getattr(state["module"], request["class"])(**request.get("init", {}))
    probes = request["probes"]
    evaluated = []
    for number, model_state in enumerate(request["states"]):
        model.load_state_dict(model_state)
        model.eval()
        names = request["use"][number] if request.get("use") else list(probes)
        with torch.no_grad():
            evaluated.append({name: torch.cat([model(x) for x in probes[name].split(PREDICT_CHUNK)])
                              for name in names})
    return evaluated


class PlainContext:
    """What ``torch.autograd.Function.forward`` and ``backward`` use of ``ctx``, for calling them directly."""

    def __init__(self, needs_input_grad=()):
        self.saved_tensors = ()
        self.needs_input_grad = tuple(bool(flag) for flag in needs_input_grad)

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors

    def mark_non_differentiable(self, *tensors):
        pass

    def set_materialize_grads(self, value):
        pass


class StandIn:
    """Takes the place of one of the submission's functions for one request, so that a check can see what
    an experiment function runs without training anything.

    Each call's arguments are recorded by name (bound to the function's signature, defaults filled in); the
    calls are answered with ``returns``, in turn. ``known``: {name: object}, objects that ``recorded``
    names rather than describes (e.g. the backbone a stand-in handed out).
    """

    def __init__(self, original, returns=(None,), known=None):
        self.signature = inspect.signature(original)
        self.returns = list(returns) or [None]
        self.known = dict(known or {})
        self.calls: list[dict] = []

    def __call__(self, *args, **kwargs):
        bound = self.signature.bind(*args, **kwargs)  # a wrong call fails as the real function would
        bound.apply_defaults()
        self.calls.append(dict(bound.arguments))
        return self.returns[(len(self.calls) - 1) % len(self.returns)]

    def recorded(self) -> list[dict]:
        """[{argument: value}] per call, as plain data: a known object as {"$known": name}, another object
        as {"$object": type name}, with "state": its state_dict() where it has one (a module)."""
        return [{name: self._describe(value) for name, value in call.items()} for call in self.calls]

    def _describe(self, value):
        for name, obj in self.known.items():
            if value is obj:
                return {"$known": name}
        try:
            return _to_plain(value)
        except Exception:
            described = {"$object": type(value).__name__}
            if callable(getattr(value, "state_dict", None)):
                described["state"] = value.state_dict()
            return described


class _AutogradForbidden:
    """Stands in for the autograd engine while a hand-written backward runs (see op_run)."""

    def run_backward(self, *args, **kwargs):
        raise RuntimeError("autograd was used inside a backward that must be written by hand")

    def __getattr__(self, name):
        return getattr(_REAL_ENGINE, name)


_REAL_ENGINE = None


def _resolve(value, values):
    """Replace {"$ref": i} by the result of step i, inside lists and dicts too."""
    if type(value) is dict:
        if set(value) == {"$ref"}:
            return values[value["$ref"]]
        return {k: _resolve(v, values) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_resolve(v, values) for v in value)
    return value


def _graph_nodes(tensor) -> list[str]:
    """The type names of every autograd node behind a tensor (e.g. LinearFunctionBackward)."""
    names, stack, seen = set(), [tensor.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names.add(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return sorted(names)


def _plain_or_name(value):
    """A step's result as plain data, or, for anything else, {"$object": its type name}
    (a tensor on the meta device holds no data: {"$object": "Tensor"})."""
    import torch

    if isinstance(value, torch.Tensor) and value.is_meta:
        return {"$object": type(value).__name__}
    if isinstance(value, types.GeneratorType):  # model.parameters(), named_parameters(), ...: list what it yields
        value = list(value)
    try:
        return _to_plain(value)
    except Exception:  # not plain data, or holding a meta tensor (no data to send): named, not sent
        return {"$object": type(value).__name__}


def op_run(state, request):
    """Run a short program against the submission; objects stay here, results go back as plain data.

    {"steps": [[kind, target, name, args, kwargs], ...]}: target is None (the submitted
    module) or the index of an earlier step; args and kwargs may hold {"$ref": index}.
    kind "value": the step's result is args[0]; "attr": getattr(target, name); "section": names
    the steps that follow, for the error message;
    "call": getattr(target, name)(*args, **kwargs); "call_by_hand": the same, with the
    autograd engine forbidden and gradients off (for a hand-written backward);
    "context": a fresh PlainContext; "graph": the autograd node types behind target; "stand_in": replaces
    target's function ``name`` by a StandIn(function, *args, **kwargs) for the rest of the request;
    "namespace": an object whose attributes are kwargs.
    Returns one plain value (or {"$object": type name}) per step.
    """
    global _REAL_ENGINE
    import torch
    from torch.autograd.variable import Variable

    _seed(request)
    values = []
    for kind, target, name, args, kwargs in request["steps"]:
        obj = state["module"] if target is None else values[target]
        args, kwargs = _resolve(args, values), _resolve(kwargs, values)
        if kind == "value":
            result = args[0]
        elif kind == "attr":
            result = getattr(obj, name)
        elif kind == "call":
            result = getattr(obj, name)(*args, **kwargs)
        elif kind == "call_by_hand":
            _REAL_ENGINE = _REAL_ENGINE or Variable._execution_engine
            Variable._execution_engine = _AutogradForbidden()
            try:
                with torch.no_grad():
                    result = getattr(obj, name)(*args, **kwargs)
            finally:
                Variable._execution_engine = _REAL_ENGINE
        elif kind == "section":
            state["section"], result = str(name)[:300], None
        elif kind == "stand_in":  # the request's fork ends with it: no need to put the original back
            result = StandIn(getattr(obj, name), *args, **kwargs)
            setattr(obj, name, result)
        elif kind == "namespace":  # an object with the given attributes (e.g. a stand-in trainer)
            result = types.SimpleNamespace(**kwargs)
        elif kind == "context":
            result = PlainContext(*args)
        elif kind == "graph":
            result = _graph_nodes(obj)
        else:
            raise ValueError(f"unknown step kind {kind!r}")
        values.append(result)
    state["section"] = None  # what follows is no case's
    return [_plain_or_name(value) for value in values]


OPS = {"load": op_load, "call": op_call, "methods": op_methods, "fit": op_fit, "predict": op_predict, "run": op_run}
