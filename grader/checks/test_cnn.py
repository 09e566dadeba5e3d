"""Checks for Lab 3 (convolutional networks) that students can run themselves: Parts 1 to 3, convolution
arithmetic, convolution and pooling by hand, batch normalisation (Parts 4 and 5 are in ``test_cnn_lenet5.py``).

Expected values come from torch's own layers (``F.conv2d``, ``F.max_pool2d``,
``nn.BatchNorm2d``) computed here in the judge; the submission's objects live in
the worker, and a ``Program`` builds them there and brings back plain results.
"""
import torch
import torch.nn.functional as F

from grader.kit import devices as meta
from grader.kit import expect
from grader.kit.check import check
from grader.kit.expect import random_tensor as _random
from grader.kit.program import Program


def _int(value, what):
    if type(value) is not int:
        raise expect.CheckFailed(f"{what} returned a {expect.describe(value)}, expected an int")
    return value


def autograd_nodes_named(nodes, *words):
    """The autograd node names that contain any of words (e.g. torch's own convolution)."""
    return [node for node in nodes if any(word in node for word in words)]


TORCH_CONVOLUTION = ("Convolution", "Conv2D", "Conv2d")
TORCH_POOLING = ("Pool",)


# --- Part 1: convolution arithmetic -----------------------------------------------------

# (size, kernel_size, stride, padding, dilation)
OUTPUT_SIZE_CASES = [(28, 5, 1, 0, 1), (28, 5, 1, 2, 1), (32, 3, 2, 1, 1), (7, 3, 2, 0, 1), (10, 2, 2, 0, 1),
                     (11, 3, 3, 0, 1), (5, 5, 1, 0, 1), (224, 7, 2, 3, 1), (9, 3, 1, 0, 2), (20, 3, 2, 2, 3)]


@check(points=1, hint="floor((size + 2·padding − dilation·(kernel_size − 1) − 1) / stride) + 1; use // for the floor.")
def test_conv_output_size_formula(submission):
    """conv_output_size: the output length for strides, paddings and dilations (torch's shapes)"""
    program = Program()
    sizes = [program.module.conv_output_size(*case) for case in OUTPUT_SIZE_CASES]
    got_all = submission.run(program, what="conv_output_size()")
    for (size, kernel, stride, padding, dilation), ref in zip(OUTPUT_SIZE_CASES, sizes):
        got = _int(got_all[ref], "conv_output_size")
        expected = F.conv1d(torch.zeros(1, 1, size), torch.zeros(1, 1, kernel), stride=stride, padding=padding,
                            dilation=dilation).shape[-1]
        if got != expected:
            raise expect.CheckFailed(f"conv_output_size(size={size}, kernel_size={kernel}, stride={stride}, "
                                     f"padding={padding}, dilation={dilation}): expected {expected}, got {got}")


@check(points=1,
       hint="One filter per output channel, each of in_channels·kH·kW weights, shared by every position; plus one "
            "bias per output channel.")
def test_conv_parameter_count_matches_torch(submission):
    """conv_parameter_count: the number of parameters torch.nn.Conv2d has, with and without bias"""
    cases = [(1, 6, 5, True), (6, 16, 5, True), (3, 64, 3, False), (16, 8, (3, 1), True), (64, 128, 1, False)]
    program = Program()
    counts = [program.module.conv_parameter_count(*case) for case in cases]
    got_all = submission.run(program, what="conv_parameter_count()")
    for (c_in, c_out, kernel, bias), ref in zip(cases, counts):
        got = _int(got_all[ref], "conv_parameter_count")
        expected = sum(p.numel() for p in torch.nn.Conv2d(c_in, c_out, kernel, bias=bias).parameters())
        if got != expected:
            raise expect.CheckFailed(f"conv_parameter_count({c_in}, {c_out}, {kernel}, bias={bias}): "
                                     f"expected {expected} (as nn.Conv2d), got {got}")


# --- Part 2: convolution and pooling by hand ---------------------------------------------

