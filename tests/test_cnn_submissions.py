"""Lab 3's checks against deliberately wrong implementations: each mistake is caught by the checks meant for it.

Every wrong submission is the reference with one mistake. Training LeNet-5 costs seconds per
check, so most mistakes are graded with every check but the two training ones (``-k "not
learns"``): they leave the model's training untouched, which the rows graded in full show
for the mistakes that do reach it. A last test proves every check catches at least one
mistake, so none of them is there for show.
"""
import pytest
from mutations import LabSources, failed

from grader.grade import NoChecksSelected

CNN = LabSources("cnn")
QUICK = "not learns"  # every check but the two that train LeNet-5
LEARNS = {"test_lenet5_learns_mnist", "test_lenet5_without_batch_norm_and_with_augmentation_learns"}


BN_TRAINING, BN_EVAL = "test_batchnorm_training_mode_matches_torch", "test_batchnorm_eval_mode_uses_running_statistics"
BN_HIDDEN = "test_batchnorm_with_other_momentum_eps_and_float64"
CONV_VALUES = {"test_conv2d_matches_torch", "test_conv2d_gradients_match_autograd",
               "test_conv2d_and_pooling_with_unequal_strides_and_gaps"}

# mistake -> (replacements, the checks that must fail, graded with every check or QUICK)
WRONG = {
    "conv_output_size ignores dilation": (
        [("2 * padding - dilation * (kernel_size - 1) - 1", "2 * padding - (kernel_size - 1) - 1")],
        {"test_conv_output_size_formula"}, QUICK),
    "conv_parameter_count forgets the bias": (
        [(" + (out_channels if bias else 0)", "")],
        {"test_conv_parameter_count_matches_torch"}, QUICK),
    "conv2d flattens the filters with the kernel transposed": (
        [("out = weight.reshape(c_out, -1) @ columns", "out = weight.transpose(2, 3).reshape(c_out, -1) @ columns")],
        CONV_VALUES, QUICK),
    "conv2d forgets the padding (LeNet-5 cannot run)": (
        [("padding=(pad_h, pad_w), stride=(stride_h, stride_w))", "stride=(stride_h, stride_w))")],
        CONV_VALUES | LEARNS | {"test_lenet5_gives_logits_of_the_right_shape",
                                "test_lenet5_is_built_from_the_labs_layers",
                                "test_lenet5_in_eval_mode_does_not_depend_on_the_batch",
                                "test_conv2d_gradient_matches_central_differences_of_its_own_forward"}, None),
    "conv2d calls F.conv2d": (
        [("    h_out = conv_output_size(height, kernel_h, stride_h, pad_h)\n",
          "    return F.conv2d(x, weight, bias, stride, padding)\n")],
        {"test_conv2d_is_written_by_hand", "test_lenet5_is_built_from_the_labs_layers"}, QUICK),
    "max_pool2d splits the gradient between tied maxima": (
        [("return windows.max(dim=2).values.reshape", "return windows.amax(dim=2).reshape")],
        {"test_max_pool2d_matches_torch"}, QUICK),
    "max_pool2d calls F.max_pool2d": (
        [("    h_out = conv_output_size(height, kernel_h, stride_h)\n",
          "    return F.max_pool2d(x, kernel_size, stride)\n")],
        # the static rule "own convolution and pooling" backs the conv2d-by-hand check too
        {"test_max_pool2d_matches_torch", "test_lenet5_is_built_from_the_labs_layers", "test_conv2d_is_written_by_hand"},
        QUICK),
    "max_pool2d ignores its stride": (
        [("stride_h, stride_w = pair(kernel_size if stride is None else stride)", "stride_h, stride_w = pair(kernel_size)")],
        {"test_max_pool2d_matches_torch", "test_conv2d_and_pooling_with_unequal_strides_and_gaps"}, QUICK),
    "BatchNorm2d normalises with the unbiased variance": (
        [("var = x.var(dim=(0, 2, 3), unbiased=False)", "var = x.var(dim=(0, 2, 3), unbiased=True)")],
        {BN_TRAINING, BN_EVAL, BN_HIDDEN, "test_batchnorm_gradients_match_autograd"}, QUICK),
    "BatchNorm2d forgets eval mode": (
        [("        if self.training:\n            mean = x.mean", "        if True:\n            mean = x.mean")],
        {BN_EVAL, BN_HIDDEN, "test_batchnorm_state_dict_is_interchangeable_with_torch"}, QUICK),
    "BatchNorm2d never updates its running statistics": (
        [("                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)\n"
          "                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * m / (m - 1))\n", "")],
        {BN_TRAINING, BN_EVAL, BN_HIDDEN}, QUICK),
    "BatchNorm2d keeps the biased variance as running_var": (
        [("self.momentum * var * m / (m - 1))", "self.momentum * var)")],
        {BN_TRAINING, BN_EVAL, BN_HIDDEN}, QUICK),
    "BatchNorm2d ignores its momentum": (
        [("self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)",
          "self.running_mean.mul_(0.9).add_(0.1 * mean)")],
        {BN_HIDDEN}, QUICK),
    "BatchNorm2d keeps running_mean as a plain attribute, not a buffer": (
        [('self.register_buffer("running_mean", torch.zeros(num_features))',
          "self.running_mean = torch.zeros(num_features)")],
        {"test_batchnorm_state_dict_is_interchangeable_with_torch", BN_HIDDEN}, QUICK),
    "BatchNorm2d detaches the batch statistics": (
        [("            mean = x.mean(dim=(0, 2, 3))\n            var = x.var(dim=(0, 2, 3), unbiased=False)\n",
          "            mean = x.mean(dim=(0, 2, 3)).detach()\n            var = x.var(dim=(0, 2, 3), unbiased=False).detach()\n")],
        {"test_batchnorm_gradients_match_autograd"}, QUICK),
    "train_transforms flips digits": (
        [('        v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge"),\n',
          '        v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge"),\n'
          '        v2.RandomHorizontalFlip(p=1.0),\n')],
        {"test_augmentation_keeps_a_digit_recognisable"}, QUICK),
    "eval_transforms is random": (
        [("return v2.Compose([v2.CenterCrop(image_size), v2.ToDtype(torch.float32)])",
          "return v2.Compose([v2.RandomCrop(image_size, padding=2), v2.ToDtype(torch.float32)])")],
        {"test_train_transform_is_random_but_seeded_and_eval_is_fixed"}, QUICK),
    "train_transforms without augmentation": (
        [('        v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge"),\n', "")],
        {"test_train_transform_is_random_but_seeded_and_eval_is_fixed"}, QUICK),
    "the transforms keep the input's dtype": (
        [("        v2.ToDtype(torch.float32),\n    ])", "    ])"),
         ("return v2.Compose([v2.CenterCrop(image_size), v2.ToDtype(torch.float32)])",
          "return v2.Compose([v2.CenterCrop(image_size)])")],
        {"test_transforms_keep_the_shape_the_label_and_give_float32"}, QUICK),
    "LeNet5 hard-codes the 5×5 feature maps": (
        [("torch.nn.Linear(16 * h * w, 120)", "torch.nn.Linear(16 * 5 * 5, 120)")],
        {"test_lenet5_gives_logits_of_the_right_shape", "test_lenet5_has_the_notes_architecture"}, QUICK),
    "LeNet5 keeps the convolution bias before batch norm": (
        [("bias=not batch_norm)]", "bias=True)]")],
        {"test_lenet5_has_the_notes_architecture"}, QUICK),
    "LeNet5 built from torch.nn.Conv2d": (
        [("layers = [Conv2d(c_in, c_out, 5", "layers = [torch.nn.Conv2d(c_in, c_out, 5")],
        {"test_lenet5_is_built_from_the_labs_layers"}, QUICK),
    "LeNet5 forces batch norm into training mode": (
        [("        return self.classifier(self.features(x))",
          "        self.features.train()\n        return self.classifier(self.features(x))")],
        {"test_lenet5_in_eval_mode_does_not_depend_on_the_batch"}, QUICK),
    "LeNet5 with a learning rate 1000 times too small": (
        [("augment: bool = True, max_shift: int = 2, lr: float = 0.1)", "augment: bool = True, max_shift: int = 2, lr: float = 0.0001)")],
        LEARNS, None),
}


