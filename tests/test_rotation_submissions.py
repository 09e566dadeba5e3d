"""Lab 5's checks against deliberately wrong implementations: each mistake is caught by the checks meant for it.

Each mistake runs the checks of the part it breaks (a pytest -k expression): the mistake must fail
exactly the expected ones among them. The reference and the stub run every check.
"""
import pytest
from mutations import LabSources, failed

ROTATION = LabSources("rotation")

SHAPES = "test_rotate_batch_shapes_and_dtypes"
ALIGNED = "test_rotate_batch_labels_match_the_rotations"
HEAD = "test_pretext_head_gives_four_rotation_logits"
LOSS = "test_pretext_loss_is_the_cross_entropy_of_the_rotations"
NO_LABELS = "test_pretext_training_never_uses_the_class_labels"
LEARNS = "test_pretext_training_learns_to_predict_rotations"
FROZEN = "test_linear_probe_freezes_the_backbone"
BITWISE = "test_linear_probe_training_leaves_the_backbone_bitwise_unchanged"
BEATS = "test_rotation_features_beat_random_features_with_few_labels"
HIDDEN_INPUT = "test_rotate_batch_leaves_its_input_alone_and_handles_odd_sizes"
HIDDEN_STATS = "test_linear_probe_forward_in_training_mode_keeps_the_statistics"
ROTATE = "rotate_batch or loss"  # rotate_batch's checks and the pretext loss built on it
PRETEXT = "pretext and not learns"  # RotationPretext's checks, without the long training
PROBE = "linear_probe"

ROT90 = "torch.rot90(x, k, dims=(-2, -1))"

# mistake -> (replacements, the checks that must fail, the checks to run as pytest -k)
WRONG = {
    "turns clockwise": (
        [(ROT90, "torch.rot90(x, -k, dims=(-2, -1))")], {ALIGNED, LOSS, HIDDEN_INPUT}, ROTATE),
    "turns the wrong dimensions": (
        [(ROT90, "torch.rot90(x, k, dims=(1, 2))")],
        {SHAPES, ALIGNED, LOSS, NO_LABELS, LEARNS, HIDDEN_INPUT}, "rotate_batch or pretext"),
    "labels interleaved, images in blocks": (
        [(".repeat_interleave(len(x))", ".repeat(len(x))")], {ALIGNED, LOSS, LEARNS}, "rotate_batch or pretext"),
    "non-square images accepted": (
        [("    if x.shape[-1] != x.shape[-2]:\n", "    if False:\n")], {SHAPES}, "rotate_batch"),
    "the class labels leak into the pretext loss": (
        [("loss = F.cross_entropy(logits, rotations)\n",
          "loss = F.cross_entropy(logits, rotations) + 0.1 * F.cross_entropy(logits, batch[1].repeat(4) % 4)\n")],
        {LOSS, NO_LABELS}, PRETEXT),
    "the pretext head's size written as 64": (
        [("self.head = nn.Linear(self.backbone.num_features, NUM_ROTATIONS)", "self.head = nn.Linear(64, NUM_ROTATIONS)")],
        {HEAD, LOSS}, PRETEXT),
    "rotate_batch overwrites its input": (
        [("    return rotated, rotations\n", "    x.zero_()\n    return rotated, rotations\n")], {LOSS, HIDDEN_INPUT}, ROTATE),
    "the probe trains the backbone": (
        [("        self.backbone.requires_grad_(False)\n", ""),
         ("torch.optim.SGD(self.head.parameters(),", "torch.optim.SGD(self.parameters(),")],
        {FROZEN, BITWISE}, PROBE),
    "train() wakes the frozen batch norm up": (
        [("        self.backbone.eval()\n        ### END SOLUTION\n        return self", "        pass\n        ### END SOLUTION\n        return self")],
        # training never calls this train() (Lightning 2.6 keeps each module's mode), so training stays frozen
        {FROZEN, HIDDEN_STATS}, PROBE),
    "the probe learns a thousand times too slowly": (
        [("lr=self.hparams.lr, momentum=0.9)", "lr=self.hparams.lr / 1000, momentum=0.9)")], {BEATS}, "features"),
}


def test_reference_gets_full_marks_and_the_stub_zero(tmp_path, zygote):
    results = ROTATION.grade(tmp_path / "reference", zygote, ROTATION.reference)
    assert failed(results) == set() and results.score == ROTATION.full
    results = ROTATION.grade(tmp_path / "stub", zygote, ROTATION.stub)
    assert results.score == 0 and failed(results) == ROTATION.checks


@pytest.mark.parametrize("mistake", list(WRONG))
def test_each_mistake_is_caught_by_the_checks_meant_for_it(mistake, tmp_path, zygote):
    replacements, expected, keyword = WRONG[mistake]
    results = ROTATION.grade(tmp_path, zygote, ROTATION.mutate(*replacements), keyword=keyword)
    assert failed(results) == expected


def test_every_check_catches_at_least_one_mistake():
    caught = set().union(*(expected for _, expected, _ in WRONG.values()))
    assert ROTATION.checks - caught == set()