# (x shape, weight shape, stride, padding, bias?)
CONV_CASES = [((2, 3, 8, 8), (4, 3, 3, 3), 1, 0, True), ((1, 1, 28, 28), (6, 1, 5, 5), 1, 2, True),
              ((3, 2, 9, 7), (5, 2, 3, 2), 2, 1, True), ((2, 4, 10, 12), (3, 4, 1, 1), 1, 0, False),
              ((2, 3, 11, 9), (2, 3, 3, 3), (2, 1), (0, 1), True), ((1, 2, 5, 5), (2, 2, 5, 5), 1, 0, False)]


def _conv_case(case, dtype=torch.float32, seed=0):
    x_shape, w_shape, stride, padding, bias = case
    x = _random(*x_shape, seed=seed, dtype=dtype)
    weight = _random(*w_shape, seed=seed + 1, dtype=dtype, scale=0.5)
    b = _random(w_shape[0], seed=seed + 2, dtype=dtype) if bias else None
    text = f"x {x_shape}, weight {w_shape}, stride={stride}, padding={padding}" + ("" if bias else ", no bias")
    return x, weight, b, stride, padding, text


@check(points=2,
       hint="F.unfold(x, (kH, kW), padding=..., stride=...) gives (N, C_in·kH·kW, L) columns; weight.reshape(C_out, "
            "-1) @ columns gives (N, C_out, L); add bias.reshape(1, C_out, 1) and reshape L into (H_out, W_out).")
def test_conv2d_matches_torch(submission):
    """conv2d: values match F.conv2d for several shapes, strides and paddings (batch of 1 included), on x's device"""
    program, outs = Program(), []
    for case in CONV_CASES:
        x, weight, bias, stride, padding, text = _conv_case(case)
        program.section(f"conv2d on {text}")
        outs.append(program.module.conv2d(x, weight, bias, stride, padding))
    got = submission.run(program, what="conv2d()")
    for case, out in zip(CONV_CASES, outs):
        x, weight, bias, stride, padding, text = _conv_case(case)
        expect.close(got[out], F.conv2d(x, weight, bias, stride, padding), "conv2d", text, atol=1e-4, rtol=1e-4)
    x, weight, _, stride, padding, _ = _conv_case(CONV_CASES[3])  # no bias
    program = Program()
    out = program.module.conv2d(meta.tensor(program, x), meta.tensor(program, weight), None, stride, padding)
    meta.require(submission, program, {"the output": meta.device(program, out)}, what="conv2d on meta tensors")


def conv2d_gradients(submission, cases):
    """For each (case, dtype): (got, expected, text), the gradients of sum(conv2d(x, w, b) · g) w.r.t. x,
    weight and bias, all computed in one request."""
    program, found = Program(), []
    for case, dtype in cases:
        x, weight, bias, stride, padding, text = _conv_case(case, dtype, seed=3)
        grad_out = _random(*F.conv2d(x, weight, bias, stride, padding).shape, seed=9, dtype=dtype)
        program.section(f"conv2d backward on {text}")
        leaves = [program.value(t.clone().requires_grad_()) for t in (x, weight, bias)]
        (program.module.conv2d(*leaves, stride, padding) * grad_out).sum().backward()
        grads = [program.attr(leaf, "grad") for leaf in leaves]
        leaves = [t.clone().requires_grad_() for t in (x, weight, bias)]
        torch.autograd.backward(F.conv2d(*leaves, stride, padding), grad_out)
        found.append((grads, [leaf.grad for leaf in leaves], text))
    got = submission.run(program, what="conv2d backward")
    return [([got[g] for g in grads], expected, text) for grads, expected, text in found]


@check(points=2,
       hint="Build the output only from tensor operations (unfold, reshape, @, +) so that autograd can differentiate "
            "it; a conversion to numpy or a loop that writes into a preallocated tensor breaks the gradient.")
def test_conv2d_gradients_match_autograd(submission):
    """conv2d: gradients w.r.t. x, weight and bias match F.conv2d's, in float32 and to 1e-9 in float64"""
    cases = [(CONV_CASES[0], torch.float32, 1e-4), (CONV_CASES[2], torch.float32, 1e-4),
             (CONV_CASES[4], torch.float64, 1e-9)]
    results = conv2d_gradients(submission, [(case, dtype) for case, dtype, _ in cases])
    for (_, dtype, atol), (got, expected, text) in zip(cases, results):
        for name, g, e in zip(("x", "weight", "bias"), got, expected):
            expect.close(g, e, f"the gradient of conv2d w.r.t. {name}", f"{text} ({str(dtype)[6:]})",
                         atol=atol, rtol=atol)


