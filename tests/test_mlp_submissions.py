"""Lab 2's checks against deliberately wrong implementations: each mistake is caught by the checks meant for it.

Every wrong submission is the reference with one mistake. The table names, for each
mistake, the checks that must catch it; a last test proves every check catches at least
one mistake, so none of them is there for show.
"""
import pytest
from mutations import LabSources, failed

MLP = LabSources("mlp")


SECRET_AUTOGRAD_BACKWARD = '''        with torch.enable_grad():
            x_, w_ = x.detach().requires_grad_(), weight.detach().requires_grad_()
            b_ = torch.zeros(weight.shape[0], dtype=x.dtype, requires_grad=True)
            return torch.autograd.grad(x_ @ w_.T + b_, (x_, w_, b_), grad_output)
'''

# mistake -> (replacements, the checks that must fail)
WRONG = {
    "Value: a gradient assigned instead of accumulated": (
        [("            self.grad += other.data * out.grad\n", "            self.grad = other.data * out.grad\n")],
        {"test_value_reused_node_accumulates_gradients", "test_value_backward_on_random_graphs",
         "test_value_division_and_longer_chains"}),
    "Value: backward without a topological order": (
        [("        order, seen = [], set()", "        self.grad = 1.0\n        stack = [self]\n"
          "        while stack:\n            node = stack.pop()\n            node._backward()\n"
          "            stack.extend(node._prev)\n        return\n        order, seen = [], set()")],
        {"test_value_backward_on_random_graphs"}),
    "Value: backward resets every grad first": (
        [("        self.grad = 1.0\n        for node in reversed(order):",
          "        for node in order:\n            node.grad = 0.0\n        self.grad = 1.0\n"
          "        for node in reversed(order):")],
        {"test_value_gradients_accumulate_across_graphs_sharing_a_leaf"}),
    "Value: relu passes the gradient everywhere": (
        [("self.grad += (self.data > 0) * out.grad", "self.grad += out.grad")],
        {"test_value_operators_match_autograd", "test_value_division_and_longer_chains"}),
    "Value: pow forgets to lower the exponent": (
        [("self.grad += exponent * self.data ** (exponent - 1) * out.grad",
          "self.grad += exponent * self.data ** exponent * out.grad")],
        {"test_value_operators_match_autograd", "test_value_division_and_longer_chains",
         "test_value_backward_on_random_graphs"}),
    "Linear: backward secretly uses autograd": (
        [("        grad_x = grad_output @ weight\n", SECRET_AUTOGRAD_BACKWARD)],
        {"test_linear_backward_is_written_by_hand"}),
    "Linear: dW of the wrong shape": (
        [("grad_weight = grad_output.T @ x", "grad_weight = x.T @ grad_output")],
        {"test_linear_function_matches_autograd", "test_linear_backward_is_written_by_hand",
         "test_all_functions_are_exact_in_float64", "test_mlp_learns_mnist", "test_mlp_with_tanh_and_no_dropout_learns",
         "test_linear_backward_matches_central_differences_of_its_own_forward"}),
    "Linear: the bias gradient averaged instead of summed over the batch": (
        [("grad_bias = grad_output.sum(dim=0)", "grad_bias = grad_output.mean(dim=0)")],
        {"test_linear_function_matches_autograd", "test_linear_backward_is_written_by_hand",
         "test_all_functions_are_exact_in_float64",
         "test_linear_backward_matches_central_differences_of_its_own_forward"}),
    "cross-entropy: divided by N twice": (
        [("return (probas - onehot) / len(targets) * grad_output, None",
          "return (probas - onehot) / len(targets) ** 2 * grad_output, None")],
        {"test_softmax_cross_entropy_function_matches_autograd", "test_all_functions_are_exact_in_float64",
         "test_mlp_learns_mnist", "test_mlp_with_tanh_and_no_dropout_learns"}),
    "cross-entropy: no max subtracted": (
        [("shifted = logits - logits.max(dim=1, keepdim=True).values\n        log_probas",
          "shifted = logits\n        log_probas")],
        {"test_softmax_cross_entropy_function_matches_autograd"}),
    "sigmoid: backward forgets a factor": (
        [("return grad_output * a * (1 - a)", "return grad_output * (1 - a)")],
        {"test_activation_functions_match_autograd", "test_all_functions_are_exact_in_float64"}),
    "ReLU: gradient also where the unit was off": (
        [("return grad_output * (a > 0).to(grad_output.dtype)", "return grad_output * (a >= 0).to(grad_output.dtype)")],
        # every ReLU passes its gradient on as if linear: training with dropout diverges to NaN
        {"test_activation_functions_match_autograd", "test_all_functions_are_exact_in_float64",
         "test_mlp_learns_mnist"}),
    "Linear layer bypasses LinearFunction": (
        [("return LinearFunction.apply(x, self.weight, self.bias)", "return x @ self.weight.T + self.bias")],
        {"test_linear_module_uses_linear_function", "test_mlp_is_built_from_the_labs_own_layers"}),
    "Xavier from the fan-out": (
        [("std = 1.0 / math.sqrt(weight.shape[1])", "std = 1.0 / math.sqrt(weight.shape[0])")],
        {"test_initialisers_have_the_right_spread", "test_mlp_with_tanh_and_no_dropout_learns"}),  # 784 → 64: saturates
    "He without the factor 2": (
        [("std = math.sqrt(2.0 / weight.shape[1])", "std = math.sqrt(1.0 / weight.shape[1])")],
        {"test_initialisers_have_the_right_spread", "test_activation_statistics_show_the_experiment",
         "test_activation_statistics_reproduce_the_experiment_exactly"}),
    "the experiment ignores its generator": (
        [("            xavier_normal_(weight, generator)", "            xavier_normal_(weight)")],
        {"test_activation_statistics_reproduce_the_experiment_exactly"}),
    "the experiment never applies the activation": (
        [("        h = act(h @ weight.T)", "        h = h @ weight.T")],
        {"test_activation_statistics_show_the_experiment",
         "test_activation_statistics_reproduce_the_experiment_exactly"}),
    "dropout without the 1/(1 − p) scaling": (
        [("    return x * mask / (1 - p)", "    return x * mask")],
        {"test_dropout_keeps_the_mean_and_drops_a_fraction_p", "test_dropout_backward_uses_the_forward_mask"}),
    "dropout also in eval mode": (
        [("    if not training or p == 0:", "    if p == 0:")],
        {"test_dropout_eval_mode_and_edge_cases"}),
    "dropout divides by zero at p = 1": (
        [("    if p == 1:\n        return torch.zeros_like(x)\n", "")],
        {"test_dropout_eval_mode_and_edge_cases"}),
    "dropout: the same mask on every call": (
        [("    mask = (torch.rand_like(x) >= p)",
          "    mask = (torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) >= p)")],
        {"test_dropout_draws_a_fresh_mask_on_every_call"}),
    "dropout: the gradient ignores the mask": (
        [("    return x * mask / (1 - p)", "    return (x * mask / (1 - p)).detach() + x - x.detach()")],
        {"test_dropout_backward_uses_the_forward_mask"}),
    "MLP: no activation between the layers": (
        [("h = dropout(activation.apply(layer(h)), self.hparams.dropout, self.training)",
          "h = dropout(layer(h), self.hparams.dropout, self.training)")],
        {"test_mlp_is_built_from_the_labs_own_layers", "test_mlp_learns_mnist"}),
    "MLP: built from torch.nn.Linear": (
        [("torch.nn.ModuleList(Linear(d_in, d_out)", "torch.nn.ModuleList(torch.nn.Linear(d_in, d_out)")],
        {"test_mlp_is_built_from_the_labs_own_layers"}),
    "MLP: forward does not flatten": (
        [("h = x.flatten(start_dim=1)", "h = x")],
        {"test_mlp_gives_logits_of_the_right_shape", "test_mlp_learns_mnist",
         "test_mlp_with_tanh_and_no_dropout_learns"}),
}


