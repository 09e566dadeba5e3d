"""Checks for Lab 1 (logistic regression) that students can run themselves.

Expected values come from torch's own functions and autograd, computed here in
the judge; the submission is reached only through the ``submission`` fixture.
"""
import torch
import torch.nn.functional as F

from grader.kit import expect
from grader.kit.check import check
from grader.kit.convergence import require_classifier_learns
from grader.kit.expect import random_labels as _labels
from grader.kit.expect import random_tensor as _random
from grader.kit.modules import optimizer_groups, require_logits
from grader.kit.program import Program

# --- Part 1: the perceptron ---------------------------------------------------------

@check(points=1, hint="On a mistake, err = y − ŷ is +1 or −1; move w by lr·err·x and b by lr·err.")
def test_perceptron_updates_on_a_mistake(submission):
    """perceptron_step moves w and b on a misclassified example"""
    w, b = torch.tensor([1.0, -2.0, 0.5]), torch.tensor(0.25)
    cases = [  # (x, y, lr): predicted 1 but y = 0, predicted 0 but y = 1
        (torch.tensor([2.0, 0.0, 1.0]), 0, 1.0),
        (torch.tensor([0.0, 1.0, 0.0]), 1, 0.5),
    ]
    for x, y, lr in cases:
        err = y - float(torch.dot(w, x) + b > 0)
        got_w, got_b = expect.pair(submission.call("perceptron_step", w, b, x, y, lr=lr), "perceptron_step")
        case = f"w={w.tolist()}, b={b.item()}, x={x.tolist()}, y={y}, lr={lr}"
        expect.close(got_w, w + lr * err * x, "perceptron_step's w", case)
        expect.close(expect.tensor(got_b, "perceptron_step's b").reshape(()), b + lr * err, "perceptron_step's b", case)


@check(points=1,
       hint="The perceptron only learns from mistakes: when ŷ equals y, err is 0. ŷ = 1 exactly when wᵀx + b > 0 "
            "(not ≥ 0), and b counts.")
def test_perceptron_keeps_weights_when_right(submission):
    """perceptron_step leaves w and b alone on a correctly classified example"""
    w = torch.tensor([1.0, -2.0, 0.5])
    cases = [  # (b, x, y); the last two sit at the threshold: z = 0 exactly (ŷ = 0), and z = b = 1e-8 > 0 (ŷ = 1)
        (torch.tensor(0.25), torch.tensor([2.0, 0.0, 1.0]), 1), (torch.tensor(0.25), torch.tensor([0.0, 1.0, 0.0]), 0),
        (torch.tensor(0.25), torch.tensor([0.0, 0.0, -0.5]), 0), (torch.tensor(1e-8), torch.zeros(3), 1),
    ]
    for b, x, y in cases:
        got_w, got_b = expect.pair(submission.call("perceptron_step", w, b, x, y), "perceptron_step")
        case = f"b={b.item():g}, x={x.tolist()}, y={y} (wᵀx + b = {float(torch.dot(w, x) + b):g})"
        expect.close(got_w, w, "perceptron_step's w", case)
        expect.close(expect.tensor(got_b, "perceptron_step's b").reshape(()), b, "perceptron_step's b", case)


@check(points=1, hint="Return new tensors (w + lr·err·x builds one); w += … or w.add_(…) changes the caller's weights.")
def test_perceptron_leaves_its_inputs_alone(submission):
    """perceptron_step returns new tensors and leaves the w and b it was given unchanged"""
    w, b, x = torch.tensor([1.0, -2.0, 0.5]), torch.tensor(0.25), torch.tensor([0.0, 1.0, 0.0])
    program = Program()
    w_given, b_given = program.value(w), program.value(b)
    program.module.perceptron_step(w_given, b_given, x, 1)  # a mistake: the update is not zero
    after = w_given.clone(), b_given.clone()
    got = submission.run(program, what="perceptron_step")
    expect.close(got[after[0]], w, "the w given to perceptron_step, after the call", "a misclassified example")
    expect.close(expect.tensor(got[after[1]], "b").reshape(()), b, "the b given to perceptron_step, after the call")


# --- Part 2: the logistic neuron ----------------------------------------------------

@check(points=1,
       hint="σ(z) = 1 / (1 + e^(−z)), applied elementwise; keep the input's shape and dtype. For z < 0 use e^z / (1 "
            "+ e^z): 1 − σ(−z) loses every digit once σ(z) is below float32's precision.")