def test_reference_gets_full_marks_and_the_stub_zero(tmp_path, zygote):
    results = CNN.grade(tmp_path / "reference", zygote, CNN.reference)
    assert failed(results) == set() and results.score == CNN.full == 29
    results = CNN.grade(tmp_path / "stub", zygote, CNN.stub)
    assert results.score == 0 and failed(results) == CNN.checks
    assert all(o.reason.startswith("NotImplementedError: ") and o.hint for o in results.outcomes)


@pytest.mark.parametrize("mistake", list(WRONG))
def test_each_mistake_is_caught_by_the_checks_meant_for_it(mistake, tmp_path, zygote):
    replacements, expected, keyword = WRONG[mistake]
    results = CNN.grade(tmp_path, zygote, CNN.mutate(*replacements), keyword=keyword)
    assert failed(results) == expected
    graded = {o.check for o in results.outcomes}
    assert graded == (CNN.checks if keyword is None else CNN.checks - LEARNS)
    assert results.score == sum(o.points for o in results.outcomes) - sum(
        o.points for o in results.outcomes if o.check in expected)


def test_every_check_catches_at_least_one_mistake():
    caught = set().union(*(expected for _, expected, _ in WRONG.values()))
    assert CNN.checks - caught == set()


def test_check_k_runs_only_the_matching_checks_and_says_when_none_match(tmp_path, zygote):
    results = CNN.grade(tmp_path / "a", zygote, CNN.reference, keyword="batchnorm")
    assert {o.check for o in results.outcomes} == {c for c in CNN.checks if "batchnorm" in c}
    assert results.score == 7
    with pytest.raises(NoChecksSelected, match="no check matches -k 'convolution_of_nothing'"):
        CNN.grade(tmp_path / "b", zygote, CNN.reference, keyword="convolution_of_nothing")
