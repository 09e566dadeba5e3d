"""Checks for Lab 4 (transfer learning) that students can run themselves.

The submission's models live in the worker; a ``Program`` builds them there and reads back
flags (requires_grad, training) and the optimizer's groups, and ``fit_and_score`` trains them
with the trainer factory and brings back their state before and after, which is compared here.
"""
import torch

from grader.kit import expect
from grader.kit.check import check
from grader.kit.convergence import fit_and_test
from grader.kit.expect import random_tensor as _random
from grader.kit.modules import (
    BACKBONE_PARAMETERS,
    BATCHNORMS,
    batch_companions,
    changed,
    depends_on_companions,
    flags,
    learned,
    modes,
    read,
    require_logits,
    small_backbone,
)
from grader.kit.program import Program

# The lab's target task: digits 5–9 with 10 labelled images each (the shipped backbone learned 0–4).
FEW_LABELS = {"name": "mnist", "classes": [5, 6, 7, 8, 9], "labels_per_class": 10, "batch_size": 25}
EPOCHS = 10
REFERENCE_CPU = 1.0  # the reference's slowest training here (benchmarks/request_usage.py)


@check(points=1,
       hint="freeze: switch requires_grad off for every parameter and put every batch-norm layer (_BatchNorm) in "
            "eval mode; unfreeze: switch requires_grad back on and put the whole module in training mode.")
def test_freeze_and_unfreeze(submission):
    """freeze stops every parameter's gradient and puts batch norm in eval mode; unfreeze undoes both"""
    program = Program()
    module = program.value(small_backbone())
    module.eval()  # unfreeze must wake every layer, not only batch norm
    program.module.freeze(module)
    frozen, asleep = flags(program, module, BACKBONE_PARAMETERS), modes(program, module, BATCHNORMS)
    program.module.unfreeze(module)
    unfrozen, awake = flags(program, module, BACKBONE_PARAMETERS), modes(program, module, ["0", "3", *BATCHNORMS, ""])
    head = program.value(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)))  # any _BatchNorm
    program.module.freeze(head)
    asleep["a BatchNorm1d"] = program.attr(head[1], "training")
    got = submission.run(program, what="freeze / unfreeze")
    if any(read(got, frozen).values()):
        raise expect.CheckFailed(f"after freeze, still requiring a gradient: "
                                 f"{[n for n, f in read(got, frozen).items() if f]}")
    if any(read(got, asleep).values()):
        raise expect.CheckFailed(f"after freeze, a batch-norm layer is still in training mode: {read(got, asleep)}; "
                                 "it would keep updating its running statistics (every _BatchNorm: 1d, 2d, 3d)")
    if not all(read(got, unfrozen).values()) or not all(read(got, awake).values()):
        raise expect.CheckFailed("after unfreeze, every parameter must require a gradient and every layer (batch "
                                 "norm included) be in training mode")


@check(points=1, hint="Size the head from backbone.num_features; do not write 64.")
def test_logits_shape_and_feature_size_read_from_the_backbone(submission):
    """TransferClassifier: (N, num_classes) logits, with the head sized from backbone.num_features"""
    cases = [({"backbone": backbone, "num_classes": classes}, x) for backbone, classes, x in [
        ("digits04", 5, _random(4, 1, 28, 28)), (small_backbone(7), 3, _random(2, 1, 12, 12)),
        (small_backbone(11), 4, _random(1, 1, 10, 10))]]
    require_logits(submission, "TransferClassifier", cases, name=lambda init, x: (
        f"TransferClassifier on a backbone of {getattr(init['backbone'], 'num_features', 64)} features, "
        f"num_classes={init['num_classes']}"))


