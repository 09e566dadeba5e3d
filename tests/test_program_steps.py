"""The steps a check's Program runs in the worker (grader.sandbox.ops.op_run), run here in-process on a small module."""
import types

import torch

from grader.kit.program import Program
from grader.sandbox.ops import op_run


def _module():
    module = types.ModuleType("submission")
    exec(
        "def train(mode, budget=10, seed=0):\n"
        "    raise RuntimeError('trained for real')\n"
        "def experiment(budgets, seed=0):\n"
        "    return {b: {m: train(m, b, seed=seed) for m in ('a', 'b')} for b in budgets}\n"
        "def probe(backbone, seed=0):\n"
        "    raise RuntimeError('trained for real')\n", module.__dict__)
    return module


def _run(program):
    return op_run({"module": _module()}, {"steps": program.steps, "seed": 0})


def test_a_stand_in_records_each_call_by_name_and_answers_in_turn():
    program = Program()
    runs = program.stand_in(None, "train", returns=[0.1, 0.2, 0.3])
    table = program.call(None, "experiment", [3, 7], seed=5)
    calls = program.call(runs, "recorded")
    got = _run(program)
    assert got[table] == {"3": {"a": 0.1, "b": 0.2}, "7": {"a": 0.3, "b": 0.1}}
    assert got[calls] == [{"mode": m, "budget": b, "seed": 5} for b in (3, 7) for m in ("a", "b")]


def test_a_stand_in_names_known_objects_and_describes_modules_by_their_state():
    known, other = torch.nn.Linear(2, 1), torch.nn.Linear(3, 1)
    program = Program()
    known_ref = program.value(known)
    probes = program.stand_in(None, "probe", returns=[0.5], known={"pretrained": known_ref})
    program.call(None, "probe", known_ref)
    program.call(None, "probe", program.value(other), seed=2)
    calls = program.call(probes, "recorded")
    got = _run(program)[calls]
    assert got[0] == {"backbone": {"$known": "pretrained"}, "seed": 0}
    assert got[1]["backbone"]["$object"] == "Linear" and got[1]["seed"] == 2
    assert torch.equal(got[1]["backbone"]["state"]["weight"], other.weight.detach())


def test_a_call_the_real_function_would_refuse_fails_in_the_stand_in_too():
    program = Program()
    program.stand_in(None, "train", returns=[0.1])
    program.call(None, "train", "a", 1, 2, 3)  # one argument too many
    try:
        _run(program)
    except TypeError as err:
        assert "argument" in str(err)
    else:
        raise AssertionError("a wrong call was accepted")


def test_namespace_and_a_context_that_says_which_inputs_need_gradients():
    program = Program()
    trainer = program.namespace(estimated_stepping_batches=10)
    steps = program.attr(trainer, "estimated_stepping_batches")
    needs = program.attr(program.context(needs_input_grad=[True, False]), "needs_input_grad")
    got = _run(program)
    assert got[steps] == 10 and got[needs] == [True, False]
