"""Checks for Lab 2 (backpropagation and the MLP) that students can run themselves.

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
from grader.kit.convergence import fit_and_score, require_learning
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
    a, b = program.call(None, "Value", 0.8), program.call(None, "Value", -1.1)
    first = program.call(program.call(a, "__mul__", b), "tanh")
    program.call(first, "backward")
    after_first = program.attr(a, "grad")
    second = program.call(program.call(a, "exp"), "__mul__", a)
    program.call(second, "backward")
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
    out = program.call(program.attr(None, function), "apply", *refs)
    nodes = program.graph(out)
    program.call(out, "backward", grad_output)
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
        program.call(program.call(program.call(program.attr(None, name), "apply", z), "sum"), "backward")
        sums[name] = program.attr(z, "grad")
        program.section(f"{name}.apply(z).backward(g)")
        upstream = program.value(_random(3, 4, seed=10))
        program.call(program.call(program.attr(None, name), "apply", program.value(_random(3, 4, seed=9)
                                                                                   .requires_grad_())),
                     "backward", upstream)
        after[name] = upstream
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
    logits = program.call(meta.tensor(program, _random(4, 5, seed=3)), "requires_grad_")
    loss = program.call(program.attr(None, "SoftmaxCrossEntropyFunction"), "apply", logits,
                        meta.tensor(program, _labels(4, 5, seed=3)))
    program.call(loss, "backward")
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
    layer = program.call(None, "Linear", 5, 3)
    x = program.value(_random(4, 5, seed=3))
    out = program.call(layer, "forward", x)
    weight, bias = program.attr(layer, "weight"), program.attr(layer, "bias")
    nodes = program.graph(out)
    got = submission.run(program, what="Linear(5, 3)")
    weight, bias = expect.tensor(got[weight], "Linear.weight"), expect.tensor(got[bias], "Linear.bias")
    if weight.shape != (3, 5) or bias.shape != (3,):
        raise expect.CheckFailed(f"Linear(5, 3): expected weight (3, 5) and bias (3,), got {tuple(weight.shape)} "
                                 f"and {tuple(bias.shape)}")
    expect.close(got[out], F.linear(_random(4, 5, seed=3), weight, bias), "Linear(5, 3).forward", "x of shape (4, 5)")
    if "LinearFunctionBackward" not in got[nodes]:
        raise expect.CheckFailed("Linear.forward did not go through LinearFunction "
                                 f"(autograd nodes: {', '.join(got[nodes]) or 'none'})")


# --- Part 3: initialisation and dropout -------------------------------------------------

@check(points=1,
       hint="σ = 1/√D_in for Xavier and √(2/D_in) for He, where D_in = weight.shape[1]; fill the tensor in place.")
def test_initialisers_have_the_right_spread(submission):
    """xavier_normal_ and he_normal_: empirical std matches the formula for several fan-ins, in place, returned"""
    program, weights, returned = Program(), {}, {}
    for name, gain in (("xavier_normal_", 1.0), ("he_normal_", 2.0)):
        for fan_in in (64, 256, 1024):
            program.section(f"{name}(a (2048, {fan_in}) weight)")
            weights[name, gain, fan_in] = program.value(torch.zeros(2048, fan_in))
            returned[name, fan_in] = program.call(None, name, weights[name, gain, fan_in])
    got_all = submission.run(program, what="xavier_normal_ and he_normal_")
    for (name, gain, fan_in), weight in weights.items():
        got = expect.tensor(got_all[weight], name)
        if not isinstance(got_all[returned[name, fan_in]], torch.Tensor) or \
                not torch.equal(got_all[returned[name, fan_in]], got):
            raise expect.CheckFailed(f"{name} must return the weight it filled (as torch.nn.init does), got "
                                     f"{expect.describe(got_all[returned[name, fan_in]])}")
        expected = math.sqrt(gain / fan_in)
        case = f"a (2048, {fan_in}) weight"
        if got.shape != (2048, fan_in) or got.abs().sum() == 0:
            raise expect.CheckFailed(f"{name}({case}): the weight was not filled in place")
        std, mean = got.std().item(), got.mean().item()
        if not (abs(std / expected - 1) <= 0.02 and abs(mean) <= 0.05 * expected):  # NaN fails too
            raise expect.CheckFailed(f"{name}({case}): std {std:.4g} and mean {mean:.3g}, "
                                     f"expected std {expected:.4g} (±2%) and mean ≈ 0")


@check(points=2,
       hint="Draw x first, then each layer's weight, all from one generator; the std of the activations should "
            "collapse towards 0 for std 0.01 with tanh and stay of order 0.1–1 with Xavier (tanh) and He (ReLU).")
def test_activation_statistics_show_the_experiment(submission):
    """activation_statistics: tanh dies with std 0.01 and stays alive with Xavier; ReLU stays alive with He"""
    runs = [(0.01, "tanh"), ("xavier", "tanh"), ("he", "relu")]
    program = Program()
    refs = [program.call(None, "activation_statistics", init, activation, 6, 256) for init, activation in runs]
    got = submission.run(program, what="activation_statistics()")

    def run(init, activation):
        stds = expect.tensor(got[refs[runs.index((init, activation))]], "activation_statistics")
        if stds.shape != (6,) or not torch.isfinite(stds).all():
            raise expect.CheckFailed(f"activation_statistics({init!r}, {activation!r}, depth=6): expected 6 finite "
                                     f"stds, got a {expect.describe(stds)}")
        return stds

    small = run(0.01, "tanh")
    if not (small[-1] < 1e-4 and (small[1:] < small[:-1]).all()):
        raise expect.CheckFailed(f"with std 0.01 and tanh the activations should shrink layer by layer to ~0; "
                                 f"got stds {[f'{v:.2g}' for v in small.tolist()]}")
    for init, activation, low, high in (("xavier", "tanh", 0.1, 1.0), ("he", "relu", 0.3, 3.0)):
        stds = run(init, activation)
        if not ((stds > low) & (stds < high)).all():
            raise expect.CheckFailed(f"with {init} and {activation} every layer's std should stay between {low} and "
                                     f"{high}; got {[f'{v:.2g}' for v in stds.tolist()]}")


@check(points=1, hint="Inverted dropout keeps each unit with probability 1 − p and divides the kept ones by 1 − p.")
def test_dropout_keeps_the_mean_and_drops_a_fraction_p(submission):
    """dropout in training: about a fraction p of zeros, survivors scaled by 1/(1 − p), mean kept"""
    x, program = torch.full((200, 500), 2.0), Program()
    outs = {p: program.call(None, "dropout", x, p, True) for p in (0.2, 0.5)}
    got_all = submission.run(program, what="dropout()", seed=1)
    for p in (0.2, 0.5):
        got = expect.tensor(got_all[outs[p]], "dropout")
        if got.shape != x.shape:
            raise expect.CheckFailed(f"dropout: expected shape {tuple(x.shape)}, got {tuple(got.shape)}")
        zeros = (got == 0).float().mean().item()
        kept = got[got != 0]
        if not abs(zeros - p) <= 0.01:
            raise expect.CheckFailed(f"dropout(p={p}): {zeros:.3f} of the units are zero, expected about {p}")
        if not torch.allclose(kept, torch.full_like(kept, 2.0 / (1 - p))):
            raise expect.CheckFailed(f"dropout(p={p}): kept units of 2.0 became {kept.unique()[:3].tolist()}, "
                                     f"expected {2.0 / (1 - p):g}")
        if not abs(got.mean().item() - 2.0) <= 0.05:  # NaN fails too
            raise expect.CheckFailed(f"dropout(p={p}): the mean moved from 2.0 to {got.mean().item():.3f}")


@check(points=1,
       hint="Not training, or p = 0: return x as it is. p = 1: every unit is dropped, so return zeros (1/(1 − p) "
            "would divide by zero).")
def test_dropout_eval_mode_and_edge_cases(submission):
    """dropout: identity in eval mode and for p = 0, all zeros (no NaN) for p = 1; the mask on x's device"""
    x, program = _random(6, 7, seed=2), Program()
    cases = [(0.5, False, x, "dropout in eval mode", "p = 0.5, training=False"),
             (0.0, True, x, "dropout with p = 0", "training=True"),
             (1.0, True, torch.zeros_like(x), "dropout with p = 1", "training=True")]
    outs = []
    for p, training, _, what, case in cases:
        program.section(f"{what} ({case})")
        outs.append(program.call(None, "dropout", x, p, training))
    got = submission.run(program, what="dropout()")
    for out, (_, _, expected, what, case) in zip(outs, cases):
        expect.close(got[out], expected, what, case)
    program = Program()
    out = program.call(None, "dropout", meta.tensor(program, x), 0.5, True)
    meta.require(submission, program, {"the output": meta.device(program, out)}, what="dropout on meta tensors")


