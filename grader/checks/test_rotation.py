"""Checks for Lab 5 (self-supervised rotation pretext) that students can run themselves.

The judge makes its own rotated images for every comparison (``judge_rotations``) and scores
what the worker sends back: rotated batches, losses, logits on held-out images, model states.
"""
import torch
import torch.nn.functional as F

from grader.kit import devices as meta
from grader.kit import expect
from grader.kit.check import check
from grader.kit.convergence import cpu_budget, fit_and_test, offline_data
from grader.kit.expect import random_tensor as _random
from grader.kit.modules import (
    BACKBONE_PARAMETERS,
    BATCHNORMS,
    batch_companions,
    changed,
    depends_on_companions,
    flags,
    modes,
    read,
    require_logits,
    small_backbone,
)
from grader.kit.program import Program, SubmissionError

# The pretext's unlabelled images: the first 100 training images of each digit (their labels unused).
PRETEXT_DATA = {"name": "mnist", "labels_per_class": 100, "batch_size": 64}
PRETEXT_EPOCHS = 3
# The real task: 10 labelled images of each digit.
FEW_LABELS = {"name": "mnist", "labels_per_class": 10, "batch_size": 50}
PROBE_EPOCHS = 20


def judge_rotations(x):
    """The documented result of rotate_batch, made here: blocks of N images turned by k·90°, k = 0..3."""
    turned = [x.rot90(k, (2, 3)) for k in range(4)]
    return torch.cat(turned), torch.arange(4).repeat_interleave(len(x))


def rotate(submission, x):
    got = submission.call("rotate_batch", x)
    rotated, rotations = expect.pair(got, "rotate_batch")
    return expect.tensor(rotated, "rotate_batch's images"), expect.tensor(rotations, "rotate_batch's labels")


@check(points=1,
       hint="torch.cat the four torch.rot90 turns on the last two dimensions; labels from torch.arange, int64, on "
            "x's device; check H == W first and raise ValueError otherwise.")
def test_rotate_batch_shapes_and_dtypes(submission):
    """rotate_batch: (4N, C, H, W) images in x's dtype, (4N,) int64 labels, both on x's device; non-square images
    raise ValueError"""
    for n, c, size, dtype in [(1, 1, 5, torch.float32), (3, 2, 4, torch.float64), (2, 3, 7, torch.float32)]:
        x = _random(n, c, size, size, dtype=dtype)
        rotated, rotations = rotate(submission, x)
        expect.shape(rotated, (4 * n, c, size, size), f"rotate_batch of {tuple(x.shape)} {dtype}: the images")
        if rotated.dtype != dtype:
            raise expect.CheckFailed(f"rotate_batch of {tuple(x.shape)} {dtype}: expected images in {dtype}, got "
                                     f"{expect.describe(rotated)}")
        expect.shape(rotations, (4 * n,), f"rotate_batch of {n} images: the labels")
        if rotations.dtype != torch.int64:
            raise expect.CheckFailed(f"rotate_batch of {n} images: expected int64 labels, got "
                                     f"{expect.describe(rotations)}")
    program = Program()
    rotated_and_labels = program.module.rotate_batch(meta.tensor(program, _random(2, 1, 4, 4)))
    meta.require(submission, program, {name: meta.device(program, rotated_and_labels[i])
                                       for i, name in enumerate(("the images", "the labels"))},
                 what="rotate_batch on meta tensors")
    try:
        submission.call("rotate_batch", _random(2, 1, 4, 6))
    except SubmissionError as err:
        if not str(err).startswith("ValueError"):
            raise expect.CheckFailed(f"rotate_batch of non-square images (2, 1, 4, 6): expected a ValueError, "
                                     f"got {err}") from None
    else:
        raise expect.CheckFailed("rotate_batch of non-square images (2, 1, 4, 6) must raise ValueError (a quarter "
                                 "turn changes their shape)")


@check(points=2,
       hint="Block k of the result is the whole batch turned k times, torch.rot90(x, k, dims=(-2, -1)), and every "
            "label in block k is k; counter-clockwise is rot90's own direction.")
