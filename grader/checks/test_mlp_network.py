"""Checks for Lab 2 (backpropagation and the MLP), Parts 3 and 4: initialisation, dropout and the MLP.

Parts 1 and 2 are in ``test_mlp.py``. Expected values come from torch's own functions, computed here in the
judge; a ``Program`` builds the submission's objects in the worker and brings back plain results.
"""
import math

import torch

from grader.kit import devices as meta
from grader.kit import expect
from grader.kit.check import check
from grader.kit.convergence import require_classifier_learns
from grader.kit.expect import random_labels as _labels
from grader.kit.expect import random_tensor as _random
from grader.kit.modules import require_logits
from grader.kit.program import Program

# --- Part 3: initialisation and dropout -------------------------------------------------

ROWS = 512  # D_out of the weights the initialisers fill: never one of the fan-ins, so D_out for D_in is caught

@check(points=1,
       hint="σ = 1/√D_in for Xavier and √(2/D_in) for He, where D_in = weight.shape[1]; fill the tensor in place.")
def test_initialisers_have_the_right_spread(submission):
    """xavier_normal_ and he_normal_: empirical std matches the formula for several fan-ins, in place, returned"""
    # 512 rows: ≥ 32k draws a case put the std within 0.4% (2% is 5 standard errors), and the request stays
    # small enough for Gradescope's 768 MB container (2048 rows were killed there at its memory limit)
    program, weights, returned = Program(), {}, {}
    for name, gain in (("xavier_normal_", 1.0), ("he_normal_", 2.0)):
        for fan_in in (64, 256, 1024):
            program.section(f"{name}(a ({ROWS}, {fan_in}) weight)")
            weights[name, gain, fan_in] = program.value(torch.zeros(ROWS, fan_in))
            returned[name, fan_in] = program.call(None, name, weights[name, gain, fan_in])
    got_all = submission.run(program, what="xavier_normal_ and he_normal_")
    for (name, gain, fan_in), weight in weights.items():
        case, given_back = f"a ({ROWS}, {fan_in}) weight", got_all[returned[name, fan_in]]
        got = expect.shape(got_all[weight], (ROWS, fan_in), f"{name}({case})")
        if not isinstance(given_back, torch.Tensor) or not torch.equal(given_back, got):
            raise expect.CheckFailed(f"{name} must return the weight it filled (as torch.nn.init does), got "
                                     f"{expect.describe(given_back)}")
        expected = math.sqrt(gain / fan_in)
        if got.abs().sum() == 0:
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
    refs = [program.module.activation_statistics(init, activation, 6, 256) for init, activation in runs]
    got = submission.run(program, what="activation_statistics()")

    def run(init, activation):  # 6 finite stds
        return expect.tensor(got[refs[runs.index((init, activation))]],
                             f"activation_statistics({init!r}, {activation!r}, depth=6)", shape=(6,), finite=True)

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
    outs = {p: program.module.dropout(x, p, True) for p in (0.2, 0.5)}
    got_all = submission.run(program, what="dropout()", seed=1)
    for p in (0.2, 0.5):
        got = expect.shape(got_all[outs[p]], x.shape, "dropout")
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
        outs.append(program.module.dropout(x, p, training))
    got = submission.run(program, what="dropout()")
    for out, (_, _, expected, what, case) in zip(outs, cases):
        expect.close(got[out], expected, what, case)
    program = Program()
    out = program.module.dropout(meta.tensor(program, x), 0.5, True)
    meta.require(submission, program, {"the output": meta.device(program, out)}, what="dropout on meta tensors")


@check(points=1,
       hint="Build the output from x with tensor operations (x · mask / (1 − p)) so that autograd sends the gradient "
            "through the same mask.")
def test_dropout_backward_uses_the_forward_mask(submission):
    """dropout: the gradient is zero exactly where the unit was dropped, 1/(1 − p) elsewhere"""
    p = 0.3
    program = Program()
    x = program.value(_random(50, 40, seed=4).requires_grad_())
    out = program.module.dropout(x, p, True)
    out.sum().backward()
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
    require_logits(submission, "MLP", cases)


@check(points=1,
       hint="Build the MLP from this lab's Linear layers and call the activation Function's apply — not "
            "torch.nn.Linear or torch.relu.")
def test_mlp_is_built_from_the_labs_own_layers(submission):
    """MLP: its logits come through LinearFunction and the chosen activation Function"""
    cases = (("relu", "ReLUFunctionBackward"), ("tanh", "TanhFunctionBackward"), ("sigmoid", "SigmoidFunctionBackward"))
    program, graphs = Program(), []
    for activation, _ in cases:
        program.section(f"MLP(activation={activation!r})")
        model = program.module.MLP(num_features=6, hidden=[5, 4], num_classes=3, activation=activation)
        graphs.append(program.graph(model.forward(program.value(_random(3, 6, seed=1)))))
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
    require_classifier_learns(submission, "MLP", {"name": "mnist", "batch_size": 64}, 3, min_accuracy=0.91,
                              loss_fall=0.5, reference_cpu=1.1)


@check(points=1,
       hint="He (he_normal_) for every layer of a ReLU network, Xavier (xavier_normal_) for tanh and sigmoid; biases "
            "stay 0. torch's Linear has its own default initialisation: replace it.")
def test_mlp_initialises_each_activation_by_its_rule(submission):
    """MLP: every layer's weights drawn by He's rule for ReLU and Xavier's for tanh and sigmoid, biases 0"""
    sizes = [400, 300, 200]
    program, layers = Program(), {}
    for activation in ("relu", "tanh", "sigmoid"):
        program.section(f"MLP(activation={activation!r})")
        model = program.module.MLP(num_features=sizes[0], hidden=sizes[1:2], num_classes=sizes[2],
                                   activation=activation)
        for number in range(2):
            layer = program.attr(model, "layers")[number]
            layers[activation, number] = program.attr(layer, "weight"), program.attr(layer, "bias")
    got = submission.run(program, what="MLP's initial weights")
    for (activation, number), (weight, bias) in layers.items():
        fan_in, fan_out = sizes[number], sizes[number + 1]
        weight = expect.tensor(got[weight], f"MLP layer {number}'s weight", shape=(fan_out, fan_in), floating=True)
        rule, gain = ("He", 2.0) if activation == "relu" else ("Xavier", 1.0)
        expected, std = math.sqrt(gain / fan_in), weight.std().item()
        if not abs(std / expected - 1) <= 0.05:  # NaN fails too
            raise expect.CheckFailed(f"MLP(activation={activation!r}): layer {number} ({fan_in} → {fan_out}) has "
                                     f"weight std {std:.4g}, expected {rule}'s {expected:.4g}")
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
    model = program.module.MLP(num_features=width, hidden=[width, width], num_classes=width, activation="sigmoid",
                               dropout=p)
    for number in range(3):  # identity layers: the logits show the last hidden layer's units as they are
        layer = program.attr(model, "layers")[number]
        program.attr(program.attr(layer, "weight"), "data").copy_(torch.eye(width))
        program.attr(program.attr(layer, "bias"), "data").zero_()
    model.train()
    training = model.forward(x)
    model.eval()
    evaluating = model.forward(x)
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