@check(points=1,
       hint="Build the output from x with tensor operations (x · mask / (1 − p)) so that autograd sends the gradient "
            "through the same mask.")
def test_dropout_backward_uses_the_forward_mask(submission):
    """dropout: the gradient is zero exactly where the unit was dropped, 1/(1 − p) elsewhere"""
    p = 0.3
    program = Program()
    x = program.value(_random(50, 40, seed=4).requires_grad_())
    out = program.call(None, "dropout", x, p, True)
    program.call(program.call(out, "sum"), "backward")
    grad = program.attr(x, "grad")
    got = submission.run(program, what="dropout backward", seed=5)
    out, grad = expect.tensor(got[out], "dropout"), expect.tensor(got[grad], "x.grad")
    kept = (out != 0).to(out.dtype)
    expect.close(grad, kept / (1 - p), "the gradient of dropout(x).sum()", "p = 0.3")


# --- Part 4: the MLP ----------------------------------------------------------------------

@check(points=1,
       hint="Flatten each example to a vector first (keep the batch dimension); the last layer has no activation.")
def test_mlp_gives_logits_of_the_right_shape(submission):
    """MLP.forward: (N, num_classes) logits for vectors and images, batch of 1 included"""
    cases = [({}, _random(1, 1, 28, 28)), ({}, _random(5, 784)),
             ({"num_features": 12, "hidden": [7], "num_classes": 3}, _random(4, 12)),
             ({"num_features": 12, "hidden": [8, 6, 5], "num_classes": 4, "activation": "tanh"}, _random(2, 3, 4))]
    program, outs = Program(), []
    for init, x in cases:
        program.section(f"MLP({init}).forward on input {tuple(x.shape)}")
        model = program.call(None, "MLP", **init)
        program.call(model, "eval")
        outs.append(program.call(model, "forward", program.value(x)))
    got_all = submission.run(program, what="MLP.forward")
    for (init, x), logits in zip(cases, outs):
        got = expect.tensor(got_all[logits], "MLP.forward")
        c = init.get("num_classes", 10)
        if got.shape != (x.shape[0], c):
            raise expect.CheckFailed(f"MLP({init}).forward on input {tuple(x.shape)}: expected shape "
                                     f"({x.shape[0]}, {c}), got {tuple(got.shape)}")


