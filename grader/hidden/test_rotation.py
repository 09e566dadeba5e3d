"""Hidden checks for Lab 5: graded, shown after grades are published, never shipped to students."""
import torch

from grader.checks.test_rotation import judge_rotations
from grader.kit import expect
from grader.kit.check import check
from grader.kit.expect import random_tensor as _random
from grader.kit.modules import small_backbone
from grader.kit.program import Program


@check(points=1, hint="Build the result from x without writing into x (no in-place operations on the input).")
def test_rotate_batch_leaves_its_input_alone_and_handles_odd_sizes(submission):
    """rotate_batch on a batch of one 3×3 image and on 16-channel 2×2 images: right result, input untouched"""
    for x in (_random(1, 1, 3, 3, seed=1), _random(5, 16, 2, 2, seed=2)):
        program = Program()
        sent = program.value(x)
        result = program.module.rotate_batch(sent)
        got = submission.run(program, what="rotate_batch")
        rotated, _ = judge_rotations(x)
        expect.close(expect.pair(got[result], "rotate_batch")[0], rotated, "rotate_batch's images",
                     f"x of shape {tuple(x.shape)}", atol=0, rtol=0)
        expect.close(got[sent], x, "x after rotate_batch", f"x of shape {tuple(x.shape)}", atol=0, rtol=0)


@check(points=1,
       hint="In training mode too, the frozen backbone must normalise with its running statistics and never update "
            "them.")
def test_linear_probe_forward_in_training_mode_keeps_the_statistics(submission):
    """LinearProbe after train(): forward passes leave the backbone's batch-norm running statistics untouched"""
    backbone = small_backbone()
    program = Program()
    model = program.module.LinearProbe(program.value(backbone), num_classes=4)
    model.train()
    model.forward(_random(8, 1, 9, 9, scale=3.0))
    model.forward(_random(8, 1, 9, 9, seed=1, scale=3.0))
    state = program.attr(model, "backbone").state_dict()
    got = submission.run(program, what="LinearProbe.forward")
    if type(got[state]) is not dict or sorted(got[state]) != sorted(backbone.state_dict()):
        raise expect.CheckFailed("LinearProbe(backbone).backbone is not the backbone it was given (its state_dict "
                                 "has other keys)")
    for name, tensor in backbone.state_dict().items():
        if not isinstance(got[state][name], torch.Tensor) or not torch.equal(got[state][name], tensor):
            raise expect.CheckFailed(f"two forward passes in training mode changed backbone {name}")