@check(points=1,
       hint="Write the convolution yourself with F.unfold and a matrix product: F.conv2d, torch.conv2d and "
            "nn.Conv2d's forward are what this lab replaces.")
def test_conv2d_is_written_by_hand(submission):
    """conv2d: its output does not come from torch's own convolution"""
    submission.follows("own convolution and pooling")  # the source, read in the judge: node names can be forged
    x, weight, bias, stride, padding, _ = _conv_case(CONV_CASES[0])
    program = Program()
    graph = program.graph(program.module.conv2d(program.value(x.requires_grad_()), weight, bias, stride, padding))
    nodes = submission.run(program, what="conv2d")[graph]
    used = autograd_nodes_named(nodes, *TORCH_CONVOLUTION)
    if used or not nodes:
        raise expect.CheckFailed("conv2d must not call torch's convolution "
                                 f"(autograd nodes found: {', '.join(nodes) or 'none'})")


# (x shape, kernel_size, stride)
POOL_CASES = [((2, 3, 8, 8), 2, None), ((1, 2, 7, 9), 3, 2), ((2, 1, 6, 6), (2, 3), 1), ((1, 4, 5, 5), 5, None)]


@check(points=2,
       hint="F.unfold(x, kernel, stride=stride) gives each window as a column; reshape to (N, C, kH·kW, L) and take "
            ".max(dim=2).values — its gradient goes to the first maximum of a window, as F.max_pool2d's does.")
def test_max_pool2d_matches_torch(submission):
    """max_pool2d: values and gradients match F.max_pool2d, windows with tied maxima included, by hand"""
    program, cases = Program(), []
    for seed, (shape, kernel, stride) in enumerate(POOL_CASES):
        for ties in (False, True):
            x = _random(*shape, seed=seed) if not ties else torch.randint(0, 3, shape, generator=torch.Generator()
                                                                            .manual_seed(seed)).float()
            grad_out = _random(*F.max_pool2d(x, kernel, stride).shape, seed=seed + 10)
            text = f"x {shape}, kernel_size={kernel}, stride={stride}" + (" (tied maxima)" if ties else "")
            program.section(f"max_pool2d on {text}")
            leaf = program.value(x.clone().requires_grad_())
            out = program.module.max_pool2d(leaf, kernel, stride)
            graph = program.graph(out)
            (out * grad_out).sum().backward()
            cases.append((x, kernel, stride, grad_out, text, out, graph, program.attr(leaf, "grad")))
    got = submission.run(program, what="max_pool2d")
    for x, kernel, stride, grad_out, text, out, graph, grad in cases:
        used = autograd_nodes_named(got[graph], *TORCH_POOLING)
        if used:
            raise expect.CheckFailed(f"max_pool2d must not call torch's pooling (autograd nodes found: "
                                     f"{', '.join(used)})")
        expected_leaf = x.clone().requires_grad_()
        expected = F.max_pool2d(expected_leaf, kernel, stride)
        expected.backward(grad_out)
        expect.close(got[out], expected.detach(), "max_pool2d", text)
        expect.close(got[grad], expected_leaf.grad, "the gradient of max_pool2d", text)


# --- Part 3: batch normalisation ----------------------------------------------------------

def batchnorm_program(batches, eval_x, init=(), gamma=None, beta=None, grad_out=None):
    """A Program that runs the submission's BatchNorm2d on batches in training mode, then eval_x in eval mode.

    Returns (program, refs) with refs to the outputs, the buffers and (with grad_out) the gradients of the
    last training batch.
    """
    program = Program()
    norm = program.module.BatchNorm2d(*init)
    if batches[0].dtype == torch.float64:
        norm.double()  # parameters and buffers in float64, as torch's layer below
    for name, value in (("weight", gamma), ("bias", beta)):
        if value is not None:
            program.attr(program.attr(norm, name), "data").copy_(value)
    refs = {"train": []}
    for i, x in enumerate(batches):
        leaf = program.value(x.clone().requires_grad_() if grad_out is not None and i == len(batches) - 1 else x)
        refs["train"].append(norm.forward(leaf))
    if grad_out is not None:
        (refs["train"][-1] * grad_out).sum().backward()
        refs["grad_x"] = program.attr(leaf, "grad")
        refs["grad_weight"] = program.attr(program.attr(norm, "weight"), "grad")
        refs["grad_bias"] = program.attr(program.attr(norm, "bias"), "grad")
    for name in ("running_mean", "running_var", "num_batches_tracked"):  # as they are now, before eval mode
        refs[name] = program.attr(norm, name).clone()
    norm.eval()
    refs["eval"] = norm.forward(program.value(eval_x))
    refs["eval_one"] = norm.forward(program.value(eval_x[:1]))
    return program, refs