@check(points=1,
       hint="Build the MLP from this lab's Linear layers and call the activation Function's apply — not "
            "torch.nn.Linear or torch.relu.")
def test_mlp_is_built_from_the_labs_own_layers(submission):
    """MLP: its logits come through LinearFunction and the chosen activation Function"""
    cases = (("relu", "ReLUFunctionBackward"), ("tanh", "TanhFunctionBackward"), ("sigmoid", "SigmoidFunctionBackward"))
    program, graphs = Program(), []
    for activation, _ in cases:
        program.section(f"MLP(activation={activation!r})")
        model = program.call(None, "MLP", num_features=6, hidden=[5, 4], num_classes=3, activation=activation)
        graphs.append(program.graph(program.call(model, "forward", program.value(_random(3, 6, seed=1)))))
    got = submission.run(program, what="MLP with each activation")
    for (activation, node), graph in zip(cases, graphs):
        nodes = got[graph]
        foreign = {"AddmmBackward0", "MmBackward0", "ReluBackward0", "TanhBackward0", "SigmoidBackward0"} & set(nodes)
        if "LinearFunctionBackward" not in nodes or node not in nodes or foreign:
            raise expect.CheckFailed(f"MLP(activation={activation!r}): expected its logits to come from "
                                     f"LinearFunction and {node[:-8]}; autograd nodes found: {', '.join(nodes)}")


@check(points=3,
       hint="If the loss does not fall, check the backward passes and the initialisation; if it falls but accuracy "
            "stays low, check that forward applies an activation between layers.")
def test_mlp_learns_mnist(submission):
    """MLP learns MNIST: held-out accuracy ≥ 0.91 after 3 epochs, training loss falls"""
    before, after, accuracy = fit_and_score(
        submission, "MLP", {"name": "mnist", "batch_size": 64}, 3,
        loss_fn=F.cross_entropy, predict=lambda logits: logits.argmax(dim=1), reference_cpu=1.1)
    require_learning(before, after, accuracy, min_accuracy=0.91, loss_fall=0.5)


@check(points=1,
       hint="He (he_normal_) for every layer of a ReLU network, Xavier (xavier_normal_) for tanh and sigmoid; biases "
            "stay 0. torch's Linear has its own default initialisation: replace it.")
def test_mlp_initialises_each_activation_by_its_rule(submission):
    """MLP: every layer's weights drawn by He's rule for ReLU and Xavier's for tanh and sigmoid, biases 0"""
    sizes = [400, 300, 200]
    program, layers = Program(), {}
    for activation in ("relu", "tanh", "sigmoid"):
        program.section(f"MLP(activation={activation!r})")
        model = program.call(None, "MLP", num_features=sizes[0], hidden=sizes[1:2], num_classes=sizes[2],
                             activation=activation)
        for number in range(2):
            layer = program.call(program.attr(model, "layers"), "__getitem__", number)
            layers[activation, number] = program.attr(layer, "weight"), program.attr(layer, "bias")
    got = submission.run(program, what="MLP's initial weights")
    for (activation, number), (weight, bias) in layers.items():
        fan_in, fan_out = sizes[number], sizes[number + 1]
        weight = expect.tensor(got[weight], f"MLP layer {number}'s weight", shape=(fan_out, fan_in), floating=True)
        rule, gain = ("He", 2.0) if activation == "relu" else ("Xavier", 1.0)
        expected, std = math.sqrt(gain / fan_in), weight.std().item()
        if not abs(std / expected - 1) <= 0.05:  # NaN fails too
            raise expect.CheckFailed(f"MLP(activation={activation!r}): layer {number} ({fan_in} → {fan_out}) has weight "
                                     f"std {std:.4g}, expected {rule}'s {expected:.4g}")
        if got[bias] is not None and expect.tensor(got[bias], f"layer {number}'s bias").abs().sum() != 0:
            raise expect.CheckFailed(f"MLP(activation={activation!r}): layer {number}'s bias is not 0 at the start")


