"""Lab 1 (logistic regression): mistakes students make, as edits of solutions/logreg.py, and the checks that must catch each.

Shipped with the instructor repository only: the edits quote the reference.
"""

from grader.instructor.audit import Alternative, Mistake

MISTAKES = [
    Mistake(
        "wrong gradient sign",
        replace=[
            ("err = a - y.to(a.dtype)", "err = y.to(a.dtype) - a"),
        ],
        caught_by=[
            "test_binary_logistic_regression_separates_two_digits",
            "test_binary_sgd_step_moves_weights_by_minus_lr_grad",
            "test_logistic_gradients_match_autograd",
            "test_logistic_gradients_match_finite_differences",
        ],
    ),
    Mistake(
        "missing average over the batch",
        replace=[
            ("grad_w = x.T @ err / x.shape[0]", "grad_w = x.T @ err"),
        ],
        caught_by=[
            "test_binary_logistic_regression_separates_two_digits",
            "test_binary_sgd_step_moves_weights_by_minus_lr_grad",
            "test_logistic_gradients_match_autograd",
            "test_logistic_gradients_match_finite_differences",
        ],
    ),
    Mistake(
        "softmax along the wrong dimension",
        replace=[
            (
                "shifted = logits - logits.max(dim=1, keepdim=True).values\n    exp = torch.exp(shifted)\n    return exp / exp.sum(dim=1, keepdim=True)",
                "shifted = logits - logits.max(dim=0, keepdim=True).values\n    exp = torch.exp(shifted)\n    return exp / exp.sum(dim=0, keepdim=True)",
            ),
        ],
        caught_by=["test_functions_keep_float64", "test_softmax_is_stable", "test_softmax_values_and_shapes"],
    ),
    Mistake(
        "unstable softmax",
        replace=[
            ("shifted = logits - logits.max(dim=1, keepdim=True).values\n    exp", "shifted = logits\n    exp"),
        ],
        caught_by=["test_softmax_is_stable"],
    ),
    Mistake(
        "double softmax",
        replace=[
            ("loss = cross_entropy(logits, y)", "loss = cross_entropy(softmax(logits), y)"),
        ],
        caught_by=["test_softmax_regression_trains_on_cross_entropy_of_logits"],
    ),
    Mistake(
        "forward returns probabilities",
        replace=[
            ("return self.linear(x.flatten(start_dim=1))", "return softmax(self.linear(x.flatten(start_dim=1)))"),
        ],
        caught_by=["test_softmax_regression_forward_shapes"],
    ),
    Mistake(
        "a learning rate that cannot converge",
        replace=[
            ("num_classes: int = 10, lr: float = 0.05", "num_classes: int = 10, lr: float = 1e-6"),
        ],
        caught_by=[
            "test_softmax_regression_converges",
            "test_softmax_regression_trains_w_and_b_by_plain_sgd_at_its_lr",
        ],
    ),
    Mistake(
        "an exception",
        replace=[
            ("    e = torch.exp(-z.abs())", "    raise ValueError('oops')"),
        ],
        caught_by=[
            "test_binary_logistic_regression_separates_two_digits",
            "test_binary_sgd_step_moves_weights_by_minus_lr_grad",
            "test_functions_keep_float64",
            "test_logistic_gradients_match_autograd",
            "test_logistic_gradients_match_finite_differences",
            "test_sigmoid_is_stable",
            "test_sigmoid_values_and_shapes",
        ],
    ),
    Mistake(
        "an endless loop inside a function",
        replace=[
            (
                "    shifted = logits - logits.max(dim=1, keepdim=True).values\n    exp",
                "    while True:\n        pass\n    exp",
            ),
        ],
        caught_by=["test_functions_keep_float64", "test_softmax_is_stable", "test_softmax_values_and_shapes"],
    ),
    Mistake(
        "a tensor subclass that claims to equal anything",
        replace=[
            (
                "def sigmoid(z):",
                "class AlwaysEqual(torch.Tensor):\n    def __eq__(self, other):\n        return True\n\n    def allclose(self, *args, **kwargs):\n        return True\n\n\ndef sigmoid(z):\n    return torch.zeros_like(z).as_subclass(AlwaysEqual)\n\n\ndef _unused_sigmoid(z):",
            ),
        ],
        caught_by=[
            "test_binary_logistic_regression_separates_two_digits",
            "test_binary_sgd_step_moves_weights_by_minus_lr_grad",
            "test_functions_keep_float64",
            "test_logistic_gradients_match_autograd",
            "test_logistic_gradients_match_finite_differences",
            "test_sigmoid_is_stable",
            "test_sigmoid_values_and_shapes",
        ],
    ),
    Mistake(
        "perceptron ignores lr",
        replace=[("    return w + lr * err * x, b + lr * err\n", "    return w + err * x, b + err\n")],
        caught_by=["test_perceptron_updates_on_a_mistake", "test_perceptron_uses_the_learning_rate"],
        kind="argument ignored",
        why="the classic rule has no eta (it is 1 by default), so lr was left out of both updates",
    ),
    Mistake(
        "perceptron predicts with torch.sign (labels taken as -1/+1)",
        replace=[("    y_hat = (z > 0).to(w.dtype)\n", "    y_hat = torch.sign(z)\n")],
        caught_by=[
            "test_perceptron_keeps_weights_when_right",
            "test_perceptron_updates_on_a_mistake",
            "test_perceptron_uses_the_learning_rate",
        ],
        kind="wrong rule",
        why="used the +-1 textbook perceptron's prediction sign(z) with the lab's 0/1 labels",
    ),
    Mistake(
        "BCE sums over the batch instead of averaging",
        replace=[("    return losses.mean()\n", "    return losses.sum()\n")],
        caught_by=[
            "test_binary_cross_entropy_is_stable",
            "test_binary_cross_entropy_values",
            "test_binary_sgd_step_moves_weights_by_minus_lr_grad",
            "test_functions_keep_float64",
        ],
        kind="reduction",
        why="reduction='sum' habit: the notes' likelihood is a sum over examples",
    ),
    Mistake(
        "BCE as log(1 + e^z) - z*y without the max trick",
        replace=[
            (
                "    losses = logits.clamp_min(0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))\n",
                "    losses = torch.log(1 + torch.exp(logits)) - logits * targets\n",
            )
        ],
        caught_by=["test_binary_cross_entropy_is_stable"],
        kind="numerical stability",
        why="simplified the loss to softplus(z) - zy but wrote softplus naively; e^1000 = inf",
    ),
    Mistake(
        "cross-entropy summed over the batch",
        replace=[("    return -picked.mean()\n", "    return -picked.sum()\n")],
        caught_by=[
            "test_cross_entropy_is_stable",
            "test_cross_entropy_values",
            "test_functions_keep_float64",
            "test_softmax_regression_trains_on_cross_entropy_of_logits",
        ],
        # Its training (the step N times too large) converges or not with the CPU's float rounding.
        checks="not softmax_regression_converges",
        kind="reduction",
        why="the notes' loss is written as a sum; the 1/N was dropped",
    ),
    Mistake(
        "cross-entropy log-sum-exp without the max shift",
        replace=[
            (
                "    shifted = logits - logits.max(dim=1, keepdim=True).values\n    log_probas = shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))\n",
                "    log_probas = logits - torch.log(torch.exp(logits).sum(dim=1, keepdim=True))\n",
            )
        ],
        caught_by=["test_cross_entropy_is_stable"],
        kind="numerical stability",
        why="thought the log undoes the exp, so no trick is needed; e^1000 overflows",
    ),
    Mistake(
        "perceptron updates w and b in place",
        replace=[
            (
                "    return w + lr * err * x, b + lr * err\n",
                "    w += lr * err * x\n    b += lr * err\n    return w, b\n",
            )
        ],
        caught_by=["test_perceptron_leaves_its_inputs_alone"],
        kind="input mutation",
        why="wrote the rule as w += ... like the numpy loop in the slides, though the docstring forbids it",
    ),
    Mistake(
        "binary _eval_step also runs sgd_step (learns on val/test data)",
        replace=[
            (
                "        self.metrics.update(stage, binary_cross_entropy(logits, y), logits, y)\n",
                "        self.metrics.update(stage, self.sgd_step(x, y), logits, y)\n",
            )
        ],
        caught_by=["test_binary_validation_and_test_leave_the_weights_alone"],
        kind="train vs eval",
        why="reused the training step's loss for evaluation, which also updates w and b",
    ),
    Mistake(
        "cross-entropy picks with a one-hot from torch.eye(C), made on the default device",
        replace=[
            (
                "    picked = log_probas[torch.arange(logits.shape[0]), targets]\n",
                "    one_hot = torch.eye(logits.shape[1])[targets]\n    picked = (one_hot * log_probas).sum(dim=1)\n",
            )
        ],
        caught_by=["test_functions_keep_float64"],
        checks="keep_float64",
        kind="device",
        why="right on a CPU; on a GPU the one-hot is on the CPU and the product fails",
    ),
]

ALTERNATIVES = [
    Alternative(
        "sigmoid by boolean masks into torch.empty_like",
        replace=[
            (
                "    e = torch.exp(-z.abs())\n    return torch.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))\n",
                "    out = torch.empty_like(z)\n    positive = z >= 0\n"
                "    out[positive] = 1.0 / (1.0 + torch.exp(-z[positive]))\n"
                "    e = torch.exp(z[~positive])\n    out[~positive] = e / (1.0 + e)\n    return out\n",
            )
        ],
        checks="sigmoid or keep_float64",
        kind="another spelling",
        why="data-dependent shapes cannot run on the meta device: the device check must not fail it",
    ),
]