def optimizer_groups(submission, init):
    """[(lr, [parameter shapes])] of the model's optimizer, and its parameters' requires_grad by name.

    Fails unless the optimizer is the handout's: plain SGD with momentum 0.9 in every group.
    """
    program = Program()
    model = program.module.TransferClassifier(**init)
    optimizer = model.configure_optimizers()
    kind = program.attr(program.attr(optimizer, "__class__"), "__name__")
    groups = program.attr(optimizer, "param_groups")
    named = model.named_parameters()
    got = submission.run(program, what="TransferClassifier.configure_optimizers")
    if not isinstance(got[groups], list) or not all(
            type(g) is dict and type(g.get("params")) is list and all(type(p) is torch.Tensor for p in g["params"])
            for g in got[groups]):
        raise expect.CheckFailed("configure_optimizers must return a torch.optim optimizer")
    settings = [{name: g.get(name) for name in ("momentum", "nesterov", "weight_decay", "dampening")}
                for g in got[groups]]
    if got[kind] != "SGD" or any(s != {"momentum": 0.9, "nesterov": False, "weight_decay": 0, "dampening": 0}
                                  for s in settings):
        raise expect.CheckFailed(f"{init['mode']}: configure_optimizers gave {got[kind]!r} with {settings}; the "
                                 "handout asks for torch.optim.SGD with momentum 0.9 (no weight decay, no Nesterov)")
    found = [(expect.number(g.get("lr"), "a group's lr"), [tuple(p.shape) for p in g["params"]]) for g in got[groups]]
    if type(got[named]) is not list or not all(type(pair) is list and len(pair) == 2 for pair in got[named]):
        raise expect.CheckFailed("named_parameters() did not give (name, parameter) pairs")
    return found, [name for name, _ in got[named]]


def _head_shapes(classes=5, features=64):
    return [(classes, features), (classes,)]


@check(points=2,
       hint="Two parameter groups: [{'params': head parameters, 'lr': lr}, {'params': trainable backbone parameters, "
            "'lr': backbone_lr}]; in linear-probe mode the backbone group has nothing to hold, so leave it out; "
            "scratch trains everything at lr.")
def test_optimizer_holds_trainable_parameters_in_their_own_groups(submission):
    """configure_optimizers: SGD; probe and gradual — the head only; fine-tune — backbone at backbone_lr; scratch — lr"""
    for mode in ("linear_probe", "gradual"):
        groups, _ = optimizer_groups(submission, {"mode": mode, "lr": 0.07})
        if groups != [(0.07, _head_shapes())]:
            raise expect.CheckFailed(f"{mode}: expected one group, the head's 2 tensors at lr 0.07 (the backbone "
                                     f"frozen from the start); got {[(lr, len(p)) for lr, p in groups]} "
                                     "(lr, number of tensors)")
    groups, _ = optimizer_groups(submission, {"mode": "fine_tune", "lr": 0.07, "backbone_lr": 0.003})
    lrs = sorted(lr for lr, _ in groups)
    backbone = [shapes for lr, shapes in groups if lr == 0.003]
    if lrs != [0.003, 0.07] or len(backbone) != 1 or len(backbone[0]) != 9:
        raise expect.CheckFailed(f"fine-tune: expected the head at lr 0.07 and the backbone's 9 tensors in their own "
                                 f"group at backbone_lr 0.003; got {[(lr, len(p)) for lr, p in groups]}")
    groups, _ = optimizer_groups(submission, {"mode": "scratch", "lr": 0.07, "backbone_lr": 0.003})
    if {lr for lr, _ in groups} != {0.07} or sum(len(shapes) for _, shapes in groups) != 11:
        raise expect.CheckFailed(f"scratch: expected all 11 tensors (head and backbone) at lr 0.07, backbone_lr unused; "
                                 f"got {[(lr, len(p)) for lr, p in groups]} (lr, number of tensors)")


@check(points=1,
       hint="layers_with_parameters(backbone)[-k:] are the last k layers; freeze everything, then unfreeze those.")
def test_last_k_freezes_exactly_what_it_says(submission):
    """mode="last_k": exactly the last k layers with parameters learn, and only they are in the optimizer"""
    for k, trainable in [(1, ["backbone.4.weight", "backbone.4.bias"]),
                         (2, ["backbone.3.weight", "backbone.3.bias", "backbone.4.weight", "backbone.4.bias"])]:
        program = Program()
        model = program.module.TransferClassifier(program.value(small_backbone()), num_classes=3, mode="last_k", k=k)
        refs = flags(program, model, ["backbone." + n for n in BACKBONE_PARAMETERS])
        groups = program.attr(model.configure_optimizers(), "param_groups")
        got = submission.run(program, what=f"TransferClassifier(mode='last_k', k={k})")
        learning = sorted(name for name, flag in read(got, refs).items() if flag)
        if learning != sorted(trainable):
            raise expect.CheckFailed(f"last_k with k={k}: expected only {trainable} to require a gradient, got "
                                     f"{learning}")
        counted = sum(len(group["params"]) for group in got[groups])
        if counted != len(trainable) + 2:
            raise expect.CheckFailed(f"last_k with k={k}: the optimizer holds {counted} tensors, expected "
                                     f"{len(trainable) + 2} (the head's and the unfrozen layers')")


