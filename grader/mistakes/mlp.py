"""Lab 2 (MLP and backpropagation): mistakes students make, as edits of solutions/mlp.py, and the checks that must catch each.

Shipped with the instructor repository only: the edits quote the reference.
"""

from grader.instructor.audit import Mistake

MISTAKES = [
    Mistake(
        "Value: a gradient assigned instead of accumulated",
        replace=[
            ("            self.grad += other.data * out.grad\n", "            self.grad = other.data * out.grad\n"),
        ],
        caught_by=[
            "test_value_backward_on_random_graphs",
            "test_value_division_and_longer_chains",
            "test_value_reused_node_accumulates_gradients",
        ],
    ),
    Mistake(
        "Value: backward without a topological order",
        replace=[
            (
                "        order, seen = [], set()",
                "        self.grad = 1.0\n        stack = [self]\n        while stack:\n            node = stack.pop()\n            node._backward()\n            stack.extend(node._prev)\n        return\n        order, seen = [], set()",
            ),
        ],
        caught_by=["test_value_backward_on_random_graphs"],
    ),
    Mistake(
        "Value: backward resets every grad first",
        replace=[
            (
                "        self.grad = 1.0\n        for node in reversed(order):",
                "        for node in order:\n            node.grad = 0.0\n        self.grad = 1.0\n        for node in reversed(order):",
            ),
        ],
        caught_by=["test_value_gradients_accumulate_across_graphs_sharing_a_leaf"],
    ),
    Mistake(
        "Value: relu passes the gradient everywhere",
        replace=[
            ("self.grad += (self.data > 0) * out.grad", "self.grad += out.grad"),
        ],
        caught_by=["test_value_division_and_longer_chains", "test_value_operators_match_autograd"],
    ),
    Mistake(
        "Value: pow forgets to lower the exponent",
        replace=[
            (
                "self.grad += exponent * self.data ** (exponent - 1) * out.grad",
                "self.grad += exponent * self.data ** exponent * out.grad",
            ),
        ],
        caught_by=[
            "test_value_backward_on_random_graphs",
            "test_value_division_and_longer_chains",
            "test_value_operators_match_autograd",
        ],
    ),
    Mistake(
        "Linear: backward secretly uses autograd",
        replace=[
            (
                "        grad_x = grad_output @ weight\n",
                "        with torch.enable_grad():\n            x_, w_ = x.detach().requires_grad_(), weight.detach().requires_grad_()\n            b_ = torch.zeros(weight.shape[0], dtype=x.dtype, requires_grad=True)\n            return torch.autograd.grad(x_ @ w_.T + b_, (x_, w_, b_), grad_output)\n",
            ),
        ],
        caught_by=["test_linear_backward_is_written_by_hand"],
    ),
    Mistake(
        "Linear: dW of the wrong shape",
        replace=[
            ("grad_weight = grad_output.T @ x", "grad_weight = x.T @ grad_output"),
        ],
        caught_by=[
            "test_all_functions_are_exact_in_float64",
            "test_linear_backward_is_written_by_hand",
            "test_linear_backward_matches_central_differences_of_its_own_forward",
            "test_linear_function_matches_autograd",
            "test_mlp_learns_mnist",
            "test_mlp_with_tanh_and_no_dropout_learns",
        ],
    ),
    Mistake(
        "Linear: the bias gradient averaged instead of summed over the batch",
        replace=[
            ("grad_bias = grad_output.sum(dim=0)", "grad_bias = grad_output.mean(dim=0)"),
        ],
        caught_by=[
            "test_all_functions_are_exact_in_float64",
            "test_linear_backward_is_written_by_hand",
            "test_linear_backward_matches_central_differences_of_its_own_forward",
            "test_linear_function_matches_autograd",
        ],
    ),
    Mistake(
        "cross-entropy: divided by N twice",
        replace=[
            (
                "return (probas - onehot) / len(targets) * grad_output, None",
                "return (probas - onehot) / len(targets) ** 2 * grad_output, None",
            ),
        ],
        caught_by=[
            "test_all_functions_are_exact_in_float64",
            "test_mlp_learns_mnist",
            "test_mlp_with_tanh_and_no_dropout_learns",
            "test_softmax_cross_entropy_function_matches_autograd",
        ],
    ),
    Mistake(
        "cross-entropy: no max subtracted",
        replace=[
            (
                "shifted = logits - logits.max(dim=1, keepdim=True).values\n        log_probas",
                "shifted = logits\n        log_probas",
            ),
        ],
        caught_by=["test_softmax_cross_entropy_function_matches_autograd"],
    ),
    Mistake(
        "sigmoid: backward forgets a factor",
        replace=[
            ("return grad_output * a * (1 - a)", "return grad_output * (1 - a)"),
        ],
        caught_by=["test_activation_functions_match_autograd", "test_all_functions_are_exact_in_float64"],
    ),
    Mistake(
        "ReLU: gradient also where the unit was off",
        replace=[
            (
                "return grad_output * (a > 0).to(grad_output.dtype)",
                "return grad_output * (a >= 0).to(grad_output.dtype)",
            ),
        ],
        caught_by=[
            "test_activation_functions_match_autograd",
            "test_all_functions_are_exact_in_float64",
            "test_mlp_learns_mnist",
        ],
    ),
    Mistake(
        "Linear layer bypasses LinearFunction",
        replace=[
            ("return LinearFunction.apply(x, self.weight, self.bias)", "return x @ self.weight.T + self.bias"),
        ],
        caught_by=["test_linear_module_uses_linear_function", "test_mlp_is_built_from_the_labs_own_layers"],
    ),
    Mistake(
        "Xavier from the fan-out",
        replace=[
            ("std = 1.0 / math.sqrt(weight.shape[1])", "std = 1.0 / math.sqrt(weight.shape[0])"),
        ],
        caught_by=[
            "test_initialisers_have_the_right_spread",
            "test_mlp_initialises_each_activation_by_its_rule",
            "test_mlp_with_tanh_and_no_dropout_learns",
        ],
    ),
    Mistake(
        "He without the factor 2",
        replace=[
            ("std = math.sqrt(2.0 / weight.shape[1])", "std = math.sqrt(1.0 / weight.shape[1])"),
        ],
        caught_by=[
            "test_initialisers_have_the_right_spread",
            "test_activation_statistics_show_the_experiment",
            "test_mlp_initialises_each_activation_by_its_rule",
            "test_activation_statistics_reproduce_the_experiment_exactly",
        ],
    ),
    Mistake(
        "the experiment ignores its generator",
        replace=[
            ("            xavier_normal_(weight, generator)", "            xavier_normal_(weight)"),
        ],
        caught_by=["test_activation_statistics_reproduce_the_experiment_exactly"],
    ),
    Mistake(
        "the experiment never applies the activation",
        replace=[
            ("        h = act(h @ weight.T)", "        h = h @ weight.T"),
        ],
        caught_by=[
            "test_activation_statistics_reproduce_the_experiment_exactly",
            "test_activation_statistics_show_the_experiment",
        ],
    ),
    Mistake(
        "dropout without the 1/(1 − p) scaling",
        replace=[
            ("    return x * mask / (1 - p)", "    return x * mask"),
        ],
        caught_by=[
            "test_dropout_keeps_the_mean_and_drops_a_fraction_p",
            "test_dropout_backward_uses_the_forward_mask",
            "test_mlp_drops_out_after_each_hidden_activation",
        ],
    ),
    Mistake(
        "dropout also in eval mode",
        replace=[
            ("    if not training or p == 0:", "    if p == 0:"),
        ],
        caught_by=[
            "test_dropout_eval_mode_and_edge_cases",
            "test_mlp_drops_out_after_each_hidden_activation",
        ],
    ),
    Mistake(
        "dropout divides by zero at p = 1",
        replace=[
            ("    if p == 1:\n        return torch.zeros_like(x)\n", ""),
        ],
        caught_by=["test_dropout_eval_mode_and_edge_cases"],
    ),
    Mistake(
        "dropout: the same mask on every call",
        replace=[
            (
                "    mask = (torch.rand_like(x) >= p)",
                "    mask = (torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) >= p)",
            ),
        ],
        # the CPU generator also puts the mask on the CPU whatever x's device
        caught_by=[
            "test_dropout_eval_mode_and_edge_cases",
            "test_mlp_drops_out_after_each_hidden_activation",
            "test_dropout_draws_a_fresh_mask_on_every_call",
        ],
    ),
    Mistake(
        "dropout: the gradient ignores the mask",
        replace=[
            ("    return x * mask / (1 - p)", "    return (x * mask / (1 - p)).detach() + x - x.detach()"),
        ],
        caught_by=["test_dropout_backward_uses_the_forward_mask"],
    ),
    Mistake(
        "MLP: no activation between the layers",
        replace=[
            (
                "h = dropout(activation.apply(layer(h)), self.hparams.dropout, self.training)",
                "h = dropout(layer(h), self.hparams.dropout, self.training)",
            ),
        ],
        caught_by=[
            "test_mlp_is_built_from_the_labs_own_layers",
            "test_mlp_learns_mnist",
            "test_mlp_drops_out_after_each_hidden_activation",
        ],
    ),
    Mistake(
        "MLP: built from torch.nn.Linear",
        replace=[
            ("torch.nn.ModuleList(Linear(d_in, d_out)", "torch.nn.ModuleList(torch.nn.Linear(d_in, d_out)"),
        ],
        caught_by=[
            "test_mlp_is_built_from_the_labs_own_layers",
            "test_mlp_initialises_each_activation_by_its_rule",
        ],
    ),
    Mistake(
        "MLP: forward does not flatten",
        replace=[
            ("h = x.flatten(start_dim=1)", "h = x"),
        ],
        caught_by=[
            "test_mlp_gives_logits_of_the_right_shape",
            "test_mlp_learns_mnist",
            "test_mlp_training_setup_is_the_handouts",
            "test_mlp_with_tanh_and_no_dropout_learns",
        ],
    ),
    Mistake(
        "SoftmaxCrossEntropy backward builds its one-hot rows from torch.eye(C), on the default device",
        replace=[
            (
                "onehot = torch.nn.functional.one_hot(targets, probas.shape[1]).to(probas.dtype)",
                "onehot = torch.eye(probas.shape[1])[targets]",
            )
        ],
        caught_by=["test_softmax_cross_entropy_function_matches_autograd"],
        checks="softmax_cross_entropy",
        kind="device",
        why="right on a laptop; on a GPU the one-hot is on the CPU and the backward fails",
    ),
    Mistake(
        "MLP initialises every layer with Xavier's rule",
        replace=[('initialise = he_normal_ if activation == "relu" else xavier_normal_', "initialise = xavier_normal_")],
        caught_by=["test_mlp_initialises_each_activation_by_its_rule"],
        checks="initialises_each",
        why="took Xavier as 'the' initialisation of the notes, whatever the activation",
    ),
    Mistake(
        "MLP drops out before the activation",
        replace=[("h = dropout(activation.apply(layer(h)), self.hparams.dropout, self.training)",
                  "h = activation.apply(dropout(layer(h), self.hparams.dropout, self.training))")],
        caught_by=["test_mlp_drops_out_after_each_hidden_activation"],
        checks="drops_out_after",
        why="the same for ReLU; for sigmoid a dropped unit becomes sigmoid(0) = 0.5, not 0",
    ),
    Mistake(
        "validation_step copied from training_step, stage 'fit' and all",
        # MLP overrides the validation_step it inherits from labs.common.ClassifierHooks
        replace=[("        self.metrics.update(stage, loss, logits, y)\n        return loss\n",
                  "        self.metrics.update(stage, loss, logits, y)\n        return loss\n\n"
                  '    def validation_step(self, batch, batch_idx):\n        self._shared_step(batch, "fit")\n')],
        caught_by=["test_mlp_training_setup_is_the_handouts"],
        checks="training_setup",
        why="validation batches counted as training ones: val_acc is never logged right",
    ),
]

ALTERNATIVES = []