def test_sigmoid_values_and_shapes(submission):
    """sigmoid matches σ(z) for several shapes and dtypes"""
    for shape in [(1,), (5,), (3, 4), (2, 3, 5)]:
        for dtype in (torch.float32, torch.float64):
            z = _random(*shape, dtype=dtype, scale=3)
            expect.close(submission.call("sigmoid", z), torch.sigmoid(z), "sigmoid", f"z of shape {shape}, {dtype}")
    # Relative accuracy in the tails: σ(−20) ≈ 2e−9 is not 0 (1 − σ(20) cancels to 0 in float32).
    z = torch.linspace(-80, 80, 161)
    expect.close(submission.call("sigmoid", z), torch.sigmoid(z), "sigmoid", "z from −80 to 80 (relative error)",
                 atol=0.0, rtol=1e-4)


@check(points=1,
       hint="e^(−z) overflows for z = −1000. Both σ(z) = 1/(1+e^(−z)) and σ(z) = e^z/(1+e^z) are exact; use each "
            "where its exponent is ≤ 0.")
def test_sigmoid_is_stable(submission):
    """sigmoid is finite and exact for z = ±1000, and so is its gradient"""
    z = torch.tensor([-1000.0, -100.0, -20.0, 0.0, 20.0, 100.0, 1000.0])
    expect.close(submission.call("sigmoid", z), torch.sigmoid(z), "sigmoid", f"z = {z.tolist()}")
    # autograd differentiates the formula as written: e^(−z) = inf at z = −1000 makes the gradient 0·inf = NaN
    z = z[z != 0]  # at exactly 0 the reference's e^(−|z|) has the subgradient 0: no verdict there
    program = Program()
    leaf = program.value(z.clone().requires_grad_())
    program.module.sigmoid(leaf).sum().backward()
    dz = program.attr(leaf, "grad")
    got = submission.run(program, what="the gradient of sigmoid(z).sum()")
    expected = torch.sigmoid(z) * (1 - torch.sigmoid(z))
    expect.close(got[dz], expected, "the gradient of sigmoid(z).sum() (autograd through your sigmoid)",
                 f"z = {z.tolist()}")


@check(points=1, hint="The loss is the *mean* over the batch of −[y·log a + (1−y)·log(1−a)] with a = σ(z).")
def test_binary_cross_entropy_values(submission):
    """binary_cross_entropy equals the mean Bernoulli negative log-likelihood"""
    for n in (1, 7, 64):
        logits, targets = _random(n, seed=n, scale=3), _labels(n, 2, seed=n).float()
        expected = F.binary_cross_entropy_with_logits(logits, targets)
        expect.close(submission.call("binary_cross_entropy", logits, targets), expected,
                     "binary_cross_entropy", f"N = {n}", atol=1e-5)


@check(points=1,
       hint="log(σ(z)) is −inf in floating point for z = −1000. Rewrite the loss in terms of z: max(z, 0) − z·y + "
            "log(1 + e^(−|z|)).")
def test_binary_cross_entropy_is_stable(submission):
    """binary_cross_entropy is finite and exact for logits of ±1000"""
    logits = torch.tensor([1000.0, -1000.0, 1000.0, -1000.0])
    targets = torch.tensor([1.0, 0.0, 0.0, 1.0])
    expected = F.binary_cross_entropy_with_logits(logits, targets)
    expect.close(submission.call("binary_cross_entropy", logits, targets), expected,
                 "binary_cross_entropy", "logits [1000, -1000, 1000, -1000], targets [1, 0, 0, 1]", rtol=1e-4)


def autograd_logistic_gradients(x, y, w, b):
    w, b = w.clone().requires_grad_(), b.clone().requires_grad_()
    F.binary_cross_entropy_with_logits(x @ w + b, y.to(x.dtype)).backward()
    return w.grad, b.grad


@check(points=2,
       hint="∂L/∂w = (1/N)·Σ (aᵢ − yᵢ)·xᵢ: check the sign of (a − y) and that you average over the N examples.")
def test_logistic_gradients_match_autograd(submission):
    """logistic_gradients equals autograd's gradient of the mean BCE"""
    submission.follows("gradients by hand")  # the handout: no autograd here, the formula (read off the source)
    for n, d in [(1, 3), (7, 5), (64, 13)]:
        x, w = _random(n, d, seed=n, dtype=torch.float64), _random(d, seed=d, dtype=torch.float64)
        y, b = _labels(n, 2, seed=n).to(torch.float64), torch.tensor(0.3, dtype=torch.float64)
        got_w, got_b = expect.pair(submission.call("logistic_gradients", x, y, w, b), "logistic_gradients")
        grad_w, grad_b = autograd_logistic_gradients(x, y, w, b)
        case = f"x of shape ({n}, {d})"
        expect.close(got_w, grad_w, "grad_w", case, atol=1e-8)
        expect.close(expect.tensor(got_b, "grad_b").reshape(()), grad_b, "grad_b", case, atol=1e-8)


