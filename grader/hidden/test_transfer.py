"""Hidden checks for Lab 4: graded, shown after grades are published, never shipped to students."""

from grader.checks.test_transfer import _train
from grader.kit import expect
from grader.kit.check import check
from grader.kit.modules import changed, learned


@check(points=1,
       hint="mode='gradual' must hand Lightning the UnfreezeBackbone callback (configure_callbacks) with unfreeze_at.")
def test_gradual_unfreezing_moves_the_backbone_only_after_its_epoch(submission):
    """mode="gradual": the backbone stays put while frozen, and learns once unfrozen"""
    _, before, after = _train(submission, "gradual", epochs=4, unfreeze_at=10)
    if changed(before, after, "backbone."):
        raise expect.CheckFailed("gradual, unfreeze_at=10, 4 epochs: the backbone changed while it should be frozen")
    _, before, after = _train(submission, "gradual", epochs=4, unfreeze_at=2)
    if len(learned(before, after, "backbone.")) < 6:
        raise expect.CheckFailed("gradual, unfreeze_at=2, 4 epochs: the backbone did not learn after epoch 2")


@check(points=1,
       hint="last_k unfreezes the last k layers with parameters; everything before them, running statistics "
            "included, must not move.")
def test_last_k_training_moves_only_the_last_layers(submission):
    """mode="last_k", k=2, trained: only the last convolution and its batch norm change"""
    _, before, after = _train(submission, "last_k", epochs=3, k=2)
    moved = changed(before, after, "backbone.")
    allowed = ("backbone.features.8.", "backbone.features.9.")  # the last conv and its batch norm
    if not moved or any(not name.startswith(allowed) for name in moved):
        raise expect.CheckFailed(f"last_k with k=2: expected only the last convolution and batch norm to change, "
                                 f"changed: {moved[:6]}")
