"""What checks use to reach the submission: ``Submission`` (the fixture) and ``Program`` (steps run in the worker).
"""
from __future__ import annotations

from grader.sandbox.client import Sandbox
from grader.sandbox.limits import SubmissionError  # re-exported: what a check catches when the submission fails


class Submission:
    """What checks see of the submitted lab module (the ``submission`` fixture).

    ``breaches``: the lab's scoped rules the submitted source breaks, by rule name (see
    ``grader.judge.policy.LAB_RULES``); a check whose claim the worker could forge (a backward "by hand",
    "your own" convolution) also asks ``follows(rule)``.
    """

    def __init__(self, sandbox: Sandbox | None, problem: str = "", breaches: dict | None = None):
        self._sandbox, self._problem = sandbox, problem
        self.breaches = breaches or {}

    def follows(self, rule: str) -> None:
        """Fail the check (CheckFailed) if the submitted source breaks the lab's rule of that name."""
        from grader.kit.expect import CheckFailed

        found = self.breaches.get(rule, [])
        if found:
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise CheckFailed(f"{found[0]}{more}")

    def _request(self, op, what, timeout=None, **payload):
        if self._sandbox is None:
            raise SubmissionError(self._problem)
        return self._sandbox.request(op, timeout=timeout, what=what, **payload)

    def call(self, name: str, *args, seed: int = 0, **kwargs):
        """Call a function of the submitted module: ``call("sigmoid", z)``."""
        return self._request("call", f"{name}()", name=name, args=list(args), kwargs=kwargs, seed=seed)

    def methods(self, cls: str, calls, init=None, set=None, read=None, seed: int = 0):
        """Build ``cls(**init)``, copy tensors into attributes (``set``), call methods in turn.

        Returns {"results": [...], "state": {attr: value}} with the attributes in ``read``.
        """
        what = f"{cls}." + ", ".join(method for method, _ in calls) if calls else cls
        reply = self._request("methods", what, **{"class": cls}, init=init or {}, calls=[list(c) for c in calls],
                              set=set or {}, read=read or [], seed=seed)
        return _shaped(reply, what, results=list, state=dict)

    def fit(self, cls: str, data: dict, max_epochs: int, probes: dict, init=None, seed: int = 0,
            states: bool = False, cpu_seconds: float | None = None, before=None):
        """Train ``cls(**init)`` on the offline data; return its logits on ``probes`` before and after.

        One fresh worker trains on the training and validation splits the judge sends (``data``:
        the data set's name and datamodule options) and returns the model's state before and after;
        another fresh worker, which never saw the training, loads each state into ``cls(**init)`` and
        computes the logits on the probes (inputs without labels). ``before``: the probes to evaluate
        the untrained model on (default: all; ``()``: none). ``states``: also return the two
        states ("state_before", "state_after"). ``cpu_seconds``: the CPU time training may use (set
        from what the reference needs, with a margin); its wall-clock deadline follows from it.
        """
        from grader.kit.convergence import training_splits

        limits = self._sandbox.limits if self._sandbox else None
        budget = cpu_seconds if cpu_seconds is not None else (limits.fit_cpu_seconds if limits else 60)
        options = dict(data)
        splits, dims, num_classes = training_splits(options.pop("name", "mnist"))
        what = f"training {cls}"
        reply = self._request("fit", what, timeout=budget * (limits.wall_per_cpu if limits else 4),
                              cpu_seconds=budget, **{"class": cls}, init=init or {}, splits=splits, dims=dims,
                              num_classes=num_classes, data=options, max_epochs=max_epochs, seed=seed)
        reply = _shaped(reply, what, state_before=dict, state_after=dict)
        what = f"evaluating the trained {cls}"
        before = list(probes) if before is None else [name for name in before if name in probes]
        evaluate = [(reply["state_before"], before)] if before else []
        evaluate.append((reply["state_after"], list(probes)))
        evaluated = self._request("predict", what, timeout=2 * (limits.call_seconds if limits else 10),
                                  **{"class": cls}, init=init or {}, states=[state for state, _ in evaluate],
                                  use=[names for _, names in evaluate], probes=probes, seed=seed)
        if type(evaluated) is not list or len(evaluated) != len(evaluate) or \
                any(type(e) is not dict for e in evaluated):
            raise SubmissionError(f"{what} sent back a reply of the wrong form")
        result = {"before": evaluated[0] if before else {}, "after": evaluated[-1]}
        if states:
            result.update(state_before=reply["state_before"], state_after=reply["state_after"])
        return result

    def run(self, program: Program, what: str = "", seed: int = 0, timeout: float | None = None) -> list:
        """Run a ``Program`` in the worker; one plain result per step, indexed by the step's ``Ref``."""
        reply = self._request("run", what or program.describe(), timeout=timeout, steps=program.steps, seed=seed)
        if type(reply) is not list or len(reply) != len(program.steps):
            raise SubmissionError(f"{what or 'the request'} sent back a reply of the wrong form")
        return reply


class Ref(int):
    """The result of an earlier step of a Program; pass it as a target or an argument of later steps."""


