"""Checks for Lab 3 (convolutional networks) that students can run themselves.

Expected values come from torch's own layers (``F.conv2d``, ``F.max_pool2d``,
``nn.BatchNorm2d``) computed here in the judge; the submission's objects live in
the worker, and a ``Program`` builds them there and brings back plain results.
"""
import torch
import torch.nn.functional as F

from grader.kit import devices as meta
from grader.kit import expect
from grader.kit.check import check
from grader.kit.convergence import fit_and_score, require_learning
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
    sizes = [program.call(None, "conv_output_size", *case) for case in OUTPUT_SIZE_CASES]
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
    counts = [program.call(None, "conv_parameter_count", *case) for case in cases]
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
        outs.append(program.call(None, "conv2d", x, weight, bias, stride, padding))
    got = submission.run(program, what="conv2d()")
    for case, out in zip(CONV_CASES, outs):
        x, weight, bias, stride, padding, text = _conv_case(case)
        expect.close(got[out], F.conv2d(x, weight, bias, stride, padding), "conv2d", text, atol=1e-4, rtol=1e-4)
    x, weight, _, stride, padding, _ = _conv_case(CONV_CASES[3])  # no bias
    program = Program()
    out = program.call(None, "conv2d", meta.tensor(program, x), meta.tensor(program, weight), None, stride, padding)
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
        out = program.call(None, "conv2d", *leaves, stride, padding)
        program.call(program.call(program.call(out, "__mul__", grad_out), "sum"), "backward")
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
    out = program.call(None, "conv2d", program.value(x.requires_grad_()), weight, bias, stride, padding)
    graph = program.graph(out)
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
            out = program.call(None, "max_pool2d", leaf, kernel, stride)
            graph = program.graph(out)
            program.call(program.call(program.call(out, "__mul__", grad_out), "sum"), "backward")
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
    layer = program.call(None, "BatchNorm2d", *init)
    if batches[0].dtype == torch.float64:
        program.call(layer, "double")  # parameters and buffers in float64, as torch's layer below
    for name, value in (("weight", gamma), ("bias", beta)):
        if value is not None:
            program.call(program.attr(program.attr(layer, name), "data"), "copy_", value)
    refs = {"train": []}
    for i, x in enumerate(batches):
        leaf = program.value(x.clone().requires_grad_() if grad_out is not None and i == len(batches) - 1 else x)
        refs["train"].append(program.call(layer, "forward", leaf))
    if grad_out is not None:
        program.call(program.call(program.call(refs["train"][-1], "__mul__", grad_out), "sum"), "backward")
        refs["grad_x"] = program.attr(leaf, "grad")
        refs["grad_weight"] = program.attr(program.attr(layer, "weight"), "grad")
        refs["grad_bias"] = program.attr(program.attr(layer, "bias"), "grad")
    for name in ("running_mean", "running_var", "num_batches_tracked"):  # as they are now, before eval mode
        refs[name] = program.call(program.attr(layer, name), "clone")
    program.call(layer, "eval")
    refs["eval"] = program.call(layer, "forward", program.value(eval_x))
    refs["eval_one"] = program.call(layer, "forward", program.value(eval_x[:1]))
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
    layer = program.call(None, "BatchNorm2d", 3)
    program.call(program.call(layer, "forward", program.value(batches[0].clone().requires_grad_())), "sum")
    tracking = [program.attr(program.attr(layer, name), "requires_grad") for name in ("running_mean", "running_var")]
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
    layer = program.call(None, "BatchNorm2d", 5)
    own = program.call(layer, "state_dict")
    program.call(layer, "load_state_dict", reference.state_dict())
    program.call(layer, "eval")
    out = program.call(layer, "forward", program.value(x))
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


# --- Part 4: data augmentation ----------------------------------------------------------------

def _digit():
    """A normalised training image from the offline MNIST data (the judge's copy)."""
    from grader.kit.convergence import offline_data

    return offline_data("mnist").split("train")[0][0]