def test_reference_gets_full_marks_and_the_stub_zero(tmp_path, zygote):
    results = MLP.grade(tmp_path, zygote, MLP.reference)
    assert failed(results) == set() and results.score == MLP.full == 33
    results = MLP.grade(tmp_path, zygote, MLP.stub)
    assert results.score == 0 and failed(results) == MLP.checks
    assert all(o.reason.startswith("NotImplementedError: ") and o.hint for o in results.outcomes)


@pytest.mark.parametrize("mistake", list(WRONG))
def test_each_mistake_is_caught_by_the_checks_meant_for_it(mistake, tmp_path, zygote):
    replacements, expected = WRONG[mistake]
    results = MLP.grade(tmp_path, zygote, MLP.mutate(*replacements))
    assert failed(results) == expected
    assert results.score == MLP.full - sum(o.points for o in results.outcomes if o.check in expected)


def test_every_check_catches_at_least_one_mistake():
    caught = set().union(*(expected for _, expected in WRONG.values()))
    assert MLP.checks - caught == set()


def test_a_backward_that_uses_autograd_is_named_in_the_reason(tmp_path, zygote):
    results = MLP.grade(tmp_path, zygote, MLP.mutate(*WRONG["Linear: backward secretly uses autograd"][0]))
    reason = next(o.reason for o in results.outcomes if o.check == "test_linear_backward_is_written_by_hand")
    # the static rule names the line (grader/policy.py); the worker's engine swap would say it at run time
    assert "LinearFunction.backward uses torch.enable_grad" in reason and "mlp.py, line" in reason, reason


def test_without_the_static_rule_the_engine_swap_still_names_autograd(tmp_path, zygote, monkeypatch):
    monkeypatch.setenv("LITLABS_NO_POLICY", "1")
    results = MLP.grade(tmp_path, zygote, MLP.mutate(*WRONG["Linear: backward secretly uses autograd"][0]))
    reason = next(o.reason for o in results.outcomes if o.check == "test_linear_backward_is_written_by_hand")
    assert "autograd was used inside a backward that must be written by hand" in reason


def test_a_wrong_submission_graded_twice_gets_the_same_outcomes(tmp_path, zygote):
    """A mistake whose effect depends on the order of the graph walk: that order must not vary between runs."""
    source = MLP.mutate(*WRONG["Value: a gradient assigned instead of accumulated"][0])
    first, second = (MLP.grade(tmp_path / run, zygote, source) for run in ("a", "b"))
    assert [(o.check, o.passed, o.reason) for o in first.outcomes] == \
        [(o.check, o.passed, o.reason) for o in second.outcomes]