@check(points=1,
       hint="model.train() puts every layer in training mode (the check calls it, as training loops do); override "
            "train() so that batch-norm layers whose parameters are all frozen go straight back to eval mode.")
def test_frozen_batch_norm_stays_in_eval_mode_after_train(submission):
    """TransferClassifier.train(): the head and learning layers train, frozen batch norm stays in eval mode"""
    program = Program()
    model = program.module.TransferClassifier(program.value(small_backbone()), num_classes=3, mode="linear_probe")
    model.train()
    training = modes(program, program.attr(model, "backbone"), BATCHNORMS)
    head = program.attr(program.attr(model, "head"), "training")
    companions = batch_companions(program, model)
    got = submission.run(program, what="TransferClassifier.train()")
    if any(read(got, training).values()) or got[head] is not True:
        raise expect.CheckFailed(f"after model.train() in linear-probe mode: batch norm in training mode "
                                 f"{read(got, training)}, head in training mode {got[head]}; expected the frozen "
                                 f"batch norm in eval mode and the head training")
    if depends_on_companions(got, companions, "TransferClassifier.forward after train()"):
        raise expect.CheckFailed("after model.train() in linear-probe mode, an image's logits depend on the other "
                                 "images of its batch: the frozen batch norm still normalises with batch statistics")
    # Only the frozen layers stay in eval mode: what learns trains, and eval() still means eval.
    for mode, expected in [("fine_tune", {"1": True, "4": True}), ("last_k", {"1": False, "4": True}),
                           ("half-frozen", {"1": True, "4": True})]:
        program = Program()
        model = program.module.TransferClassifier(program.value(small_backbone()), num_classes=3,
                                                  mode="fine_tune" if mode == "half-frozen" else mode, k=1)
        if mode == "half-frozen":  # a batch norm with a parameter that still learns is not frozen
            program.attr(program.attr(program.attr(model, "backbone"), "1"), "weight").requires_grad_(False)
        model.train()
        training = modes(program, program.attr(model, "backbone"), BATCHNORMS)
        model.eval()
        asleep = [*modes(program, model, ["", "head"]).values(),
                  *modes(program, program.attr(model, "backbone"), BATCHNORMS).values()]
        got = submission.run(program, what=f"TransferClassifier(mode={mode!r}).train()")
        if read(got, training) != expected:
            raise expect.CheckFailed(f"after model.train() in {mode} mode (k=1): batch norm in training mode "
                                     f"{read(got, training)}, expected {expected}: only frozen batch norm stays in "
                                     "eval")
        if any(got[ref] is not False for ref in asleep):
            raise expect.CheckFailed(f"after model.eval() in {mode} mode, a layer is still in training mode: train(mode)"
                                     " must pass mode on")


def _train(submission, mode, epochs=EPOCHS, **init):
    """Train in the worker; return (held-out accuracy, state before, state after)."""
    accuracy, got = fit_and_test(submission, "TransferClassifier", FEW_LABELS, epochs, {"mode": mode, **init},
                                 REFERENCE_CPU, states=True, what=f"{mode}: TransferClassifier.forward after training")
    return accuracy, got["state_before"], got["state_after"]


@check(points=2,
       hint="A linear probe trains the head only: the frozen backbone must not move — not its weights and not its "
            "batch-norm running statistics (frozen batch norm stays in eval mode).")
def test_linear_probe_training_leaves_the_backbone_bitwise_unchanged(submission):
    """Linear probe, trained 10 epochs: every backbone tensor (running statistics too) bitwise unchanged, head changed"""
    _, before, after = _train(submission, "linear_probe")
    moved = changed(before, after, "backbone.")
    if moved:
        raise expect.CheckFailed(f"linear probe: the backbone changed during training: {moved[:4]}")
    if not changed(before, after, "head."):
        raise expect.CheckFailed("linear probe: the head did not change during training")