@check(points=1,
       hint="After every hidden layer: activation first, then dropout with the model's p while training; nothing "
            "dropped before the first layer or after the last.")
def test_mlp_drops_out_after_each_hidden_activation(submission):
    """MLP.forward: activation then dropout(p) after each hidden layer, none on the inputs or logits, none in eval"""
    width, p = 300, 0.2
    x = _random(40, width, seed=11, scale=2)
    program = Program()
    model = program.call(None, "MLP", num_features=width, hidden=[width, width], num_classes=width,
                         activation="sigmoid", dropout=p)
    for number in range(3):  # identity layers: the logits show the last hidden layer's units as they are
        layer = program.call(program.attr(model, "layers"), "__getitem__", number)
        program.call(program.attr(program.attr(layer, "weight"), "data"), "copy_", torch.eye(width))
        program.call(program.attr(program.attr(layer, "bias"), "data"), "zero_")
    program.call(model, "train")
    training = program.call(model, "forward", x)
    program.call(model, "eval")
    evaluating = program.call(model, "forward", x)
    got = submission.run(program, what="MLP with identity layers (sigmoid, dropout 0.2)", seed=3)
    training = expect.tensor(got[training], "MLP.forward in training mode", shape=x.shape, floating=True)
    evaluating = expect.tensor(got[evaluating], "MLP.forward in eval mode", shape=x.shape, floating=True)
    expect.close(evaluating, torch.sigmoid(torch.sigmoid(x)), "MLP.forward in eval mode (no dropout)",
                 "identity layers, sigmoid")
    scale = 1 / (1 - p)
    kept_both = scale * torch.sigmoid(scale * torch.sigmoid(x))  # both hidden layers kept the unit
    kept_last = torch.full_like(x, scale * 0.5)  # the first hidden layer dropped it: sigmoid(0) = 0.5, then kept
    known = (training == 0) | torch.isclose(training, kept_last, atol=1e-5) | torch.isclose(training, kept_both,
                                                                                               atol=1e-5)
    zeros, first = (training == 0).float().mean().item(), torch.isclose(training, kept_last, atol=1e-5)
    first = first.float().mean().item()
    if not known.all() or not abs(zeros - p) <= 0.03 or not abs(first - p * (1 - p)) <= 0.03:
        raise expect.CheckFailed(
            f"MLP(dropout={p}, sigmoid) with identity layers, in training mode: {zeros:.3f} of the logits are 0 "
            f"(expected ≈ {p}: the last hidden layer's dropout), {first:.3f} equal {scale}·sigmoid(0) (expected ≈ "
            f"{p * (1 - p):.2f}: dropped after the first layer), {(~known).float().mean().item():.3f} are neither 0 "
            f"nor {scale}·sigmoid(h) — dropout goes after each hidden activation, scaled by 1/(1 − p)")


@check(points=1,
       hint="The given hooks: training_step uses SoftmaxCrossEntropyFunction, each stage updates and logs its own "
            "figures, random_shift runs while training only, and the optimizer is SGD with Nesterov momentum at lr.")
def test_mlp_training_setup_is_the_handouts(submission):
    """MLP: its own loss in training_step, each stage's figures, shifts while training only, SGD (Nesterov) at lr"""
    from grader.kit.lifecycle import require_augmentation, require_optimizer, require_stages

    x, y = _random(12, 1, 28, 28, seed=12), _labels(12, 10, seed=12)
    require_stages(submission, "MLP", {"dropout": 0.0}, x, y, loss_node="SoftmaxCrossEntropyFunctionBackward")
    require_augmentation(submission, "MLP", x, y, [({"max_shift": 2}, "train", True), ({"max_shift": 2}, "eval", False),
                                                 ({"max_shift": 0}, "train", False)])
    require_optimizer(submission, "MLP", {"lr": 0.03}, {"type": "SGD", "lr": 0.03, "momentum": 0.9, "nesterov": True},
                    schedule="OneCycleLR")
