"""Checks for Lab 2 (backpropagation and the MLP) that students can run themselves: Parts 1 and 2, the scalar
autograd engine and the hand-written backward passes (Parts 3 and 4 are in ``test_mlp_network.py``).

Expected values come from torch's own functions and autograd, computed here in the
judge. The submission's objects (Values, Functions, modules) live in the worker; a
``Program`` builds them there and brings back plain results.
"""
import math
import random

import torch
import torch.nn.functional as F

from grader.kit import devices as meta
from grader.kit import expect
from grader.kit.check import check
from grader.kit.expect import random_labels as _labels
from grader.kit.expect import random_tensor as _random
from grader.kit.program import Program


def _number(value, what):
    if type(value) not in (int, float):
        raise expect.CheckFailed(f"{what} is a {expect.describe(value)}, expected a number")
    return float(value)


def _close_number(got, expected, what, tolerance=1e-6):
    got = _number(got, what)
    if not math.isclose(got, expected, rel_tol=tolerance, abs_tol=tolerance):
        raise expect.CheckFailed(f"{what}: expected {expected:.6g}, got {got:.6g}")


# --- Part 1: the scalar autograd engine ------------------------------------------------

# Each case: (description, function of two scalars written once for Values and once for torch)
OPERATORS = [
    ("a + b", lambda a, b: a + b),
    ("a * b", lambda a, b: a * b),
    ("a ** 3", lambda a, b: a**3),
    ("a ** -2", lambda a, b: a**-2),
    ("a - b", lambda a, b: a - b),
    ("a / b", lambda a, b: a / b),
    ("-a", lambda a, b: -a),
    ("2 * a + 1 - b", lambda a, b: 2 * a + 1 - b),
    ("1 - a / 4", lambda a, b: 1 - a / 4),
    ("3 / b", lambda a, b: 3 / b),
    ("a.relu() * b", lambda a, b: a.relu() * b),
]


def value_graph(build, inputs, program):
    """Add build(*Values) and its backward to program: (Ref of the output's data, [Refs of the input grads])."""
    leaves = [program.module.Value(x) for x in inputs]
    out = build(*leaves)  # Program nodes: each operator adds its step
    out.backward()
    return program.attr(out, "data"), [program.attr(leaf, "grad") for leaf in leaves]


def torch_graph(build, inputs):
    """The same expression in float64 torch: (output, [input grads])."""
    leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
    out = build(*leaves)
    out.backward()
    return out.item(), [leaf.grad.item() if leaf.grad is not None else 0.0 for leaf in leaves]


def compare_value_expressions(submission, cases, what="Value"):
    """Each case (text, build, inputs): build(*Values) and its backward against torch's, all in one request."""
    program, refs = Program(), []
    for text, build, inputs in cases:
        program.section(_case(text, inputs))
        refs.append(value_graph(build, inputs, program))
    got = submission.run(program, what=what)
    for (text, build, inputs), (data, grads) in zip(cases, refs):
        expected_out, expected_grads = torch_graph(build, inputs)
        _close_number(got[data], expected_out, f"{_case(text, inputs)}: the value")
        for name, ref, expected in zip("abcdefgh", grads, expected_grads):
            _close_number(got[ref], expected, f"{_case(text, inputs)}: d/d{name}")


def _case(text, inputs):
    return f"Value: {text} with {', '.join(f'{n} = {x:g}' for n, x in zip('abcdefgh', inputs))}"


@check(points=2,
       hint="Each operation adds (upstream grad) × (its local derivative) to each input's grad; the table in the "
            "notes gives the local derivatives of add, mul, pow and relu.")
def test_value_operators_match_autograd(submission):
    """Value: every operator's value and gradients match torch autograd (at 0 too)"""
    cases = [(text, build, inputs) for text, build in OPERATORS for inputs in [(1.5, -2.0), (-0.5, 3.0)]]
    cases += [(text, build, (0.7, -1.3)) for text, build in [("a.tanh()", lambda a, b: a.tanh()),
                                                             ("a.exp() * b", lambda a, b: a.exp() * b)]]
    # Edge points the notes' table fixes: d(a²)/da = 0 at a = 0, and ReLU passes no gradient at exactly 0.
    cases += [("a ** 2 * b", lambda a, b: a**2 * b, (0.0, 1.5)), ("a.relu() * b", lambda a, b: a.relu() * b, (0.0, 2.0))]
    compare_value_expressions(submission, cases, what="Value: each operator")