@check(points=2, hint="Fine-tuning starts from the pretrained backbone (never re-initialise it) and moves it slowly.")
def test_fine_tune_moves_the_pretrained_backbone(submission):
    """Fine-tune: starts from the shipped pretrained weights, and training changes the backbone"""
    from datamodules.pretrained import shipped_state

    _, before, after = _train(submission, "fine_tune", epochs=3)
    pretrained = {f"backbone.{name}": t for name, t in shipped_state().items()}
    different = sorted(name for name, t in pretrained.items() if not torch.equal(before.get(name, torch.empty(0)), t))
    if different:
        raise expect.CheckFailed(f"fine-tune: the backbone does not start from the pretrained weights: {different[:3]}")
    if len(learned(before, after, "backbone.")) < 6:
        raise expect.CheckFailed("fine-tune: training left the backbone's weights (almost) unchanged: does its "
                                 "gradient reach them?")


@check(points=3,
       hint="With 10 labels per class the pretrained features should carry a linear probe far past training from "
            "scratch; if the probe is weak, check that the backbone is frozen and loaded, not re-initialised.")
def test_linear_probe_beats_training_from_scratch_with_few_labels(submission):
    """10 labels per class: linear probe ≥ 0.65 held-out accuracy and ≥ 0.15 above training from scratch"""
    probe, _, _ = _train(submission, "linear_probe")
    scratch, _, _ = _train(submission, "scratch")
    if probe < 0.65 or probe - scratch < 0.15:
        raise expect.CheckFailed(f"held-out accuracy: linear probe {probe:.3f}, scratch {scratch:.3f}; expected the "
                                 f"probe ≥ 0.65 and at least 0.15 above scratch")


@check(points=1,
       hint="At the start of epoch at_epoch, and only then, unfreeze the backbone with this lab's unfreeze and add "
            "its parameters to the running optimizer with BaseFinetuning's helper, at the backbone's learning rate.")
def test_unfreeze_backbone_callback_unfreezes_at_its_epoch(submission):
    """UnfreezeBackbone: frozen before training; at epoch at_epoch the backbone joins the optimizer at backbone_lr"""
    program = Program()
    model = program.module.TransferClassifier(program.value(small_backbone()), num_classes=3, mode="fine_tune",
                                              backbone_lr=0.002)
    callback = program.module.UnfreezeBackbone(2)
    callback.freeze_before_training(model)
    frozen = flags(program, model, ["backbone." + n for n in BACKBONE_PARAMETERS])
    asleep = modes(program, program.attr(model, "backbone"), BATCHNORMS)
    optimizer = model.configure_optimizers()
    sizes = []
    for epoch in range(4):
        callback.finetune_function(model, epoch, optimizer)
        sizes.append(program.call(program.attr(optimizer, "param_groups"), "__len__"))
    groups = program.attr(optimizer, "param_groups")
    awake = modes(program, program.attr(model, "backbone"), BATCHNORMS)
    got = submission.run(program, what="UnfreezeBackbone")
    if any(read(got, frozen).values()):
        raise expect.CheckFailed("UnfreezeBackbone.freeze_before_training left backbone parameters trainable")
    if any(got[ref] is not False for ref in asleep.values()):
        raise expect.CheckFailed("UnfreezeBackbone.freeze_before_training left batch norm in training mode: freeze "
                                 "with this lab's freeze (BaseFinetuning.freeze keeps batch norm's mode)")
    counts = [got[s] for s in sizes]
    if counts != [1, 1, 2, 2]:
        raise expect.CheckFailed(f"number of parameter groups after epochs 0–3 with at_epoch=2: {counts}, expected "
                                 "[1, 1, 2, 2] (the backbone added once, at epoch 2)")
    last = got[groups][-1] if type(got[groups]) is list and got[groups] else None
    if type(last) is not dict or type(last.get("params")) is not list:
        raise expect.CheckFailed("the optimizer's param_groups are not a list of groups with their params")
    lr = expect.number(last.get("lr"), "the added group's learning rate")
    if any(got[ref] is not True for ref in awake.values()):
        raise expect.CheckFailed("after UnfreezeBackbone unfroze the backbone, its batch norm is still in eval mode: "
                                 "unfreeze it with this lab's unfreeze (BaseFinetuning's helpers leave the mode alone)")
    if not abs(lr - 0.002) <= 1e-12 or len(last["params"]) != len(BACKBONE_PARAMETERS):
        raise expect.CheckFailed(f"the added group holds {len(last['params'])} tensors at lr {last['lr']}; expected "
                                 f"the backbone's {len(BACKBONE_PARAMETERS)} at backbone_lr 0.002")