# --- Part 3: softmax regression -----------------------------------------------------

@check(points=1, hint="Normalise along the class dimension (dim=1), so that each *row* sums to 1.")
def test_softmax_values_and_shapes(submission):
    """softmax matches e^z / Σ e^z along the classes, for several shapes"""
    for n, c in [(1, 2), (4, 10), (7, 3)]:
        logits = _random(n, c, seed=n * c, scale=2)
        expect.close(submission.call("softmax", logits), torch.softmax(logits, dim=1), "softmax",
                     f"logits of shape ({n}, {c})")


@check(points=1, hint="e^1000 overflows. Subtracting the row's maximum from every logit leaves the softmax unchanged.")
def test_softmax_is_stable(submission):
    """softmax is finite and exact for logits of ±1000"""
    logits = torch.tensor([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, -1000.0], [1000.0, 1000.0, 999.0]])
    expect.close(submission.call("softmax", logits), torch.softmax(logits, dim=1), "softmax",
                 f"logits {logits.tolist()}")


@check(points=1,
       hint="Cross-entropy from logits: −z_t + log Σ_k e^(z_k), averaged over the batch; t is the example's label.")
def test_cross_entropy_values(submission):
    """cross_entropy equals the mean multi-class negative log-likelihood"""
    for n, c in [(1, 2), (5, 10), (32, 3)]:
        logits, targets = _random(n, c, seed=n + c, scale=2), _labels(n, c, seed=n)
        expect.close(submission.call("cross_entropy", logits, targets), F.cross_entropy(logits, targets),
                     "cross_entropy", f"logits of shape ({n}, {c})", atol=1e-5)


@check(points=1,
       hint="log(softmax) underflows to −inf for very negative logits: compute log-probabilities directly with the "
            "log-sum-exp trick.")
def test_cross_entropy_is_stable(submission):
    """cross_entropy is finite and exact for logits of ±1000"""
    logits = torch.tensor([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0]])
    targets = torch.tensor([1, 1])
    expect.close(submission.call("cross_entropy", logits, targets), F.cross_entropy(logits, targets),
                 "cross_entropy", "logits [[1000, -1000, 0], [-1000, 1000, 0]], targets [1, 1]", rtol=1e-4)


# --- Part 4: the LightningModules ---------------------------------------------------

@check(points=2,
       hint="sgd_step must apply w := w − lr·∂L/∂w and b := b − lr·∂L/∂b with the gradients of logistic_gradients.")
def test_binary_sgd_step_moves_weights_by_minus_lr_grad(submission):
    """BinaryLogisticRegression.sgd_step moves w and b by exactly −lr·gradient"""
    n, d, lr = 16, 6, 0.5
    x, y = _random(n, d, seed=1), _labels(n, 2, seed=1).float()
    w, b = _random(d, seed=2), torch.tensor(-0.2)
    got = submission.methods("BinaryLogisticRegression", init={"num_features": d, "lr": lr},
                             set={"w": w, "b": b}, calls=[("sgd_step", [x, y])], read=["w", "b"])
    grad_w, grad_b = autograd_logistic_gradients(x, y, w, b)
    expect.close(got["state"]["w"], w - lr * grad_w, "w after sgd_step", f"lr={lr}, batch of {n}", atol=1e-6)
    expect.close(got["state"]["b"].reshape(()), b - lr * grad_b, "b after sgd_step", f"lr={lr}", atol=1e-6)
    expect.close(got["results"][0], F.binary_cross_entropy_with_logits(x @ w + b, y), "the loss sgd_step returns",
                 "(the loss before the update)", atol=1e-6)


@check(points=1,
       hint="Validation and test only measure: _eval_step computes the loss and metrics and must not call sgd_step.")
def test_binary_validation_and_test_leave_the_weights_alone(submission):
    """BinaryLogisticRegression's validation_step and test_step do not change w and b"""
    n, d = 16, 6
    x, y = _random(n, d, seed=4), _labels(n, 2, seed=4).float()
    w, b = _random(d, seed=5), torch.tensor(0.3)
    for step in ("validation_step", "test_step"):
        got = submission.methods("BinaryLogisticRegression", init={"num_features": d, "lr": 0.5},
                                 set={"w": w, "b": b}, calls=[(step, [[x, y], 0])], read=["w", "b"])
        expect.close(got["state"]["w"], w, f"w after {step}", "(evaluation must not train)")
        expect.close(expect.tensor(got["state"]["b"], "b").reshape(()), b, f"b after {step}")


