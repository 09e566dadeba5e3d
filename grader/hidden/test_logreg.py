"""Hidden checks for Lab 1: graded, shown after grades are published, never shipped to students."""
import torch
import torch.nn.functional as F

from grader.checks.test_logreg import _labels, _random
from grader.kit import devices as meta
from grader.kit import expect
from grader.kit.check import check
from grader.kit.convergence import fit_and_score, require_learning
from grader.kit.program import Program


@check(points=1, hint="Compare your formula with the derivative of the mean loss, one weight at a time.")
def test_logistic_gradients_match_finite_differences(submission):
    """logistic_gradients agrees with central finite differences in float64"""
    n, d, eps = 9, 4, 1e-6
    x, w = _random(n, d, seed=11, dtype=torch.float64), _random(d, seed=12, dtype=torch.float64)
    y, b = _labels(n, 2, seed=13).to(torch.float64), torch.tensor(-0.7, dtype=torch.float64)

    def loss(w_, b_):
        return F.binary_cross_entropy_with_logits(x @ w_ + b_, y)

    numeric_w = torch.stack([(loss(w + eps * e, b) - loss(w - eps * e, b)) / (2 * eps)
                             for e in torch.eye(d, dtype=torch.float64)])
    numeric_b = (loss(w, b + eps) - loss(w, b - eps)) / (2 * eps)
    got_w, got_b = expect.pair(submission.call("logistic_gradients", x, y, w, b), "logistic_gradients")
    expect.close(got_w, numeric_w, "grad_w vs finite differences", f"x of shape ({n}, {d})", atol=1e-7)
    expect.close(expect.tensor(got_b, "grad_b").reshape(()), numeric_b, "grad_b vs finite differences", atol=1e-7)


@check(points=1, hint="Scale the update by the learning rate.")
def test_perceptron_uses_the_learning_rate(submission):
    """perceptron_step scales its update by lr"""
    w, b, x = torch.tensor([0.5, 0.5]), torch.tensor(0.0), torch.tensor([-1.0, -3.0])
    got_w, got_b = expect.pair(submission.call("perceptron_step", w, b, x, 1, lr=0.25), "perceptron_step")
    expect.close(got_w, w + 0.25 * x, "perceptron_step's w", "lr=0.25")
    expect.close(expect.tensor(got_b, "b").reshape(()), b + 0.25, "perceptron_step's b", "lr=0.25")


@check(points=1, hint="Keep the input's dtype: no float32 constants that force a conversion.")
def test_functions_keep_float64(submission):
    """sigmoid, softmax and both losses keep float64 inputs in float64, and their results on the inputs' device"""
    z = _random(6, 4, seed=5, dtype=torch.float64)
    targets = _labels(6, 4, seed=5)
    expect.close(submission.call("sigmoid", z), torch.sigmoid(z), "sigmoid", "float64 input", atol=1e-12)
    expect.close(submission.call("softmax", z), torch.softmax(z, dim=1), "softmax", "float64 input", atol=1e-12)
    expect.close(submission.call("cross_entropy", z, targets), F.cross_entropy(z, targets), "cross_entropy",
                 "float64 input", atol=1e-10)
    binary = (targets % 2).to(torch.float64)
    expect.close(submission.call("binary_cross_entropy", z[:, 0], binary),
                 F.binary_cross_entropy_with_logits(z[:, 0], binary), "binary_cross_entropy", "float64", atol=1e-10)
    # A tensor made on the default device instead of the input's fails on meta tensors, as on a GPU.
    program = Program()
    z_meta, targets_meta, binary_meta = (meta.tensor(program, t) for t in (z, targets, binary))
    devices = {}
    for name, args in [("sigmoid", [z_meta]), ("softmax", [z_meta]), ("cross_entropy", [z_meta, targets_meta]),
                       ("binary_cross_entropy", [z_meta.select(1, 0), binary_meta])]:
        program.section(f"{name} on meta tensors")
        devices[f"{name}'s result"] = meta.device(program, program.call(None, name, *args))
    meta.require(submission, program, devices, what="the functions on meta tensors")


@check(points=2, hint="Check sgd_step's update direction and logistic_gradients.")
def test_binary_logistic_regression_separates_two_digits(submission):
    """BinaryLogisticRegression separates 3s from 8s: accuracy ≥ 0.9 after 3 epochs, loss falls"""
    before, after, accuracy = fit_and_score(
        submission, "BinaryLogisticRegression", {"name": "mnist", "batch_size": 64, "classes": [3, 8]}, 3,
        loss_fn=lambda logits, y: F.binary_cross_entropy_with_logits(logits.reshape(-1), y.to(logits.dtype)),
        predict=lambda logits: (logits.reshape(-1) > 0).long(), reference_cpu=0.2)
    require_learning(before, after, accuracy, min_accuracy=0.9, loss_fall=0.7)