@check(points=1,
       hint="v2 transforms take any structure: transform(image, label) returns (new image, label) with the label as "
            "it was; v2.ToDtype(torch.float32) makes the image float32.")
def test_transforms_keep_the_shape_the_label_and_give_float32(submission):
    """train_transforms / eval_transforms: (C, H, W) float32 images of the same size, labels untouched"""
    program, cases = Program(), []
    for image, size in [(_digit().double(), 28), (_random(3, 32, 32, seed=2), 32)]:
        for name in ("train_transforms", "eval_transforms"):
            case = f"{name}({size}) on an image {tuple(image.shape)} with label 7"
            program.section(case)
            cases.append((image, case, program.call(program.call(None, name, size), "__call__", image, 7)))
    got_all = submission.run(program, what="train_transforms and eval_transforms")
    for image, case, out in cases:
        got = got_all[out]
        if not isinstance(got, list) or len(got) != 2:
            raise expect.CheckFailed(f"{case}: expected (image, label) back, got a {expect.describe(got)}")
        new_image = expect.tensor(got[0], case)
        if new_image.shape != image.shape or new_image.dtype != torch.float32:
            raise expect.CheckFailed(f"{case}: expected a float32 image of shape {tuple(image.shape)}, "
                                     f"got {expect.describe(new_image)}")
        if got[1] != 7 or type(got[1]) is not int:
            raise expect.CheckFailed(f"{case}: the label came back as {got[1]!r}, expected 7 untouched")


def _transformed(submission, name, images, seed):
    program = Program()
    transform = program.call(None, name)
    outs = [program.call(transform, "__call__", image) for image in images]
    got = submission.run(program, what=name, seed=seed)
    return [expect.tensor(got[out], name) for out in outs]


@check(points=1,
       hint="Evaluation must not be random; training augmentation draws from torch's global generator, so "
            "torch.manual_seed repeats it. Use v2.RandomCrop with padding, not your own random module.")
def test_train_transform_is_random_but_seeded_and_eval_is_fixed(submission):
    """train_transforms: random, repeated exactly under the same seed; eval_transforms leaves an image as it is"""
    images = [_digit()] + [_random(1, 28, 28, seed=s) for s in range(7)]
    for seed in (1, 2):
        for out, image in zip(_transformed(submission, "eval_transforms", images, seed), images):
            expect.close(out, image, "eval_transforms()", f"a 28×28 image (seed {seed})", atol=0)
    first, again, other = (_transformed(submission, "train_transforms", images, seed) for seed in (1, 1, 2))
    if not all(torch.equal(a, b) for a, b in zip(first, again)):
        raise expect.CheckFailed("train_transforms(): the same seed gave different augmented images; draw the "
                                 "randomness from torch's generator")
    changed = sum(not torch.equal(a, image) for a, image in zip(first, images))
    if changed < 4 or all(torch.equal(a, b) for a, b in zip(first, other)):
        raise expect.CheckFailed(f"train_transforms(): expected random augmentation, but {8 - changed} of 8 images "
                                 "came back unchanged or another seed gave the same images")


def edge_shift(image, dy, dx, reach):
    """image (C, H, W) moved by (dy, dx) pixels, the border replicated: what a crop of the edge-padded image gives."""
    padded = F.pad(image[None], (reach, reach, reach, reach), mode="replicate")[0]
    height, width = image.shape[1:]
    return padded[:, reach + dy: reach + dy + height, reach + dx: reach + dx + width]


@check(points=1,
       hint="v2.RandomCrop(image_size, padding=max_shift, padding_mode='edge'): every shift from −max_shift to "
            "+max_shift pixels, the border repeated rather than zeros or a wrap-around; eval_transforms crops the "
            "centre.")