def torch_batchnorm(batches, eval_x, init=(), gamma=None, beta=None, grad_out=None):
    """The same run with torch.nn.BatchNorm2d: a dict like the submission's results."""
    torch_bn = torch.nn.BatchNorm2d(*init).to(batches[0].dtype)
    with torch.no_grad():
        if gamma is not None:
            torch_bn.weight.copy_(gamma)
        if beta is not None:
            torch_bn.bias.copy_(beta)
    out = {"train": []}
    for i, x in enumerate(batches):
        leaf = x.clone().requires_grad_() if grad_out is not None and i == len(batches) - 1 else x
        out["train"].append(torch_bn(leaf))
    if grad_out is not None:
        out["train"][-1].backward(grad_out)
        out.update(grad_x=leaf.grad, grad_weight=torch_bn.weight.grad, grad_bias=torch_bn.bias.grad)
    out["train"] = [t.detach() for t in out["train"]]
    out.update(running_mean=torch_bn.running_mean, running_var=torch_bn.running_var,
               num_batches_tracked=torch_bn.num_batches_tracked)
    torch_bn.eval()
    with torch.no_grad():
        out.update(eval=torch_bn(eval_x), eval_one=torch_bn(eval_x[:1]))
    return out


def compare_batchnorm(submission, names, batches, eval_x, text, init=(), atol=1e-5, **kwargs):
    program, refs = batchnorm_program(batches, eval_x, init, **kwargs)
    got = submission.run(program, what="BatchNorm2d")
    expected = torch_batchnorm(batches, eval_x, init, **kwargs)
    for name in names:
        if name == "train":
            for step, (ref, e) in enumerate(zip(refs["train"], expected["train"]), 1):
                expect.close(got[ref], e, f"BatchNorm2d in training mode, batch {step}", text, atol=atol)
        elif name == "num_batches_tracked":
            if not torch.equal(expect.tensor(got[refs[name]], "num_batches_tracked"), expected[name]):
                raise expect.CheckFailed(f"BatchNorm2d.num_batches_tracked after {len(batches)} training batches: "
                                         f"expected {expected[name].item()}, got {got[refs[name]]}")
        else:
            expect.close(got[refs[name]], expected[name], f"BatchNorm2d {name.replace('_', ' ')}", text, atol=atol)


def batches_of(shape, count, seed):
    """Batches with a channel-specific mean and spread, so that normalising has something to do."""
    shift = torch.linspace(-2, 3, shape[1]).reshape(1, -1, 1, 1)
    return [_random(*shape, seed=seed + i) * (1 + shift.abs()) + shift for i in range(count)]


@check(points=2,
       hint="Normalise with the batch's biased variance (x.var(..., unbiased=False)); update running_var with the "
            "unbiased one (× m/(m − 1), m = N·H·W) and momentum: new = (1 − momentum)·old + momentum·batch value.")