def random_expression(rng, depth):
    """A random expression over a, b, c: a function usable on Values and on torch tensors, and its text."""
    if depth == 0:
        name = rng.choice("abc")
        return (lambda a, b, c: {"a": a, "b": b, "c": c}[name]), name
    (left, left_text), (right, right_text) = random_expression(rng, depth - 1), random_expression(rng, depth - 1)
    op = rng.choice(["+", "*", "-", "tanh", "relu", "pow"])
    if op == "tanh":
        return (lambda a, b, c: left(a, b, c).tanh()), f"tanh({left_text})"
    if op == "relu":
        return (lambda a, b, c: (left(a, b, c) * right(a, b, c)).relu()), f"relu({left_text} * {right_text})"
    if op == "pow":
        return (lambda a, b, c: left(a, b, c) ** 2), f"({left_text})**2"
    combine = {"+": lambda x, y: x + y, "*": lambda x, y: x * y, "-": lambda x, y: x - y}[op]
    return (lambda a, b, c: combine(left(a, b, c), right(a, b, c))), f"({left_text} {op} {right_text})"


@check(points=2,
       hint="backward must visit every node once, after everything that uses it: build a topological order of the "
            "whole graph first, then call _backward from the output back to the inputs.")
def test_value_backward_on_random_graphs(submission):
    """Value.backward: random expression graphs with shared sub-expressions match autograd"""
    submission.follows("own scalar autograd")
    rng, cases = random.Random(0), []
    for _ in range(6):
        inner, text = random_expression(rng, 2)

        def expression(a, b, c, inner=inner):
            s = inner(a, b, c)  # one node, used three times below
            return s * s + s.tanh() * a

        inputs = tuple(round(rng.uniform(-1.5, 1.5), 3) for _ in range(3))
        cases.append((f"s·s + tanh(s)·a with s = {text}", expression, inputs))
    compare_value_expressions(submission, cases, what="Value.backward on random graphs")


@check(points=1, hint="A value used k times receives k contributions: add to .grad with +=, never assign it.")
def test_value_reused_node_accumulates_gradients(submission):
    """Value: a node used k times gets the sum of its k gradient contributions"""
    compare_value_expressions(submission, [("a + a + a + a", lambda a, b: a + a + a + a, (2.0, 0.0)),
                                           ("a * a * a", lambda a, b: a * a * a, (-1.5, 0.0)),
                                           ("(a * b) * (a * b) + a", lambda a, b: (a * b) * (a * b) + a, (0.5, 3.0))],
                              what="Value: reused nodes")


@check(points=1,
       hint="backward sets the output's grad to 1 and adds to everything else; it must not reset the grads of the "
            "leaves, which may already hold a contribution from another graph (torch accumulates the same way).")
def test_value_gradients_accumulate_across_graphs_sharing_a_leaf(submission):
    """Value.backward: two graphs sharing a leaf add their gradients into it, as torch does"""
    program = Program()
    a, b = program.module.Value(0.8), program.module.Value(-1.1)
    (a * b).tanh().backward()
    after_first = program.attr(a, "grad")
    second = a.exp() * a
    second.backward()
    after_both, output_grad = program.attr(a, "grad"), program.attr(second, "grad")
    got = submission.run(program, what="Value.backward on two graphs")
    x = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    torch.tanh(x * -1.1).backward()
    expected_first = x.grad.item()
    (x.exp() * x).backward()
    _close_number(got[after_first], expected_first, "a.grad after tanh(a·b).backward()")
    _close_number(got[after_both], x.grad.item(), "a.grad after also (e^a · a).backward() (the sum of both)")
    _close_number(got[output_grad], 1.0, "the second output's own grad")


