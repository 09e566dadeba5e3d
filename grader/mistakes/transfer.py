"""Lab 4 (transfer learning): mistakes students make, as edits of solutions/transfer.py, and the checks that must catch each.

Shipped with the instructor repository only: the edits quote the reference.
"""

from grader.instructor.audit import Alternative, Mistake

MISTAKES = [
    Mistake(
        "freeze leaves batch norm in training mode",
        replace=[
            (
                "        if isinstance(layer, _BatchNorm):\n            layer.eval()\n    ### END SOLUTION\n\n\ndef unfreeze",
                "        pass\n    ### END SOLUTION\n\n\ndef unfreeze",
            ),
        ],
        caught_by=[
            "test_freeze_and_unfreeze",
            "test_linear_probe_training_leaves_the_backbone_bitwise_unchanged",
            "test_unfreeze_backbone_callback_unfreezes_at_its_epoch",
            "test_gradual_unfreezing_moves_the_backbone_only_after_its_epoch",
            "test_last_k_training_moves_only_the_last_layers",
        ],
    ),
    Mistake(
        "train() wakes frozen batch norm up",
        replace=[
            (
                "            if isinstance(layer, _BatchNorm) and not any(p.requires_grad for p in layer.parameters()):\n                layer.eval()\n",
                "            pass\n",
            ),
        ],
        caught_by=["test_frozen_batch_norm_stays_in_eval_mode_after_train"],
    ),
    Mistake(
        "unfreeze leaves the module in eval mode",
        replace=[
            (
                "        parameter.requires_grad_(True)\n    module.train()\n",
                "        parameter.requires_grad_(True)\n",
            ),
        ],
        caught_by=[
            "test_freeze_and_unfreeze",
            "test_unfreeze_backbone_callback_unfreezes_at_its_epoch",
        ],
    ),
    Mistake(
        "frozen parameters stay in the optimizer",
        replace=[
            (
                "trainable = [p for p in self.backbone.parameters() if p.requires_grad]",
                "trainable = list(self.backbone.parameters())",
            ),
        ],
        caught_by=[
            "test_last_k_freezes_exactly_what_it_says",
            "test_optimizer_holds_trainable_parameters_in_their_own_groups",
            "test_unfreeze_backbone_callback_unfreezes_at_its_epoch",
        ],
    ),
    Mistake(
        "one learning rate for every group",
        replace=[
            (
                'groups.append({"params": trainable, "lr": backbone_lr})',
                'groups.append({"params": trainable, "lr": self.hparams.lr})',
            ),
        ],
        caught_by=["test_optimizer_holds_trainable_parameters_in_their_own_groups"],
    ),
    Mistake(
        "the backbone re-initialised in every mode",
        replace=[
            (
                '        if mode == "scratch":\n            reinitialise(self.backbone)',
                "        reinitialise(self.backbone)",
            ),
        ],
        caught_by=[
            "test_fine_tune_moves_the_pretrained_backbone",
            "test_linear_probe_beats_training_from_scratch_with_few_labels",
        ],
    ),
    Mistake(
        "the head's size written as 64",
        replace=[
            (
                "self.head = nn.Linear(self.backbone.num_features, num_classes)",
                "self.head = nn.Linear(64, num_classes)",
            ),
        ],
        caught_by=[
            "test_logits_shape_and_feature_size_read_from_the_backbone",
            "test_frozen_batch_norm_stays_in_eval_mode_after_train",
            "test_every_stage_logs_its_own_figures",
        ],
    ),
    Mistake(
        "last_k unfreezes one layer too many",
        replace=[
            ("layers_with_parameters(self.backbone)[-k:]", "layers_with_parameters(self.backbone)[-(k + 1):]"),
        ],
        caught_by=["test_last_k_freezes_exactly_what_it_says", "test_last_k_training_moves_only_the_last_layers"],
    ),
    Mistake(
        "UnfreezeBackbone unfreezes at the first epoch",
        replace=[
            ("        if current_epoch == self.at_epoch:", "        if current_epoch == 0:"),
        ],
        caught_by=[
            "test_gradual_unfreezing_moves_the_backbone_only_after_its_epoch",
            "test_unfreeze_backbone_callback_unfreezes_at_its_epoch",
        ],
    ),
    Mistake(
        "UnfreezeBackbone forgets the backbone's learning rate",
        replace=[
            ("optimizer, lr=pl_module.hparams.backbone_lr)", "optimizer)"),
        ],
        caught_by=["test_unfreeze_backbone_callback_unfreezes_at_its_epoch"],
    ),
    Mistake(
        "compare_regimes nests the table by regime, not by budget",
        replace=[
            (
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}\n            for budget in budgets}",
                "    return {regime: {budget: train_and_test(regime, budget, max_epochs, seed, accelerator) for budget in budgets}\n            for regime in REGIMES}",
            ),
        ],
        caught_by=["test_compare_regimes_runs_every_regime_at_every_budget"],
        checks="compare_regimes",
    ),
    Mistake(
        "compare_regimes trains with the default epochs and seed",
        replace=[
            ("train_and_test(regime, budget, max_epochs, seed, accelerator)", "train_and_test(regime, budget)"),
        ],
        caught_by=["test_compare_regimes_runs_every_regime_at_every_budget"],
        checks="compare_regimes",
    ),
    Mistake(
        "Adam instead of SGD",
        replace=[("return torch.optim.SGD(groups, lr=self.hparams.lr, momentum=0.9)",
                  "return torch.optim.Adam(groups, lr=self.hparams.lr)")],
        caught_by=["test_optimizer_holds_trainable_parameters_in_their_own_groups"],
        checks="optimizer_holds",
    ),
    Mistake(
        "test_step copied from validation_step",
        # TransferClassifier overrides the test_step it inherits from labs.common.ClassifierHooks
        replace=[("        self.metrics.update(stage, loss, logits, y)\n        return loss\n",
                  "        self.metrics.update(stage, loss, logits, y)\n        return loss\n\n"
                  '    def test_step(self, batch, batch_idx):\n        self._shared_step(batch, "val")\n')],
        caught_by=["test_every_stage_logs_its_own_figures"],
        checks="own_figures",
    ),
    Mistake(
        "scratch keeps the pretrained weights",
        replace=[('        if mode == "scratch":\n            reinitialise(self.backbone)\n', "")],
        caught_by=["test_scratch_reinitialises_the_given_backbone"],
        checks="scratch_reinit",
        why="thought 'scratch' meant training every layer, not starting from random weights",
    ),
]

ALTERNATIVES = [
    Alternative(
        "compare_regimes as loops, by keyword",
        replace=[
            (
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}\n            for budget in budgets}",
                "    table = {}\n    for regime in REGIMES:\n        for budget in budgets:\n"
                "            accuracy = train_and_test(mode=regime, labels_per_class=budget, max_epochs=max_epochs, seed=seed,\n"
                "                                      accelerator=accelerator)\n"
                "            table.setdefault(budget, {})[regime] = accuracy\n    return table",
            ),
        ],
        checks="compare_regimes",
    ),
]