class Node(Ref):
    """A Ref that reads like Python: calling its methods and operators adds the steps to its Program.

        p = Program()
        net = p.module.LeNet5(num_classes=10)      # p.call(None, "LeNet5", num_classes=10)
        logits = net(x)                             # p.call(net, "__call__", x)
        names = net.named_parameters()              # p.call(net, "named_parameters")
        y = (p.module.Value(2.0) * 3).tanh()        # operators too (the Value of Lab 2)
        results = submission.run(p); results[logits]

    Attribute *reads* are explicit, ``p.attr(node, "grad")``: a proxy cannot tell a read from a call.
    """

    def __new__(cls, program: Program, index: int):
        node = super().__new__(cls, index)
        node._program = program
        return node

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Method(self._program, self, name)

    def __call__(self, *args, **kwargs) -> Node:
        return self._program.call(self, "__call__", *args, **kwargs)

    def _op(self, name: str, *args) -> Node:
        return self._program.call(self, name, *args)

    def __add__(self, other): return self._op("__add__", other)
    def __radd__(self, other): return self._op("__radd__", other)
    def __sub__(self, other): return self._op("__sub__", other)
    def __rsub__(self, other): return self._op("__rsub__", other)
    def __mul__(self, other): return self._op("__mul__", other)
    def __rmul__(self, other): return self._op("__rmul__", other)
    def __truediv__(self, other): return self._op("__truediv__", other)
    def __rtruediv__(self, other): return self._op("__rtruediv__", other)
    def __matmul__(self, other): return self._op("__matmul__", other)
    def __pow__(self, other): return self._op("__pow__", other)
    def __neg__(self): return self._op("__neg__")
    def __getitem__(self, key): return self._op("__getitem__", key)


class _Method:
    """``node.name`` before it is called: ``node.name(*args)`` adds the call step."""

    def __init__(self, program: Program, target: Ref | None, name: str):
        self.program, self.target, self.name = program, target, name

    def __call__(self, *args, **kwargs) -> Node:
        return self.program.call(self.target, self.name, *args, **kwargs)


class _Module:
    """``Program.module``: the submitted module, whose functions and classes are called by name."""

    def __init__(self, program: Program):
        self._program = program

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Method(self._program, None, name)


class Program:
    """A few steps run against the submitted module in one request, its objects kept in the worker.

    Each method adds a step and returns its ``Node`` (a ``Ref`` that reads like Python, see ``Node``);
    ``Submission.run`` returns the steps' results as plain data (tensors, numbers, lists...) or
    ``{"$object": type name}``::

        p = Program()
        a = p.module.Value(2.0)              # or p.call(None, "Value", 2.0); None is the module
        y = (a * a).tanh()
        y.backward()
        grad = p.attr(a, "grad")
        results = submission.run(p); results[grad]
    """

    def __init__(self):
        self.steps: list[list] = []
        self.module = _Module(self)

    def _add(self, kind, target=None, name=None, args=(), kwargs=None) -> Node:
        self.steps.append([kind, target if target is None else int(target), name,
                           [_encode(a) for a in args], {k: _encode(v) for k, v in (kwargs or {}).items()}])
        return Node(self, len(self.steps) - 1)

    def value(self, value) -> Ref:
        """Send a value (a tensor: requires_grad is kept) to use in later steps."""
        return self._add("value", args=[value])

    def attr(self, target: Ref | None, name: str) -> Ref:
        return self._add("attr", target, name)

    def call(self, target: Ref | _Method | None, name: str | None = None, *args, **kwargs) -> Node:
        """target.name(*args, **kwargs); ``p.call(net.named_parameters)`` names both at once."""
        if isinstance(target, _Method):
            return self._add("call", target.target, target.name, args if name is None else (name, *args), kwargs)
        return self._add("call", target, name, args, kwargs)

    def call_by_hand(self, target: Ref | None, name: str, *args, **kwargs) -> Ref:
        """Like call, with the autograd engine forbidden and gradients off: for a hand-written backward."""
        return self._add("call_by_hand", target, name, args, kwargs)

    def section(self, label: str) -> Ref:
        """Name the steps that follow (until the next section): an error raised in one of them is
        reported as "error; in label". One request can then hold many cases and still say which failed."""
        return self._add("section", name=label)

    def stand_in(self, target: Ref | None, name: str, returns, known: dict | None = None) -> Ref:
        """Replace the function ``name`` of target (None: the submitted module) for the rest of the program by a
        stand-in that records each call's arguments and answers with ``returns`` in turn (see ops.StandIn);
        ``p.call(ref, "recorded")`` reads the calls. For checking what an experiment function runs."""
        return self._add("stand_in", target, name, [list(returns)], {"known": known or {}})

    def namespace(self, **attributes) -> Ref:
        """An object with these attributes, e.g. a stand-in trainer: ``p.namespace(estimated_stepping_batches=10)``."""
        return self._add("namespace", kwargs=attributes)

    def context(self, needs_input_grad=()) -> Ref:
        """A ctx object for calling a torch.autograd.Function's forward and backward directly;
        ``needs_input_grad``: one flag per input of forward, as autograd would set it."""
        return self._add("context", args=[[bool(flag) for flag in needs_input_grad]])

    def graph(self, tensor: Ref) -> Ref:
        """The sorted type names of the autograd nodes behind a tensor."""
        return self._add("graph", tensor)

    def describe(self) -> str:
        calls = [name for kind, _, name, _, _ in self.steps if kind.startswith("call")]
        return ", ".join(dict.fromkeys(calls)) or "the request"


def _encode(value):
    if isinstance(value, Ref):
        return {"$ref": int(value)}
    if isinstance(value, (list, tuple)):
        return type(value)(_encode(v) for v in value)
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _shaped(reply, what: str, **fields):
    """The worker's reply if it has the fields its op promises (a tampered worker may send anything)."""
    if type(reply) is not dict or any(type(reply.get(name)) is not kind for name, kind in fields.items()):
        raise SubmissionError(f"{what} sent back a reply of the wrong form (was the grader's worker tampered with?)")
    return reply