# --- Part 2: the hand-written backward passes -------------------------------------------

def function_steps(program, function, inputs, grad_output, requires_grad):
    """Add function.apply(*inputs) and backward(grad_output) to program: Refs of (output, [input grads], node types)."""
    refs = [program.value(x.clone().requires_grad_(r)) for x, r in zip(inputs, requires_grad)]
    out = program.attr(None, function).apply(*refs)
    nodes = program.graph(out)
    out.backward(grad_output)
    return out, [program.attr(ref, "grad") for ref in refs], nodes


def reference_function(function, inputs, grad_output, requires_grad):
    leaves = [x.clone().requires_grad_(r) for x, r in zip(inputs, requires_grad)]
    out = function(*leaves)
    out.backward(grad_output)
    return out.detach(), [leaf.grad for leaf in leaves]


def compare_functions(submission, cases, what):
    """The student's Functions against torch's built-ins, all cases in one request: output, every gradient,
    and the Function's own backward node. Each case is a dict of ``compare_function``'s arguments."""
    program, steps, expected = Program(), [], []
    for case in cases:
        name, inputs, requires_grad = case["name"], case["inputs"], case["requires_grad"]
        out, grads = reference_function(case["reference"], inputs, case.get("grad_output"), requires_grad)
        grad_output = torch.ones_like(out) if case.get("grad_output") is None else case["grad_output"]
        program.section(f"{name}.apply on {case['what']}")
        steps.append(function_steps(program, name, inputs, grad_output, requires_grad))
        expected.append((out, grads))
    got = submission.run(program, what=what)
    for case, (out, grads, nodes), (expected_out, expected_grads) in zip(cases, steps, expected):
        name, atol = case["name"], case.get("atol", 1e-5)
        expect.close(got[out], expected_out, f"{name} forward", case["what"], atol=atol)
        if f"{name}Backward" not in got[nodes]:
            raise expect.CheckFailed(f"{name}.apply's output was not made by {name}'s own backward "
                                     f"(autograd nodes behind it: {', '.join(got[nodes]) or 'none'})")
        labels = case.get("labels", ("d(input)",))
        for label, grad, expected_grad, needed in zip(labels, grads, expected_grads, case["requires_grad"]):
            if needed:
                expect.close(got[grad], expected_grad, f"{name} backward: {label}", case["what"], atol=atol)


LINEAR_GRADS = ("dX", "dW", "db")
LINEAR_SHAPES = [(1, 3, 2), (4, 5, 3), (16, 7, 10)]  # (N, D_in, D_out)


@check(points=2, hint="dX = dY·W, dW = dYᵀ·X, db = Σ over the batch of dY: each gradient has the shape of its input.")
def test_linear_function_matches_autograd(submission):
    """LinearFunction: output and dX, dW, db match autograd of X·Wᵀ + b (batch of 1 included)"""
    cases = []
    for n, d_in, d_out in LINEAR_SHAPES:
        x, weight, bias = _random(n, d_in, seed=n), _random(d_out, d_in, seed=d_in), _random(d_out, seed=d_out)
        cases.append(dict(name="LinearFunction", reference=F.linear, inputs=[x, weight, bias],
                          requires_grad=[True, True, True], what=f"X {tuple(x.shape)}, W {tuple(weight.shape)}",
                          grad_output=_random(n, d_out, seed=99), labels=LINEAR_GRADS))
    compare_functions(submission, cases, what="LinearFunction.apply")


def backward_by_hand(submission, name, inputs, grad_output):
    """Call name.forward(ctx, ...) and name.backward(ctx, dY) directly, autograd forbidden: the gradients."""
    program = Program()
    function = program.attr(None, name)
    ctx = program.context(needs_input_grad=[True] * len(inputs))  # every input wants its gradient, as in the docs
    program.call_by_hand(function, "forward", ctx, *inputs)
    grads = program.call_by_hand(function, "backward", ctx, grad_output)
    return submission.run(program, what=f"{name}.backward")[grads]


