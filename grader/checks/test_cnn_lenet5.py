"""Checks for Lab 3 (convolutional networks), Parts 4 and 5: data augmentation and LeNet-5.

Parts 1 to 3 are in ``test_cnn.py``. Expected values come from torch's own functions, computed here in the
judge; a ``Program`` builds the submission's objects in the worker and brings back plain results.
"""
import torch
import torch.nn.functional as F

from grader.checks.test_cnn import TORCH_CONVOLUTION, TORCH_POOLING, autograd_nodes_named
from grader.kit import expect
from grader.kit.check import check
from grader.kit.convergence import require_classifier_learns
from grader.kit.expect import random_tensor as _random
from grader.kit.modules import require_logits
from grader.kit.program import Program

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
            cases.append((image, case, program.call(None, name, size)(image, 7)))
    got_all = submission.run(program, what="train_transforms and eval_transforms")
    for image, case, out in cases:
        got = got_all[out]
        if not isinstance(got, list) or len(got) != 2:
            raise expect.CheckFailed(f"{case}: expected (image, label) back, got a {expect.describe(got)}")
        new_image = expect.shape(got[0], image.shape, case)
        if new_image.dtype != torch.float32:
            raise expect.CheckFailed(f"{case}: expected a float32 image, got {expect.describe(new_image)}")
        if got[1] != 7 or type(got[1]) is not int:
            raise expect.CheckFailed(f"{case}: the label came back as {got[1]!r}, expected 7 untouched")


def _transformed(submission, name, images, seed):
    program = Program()
    transform = program.call(None, name)
    outs = [transform(image) for image in images]
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
    transform = program.module.train_transforms(12, reach)
    outs = [transform(image) for _ in range(draws)]
    large = _random(1, 16, 16, seed=10)
    centre = program.module.eval_transforms(12)(large)
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
    require_logits(submission, "LeNet5", cases)


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
        model = program.module.LeNet5(**init)
        refs.append(model.named_parameters())
        for part in ("features", "classifier"):
            sequence = program.attr(model, part)
            layers[str(init), part] = [[program.attr(program.attr(sequence[i], "__class__"), attribute)
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
    graph = program.graph(program.module.LeNet5().forward(program.value(_random(2, 1, 28, 28))))
    x = _random(2, 2, 9, 9, seed=5)
    conv = program.module.Conv2d(2, 3, 3, stride=2, padding=1)
    weight, bias = program.attr(conv, "weight"), program.attr(conv, "bias")
    convolved = conv.forward(x)
    pooled = program.module.MaxPool2d(3, stride=1).forward(x)
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
    model = program.module.LeNet5()
    for seed in range(3):  # a few training-mode passes, so the running statistics are not the initial ones
        model.forward(program.value(_random(16, 1, 28, 28, seed=10 + seed) * 2 + 1))
    model.eval()
    batch, alone = model.forward(program.value(x)), model.forward(program.value(x[:1]))
    got = submission.run(program, what="LeNet5 in eval mode")
    batch, alone = expect.tensor(got[batch], "LeNet5.forward"), expect.tensor(got[alone], "LeNet5.forward")
    expect.close(alone, batch[:1], "LeNet5 in eval mode: the first image's logits alone vs in a batch of 8",
                 atol=1e-4, rtol=1e-4)


@check(points=3,
       hint="If the loss does not fall, check conv2d and the optimizer; if it falls but accuracy stays low, check "
            "that ReLU follows every layer but the last and that the classifier sees all 16·h·w features.")
def test_lenet5_learns_mnist(submission):
    """LeNet5 learns MNIST: held-out accuracy ≥ 0.95 after 3 epochs (no augmentation), training loss falls"""
    require_classifier_learns(submission, "LeNet5", {"name": "mnist", "batch_size": 64}, 3, init={"augment": False},
                              min_accuracy=0.95, loss_fall=0.3, reference_cpu=5.7)


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