def test_train_transform_shifts_by_up_to_max_shift_with_edge_padding(submission):
    """train_transforms: each image moved by at most max_shift pixels, edge-padded, every shift possible; eval
    crops the centre"""
    image, reach, draws = _random(1, 12, 12, seed=9), 3, 60
    program = Program()
    transform = program.call(None, "train_transforms", 12, reach)
    outs = [program.call(transform, "__call__", image) for _ in range(draws)]
    large = _random(1, 16, 16, seed=10)
    centre = program.call(program.call(None, "eval_transforms", 12), "__call__", large)
    got = submission.run(program, what=f"train_transforms(12, max_shift={reach}) and eval_transforms(12)", seed=4)
    expect.close(got[centre], large[:, 2:14, 2:14], "eval_transforms(12) on a 16×16 image", "the centre 12×12 crop",
                 atol=0)
    shifts = set()
    for number, out in enumerate(outs):
        out = expect.tensor(got[out], f"train_transforms(12, {reach})", shape=image.shape)
        found = next(((dy, dx) for dy in range(-reach, reach + 1) for dx in range(-reach, reach + 1)
                      if torch.allclose(out, edge_shift(image, dy, dx, reach), atol=1e-6)), None)
        if found is None:
            raise expect.CheckFailed(f"train_transforms(12, max_shift={reach}), draw {number + 1}: the image is no "
                                     f"shift of the input by at most {reach} pixels with the border repeated")
        shifts.add(found)
    if not any(reach in map(abs, shift) for shift in shifts) or len(shifts) < 10:
        raise expect.CheckFailed(f"train_transforms(12, max_shift={reach}): {draws} draws gave only the shifts "
                                 f"{sorted(shifts)}; every shift up to ±{reach} pixels should occur")


# --- Part 5: LeNet-5 -----------------------------------------------------------------------

@check(points=1,
       hint="The second pooling leaves 16 maps of h×w; compute h and w with conv_output_size from input_shape "
            "instead of writing 5 (it is 6 for a 32×32 input).")
def test_lenet5_gives_logits_of_the_right_shape(submission):
    """LeNet5.forward: (N, num_classes) logits for 28×28 and 32×32 inputs, batch of 1 included"""
    cases = [({}, _random(1, 1, 28, 28)), ({}, _random(5, 1, 28, 28, seed=1)),
             ({"num_classes": 7, "input_shape": (3, 32, 32)}, _random(2, 3, 32, 32, seed=2)),
             ({"batch_norm": False}, _random(3, 1, 28, 28, seed=3))]
    program, outs = Program(), []
    for init, x in cases:
        program.section(f"LeNet5({init}).forward on input {tuple(x.shape)}")
        model = program.call(None, "LeNet5", **init)
        program.call(model, "eval")
        outs.append(program.call(model, "forward", program.value(x)))
    got_all = submission.run(program, what="LeNet5.forward")
    for (init, x), logits in zip(cases, outs):
        got = expect.tensor(got_all[logits], "LeNet5.forward")
        classes = init.get("num_classes", 10)
        if got.shape != (x.shape[0], classes):
            raise expect.CheckFailed(f"LeNet5({init}).forward on input {tuple(x.shape)}: expected shape "
                                     f"({x.shape[0]}, {classes}), got {tuple(got.shape)}")


# The docstring's layers, by class name: (part, with batch norm) -> names in order.
LENET5_LAYERS = {
    ("features", True): ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"] * 2,
    ("features", False): ["Conv2d", "ReLU", "MaxPool2d"] * 2,
    **{("classifier", bn): ["Flatten", "Linear", "ReLU", "Linear", "ReLU", "Linear"] for bn in (True, False)},
}