@check(points=1,
       hint="Write backward from the saved tensors with matrix products and sums; it may not call autograd "
            "(torch.autograd.grad or .backward()).")
def test_linear_backward_is_written_by_hand(submission):
    """LinearFunction.backward computes the gradients itself, without autograd"""
    submission.follows("hand-written backward")  # the source, read in the judge: the worker could forge the rest
    x, weight, bias, grad_output = _random(6, 4, seed=1), _random(3, 4, seed=2), _random(3, seed=3), _random(6, 3)
    grads = backward_by_hand(submission, "LinearFunction", [x, weight, bias], grad_output)
    if not isinstance(grads, list) or len(grads) != 3:
        raise expect.CheckFailed(f"LinearFunction.backward returned a {expect.describe(grads)}, "
                                 "expected three gradients (dX, dW, db)")
    _, expected = reference_function(F.linear, [x, weight, bias], grad_output, [True, True, True])
    for label, got, want in zip(LINEAR_GRADS, grads, expected):
        expect.close(got, want, f"LinearFunction.backward: {label}", "X (6, 4), W (3, 4), called directly")


ACTIVATIONS = [("ReLUFunction", torch.relu), ("SigmoidFunction", torch.sigmoid), ("TanhFunction", torch.tanh)]


@check(points=2,
       hint="Elementwise: multiply the upstream gradient by the local derivative at each position — for sigmoid a(1 "
            "− a), for tanh 1 − a², for ReLU 1 where the unit was active — no Jacobian matrix needed.")
def test_activation_functions_match_autograd(submission):
    """ReLU, Sigmoid and Tanh Functions: values and gradients match torch for several shapes"""
    cases = [dict(name=name, reference=reference, inputs=[_random(*shape, seed=sum(shape), scale=2)],
                  requires_grad=[True], what=f"z of shape {shape}", grad_output=_random(*shape, seed=7))
             for name, reference in ACTIVATIONS for shape in [(1, 1), (3, 5), (2, 3, 4)]]
    cases += [dict(name="ReLUFunction", reference=torch.relu, inputs=[torch.tensor([[-1.0, 0.0, 2.0], [0.0, 3.0, -0.5]])],
                   requires_grad=[True], what="z with zeros (the gradient at 0 is 0)", grad_output=_random(2, 3, seed=8))]
    compare_functions(submission, cases, what="the activation Functions")
    # backward may not write into its upstream gradient: autograd hands out shared, even expanded, tensors
    program, after, sums = Program(), {}, {}
    for name, reference in ACTIVATIONS:
        program.section(f"{name}: z.grad after {name}.apply(z).sum().backward()")
        z = program.value(_random(3, 4, seed=9).requires_grad_())
        program.attr(None, name).apply(z).sum().backward()
        sums[name] = program.attr(z, "grad")
        program.section(f"{name}.apply(z).backward(g)")
        after[name] = program.value(_random(3, 4, seed=10))  # the upstream gradient
        program.attr(None, name).apply(program.value(_random(3, 4, seed=9).requires_grad_())).backward(after[name])
    got = submission.run(program, what="the activation Functions' backward")
    for name, reference in ACTIVATIONS:
        z = _random(3, 4, seed=9).requires_grad_()
        reference(z).sum().backward()
        expect.close(got[sums[name]], z.grad, f"{name}: the gradient of {name}.apply(z).sum()", "z (3, 4)")
        if not torch.equal(expect.tensor(got[after[name]], "the upstream gradient"), _random(3, 4, seed=10)):
            raise expect.CheckFailed(f"{name}.backward changed the upstream gradient it was given (grad_output) in "
                                     "place: autograd may share that tensor; compute a new one")


@check(points=2,
       hint="Loss: mean over the batch of logsumexp(z) − z_target, with each row's max subtracted first. Gradient: "
            "(softmax − onehot) / N, times the upstream gradient.")
