"""Lab 3 (CNN): mistakes students make, as edits of solutions/cnn.py, and the checks that must catch each.

Shipped with the instructor repository only: the edits quote the reference.
"""

from grader.instructor.audit import Mistake

MISTAKES = [
    Mistake(
        "conv_output_size ignores dilation",
        replace=[
            ("2 * padding - dilation * (kernel_size - 1) - 1", "2 * padding - (kernel_size - 1) - 1"),
        ],
        caught_by=["test_conv_output_size_formula"],
        checks="not learns",
    ),
    Mistake(
        "conv_parameter_count forgets the bias",
        replace=[
            (" + (out_channels if bias else 0)", ""),
        ],
        caught_by=["test_conv_parameter_count_matches_torch"],
        checks="not learns",
    ),
    Mistake(
        "conv2d flattens the filters with the kernel transposed",
        replace=[
            ("out = weight.reshape(c_out, -1) @ columns", "out = weight.transpose(2, 3).reshape(c_out, -1) @ columns"),
        ],
        caught_by=[
            "test_conv2d_matches_torch",
            "test_conv2d_gradients_match_autograd",
            "test_lenet5_is_built_from_the_labs_layers",
            "test_conv2d_and_pooling_with_unequal_strides_and_gaps",
        ],
        checks="not learns",
    ),
    Mistake(
        "conv2d forgets the padding (LeNet-5 cannot run)",
        replace=[
            ("padding=(pad_h, pad_w), stride=(stride_h, stride_w))", "stride=(stride_h, stride_w))"),
        ],
        caught_by=[
            "test_conv2d_matches_torch",
            "test_conv2d_gradients_match_autograd",
            "test_lenet5_gives_logits_of_the_right_shape",
            "test_lenet5_is_built_from_the_labs_layers",
            "test_lenet5_in_eval_mode_does_not_depend_on_the_batch",
            "test_lenet5_learns_mnist",
            "test_lenet5_training_setup_is_the_handouts",
            "test_conv2d_gradient_matches_central_differences_of_its_own_forward",
            "test_conv2d_and_pooling_with_unequal_strides_and_gaps",
            "test_lenet5_without_batch_norm_and_with_augmentation_learns",
        ],
    ),
    Mistake(
        "conv2d calls F.conv2d",
        replace=[
            (
                "    h_out = conv_output_size(height, kernel_h, stride_h, pad_h)\n",
                "    return F.conv2d(x, weight, bias, stride, padding)\n",
            ),
        ],
        caught_by=["test_conv2d_is_written_by_hand", "test_lenet5_is_built_from_the_labs_layers"],
        checks="not learns",
    ),
    Mistake(
        "max_pool2d splits the gradient between tied maxima",
        replace=[
            ("return windows.max(dim=2).values.reshape", "return windows.amax(dim=2).reshape"),
        ],
        caught_by=["test_max_pool2d_matches_torch"],
        checks="not learns",
    ),
    Mistake(
        "max_pool2d calls F.max_pool2d",
        replace=[
            (
                "    h_out = conv_output_size(height, kernel_h, stride_h)\n",
                "    return F.max_pool2d(x, kernel_size, stride)\n",
            ),
        ],
        caught_by=[
            "test_conv2d_is_written_by_hand",
            "test_lenet5_is_built_from_the_labs_layers",
            "test_max_pool2d_matches_torch",
        ],
        checks="not learns",
    ),
    Mistake(
        "max_pool2d ignores its stride",
        replace=[
            (
                "stride_h, stride_w = pair(kernel_size if stride is None else stride)",
                "stride_h, stride_w = pair(kernel_size)",
            ),
        ],
        caught_by=[
            "test_max_pool2d_matches_torch",
            "test_lenet5_is_built_from_the_labs_layers",
            "test_conv2d_and_pooling_with_unequal_strides_and_gaps",
        ],
        checks="not learns",
    ),
    Mistake(
        "BatchNorm2d normalises with the unbiased variance",
        replace=[
            ("var = x.var(dim=(0, 2, 3), unbiased=False)", "var = x.var(dim=(0, 2, 3), unbiased=True)"),
        ],
        caught_by=[
            "test_batchnorm_eval_mode_uses_running_statistics",
            "test_batchnorm_gradients_match_autograd",
            "test_batchnorm_training_mode_matches_torch",
            "test_batchnorm_with_other_momentum_eps_and_float64",
        ],
        checks="not learns",
    ),
    Mistake(
        "BatchNorm2d forgets eval mode",
        replace=[
            ("        if self.training:\n            mean = x.mean", "        if True:\n            mean = x.mean"),
        ],
        caught_by=[
            "test_batchnorm_eval_mode_uses_running_statistics",
            "test_batchnorm_state_dict_is_interchangeable_with_torch",
            "test_batchnorm_with_other_momentum_eps_and_float64",
        ],
        checks="not learns",
    ),
    Mistake(
        "BatchNorm2d never updates its running statistics",
        replace=[
            (
                "                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)\n                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * m / (m - 1))\n",
                "",
            ),
        ],
        caught_by=[
            "test_batchnorm_eval_mode_uses_running_statistics",
            "test_batchnorm_training_mode_matches_torch",
            "test_batchnorm_with_other_momentum_eps_and_float64",
        ],
        checks="not learns",
    ),
    Mistake(
        "BatchNorm2d keeps the biased variance as running_var",
        replace=[
            ("self.momentum * var * m / (m - 1))", "self.momentum * var)"),
        ],
        caught_by=[
            "test_batchnorm_eval_mode_uses_running_statistics",
            "test_batchnorm_training_mode_matches_torch",
            "test_batchnorm_with_other_momentum_eps_and_float64",
        ],
        checks="not learns",
    ),
    Mistake(
        "BatchNorm2d ignores its momentum",
        replace=[
            (
                "self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)",
                "self.running_mean.mul_(0.9).add_(0.1 * mean)",
            ),
        ],
        caught_by=["test_batchnorm_with_other_momentum_eps_and_float64"],
        checks="not learns",
    ),
    Mistake(
        "BatchNorm2d keeps running_mean as a plain attribute, not a buffer",
        replace=[
            (
                'self.register_buffer("running_mean", torch.zeros(num_features))',
                "self.running_mean = torch.zeros(num_features)",
            ),
        ],
        caught_by=[
            "test_batchnorm_state_dict_is_interchangeable_with_torch",
            "test_batchnorm_with_other_momentum_eps_and_float64",
        ],
        checks="not learns",
    ),
    Mistake(
        "BatchNorm2d detaches the batch statistics",
        replace=[
            (
                "            mean = x.mean(dim=(0, 2, 3))\n            var = x.var(dim=(0, 2, 3), unbiased=False)\n",
                "            mean = x.mean(dim=(0, 2, 3)).detach()\n            var = x.var(dim=(0, 2, 3), unbiased=False).detach()\n",
            ),
        ],
        caught_by=["test_batchnorm_gradients_match_autograd"],
        checks="not learns",
    ),
    Mistake(
        "train_transforms flips digits",
        replace=[
            (
                '        v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge"),\n',
                '        v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge"),\n        v2.RandomHorizontalFlip(p=1.0),\n',
            ),
        ],
        caught_by=[
            "test_train_transform_shifts_by_up_to_max_shift_with_edge_padding",
            "test_augmentation_keeps_a_digit_recognisable",
        ],
        checks="not learns",
    ),
    Mistake(
        "eval_transforms is random",
        replace=[
            (
                "return v2.Compose([v2.CenterCrop(image_size), v2.ToDtype(torch.float32)])",
                "return v2.Compose([v2.RandomCrop(image_size, padding=2), v2.ToDtype(torch.float32)])",
            ),
        ],
        caught_by=[
            "test_train_transform_is_random_but_seeded_and_eval_is_fixed",
            "test_train_transform_shifts_by_up_to_max_shift_with_edge_padding",
            "test_lenet5_training_setup_is_the_handouts",
        ],
        checks="not learns",
    ),
    Mistake(
        "train_transforms without augmentation",
        replace=[
            ('        v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge"),\n', ""),
        ],
        caught_by=[
            "test_train_transform_is_random_but_seeded_and_eval_is_fixed",
            "test_train_transform_shifts_by_up_to_max_shift_with_edge_padding",
            "test_lenet5_training_setup_is_the_handouts",
        ],
        checks="not learns",
    ),
    Mistake(
        "the transforms keep the input's dtype",
        replace=[
            ("        v2.ToDtype(torch.float32),\n    ])", "    ])"),
            (
                "return v2.Compose([v2.CenterCrop(image_size), v2.ToDtype(torch.float32)])",
                "return v2.Compose([v2.CenterCrop(image_size)])",
            ),
        ],
        caught_by=["test_transforms_keep_the_shape_the_label_and_give_float32"],
        checks="not learns",
    ),
    Mistake(
        "LeNet5 hard-codes the 5×5 feature maps",
        replace=[
            ("torch.nn.Linear(16 * h * w, 120)", "torch.nn.Linear(16 * 5 * 5, 120)"),
        ],
        caught_by=["test_lenet5_gives_logits_of_the_right_shape", "test_lenet5_has_the_notes_architecture"],
        checks="not learns",
    ),
    Mistake(
        "LeNet5 keeps the convolution bias before batch norm",
        replace=[
            ("bias=not batch_norm)]", "bias=True)]"),
        ],
        caught_by=["test_lenet5_has_the_notes_architecture"],
        checks="not learns",
    ),
    Mistake(
        "LeNet5 built from torch.nn.Conv2d",
        replace=[
            ("layers = [Conv2d(c_in, c_out, 5", "layers = [torch.nn.Conv2d(c_in, c_out, 5"),
        ],
        caught_by=["test_lenet5_is_built_from_the_labs_layers"],
        checks="not learns",
    ),
    Mistake(
        "LeNet5 forces batch norm into training mode",
        replace=[
            (
                "        return self.classifier(self.features(x))",
                "        self.features.train()\n        return self.classifier(self.features(x))",
            ),
        ],
        caught_by=["test_lenet5_in_eval_mode_does_not_depend_on_the_batch"],
        checks="not learns",
    ),
    Mistake(
        "LeNet5 with a learning rate 1000 times too small",
        replace=[
            (
                "augment: bool = True, max_shift: int = 2, lr: float = 0.1)",
                "augment: bool = True, max_shift: int = 2, lr: float = 0.0001)",
            ),
        ],
        caught_by=["test_lenet5_learns_mnist", "test_lenet5_without_batch_norm_and_with_augmentation_learns"],
    ),
    Mistake(
        "conv2d: a missing bias replaced by torch.zeros(C_out), on the default device",
        replace=[
            (
                "    if bias is not None:\n        out = out + bias.reshape(1, c_out, 1)",
                "    if bias is None:\n        bias = torch.zeros(c_out)\n    out = out + bias.reshape(1, c_out, 1)",
            )
        ],
        caught_by=["test_conv2d_matches_torch"],
        checks="conv2d_matches_torch",
        kind="device",
        why="one code path for the bias; torch.zeros ignores x's device: on a GPU the sum fails",
    ),
    Mistake(
        "augmentation left on in evaluation (the self.training test dropped)",
        replace=[("transform = self.train_transform if self.training and self.hparams.augment else self.eval_transform",
                  "transform = self.train_transform if self.hparams.augment else self.eval_transform")],
        caught_by=["test_lenet5_training_setup_is_the_handouts"],
        checks="training_setup",
        why="'augment' read as 'always augment': validation and test images are shifted at random",
    ),
    Mistake(
        "MaxPool2d.forward passes the kernel size only",
        replace=[("return max_pool2d(x, self.kernel_size, self.stride)", "return max_pool2d(x, self.kernel_size)")],
        caught_by=["test_lenet5_is_built_from_the_labs_layers"],
        checks="built_from_the_labs",
        why="LeNet's pools have stride = kernel size, where the two are the same",
    ),
    Mistake(
        "train_transforms pads with zeros (RandomCrop's default)",
        replace=[('v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge")',
                  "v2.RandomCrop(image_size, padding=max_shift)")],
        caught_by=["test_train_transform_shifts_by_up_to_max_shift_with_edge_padding"],
        checks="edge_padding",
        why="the torchvision tutorial's crop: a shifted digit gets a black frame the data never has",
    ),
]

ALTERNATIVES = []
