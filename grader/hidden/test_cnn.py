"""Hidden checks for Lab 3: graded, shown after grades are published, never shipped to students."""
import torch
import torch.nn.functional as F

from grader.checks.test_cnn import _random, batches_of, compare_batchnorm
from grader.checks.test_cnn_lenet5 import _digit
from grader.kit import expect
from grader.kit.check import check
from grader.kit.convergence import require_classifier_learns
from grader.kit.program import Program


@check(points=1, hint="Check each gradient against a numerical one: nudge one entry by ±ε and watch the output.")
def test_conv2d_gradient_matches_central_differences_of_its_own_forward(submission):
    """conv2d: autograd's gradient of your forward equals central differences of that same forward (float64)"""
    x = _random(1, 2, 4, 3, seed=60, dtype=torch.float64)
    weight = _random(2, 2, 2, 2, seed=61, dtype=torch.float64)
    bias = _random(2, seed=62, dtype=torch.float64)
    grad_out = _random(*F.conv2d(x, weight, bias, 1, 1).shape, seed=63, dtype=torch.float64)
    eps = 1e-6
    program = Program()
    leaf = program.value(x.clone().requires_grad_())
    (program.module.conv2d(leaf, weight, bias, 1, 1) * grad_out).sum().backward()
    grad = program.attr(leaf, "grad")
    nudged = []
    for index in range(x.numel()):
        for sign in (1, -1):
            x_nudged = x.clone()
            x_nudged.view(-1)[index] += sign * eps
            nudged.append(program.module.conv2d(x_nudged, weight, bias, 1, 1))
    got = submission.run(program, what="conv2d, nudged inputs")
    outputs = [expect.tensor(got[ref], "conv2d") for ref in nudged]
    numerical = torch.tensor([((plus - minus) * grad_out).sum().item() / (2 * eps)
                              for plus, minus in zip(outputs[::2], outputs[1::2])], dtype=torch.float64)
    expect.close(got[grad], numerical.reshape(x.shape), "the gradient of conv2d w.r.t. x",
                 "central differences, ε = 1e-6", atol=1e-6, rtol=1e-6)


@check(points=1,
       hint="Stride and padding may differ between rows and columns; a pooling stride may be larger than the window.")
def test_conv2d_and_pooling_with_unequal_strides_and_gaps(submission):
    """conv2d with 1×1 and non-square kernels and unequal strides; max_pool2d with stride > kernel"""
    program, convs, pools = Program(), [], []
    for x_shape, w_shape, stride, padding in [((2, 3, 9, 10), (4, 3, 1, 1), 2, 0),
                                              ((1, 2, 8, 11), (3, 2, 2, 4), (3, 2), (1, 2))]:
        x, weight = _random(*x_shape, seed=70), _random(*w_shape, seed=71)
        text = f"x {x_shape}, weight {w_shape}, stride={stride}, padding={padding}"
        program.section(f"conv2d on {text}")
        convs.append((program.module.conv2d(x, weight, None, stride, padding),
                      F.conv2d(x, weight, None, stride, padding), text))
    x = _random(2, 2, 11, 10, seed=72)
    for kernel, stride in [(2, 3), ((3, 2), (4, 3))]:
        text = f"x (2, 2, 11, 10), kernel_size={kernel}, stride={stride}"
        program.section(f"max_pool2d on {text}")
        pools.append((program.module.max_pool2d(x, kernel, stride), F.max_pool2d(x, kernel, stride), text))
    got = submission.run(program, what="conv2d and max_pool2d")
    for out, expected, text in convs:
        expect.close(got[out], expected, "conv2d", text, atol=1e-4, rtol=1e-4)
    for out, expected, text in pools:
        expect.close(got[out], expected, "max_pool2d", text)


@check(points=1, hint="Use self.momentum and self.eps as given, and keep the input's dtype.")
def test_batchnorm_with_other_momentum_eps_and_float64(submission):
    """BatchNorm2d(momentum=0.3, eps=1e-3) in float64 over 6 batches: outputs and buffers match torch"""
    batches = [b.double() for b in batches_of((3, 2, 4, 4), 6, seed=80)]
    compare_batchnorm(submission, ["train", "running_mean", "running_var", "num_batches_tracked", "eval"],
                      batches, batches[0], "momentum 0.3, eps 1e-3, float64", init=(2, 1e-3, 0.3), atol=1e-9)


@check(points=1,
       hint="Augmentation must keep the label true: small shifts keep a digit, a mirror image or a half turn does "
            "not.")
def test_augmentation_keeps_a_digit_recognisable(submission):
    """train_transforms: augmented digits stay close to the original, not to its mirror image or its half turn"""
    digit = _digit()
    program = Program()
    transform = program.module.train_transforms()
    outs = [transform(digit) for _ in range(40)]
    got = submission.run(program, what="train_transforms", seed=5)
    mean = torch.stack([expect.tensor(got[out], "train_transforms()", shape=digit.shape, floating=True, finite=True)
                        for out in outs]).mean(dim=0)

    def similarity(a, b):
        return F.cosine_similarity((a - a.mean()).flatten(), (b - b.mean()).flatten(), dim=0).item()

    kept = similarity(mean, digit)
    for name, changed in (("its mirror image", digit.flip(-1)), ("its half turn", digit.flip(-1, -2))):
        if not (kept >= 0.6 and kept >= similarity(mean, changed) + 0.2):  # NaN fails too
            raise expect.CheckFailed(f"the average of 40 augmented digits looks like {name} as much as like the "
                                     f"digit (similarity {similarity(mean, changed):.2f} vs {kept:.2f}); "
                                     "augmentation must preserve the label")


@check(points=1,
       hint="Without batch norm the convolutions need their bias; with augmentation the model still has to learn.")
def test_lenet5_without_batch_norm_and_with_augmentation_learns(submission):
    """LeNet5(batch_norm=False), trained with augmentation: held-out accuracy ≥ 0.9 after 3 epochs"""
    require_classifier_learns(submission, "LeNet5", {"name": "mnist", "batch_size": 64}, 3,
                              init={"batch_norm": False, "augment": True}, min_accuracy=0.9, loss_fall=0.5,
                              reference_cpu=5.5)