def lenet5_parameter_count(channels=1, height=28, width=28, num_classes=10, batch_norm=True):
    """The handout's architecture, counted here from its shapes."""
    # padded 5×5 convolution: same size; pool: halved; 5×5 convolution: 4 fewer; pool: halved
    size = [(s // 2 - 4) // 2 for s in (height, width)]
    conv = 6 * channels * 25 + 16 * 6 * 25 + (0 if batch_norm else 6 + 16)
    norm = 2 * (6 + 16) if batch_norm else 0
    dense = [16 * size[0] * size[1], 120, 84, num_classes]
    return conv + norm + sum(a * b + b for a, b in zip(dense[:-1], dense[1:]))


@check(points=1,
       hint="conv 5×5 (6, then 16 filters) with batch norm and no conv bias, or bias and no batch norm; then fully "
            "connected layers of 120, 84 and num_classes units.")
def test_lenet5_has_the_notes_architecture(submission):
    """LeNet5: the handout's layers in order (torch's BatchNorm2d) and parameter count — 61,728 with batch norm,
    61,706 without (28×28 input)"""
    inits, program, refs = [{}, {"batch_norm": False}, {"input_shape": (3, 32, 32), "num_classes": 5}], Program(), []
    layers = {}
    for init in inits:
        program.section(f"LeNet5({init}).named_parameters()")
        model = program.call(None, "LeNet5", **init)
        refs.append(program.call(model, "named_parameters"))
        for part in ("features", "classifier"):
            sequence = program.attr(model, part)
            layers[str(init), part] = [
                [program.attr(program.attr(program.call(sequence, "__getitem__", i), "__class__"), attribute)
                 for attribute in ("__module__", "__name__")]
                for i in range(len(LENET5_LAYERS[part, "batch_norm" not in init]))]
    got_all = submission.run(program, what="LeNet5.named_parameters")
    for init in inits:
        for part in ("features", "classifier"):
            found = [[got_all[ref] for ref in pair] for pair in layers[str(init), part]]
            expected = LENET5_LAYERS[part, "batch_norm" not in init]
            names = [name for _, name in found]
            torch_batch_norm = all(where.startswith("torch.nn") for where, name in found if name == "BatchNorm2d")
            if names != expected or not torch_batch_norm:
                raise expect.CheckFailed(f"LeNet5({init}).{part}: layers {names} ({', '.join(w for w, _ in found)}); "
                                         f"expected {expected}, the batch norm torch.nn.BatchNorm2d (so that "
                                         "sync_batchnorm can convert it)")
    for init, parameters in zip(inits, refs):
        got = got_all[parameters]
        if not isinstance(got, list):
            raise expect.CheckFailed(f"LeNet5({init}).named_parameters() gave a {expect.describe(got)}")
        count = sum(t.numel() for _, t in got)
        channels, height, width = init.get("input_shape", (1, 28, 28))
        expected = lenet5_parameter_count(channels, height, width, init.get("num_classes", 10),
                                          init.get("batch_norm", True))
        if count != expected:
            shapes = ", ".join(f"{name} {tuple(t.shape)}" for name, t in got)
            raise expect.CheckFailed(f"LeNet5({init}) has {count:,} parameters, expected {expected:,}: {shapes}")


@check(points=1,
       hint="Build the features from this lab's Conv2d and MaxPool2d (they call your conv2d and max_pool2d), not "
            "torch.nn.Conv2d / nn.MaxPool2d.")
def test_lenet5_is_built_from_the_labs_layers(submission):
    """LeNet5: its logits come through your conv2d and max_pool2d; the Conv2d and MaxPool2d modules pass every
    setting on"""
    submission.follows("own convolution and pooling")
    program = Program()
    model = program.call(None, "LeNet5")
    logits = program.call(model, "forward", program.value(_random(2, 1, 28, 28)))
    graph = program.graph(logits)
    x = _random(2, 2, 9, 9, seed=5)
    conv = program.call(None, "Conv2d", 2, 3, 3, stride=2, padding=1)
    weight, bias = program.attr(conv, "weight"), program.attr(conv, "bias")
    convolved = program.call(conv, "forward", x)
    pooled = program.call(program.call(None, "MaxPool2d", 3, stride=1), "forward", x)
    got = submission.run(program, what="LeNet5, Conv2d(stride=2, padding=1) and MaxPool2d(3, stride=1)")
    nodes = got[graph]
    weight, bias = expect.tensor(got[weight], "Conv2d's weight"), expect.tensor(got[bias], "Conv2d's bias")
    expect.close(got[convolved], F.conv2d(x, weight.detach(), bias.detach(), stride=2, padding=1),
                 "Conv2d(2, 3, 3, stride=2, padding=1).forward", "x (2, 2, 9, 9)")
    expect.close(got[pooled], F.max_pool2d(x, 3, stride=1), "MaxPool2d(3, stride=1).forward", "x (2, 2, 9, 9)")
    used = autograd_nodes_named(nodes, *TORCH_CONVOLUTION, *TORCH_POOLING)
    if used or "Im2ColBackward0" not in nodes:
        raise expect.CheckFailed(f"LeNet5: expected its logits to come from the lab's conv2d (unfold) and "
                                 f"max_pool2d; autograd nodes found: {', '.join(nodes)}")


@check(points=1,
       hint="Lightning calls model.eval() before validation and testing; nothing in forward may force batch norm "
            "back into training mode (no F.batch_norm(..., training=True), no .train() inside forward).")
def test_lenet5_in_eval_mode_does_not_depend_on_the_batch(submission):
    """LeNet5 in eval mode: an image gets the same logits alone as in a batch (batch norm uses running statistics)"""
    x = _random(8, 1, 28, 28, seed=4)
    program = Program()
    model = program.call(None, "LeNet5")
    for seed in range(3):  # a few training-mode passes, so the running statistics are not the initial ones
        program.call(model, "forward", program.value(_random(16, 1, 28, 28, seed=10 + seed) * 2 + 1))
    program.call(model, "eval")
    batch = program.call(model, "forward", program.value(x))
    alone = program.call(model, "forward", program.value(x[:1]))
    got = submission.run(program, what="LeNet5 in eval mode")
    batch, alone = expect.tensor(got[batch], "LeNet5.forward"), expect.tensor(got[alone], "LeNet5.forward")
    expect.close(alone, batch[:1], "LeNet5 in eval mode: the first image's logits alone vs in a batch of 8",
                 atol=1e-4, rtol=1e-4)


@check(points=3,
       hint="If the loss does not fall, check conv2d and the optimizer; if it falls but accuracy stays low, check "
            "that ReLU follows every layer but the last and that the classifier sees all 16·h·w features.")
def test_lenet5_learns_mnist(submission):
    """LeNet5 learns MNIST: held-out accuracy ≥ 0.95 after 3 epochs (no augmentation), training loss falls"""
    before, after, accuracy = fit_and_score(
        submission, "LeNet5", {"name": "mnist", "batch_size": 64}, 3, init={"augment": False},
        loss_fn=F.cross_entropy, predict=lambda logits: logits.argmax(dim=1), reference_cpu=5.7)
    require_learning(before, after, accuracy, min_accuracy=0.95, loss_fall=0.3)


@check(points=1,
       hint="The given hooks: each stage updates and logs its own figures from F.cross_entropy of the logits, "
            "training_step returns the loss, augmentation (one shift per image) runs while training and only with "
            "augment=True, and the optimizer is SGD (Nesterov momentum 0.9, weight decay 5e-4) with a one-cycle "
            "schedule stepped every batch.")
def test_lenet5_training_setup_is_the_handouts(submission):
    """LeNet5: each stage's figures, augmentation while training only, SGD (Nesterov, weight decay) at lr, one-cycle"""
    from grader.kit.lifecycle import require_augmentation, require_optimizer, require_stages

    x, y = _random(12, 1, 28, 28, seed=12), torch.arange(12) % 10
    require_stages(submission, "LeNet5", {"augment": False}, x, y)
    copies = x[:1].repeat(8, 1, 1, 1)
    require_augmentation(submission, "LeNet5", copies, y[:8], [({}, "train", True), ({}, "eval", False),
                                                           ({"augment": False}, "train", False)])
    require_optimizer(submission, "LeNet5", {"lr": 0.03}, {"type": "SGD", "lr": 0.03, "momentum": 0.9,
                                                         "nesterov": True, "weight_decay": 5e-4},
                    schedule="OneCycleLR")
