"""Hidden checks for Lab 2: graded, shown after grades are published, never shipped to students."""
import math

import torch

from grader.checks.test_mlp import _random, compare_value_expressions
from grader.kit import expect
from grader.kit.check import check
from grader.kit.convergence import require_classifier_learns
from grader.kit.program import Program


@check(points=1,
       hint="Division is a·b⁻¹ and subtraction a + (−b): check the reflected operators (number − Value, number / "
            "Value).")
def test_value_division_and_longer_chains(submission):
    """Value: division, reflected operators and chains of exp/tanh/pow match autograd"""
    cases = [("a / b / c", lambda a, b, c: a / b / c, (1.2, -0.7, 2.5)),
             ("exp(a·b) / (1 + a²)", lambda a, b, c: (a * b).exp() / (1 + a**2), (0.4, -1.1, 0.0)),
             ("tanh((a − b)⁻¹) − 2/c", lambda a, b, c: ((a - b) ** -1).tanh() - 2 / c, (0.3, 1.4, -0.8)),
             ("relu(a − 3) + relu(3 − a)", lambda a, b, c: (a - 3).relu() + (3 - a).relu(), (1.0, 0.0, 0.0))]
    compare_value_expressions(submission, cases, what="Value: division and longer chains")


def judge_activation_statistics(init, activation, depth, width, batch, seed):
    """The experiment as the handout states it, computed here."""
    generator = torch.Generator().manual_seed(seed)
    h = torch.randn(batch, width, generator=generator)
    act = torch.tanh if activation == "tanh" else torch.relu
    stds = []
    for _ in range(depth):
        weight = torch.empty(width, width)
        gain = {"xavier": 1.0, "he": 2.0}.get(init)
        weight.normal_(0.0, math.sqrt(gain / width) if gain else float(init), generator=generator)
        h = act(h @ weight.T)
        stds.append(h.std())
    return torch.stack(stds)


@check(points=1,
       hint="Draw x first, then each layer's weight, all from one generator; use your initialisers with that "
            "generator.")
def test_activation_statistics_reproduce_the_experiment_exactly(submission):
    """activation_statistics matches the judge's own run of the experiment, draw for draw"""
    cases = [(0.01, "tanh", 512), ("xavier", "tanh", 512), ("he", "relu", 256), (0.05, "tanh", 256)]
    program = Program()
    runs = [program.module.activation_statistics(init, activation, 6, width, 16, 3)
            for init, activation, width in cases]
    got_all = submission.run(program, what="activation_statistics()")
    for (init, activation, width), run in zip(cases, runs):
        got = got_all[run]
        expected = judge_activation_statistics(init, activation, 6, width, 16, 3)
        expect.close(got, expected, "activation_statistics", f"init={init!r}, {activation}, width {width}",
                     atol=1e-6, rtol=1e-4)


@check(points=1, hint="Check each gradient against a numerical one: nudge one entry by ±ε and watch the loss.")
def test_linear_backward_matches_central_differences_of_its_own_forward(submission):
    """LinearFunction: backward agrees with central differences of the submission's own forward (float64)"""
    eps = 1e-6
    x, weight, bias = (_random(3, 2, seed=1, dtype=torch.float64), _random(2, 2, seed=2, dtype=torch.float64),
                       _random(2, seed=3, dtype=torch.float64))
    weights_of_sum = _random(3, 2, seed=4, dtype=torch.float64)  # f(X, W, b) = Σ G ⊙ Y, so dY = G
    program = Program()
    function = program.attr(None, "LinearFunction")
    inputs = [x, weight, bias]
    nudged = []
    for which, tensor in enumerate(inputs):
        for index in range(tensor.numel()):
            for sign in (1, -1):
                moved = [t.clone() for t in inputs]
                moved[which].view(-1)[index] += sign * eps
                nudged.append(function.apply(*moved))
    leaves = [program.value(t.clone().requires_grad_()) for t in inputs]
    function.apply(*leaves).backward(weights_of_sum)
    grads = [program.attr(leaf, "grad") for leaf in leaves]
    got = submission.run(program, what="LinearFunction")
    outputs = [expect.tensor(got[ref], "LinearFunction.apply") for ref in nudged]
    values = torch.stack([(weights_of_sum * y).sum() for y in outputs]).view(-1, 2)
    numeric = (values[:, 0] - values[:, 1]) / (2 * eps)
    start = 0
    for label, tensor, ref in zip(("dX", "dW", "db"), inputs, grads):
        expected = numeric[start:start + tensor.numel()].view(tensor.shape)
        start += tensor.numel()
        expect.close(got[ref], expected, f"LinearFunction backward: {label} vs central differences", "float64",
                     atol=1e-6)


@check(points=1, hint="Draw a new mask on every call (torch.rand_like), not once at import or in a global.")
def test_dropout_draws_a_fresh_mask_on_every_call(submission):
    """dropout: two calls drop different units; the same seed repeats the same mask"""
    program = Program()
    x = program.value(torch.ones(40, 50))
    first, second = program.module.dropout(x, 0.5, True), program.module.dropout(x, 0.5, True)
    runs = [submission.run(program, what="dropout", seed=11) for _ in range(2)]
    a, b = (expect.tensor(runs[0][ref], "dropout") for ref in (first, second))
    if torch.equal(a == 0, b == 0):
        raise expect.CheckFailed("dropout dropped exactly the same units on two calls; expected a fresh mask each time")
    if not torch.equal(a, expect.tensor(runs[1][first], "dropout")):
        raise expect.CheckFailed("dropout gave different masks for the same seed; draw with torch's random generator")


@check(points=2, hint="With tanh, initialise with Xavier; check TanhFunction's backward.")
def test_mlp_with_tanh_and_no_dropout_learns(submission):
    """MLP(activation="tanh", hidden=[64], dropout=0): held-out accuracy ≥ 0.9 after 2 epochs"""
    require_classifier_learns(submission, "MLP", {"name": "mnist", "batch_size": 64}, 2,
                              init={"hidden": [64], "activation": "tanh", "dropout": 0.0}, min_accuracy=0.9,
                              loss_fall=0.5, reference_cpu=0.5)
