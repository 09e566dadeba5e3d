"""Lab 4's checks against deliberately wrong implementations: each mistake is caught by the checks meant for it."""
import pytest
from mutations import LabSources, failed

TRANSFER = LabSources("transfer")


PROBE_BITWISE = "test_linear_probe_training_leaves_the_backbone_bitwise_unchanged"

# mistake -> (replacements, the checks that must fail)
WRONG = {
    "freeze leaves batch norm in training mode": (
        [("        if isinstance(layer, _BatchNorm):\n            layer.eval()\n    ### END SOLUTION\n\n\ndef unfreeze",
          "        pass\n    ### END SOLUTION\n\n\ndef unfreeze")],
        # A fresh model is in training mode and nothing calls its train() before fitting (as in `litlabs train`),
        # so the batch-norm statistics move in every training that starts frozen.
        {"test_freeze_and_unfreeze", "test_linear_probe_training_leaves_the_backbone_bitwise_unchanged",
         "test_last_k_training_moves_only_the_last_layers",
         "test_gradual_unfreezing_moves_the_backbone_only_after_its_epoch"}),
    "train() wakes frozen batch norm up": (
        [("            if isinstance(layer, _BatchNorm) and not any(p.requires_grad for p in layer.parameters()):\n"
          "                layer.eval()\n", "            pass\n")],
        # Lightning (2.6) keeps each module's mode through fit instead of calling model.train(), and a fresh model
        # is trained as built (as in `litlabs train`): training never calls this train(), so only its check sees it.
        {"test_frozen_batch_norm_stays_in_eval_mode_after_train"}),
    "unfreeze leaves the module in eval mode": (
        [("        parameter.requires_grad_(True)\n    module.train()\n", "        parameter.requires_grad_(True)\n")],
        {"test_freeze_and_unfreeze"}),
    "frozen parameters stay in the optimizer": (
        [("trainable = [p for p in self.backbone.parameters() if p.requires_grad]",
          "trainable = list(self.backbone.parameters())")],
        {"test_optimizer_holds_trainable_parameters_in_their_own_groups", "test_last_k_freezes_exactly_what_it_says",
         "test_unfreeze_backbone_callback_unfreezes_at_its_epoch"}),
    "one learning rate for every group": (
        [('groups.append({"params": trainable, "lr": backbone_lr})', 'groups.append({"params": trainable, "lr": self.hparams.lr})')],
        {"test_optimizer_holds_trainable_parameters_in_their_own_groups"}),
    "the backbone re-initialised in every mode": (
        [('        if mode == "scratch":\n            reinitialise(self.backbone)', '        reinitialise(self.backbone)')],
        {"test_fine_tune_moves_the_pretrained_backbone",
         "test_linear_probe_beats_training_from_scratch_with_few_labels"}),
    "the head's size written as 64": (
        [("self.head = nn.Linear(self.backbone.num_features, num_classes)", "self.head = nn.Linear(64, num_classes)")],
        # the batch-norm check runs the model's forward on a 7-feature backbone, which this head cannot take
        {"test_logits_shape_and_feature_size_read_from_the_backbone",
         "test_frozen_batch_norm_stays_in_eval_mode_after_train"}),
    "last_k unfreezes one layer too many": (
        [("layers_with_parameters(self.backbone)[-k:]", "layers_with_parameters(self.backbone)[-(k + 1):]")],
        {"test_last_k_freezes_exactly_what_it_says", "test_last_k_training_moves_only_the_last_layers"}),
    "UnfreezeBackbone unfreezes at the first epoch": (
        [("        if current_epoch == self.at_epoch:", "        if current_epoch == 0:")],
        {"test_unfreeze_backbone_callback_unfreezes_at_its_epoch",
         "test_gradual_unfreezing_moves_the_backbone_only_after_its_epoch"}),
    "UnfreezeBackbone forgets the backbone's learning rate": (
        [("optimizer, lr=pl_module.hparams.backbone_lr)", "optimizer)")],
        {"test_unfreeze_backbone_callback_unfreezes_at_its_epoch"}),
}


def test_reference_gets_full_marks_and_the_stub_zero(tmp_path, zygote):
    results = TRANSFER.grade(tmp_path / "reference", zygote, TRANSFER.reference)
    assert failed(results) == set() and results.score == TRANSFER.full
    results = TRANSFER.grade(tmp_path / "stub", zygote, TRANSFER.stub)
    assert results.score == 0 and failed(results) == TRANSFER.checks


@pytest.mark.parametrize("mistake", list(WRONG))
def test_each_mistake_is_caught_by_the_checks_meant_for_it(mistake, tmp_path, zygote):
    replacements, expected = WRONG[mistake]
    results = TRANSFER.grade(tmp_path, zygote, TRANSFER.mutate(*replacements))
    assert failed(results) == expected


def test_every_check_catches_at_least_one_mistake():
    caught = set().union(*(expected for _, expected in WRONG.values()))
    assert TRANSFER.checks - caught == set()