@check(points=1,
       hint="configure_optimizers is given: plain torch.optim.SGD over self.parameters() at self.hparams.lr. And the "
            "linear layer keeps its bias (nn.Linear's default).")
def test_softmax_regression_trains_w_and_b_by_plain_sgd_at_its_lr(submission):
    """SoftmaxRegression's optimizer is plain SGD over W and b, at the lr given (0.05 by default)"""
    for init, lr in [({"num_features": 7, "num_classes": 3}, 0.05), ({"num_features": 7, "num_classes": 3,
                                                                      "lr": 0.2}, 0.2)]:
        got = optimizer_groups(submission, "SoftmaxRegression", init)
        if len(got) != 1:
            raise expect.CheckFailed(f"SoftmaxRegression({init}).configure_optimizers: expected one SGD "
                                     "parameter group")
        group = got[0]
        sizes = sorted(p.numel() for p in group.get("params", []) if isinstance(p, torch.Tensor))
        if sizes != [3, 21]:
            raise expect.CheckFailed(f"SoftmaxRegression({init}): the optimizer holds parameters of sizes {sizes}, "
                                     "expected W (3 × 7 = 21) and b (3)")
        plain = {"lr": lr, "momentum": 0, "dampening": 0, "weight_decay": 0, "nesterov": False}
        wrong = {k: group.get(k, "missing") for k, v in plain.items() if group.get(k, "missing") != v}
        if wrong or "betas" in group:
            raise expect.CheckFailed(f"SoftmaxRegression({init}): expected plain SGD with {plain}, got "
                                     f"{'Adam-like betas, ' if 'betas' in group else ''}{wrong}")


@check(points=1,
       hint="forward must flatten each example to a vector (keep the batch dimension) and return raw logits of shape "
            "(N, num_classes), not probabilities.")
def test_softmax_regression_forward_shapes(submission):
    """SoftmaxRegression.forward gives (N, C) logits for vectors and images, batch size 1 included"""
    cases = [({"num_features": 7, "num_classes": 3}, _random(1, 7, scale=5)),
             ({"num_features": 7, "num_classes": 3}, _random(5, 7, scale=5)),
             ({}, _random(2, 1, 28, 28, scale=5)), ({}, _random(1, 784, scale=5))]
    for (_, x), got in zip(cases, require_logits(submission, "SoftmaxRegression", cases)):
        if got.dtype != x.dtype:
            raise expect.CheckFailed(f"forward: expected dtype {x.dtype}, got {got.dtype}")
        if (got >= 0).all() and torch.allclose(got.sum(dim=1), torch.ones(len(got)), atol=1e-4):
            raise expect.CheckFailed("forward returned probabilities (rows in [0, 1] summing to 1); "
                                     "it must return logits — the loss applies the softmax itself")


@check(points=1, hint="The training loss is cross_entropy of forward's logits — no softmax before it.")
def test_softmax_regression_trains_on_cross_entropy_of_logits(submission):
    """SoftmaxRegression.training_step returns the cross-entropy of forward's logits"""
    x, y = _random(8, 7, seed=3), _labels(8, 3, seed=3)
    got = submission.methods("SoftmaxRegression", init={"num_features": 7, "num_classes": 3},
                             calls=[("forward", [x]), ("training_step", [[x, y], 0])])
    logits, loss = got["results"]
    if isinstance(loss, dict):  # Lightning also accepts {"loss": ...}
        loss = loss.get("loss")
    expect.close(expect.tensor(loss, "training_step").detach().reshape(()),
                 F.cross_entropy(expect.tensor(logits, "forward"), y), "training_step's loss", atol=1e-5)


@check(points=3,
       hint="If the loss does not fall, check the loss and the learning rate; if it falls but accuracy stays low, "
            "check forward and how predictions are made from the logits.")
def test_softmax_regression_converges(submission):
    """SoftmaxRegression learns MNIST: held-out accuracy ≥ 0.85 after 5 epochs, training loss falls"""
    require_classifier_learns(submission, "SoftmaxRegression", {"name": "mnist", "batch_size": 64}, 5,
                              min_accuracy=0.85, loss_fall=0.7, reference_cpu=0.5)