REGIMES = ("scratch", "linear_probe", "fine_tune")  # the handout's table, in its order


@check(points=1,
       hint="compare_regimes: for every budget and every regime in REGIMES, one train_and_test(regime, budget, "
            "max_epochs, seed, accelerator), passing on the arguments it was given; return {budget: {regime: "
            "accuracy}}.")
def test_compare_regimes_runs_every_regime_at_every_budget(submission):
    """compare_regimes: each regime once at each budget, its arguments passed on, as {budget: {regime: accuracy}}"""
    accuracies = [round(0.31 + number / 100, 2) for number in range(12)]  # distinct: a value names its call
    program = Program()
    runs = program.stand_in(None, "train_and_test", returns=accuracies)
    table = program.module.compare_regimes(budgets=(3, 7), max_epochs=2, seed=11, accelerator="auto")
    calls = runs.recorded()
    got = submission.run(program, what="compare_regimes (train_and_test stood in for: nothing was trained)")
    calls = got[calls] if type(got[calls]) is list else []
    ran = sorted((call.get("mode"), call.get("labels_per_class")) for call in calls)
    wanted = sorted((regime, budget) for budget in (3, 7) for regime in REGIMES)
    if ran != wanted:
        raise expect.CheckFailed(f"compare_regimes(budgets=(3, 7)) called train_and_test for (regime, labels per "
                                 f"class) {ran}; expected each of {wanted} once")
    for call in calls:
        passed = {name: call.get(name) for name in ("max_epochs", "seed", "accelerator")}
        if passed != {"max_epochs": 2, "seed": 11, "accelerator": "auto"}:
            raise expect.CheckFailed(f"compare_regimes(max_epochs=2, seed=11, accelerator='auto') called "
                                     f"train_and_test with {passed}: pass its arguments on")
    expected = {str(budget): {} for budget in (3, 7)}
    for call, accuracy in zip(calls, accuracies):
        expected[str(call["labels_per_class"])][call["mode"]] = accuracy
    if got[table] != expected:
        raise expect.CheckFailed(f"compare_regimes returned {got[table]!r}; from the accuracies train_and_test "
                                 f"gave, expected {{budget: {{regime: accuracy}}}} = {expected!r}")


@check(points=1, hint="The given hooks: each stage (train, validation, test) updates and logs its own figures.")
def test_every_stage_logs_its_own_figures(submission):
    """TransferClassifier: each stage (train, validation, test) logs its own loss and accuracy"""
    from grader.kit.lifecycle import require_stages

    x, y = _random(6, 1, 9, 9, seed=14), torch.arange(6) % 3
    require_stages(submission, "TransferClassifier", {"backbone": small_backbone(), "num_classes": 3,
                                                    "mode": "fine_tune"}, x, y)


@check(points=1,
       hint="scratch: the same backbone (the one given), re-initialised with reinitialise — not the pretrained "
            "weights, and not another network.")
def test_scratch_reinitialises_the_given_backbone(submission):
    """mode="scratch": the given backbone, re-initialised (for the shipped one: none of its pretrained weights)"""
    from datamodules.pretrained import shipped_state

    given = small_backbone()
    program = Program()
    states = [program.attr(program.module.TransferClassifier(program.value(backbone), num_classes=3, mode="scratch"),
                           "backbone").state_dict() for backbone in (given, "digits04")]
    got = submission.run(program, what="TransferClassifier(mode='scratch')")
    for state, original in zip(states, (given.state_dict(), shipped_state())):
        state = got[state]
        if type(state) is not dict or sorted(state) != sorted(original):
            raise expect.CheckFailed("scratch: the backbone's state_dict has other keys than the backbone given: keep "
                                     "the network, re-initialise its weights")
        kept = [name for name, t in original.items() if t.ndim > 1 and torch.equal(state[name], t)]  # conv weights
        if kept:
            raise expect.CheckFailed(f"scratch: the backbone kept its given weights {kept[:3]}: reinitialise it")