def test_rotate_batch_labels_match_the_rotations(submission):
    """rotate_batch: image k·N + i is x[i] turned k·90° counter-clockwise, labelled k; turning back recovers x"""
    x = _random(3, 2, 5, 5)
    rotated, rotations = rotate(submission, x)
    expected_images, expected_labels = judge_rotations(x)
    expect.shape(rotated, expected_images.shape, "rotate_batch of (3, 2, 5, 5): the images")
    expect.shape(rotations, expected_labels.shape, "rotate_batch of (3, 2, 5, 5): the labels")
    if not torch.equal(rotations, expected_labels):
        raise expect.CheckFailed(f"labels {rotations.tolist()}, expected {expected_labels.tolist()} "
                                 f"(block k of N images is labelled k)")
    for i in range(len(rotated)):
        k, source = int(rotations[i]), i % len(x)
        if not torch.equal(rotated[i].rot90(-k, (1, 2)), x[source]):
            wrong = next((j for j in range(4) if torch.equal(rotated[i], x[source].rot90(j, (1, 2)))), None)
            found = f"it is x[{source}] turned {wrong}·90°" if wrong is not None else "it is no turn of it"
            raise expect.CheckFailed(f"image {i}, labelled {k}: turning it back by {k}·90° does not give x[{source}]; "
                                     f"{found}")
    first = [rotated[k * len(x)] for k in range(4)]
    if any(torch.equal(first[a], first[b]) for a in range(4) for b in range(a + 1, 4)):
        raise expect.CheckFailed("the four rotations of x[0] are not all different")


@check(points=1,
       hint="Size the head from backbone.num_features (never a number written here) to NUM_ROTATIONS outputs.")
def test_pretext_head_gives_four_rotation_logits(submission):
    """RotationPretext: rotation logits (N, 4) from one linear head sized from backbone.num_features"""
    cases = [({"backbone": None}, _random(2, 1, 28, 28)), ({"backbone": small_backbone(7)}, _random(3, 1, 10, 10))]
    require_logits(submission, "RotationPretext", cases, classes=4,
                   name=lambda init, x: f"RotationPretext.forward (rotation logits) on {tuple(x.shape)}")
    program = Program()
    heads = [program.attr(program.module.RotationPretext(**init), "head").state_dict() for init, _ in cases]
    got = submission.run(program, what="RotationPretext's head")
    for (init, _), head in zip(cases, heads):
        backbone = init["backbone"]
        features = 64 if backbone is None else backbone.num_features
        shapes = {name: tuple(t.shape) for name, t in got[head].items()} if type(got[head]) is dict else {}
        if shapes != {"weight": (4, features), "bias": (4,)}:
            raise expect.CheckFailed(f"RotationPretext's head holds {shapes or got[head]}; the handout's head is "
                                     f"one torch.nn.Linear({features}, 4): weight (4, {features}) and a bias (4,)")


@check(points=2,
       hint="pretext_step keeps the batch's images and drops its class labels; the loss is the cross-entropy of the "
            "model's logits on the rotated images against the rotations.")
def test_pretext_loss_is_the_cross_entropy_of_the_rotations(submission):
    """training_step: the cross-entropy of the model's rotation logits on the rotated batch, whatever the labels"""
    x, y = _random(4, 1, 6, 6), torch.tensor([0, 1, 2, 3])
    rotated, rotations = judge_rotations(x)
    program = Program()
    model = program.module.RotationPretext(program.value(small_backbone(5)))
    model.eval()  # batch norm on its running statistics: the same logits in every call
    loss, wrong = model.training_step([x, y], 0), model.training_step([x, torch.tensor([7, 7, 7, 7])], 0)
    logits = model.forward(rotated)
    # a confident model: logits in the thousands, where e^z overflows unless the loss is computed stably
    confident = program.module.RotationPretext(program.value(small_backbone(5)))
    confident.eval()
    program.attr(program.attr(program.attr(confident, "head"), "weight"), "data").mul_(5000.0)
    big_loss, big_logits = confident.training_step([x, y], 0), confident.forward(rotated)
    got = submission.run(program, what="RotationPretext.training_step")
    expected = F.cross_entropy(expect.tensor(got[logits], "forward", shape=(len(rotated), 4), floating=True), rotations)
    expect.close(got[loss], expected, "training_step's loss", "4 images of 6×6, labels [0, 1, 2, 3]", atol=1e-5)
    expected = F.cross_entropy(expect.tensor(got[big_logits], "forward", shape=(len(rotated), 4), floating=True),
                               rotations)
    expect.close(got[big_loss], expected, "training_step's loss", "a head 5000 times larger: logits in the "
                 "thousands (compute the cross-entropy stably, e.g. F.cross_entropy)", rtol=1e-4)
    expect.close(got[wrong], expect.tensor(got[loss], "training_step's loss", shape=(), floating=True),
                 "training_step's loss", "the same images with every label 7", atol=0)


