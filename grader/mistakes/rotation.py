"""Lab 5 (rotation pretext): mistakes students make, as edits of solutions/rotation.py, and the checks that must catch each.

Shipped with the instructor repository only: the edits quote the reference.
"""

from grader.instructor.audit import Alternative, Mistake

MISTAKES = [
    Mistake(
        "turns clockwise",
        replace=[
            ("torch.rot90(x, k, dims=(-2, -1))", "torch.rot90(x, -k, dims=(-2, -1))"),
        ],
        caught_by=[
            "test_pretext_loss_is_the_cross_entropy_of_the_rotations",
            "test_rotate_batch_labels_match_the_rotations",
            "test_rotate_batch_leaves_its_input_alone_and_handles_odd_sizes",
        ],
        checks="rotate_batch or loss",
    ),
    Mistake(
        "turns the wrong dimensions",
        replace=[
            ("torch.rot90(x, k, dims=(-2, -1))", "torch.rot90(x, k, dims=(1, 2))"),
        ],
        caught_by=[
            "test_pretext_loss_is_the_cross_entropy_of_the_rotations",
            "test_pretext_training_learns_to_predict_rotations",
            "test_pretext_training_never_uses_the_class_labels",
            "test_rotate_batch_labels_match_the_rotations",
            "test_rotate_batch_leaves_its_input_alone_and_handles_odd_sizes",
            "test_rotate_batch_shapes_and_dtypes",
        ],
        checks="rotate_batch or pretext",
    ),
    Mistake(
        "labels interleaved, images in blocks",
        replace=[
            (".repeat_interleave(len(x))", ".repeat(len(x))"),
        ],
        caught_by=[
            "test_pretext_loss_is_the_cross_entropy_of_the_rotations",
            "test_pretext_training_learns_to_predict_rotations",
            "test_rotate_batch_labels_match_the_rotations",
        ],
        checks="rotate_batch or pretext",
    ),
    Mistake(
        "non-square images accepted",
        replace=[
            ("    if x.shape[-1] != x.shape[-2]:\n", "    if False:\n"),
        ],
        caught_by=["test_rotate_batch_shapes_and_dtypes"],
        checks="rotate_batch",
    ),
    Mistake(
        "the class labels leak into the pretext loss",
        replace=[
            (
                "loss = F.cross_entropy(logits, rotations)\n",
                "loss = F.cross_entropy(logits, rotations) + 0.1 * F.cross_entropy(logits, batch[1].repeat(4) % 4)\n",
            ),
        ],
        caught_by=[
            "test_pretext_loss_is_the_cross_entropy_of_the_rotations",
            "test_pretext_training_never_uses_the_class_labels",
        ],
        checks="pretext and not learns",
    ),
    Mistake(
        "the pretext head's size written as 64",
        replace=[
            (
                "self.head = nn.Linear(self.backbone.num_features, NUM_ROTATIONS)",
                "self.head = nn.Linear(64, NUM_ROTATIONS)",
            ),
        ],
        caught_by=[
            "test_pretext_head_gives_four_rotation_logits",
            "test_pretext_loss_is_the_cross_entropy_of_the_rotations",
        ],
        checks="pretext and not learns",
    ),
    Mistake(
        "rotate_batch overwrites its input",
        replace=[
            ("    return rotated, rotations\n", "    x.zero_()\n    return rotated, rotations\n"),
        ],
        caught_by=[
            "test_pretext_loss_is_the_cross_entropy_of_the_rotations",
            "test_rotate_batch_leaves_its_input_alone_and_handles_odd_sizes",
        ],
        checks="rotate_batch or loss",
    ),
    Mistake(
        "the probe trains the backbone",
        replace=[
            ("        self.backbone.requires_grad_(False)\n", ""),
            ("torch.optim.SGD(self.head.parameters(),", "torch.optim.SGD(self.parameters(),"),
        ],
        caught_by=[
            "test_linear_probe_freezes_the_backbone",
            "test_linear_probe_training_leaves_the_backbone_bitwise_unchanged",
        ],
        checks="linear_probe",
    ),
    Mistake(
        "train() wakes the frozen batch norm up",
        replace=[
            (
                "        self.backbone.eval()\n        ### END SOLUTION\n        return self",
                "        pass\n        ### END SOLUTION\n        return self",
            ),
        ],
        caught_by=[
            "test_linear_probe_forward_in_training_mode_keeps_the_statistics",
            "test_linear_probe_freezes_the_backbone",
        ],
        checks="linear_probe",
    ),
    Mistake(
        "the probe learns a thousand times too slowly",
        replace=[
            ("lr=self.hparams.lr, momentum=0.9)", "lr=self.hparams.lr / 1000, momentum=0.9)"),
        ],
        caught_by=["test_rotation_features_beat_random_features_with_few_labels"],
        checks="features",
    ),
    Mistake(
        "rotate_batch: labels made on the default device, not x's",
        replace=[
            (
                "    rotations = torch.arange(NUM_ROTATIONS, device=x.device).repeat_interleave(len(x))\n",
                "    rotations = torch.arange(NUM_ROTATIONS).repeat_interleave(len(x))\n",
            )
        ],
        caught_by=["test_rotate_batch_shapes_and_dtypes"],
        checks="rotate_batch",
        kind="device",
        why="torch.arange without device=: right on a laptop, labels on the CPU for images on a GPU",
    ),
    Mistake(
        "ssl_experiment's random backbone is not seeded",
        replace=[("    torch.manual_seed(seed)\n    random = probe_accuracy(", "    random = probe_accuracy(")],
        caught_by=["test_ssl_experiment_probes_pretrained_and_seeded_random_features"],
        checks="ssl_experiment",
    ),
    Mistake(
        "ssl_experiment probes a fresh pretext's backbone, never the trained one",
        replace=[
            (
                "    pretext, _ = pretrain(pretext_images, seed=seed, accelerator=accelerator)\n",
                "    pretext = RotationPretext()\n",
            ),
        ],
        caught_by=["test_ssl_experiment_probes_pretrained_and_seeded_random_features"],
        checks="ssl_experiment",
    ),
    Mistake(
        "ssl_experiment probes with the default labels per class",
        replace=[("rotation = probe_accuracy(pretext.backbone, labels_per_class, seed=seed",
                  "rotation = probe_accuracy(pretext.backbone, seed=seed")],
        caught_by=["test_ssl_experiment_probes_pretrained_and_seeded_random_features"],
        checks="ssl_experiment",
    ),
    Mistake(
        "LinearProbe's test_step copied from validation_step",
        # LinearProbe overrides the test_step it inherits from labs.common.ClassifierHooks
        replace=[("        self.metrics.update(stage, loss, logits, y)\n        return loss\n",
                  "        self.metrics.update(stage, loss, logits, y)\n        return loss\n\n"
                  '    def test_step(self, batch, batch_idx):\n        self._shared_step(batch, "val")\n')],
        caught_by=["test_every_stage_logs_its_own_figures"],
        checks="own_figures",
    ),
    Mistake(
        "pretext loss as log(softmax) (overflows for confident logits)",
        replace=[("        loss = F.cross_entropy(logits, rotations)\n",
                  "        loss = F.nll_loss(torch.log(torch.softmax(logits, dim=1)), rotations)\n")],
        caught_by=["test_pretext_loss_is_the_cross_entropy_of_the_rotations"],
        checks="cross_entropy_of_the_rotations",
        why="the notes' −log a_t written literally: a confident model's probabilities round to 0 and the loss is inf",
    ),
]

ALTERNATIVES = [
    Alternative(
        "ssl_experiment leaves the random backbone to LinearProbe (backbone=None), seeded by probe_accuracy",
        replace=[
            (
                "    torch.manual_seed(seed)\n    random = probe_accuracy(DigitBackbone(), labels_per_class",
                "    random = probe_accuracy(None, labels_per_class",
            ),
        ],
        checks="ssl_experiment",
    ),
    Alternative(
        "ssl_experiment seeds with Lightning and names every argument",
        replace=[
            (
                "    torch.manual_seed(seed)\n    random = probe_accuracy(DigitBackbone(), labels_per_class, seed=seed, "
                "accelerator=accelerator)",
                "    L.seed_everything(seed, verbose=False)\n    fresh = DigitBackbone()\n"
                "    random = probe_accuracy(backbone=fresh, labels_per_class=labels_per_class, seed=seed, "
                "accelerator=accelerator)",
            ),
        ],
        checks="ssl_experiment",
    ),
]