def test_batchnorm_training_mode_matches_torch(submission):
    """BatchNorm2d in training mode: outputs and running statistics match nn.BatchNorm2d over 4 batches"""
    submission.follows("own batch norm")  # torch's batch norm, renamed, would match bit for bit
    batches = batches_of((4, 3, 2, 2), 4, seed=1)
    gamma, beta = _random(3, seed=7, scale=0.5) + 1, _random(3, seed=8)
    compare_batchnorm(submission, ["train", "running_mean", "running_var", "num_batches_tracked"], batches,
                      batches[0], "batches of shape (4, 3, 2, 2)", init=(3,), gamma=gamma, beta=beta)
    # far from 0: E[x²] − E[x]² loses every digit of the variance in float32; the two-pass form keeps them
    far = [100 + 0.05 * batch for batch in batches_of((4, 3, 2, 2), 2, seed=60)]
    compare_batchnorm(submission, ["train"], far, far[0], "batches of mean ≈ 100 and std ≈ 0.05", init=(3,),
                      atol=2e-3)
    program = Program()
    norm = program.module.BatchNorm2d(3)
    norm.forward(program.value(batches[0].clone().requires_grad_())).sum()
    tracking = [program.attr(program.attr(norm, name), "requires_grad") for name in ("running_mean", "running_var")]
    got = submission.run(program, what="BatchNorm2d's running statistics")
    if any(got[ref] is not False for ref in tracking):
        raise expect.CheckFailed("after a training-mode forward of an x that requires a gradient, running_mean or "
                                 "running_var requires a gradient: update them without autograd (torch.no_grad()), "
                                 "or every batch's graph stays alive in them")


@check(points=2,
       hint="In eval mode (self.training is False) normalise with running_mean and running_var, not the batch: then "
            "an image's output is the same in a batch of 1 and in a batch of 8.")
def test_batchnorm_eval_mode_uses_running_statistics(submission):
    """BatchNorm2d in eval mode: normalises with the running statistics, the same for a batch of 1"""
    batches = batches_of((6, 4, 3, 3), 3, seed=11)
    eval_x = batches_of((8, 4, 3, 3), 1, seed=21)[0]
    compare_batchnorm(submission, ["eval", "eval_one"], batches, eval_x, "8 images after 3 training batches",
                      init=(4,), gamma=_random(4, seed=3) + 1, beta=_random(4, seed=4))


@check(points=1,
       hint="Use the names torch uses — weight, bias (parameters), running_mean, running_var, num_batches_tracked "
            "(buffers, with register_buffer) — so a state_dict loads in either layer.")
def test_batchnorm_state_dict_is_interchangeable_with_torch(submission):
    """BatchNorm2d: its state_dict has nn.BatchNorm2d's keys and shapes, and loads torch's strictly"""
    reference = torch.nn.BatchNorm2d(5)
    with torch.no_grad():
        for i, tensor in enumerate(reference.state_dict().values()):
            if tensor.is_floating_point():
                tensor.copy_(_random(5, seed=30 + i).abs() + 0.5)
    x = batches_of((3, 5, 2, 2), 1, seed=40)[0]
    program = Program()
    norm = program.module.BatchNorm2d(5)
    own = norm.state_dict()
    norm.load_state_dict(reference.state_dict())
    norm.eval()
    out = norm.forward(program.value(x))
    got = submission.run(program, what="BatchNorm2d state_dict")
    own = got[own]
    expected = {name: tuple(t.shape) for name, t in torch.nn.BatchNorm2d(5).state_dict().items()}
    if not isinstance(own, dict) or {name: tuple(getattr(t, "shape", ())) for name, t in own.items()} != expected:
        keys = ", ".join(f"{k}{tuple(getattr(t, 'shape', ()))}" for k, t in own.items()) if isinstance(own, dict) else own
        raise expect.CheckFailed(f"BatchNorm2d(5).state_dict(): expected {', '.join(f'{k}{s}' for k, s in expected.items())}; "
                                 f"got {keys or 'nothing'}")
    reference.eval()
    with torch.no_grad():
        expect.close(got[out], reference(x), "BatchNorm2d with nn.BatchNorm2d's state_dict loaded, in eval mode")


@check(points=1,
       hint="Compute the output with differentiable tensor operations only; inside torch.no_grad() update the "
            "running buffers, never the output.")
def test_batchnorm_gradients_match_autograd(submission):
    """BatchNorm2d: gradients w.r.t. x, γ and β in training mode match nn.BatchNorm2d's"""
    batches = batches_of((5, 3, 3, 2), 2, seed=50)
    compare_batchnorm(submission, ["grad_x", "grad_weight", "grad_bias"], batches, batches[0],
                      "a batch of shape (5, 3, 3, 2)", init=(3,), atol=1e-4, gamma=_random(3, seed=5) + 1,
                      beta=_random(3, seed=6), grad_out=_random(5, 3, 3, 2, seed=51))