def fit_pretext(submission, data, epochs, reference_cpu, **options):
    """Train a RotationPretext in the worker; return (pretext loss before, after, pretext accuracy on the judge's
    rotated held-out images, the fit's reply)."""
    test_x, _ = offline_data("mnist").split("test")
    rotated, rotations = judge_rotations(test_x)
    got = submission.fit("RotationPretext", data=data, max_epochs=epochs, probes={"test": rotated},
                         cpu_seconds=cpu_budget(reference_cpu), **options)
    before, after = (expect.tensor(got[when].get("test"), f"RotationPretext.forward {when} training",
                                   shape=(len(rotated), 4), floating=True, finite=True) for when in ("before", "after"))
    accuracy = (after.argmax(dim=1) == rotations).float().mean().item()
    return F.cross_entropy(before, rotations).item(), F.cross_entropy(after, rotations).item(), accuracy, got


@check(points=2,
       hint="The pretext's only labels are the rotations it makes itself: never read the batch's class labels.")
def test_pretext_training_never_uses_the_class_labels(submission):
    """Trained on the same images with every class label scrambled, RotationPretext ends bitwise the same"""
    small = {"name": "mnist", "labels_per_class": 10, "batch_size": 50}
    _, _, _, right = fit_pretext(submission, small, 1, reference_cpu=1.2, states=True)
    _, _, _, scrambled = fit_pretext(submission, {**small, "random_labels": True}, 1, reference_cpu=1.2, states=True)
    if not changed(right["state_before"], right["state_after"], ""):
        raise expect.CheckFailed("one epoch of pretext training changed nothing in the model")
    different = changed(right["state_after"], scrambled["state_after"], "")
    if different:
        raise expect.CheckFailed(f"with the class labels scrambled, training ended elsewhere: {different[:3]} differ; "
                                 "the pretext must not use the class labels")


@check(points=3,
       hint="If the loss does not fall, check that the labels you train on are the rotations and line up with the "
            "rotated images (block k labelled k).")
def test_pretext_training_learns_to_predict_rotations(submission):
    """3 epochs on 1,000 unlabelled images: pretext loss falls by a quarter; held-out pretext accuracy ≥ 0.6"""
    before, after, accuracy, _ = fit_pretext(submission, PRETEXT_DATA, PRETEXT_EPOCHS, reference_cpu=8.2)
    if not after < 0.75 * before or accuracy < 0.6:
        raise expect.CheckFailed(f"pretext loss on held-out rotated images {before:.3f} → {after:.3f}, pretext "
                                 f"accuracy {accuracy:.3f}; expected the loss below {0.75 * before:.3f} and the "
                                 f"accuracy ≥ 0.6 (chance: 0.25)")


@check(points=2,
       hint="Freeze the backbone in __init__ (requires_grad_(False), eval()); train() must put it back in eval mode; "
            "the optimizer gets the head's parameters only.")
def test_linear_probe_freezes_the_backbone(submission):
    """LinearProbe: the backbone frozen (no gradients, eval mode from the start and after train()); SGD on the head"""
    program = Program()
    model = program.module.LinearProbe(program.value(small_backbone()), num_classes=3, lr=0.07)
    built = modes(program, program.attr(model, "backbone"), BATCHNORMS)
    built["the backbone"] = program.attr(program.attr(model, "backbone"), "training")
    returned = model.train()
    modes_after = program.attr(program.attr(model, "backbone"), "training")
    refs = flags(program, model, ["backbone." + name for name in BACKBONE_PARAMETERS])
    training = modes(program, program.attr(model, "backbone"), BATCHNORMS)
    head = program.attr(program.attr(model, "head"), "training")
    optimizer = model.configure_optimizers()
    groups = program.attr(optimizer, "param_groups")
    kind = program.attr(program.attr(optimizer, "__class__"), "__name__")
    defaults = program.attr(optimizer, "defaults")
    logits = model.forward(_random(2, 1, 9, 9))
    companions = batch_companions(program, model)
    got = submission.run(program, what="LinearProbe")
    if any(read(got, built).values()):
        raise expect.CheckFailed(f"LinearProbe(backbone): right after construction, in training mode: "
                                 f"{[name for name, flag in read(got, built).items() if flag]}; a frozen backbone is "
                                 "in eval mode from the start (backbone.eval())")
    if got[modes_after] is not False:
        raise expect.CheckFailed("after model.train(), LinearProbe.backbone is in training mode: put the whole "
                                 "backbone back in eval mode")
    if got[returned] != {"$object": "LinearProbe"}:
        raise expect.CheckFailed(f"LinearProbe.train() returned {got[returned]!r}: like torch's Module.train, it "
                                 "returns the model itself (self)")
    settings = {name: got[defaults].get(name) for name in ("lr", "momentum", "nesterov", "weight_decay")} \
        if type(got[defaults]) is dict else got[defaults]
    if got[kind] != "SGD" or settings != {"lr": 0.07, "momentum": 0.9, "nesterov": False, "weight_decay": 0}:
        raise expect.CheckFailed(f"LinearProbe(lr=0.07).configure_optimizers gave {got[kind]!r} with {settings}; "
                                 "the handout asks for SGD with momentum 0.9 at lr (no Nesterov, no weight decay)")
    learning = [name for name, flag in read(got, refs).items() if flag]
    if learning:
        raise expect.CheckFailed(f"backbone parameters still requiring a gradient: {learning}")
    if any(read(got, training).values()) or got[head] is not True:
        raise expect.CheckFailed(f"after model.train(): backbone batch norm in training mode {read(got, training)}, "
                                 f"head in training mode {got[head]}; expected the backbone in eval mode, the head "
                                 "training")
    if depends_on_companions(got, companions, "LinearProbe.forward after train()"):
        raise expect.CheckFailed("after model.train(), an image's logits depend on the other images of its batch: the "
                                 "frozen backbone's batch norm still normalises with batch statistics")
    if not isinstance(got[groups], list) or sum(len(g["params"]) for g in got[groups]) != 2:
        raise expect.CheckFailed("configure_optimizers must return an optimizer over the head's 2 tensors only")
    expect.shape(got[logits], (2, 3), "LinearProbe.forward (logits)")