def test_softmax_cross_entropy_function_matches_autograd(submission):
    """SoftmaxCrossEntropyFunction: loss and dlogits match F.cross_entropy, also for logits of ±1000, on the logits'
    device"""
    cases = [(_random(1, 3, seed=1), _labels(1, 3, seed=1)), (_random(8, 10, seed=2, scale=3), _labels(8, 10, seed=2)),
             (torch.tensor([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0]]), torch.tensor([1, 1])),
             (torch.tensor([[1000.0, 0.0, 0.0], [0.0, 1.0, 2.0]]), torch.tensor([0, 2]))]  # rows far apart
    compare_functions(submission, [
        dict(name="SoftmaxCrossEntropyFunction", reference=F.cross_entropy, inputs=[logits, targets],
             requires_grad=[True, False], grad_output=torch.tensor(0.37),  # the loss scaled: dL is not 1
             what=f"logits of shape {tuple(logits.shape)}" + (" (±1000)" if logits.abs().max() > 100 else "")
             + ", upstream gradient 0.37")
        for logits, targets in cases], what="SoftmaxCrossEntropyFunction.apply")
    program = Program()
    logits = meta.tensor(program, _random(4, 5, seed=3)).requires_grad_()
    loss = program.attr(None, "SoftmaxCrossEntropyFunction").apply(logits, meta.tensor(program, _labels(4, 5, seed=3)))
    loss.backward()
    meta.require(submission, program, {"the loss": meta.device(program, loss),
                                       "dlogits": meta.device(program, program.attr(logits, "grad"))},
                 what="SoftmaxCrossEntropyFunction on meta tensors")


@check(points=2,
       hint="In float64 a correct backward agrees with autograd to ~1e-12: look for a missing factor (such as the "
            "1/N of the mean) or a transposed matrix.")
def test_all_functions_are_exact_in_float64(submission):
    """Every Function's gradients agree with autograd to 1e-9 in float64 (what gradcheck verifies)"""
    x, weight, bias = _random(5, 4, seed=1, dtype=torch.float64), _random(3, 4, seed=2, dtype=torch.float64), \
        _random(3, seed=3, dtype=torch.float64)
    cases = [dict(name="LinearFunction", reference=F.linear, inputs=[x, weight, bias], requires_grad=[True] * 3,
                  what="float64", atol=1e-9, grad_output=_random(5, 3, seed=4, dtype=torch.float64),
                  labels=LINEAR_GRADS)]
    cases += [dict(name=name, reference=reference, inputs=[_random(4, 6, seed=5, dtype=torch.float64, scale=2)],
                   requires_grad=[True], what="float64", atol=1e-9,
                   grad_output=_random(4, 6, seed=6, dtype=torch.float64)) for name, reference in ACTIVATIONS]
    cases.append(dict(name="SoftmaxCrossEntropyFunction", reference=F.cross_entropy,
                      inputs=[_random(6, 5, seed=7, dtype=torch.float64), _labels(6, 5, seed=7)],
                      requires_grad=[True, False], what="float64", atol=1e-9))
    compare_functions(submission, cases, what="every Function in float64")


@check(points=1,
       hint="forward must call LinearFunction.apply with the layer's own weight (out_features, in_features) and bias.")
def test_linear_module_uses_linear_function(submission):
    """Linear: (N, in) → (N, out) with its own weight and bias, through LinearFunction"""
    program = Program()
    layer = program.module.Linear(5, 3)
    out = layer.forward(program.value(_random(4, 5, seed=3)))
    weight, bias = program.attr(layer, "weight"), program.attr(layer, "bias")
    nodes = program.graph(out)
    got = submission.run(program, what="Linear(5, 3)")
    weight = expect.shape(got[weight], (3, 5), "Linear(5, 3).weight")
    bias = expect.shape(got[bias], (3,), "Linear(5, 3).bias")
    expect.close(got[out], F.linear(_random(4, 5, seed=3), weight, bias), "Linear(5, 3).forward", "x of shape (4, 5)")
    if "LinearFunctionBackward" not in got[nodes]:
        raise expect.CheckFailed("Linear.forward did not go through LinearFunction "
                                 f"(autograd nodes: {', '.join(got[nodes]) or 'none'})")