def fit_probe(submission, backbone, states=False):
    """Train a LinearProbe on 10 labels per digit; return (held-out accuracy, the fit's reply)."""
    return fit_and_test(submission, "LinearProbe", FEW_LABELS, PROBE_EPOCHS, {"backbone": backbone} if backbone else {},
                        reference_cpu=3.4, states=states)


@check(points=2,
       hint="A frozen backbone must not move at all: not its weights, and not its batch-norm running statistics "
            "(keep it in eval mode, also after model.train()).")
def test_linear_probe_training_leaves_the_backbone_bitwise_unchanged(submission):
    """LinearProbe on the rotation backbone, trained: every backbone tensor bitwise unchanged, the head changed"""
    _, got = fit_probe(submission, "rotation", states=True)
    moved = changed(got["state_before"], got["state_after"], "backbone.")
    if moved:
        raise expect.CheckFailed(f"the backbone changed during training: {moved[:4]}")
    if not changed(got["state_before"], got["state_after"], "head."):
        raise expect.CheckFailed("the head did not change during training")


@check(points=3,
       hint="If both probes are weak, check that only the head learns and that forward feeds the backbone's features "
            "to the head; if they are close, check that the backbone is not re-initialised.")
def test_rotation_features_beat_random_features_with_few_labels(submission):
    """10 labels per digit: a linear probe on rotation features ≥ 0.35 and ≥ 0.1 above one on random features"""
    rotation, _ = fit_probe(submission, "rotation")
    random, _ = fit_probe(submission, None)
    if rotation < 0.35 or rotation - random < 0.1:
        raise expect.CheckFailed(f"held-out accuracy of the linear probe: on rotation features {rotation:.3f}, on "
                                 f"random features {random:.3f}; expected ≥ 0.35 and at least 0.1 above random")


def _random_features_state(call, pretrained_keys):
    """The state of the backbone a probe_accuracy call got, if it is a fresh one of the pretrained's architecture:
    None for backbone=None (LinearProbe then makes its own, after probe_accuracy seeded), else its state_dict."""
    backbone = call.get("backbone")
    if backbone is None:
        return None
    state = backbone.get("state") if type(backbone) is dict else None
    if type(state) is not dict or sorted(state) != pretrained_keys:
        raise expect.CheckFailed(f"ssl_experiment probed the random features on {backbone!r}; expected a freshly "
                                 "initialised DigitBackbone (the pretext's architecture)")
    return state


@check(points=1,
       hint="ssl_experiment: pretrain(pretext_images, seed=seed, accelerator=accelerator); then probe_accuracy on "
            "the pretext's backbone, and on a fresh DigitBackbone made right after torch.manual_seed(seed); pass "
            "labels_per_class, seed and accelerator on; return {labels_per_class: {'rotation features': ..., 'random "
            "features': ...}}.")
def test_ssl_experiment_probes_pretrained_and_seeded_random_features(submission):
    """ssl_experiment: the pretext trained, both backbones probed with its arguments, the random one seeded"""
    program = Program()
    pretext = program.module.RotationPretext()
    pretrained = program.attr(pretext, "backbone")
    pretrained_state = pretrained.state_dict()
    pretrains = program.stand_in(None, "pretrain", returns=[(pretext, 0.93)])
    accuracies = [0.61, 0.23, 0.62, 0.24, 0.63, 0.25]  # distinct: a value names its call
    probes = program.stand_in(None, "probe_accuracy", returns=accuracies, known={"pretrained": pretrained})
    seeds = (3, 3, 4)  # the same seed twice: the same random features; another seed: others
    tables = [program.module.ssl_experiment(labels_per_class=4, pretext_images=30, seed=seed, accelerator="auto")
              for seed in seeds]
    pretrained_calls, probe_calls = pretrains.recorded(), probes.recorded()
    got = submission.run(program, what="ssl_experiment (pretrain and probe_accuracy stood in for: nothing trained)")
    pretrained_calls = got[pretrained_calls] if type(got[pretrained_calls]) is list else []
    probe_calls = got[probe_calls] if type(got[probe_calls]) is list else []
    if len(pretrained_calls) != 3:
        raise expect.CheckFailed(f"ssl_experiment called pretrain {len(pretrained_calls) // 3} time(s) per run; "
                                 "expected once: the rotation features come from a trained pretext")
    for seed, call in zip(seeds, pretrained_calls):
        passed = {name: call.get(name) for name in ("pretext_images", "seed", "accelerator")}
        if passed != {"pretext_images": 30, "seed": seed, "accelerator": "auto"}:
            raise expect.CheckFailed(f"ssl_experiment(pretext_images=30, seed={seed}, accelerator='auto') called "
                                     f"pretrain with {passed}: pass its arguments on")
    if len(probe_calls) != 6:
        raise expect.CheckFailed(f"ssl_experiment called probe_accuracy {len(probe_calls) / 3:g} times per run; "
                                 "expected twice: once on the pretext's backbone, once on random features")
    keys = sorted(got[pretrained_state])
    randoms = []
    for run, seed in enumerate(seeds):
        calls = probe_calls[2 * run: 2 * run + 2]
        for call in calls:
            passed = {name: call.get(name) for name in ("labels_per_class", "seed", "accelerator")}
            if passed != {"labels_per_class": 4, "seed": seed, "accelerator": "auto"}:
                raise expect.CheckFailed(f"ssl_experiment(labels_per_class=4, seed={seed}, accelerator='auto') "
                                         f"called probe_accuracy with {passed}: pass its arguments on")
        rotation = [n for n, call in enumerate(calls) if call.get("backbone") == {"$known": "pretrained"}]
        if len(rotation) != 1:
            raise expect.CheckFailed("ssl_experiment must probe the backbone of the pretext that pretrain returned "
                                     f"once, and random features once; it probed the pretext's {len(rotation)} times")
        random = 1 - rotation[0]
        randoms.append(_random_features_state(calls[random], keys))
        expected = {"4": {"rotation features": accuracies[2 * run + rotation[0]],
                          "random features": accuracies[2 * run + random]}}
        if got[tables[run]] != expected:
            raise expect.CheckFailed(f"ssl_experiment(labels_per_class=4) returned {got[tables[run]]!r}; from the "
                                     f"accuracies probe_accuracy gave, expected {expected!r}")
    if randoms[0] is not None:
        same = [all(torch.equal(a[k], b[k]) for k in keys) if b is not None else False
                for a, b in ((randoms[0], randoms[1]), (randoms[0], randoms[2]),
                             (randoms[0], got[pretrained_state]))]
        if not same[0]:
            raise expect.CheckFailed("ssl_experiment run twice with seed=3 probed different random features: seed "
                                     "the random backbone (torch.manual_seed(seed) before making it)")
        if same[1] or same[2]:
            raise expect.CheckFailed("ssl_experiment's random features are the same for seed 3 and seed 4, or are "
                                     "the pretext's: make a fresh DigitBackbone after torch.manual_seed(seed)")


@check(points=1,
       hint="Every stage rotates its batch and scores the rotation labels (never the class labels) in its own "
            "figures; LinearProbe's stages score the class labels, each in its own figures.")
def test_every_stage_logs_its_own_figures(submission):
    """RotationPretext and LinearProbe: each stage (train, validation, test) logs its own loss and accuracy"""
    from grader.kit.lifecycle import require_stages

    x, y = _random(6, 1, 28, 28, seed=14), torch.arange(6) % 10
    require_stages(submission, "RotationPretext", {}, x, y, judged=judge_rotations(x),
                 what="RotationPretext (figures of the rotated batch and its rotation labels)")
    require_stages(submission, "LinearProbe", {}, x, y)
