"""The ready-made rules and the labs that use them (``LAB_RULES``), ``lab_rules`` and ``check`` (``scan`` and
then the lab's scoped rules)."""
from __future__ import annotations

import dataclasses

from grader.judge.policy.integrity import scan
from grader.judge.policy.scoped import Forbidden, Rule
from grader.judge.policy.tables import _tree
from grader.judge.policy.violation import Violation

# ---------------------------------------------------------------------------
# Ready-made rules and the labs that use them
# ---------------------------------------------------------------------------
AUTOGRAD = Forbidden(
    label="autograd",
    qualified=(*_tree("torch.autograd", "torch.func", "functorch"), "torch.enable_grad", "torch.set_grad_enabled",
               "torch.inference_mode", "torch.is_inference_mode_enabled", "torch.Tensor.backward",
               "torch.Tensor.register_hook", "torch.Tensor.retain_grad", "torch.Tensor.grad_fn",
               "torch.vmap", "*.manual_backward"),
    allowed=("torch.autograd.Function", "torch.autograd.Function.*", "torch.autograd.function.Function",
             "torch.autograd.function.Function.*", "torch.autograd.function.once_differentiable",
             "torch.autograd.function.FunctionCtx", "torch.autograd.function.InplaceFunction",
             "torch.autograd.function.NestedIOFunction"),
    attributes=("backward", "grad_fn", "next_functions", "register_hook", "register_post_accumulate_grad_hook",
                "retain_grad", "manual_backward", "run_backward", "_execution_engine", "enable_grad",
                "set_grad_enabled", "inference_mode", "autograd"),
    gradient_switches=True,
)

TORCH_CONV_AND_POOL = Forbidden(
    label="torch's convolution or pooling",
    qualified=("torch.conv*", "torch.convolution", "torch.cudnn_*", "torch.mkldnn_*", "torch.miopen_*",
               "torch.slow_conv*", "torch.thnn_conv*", "torch.nn.functional.conv*", "torch.nn.functional.*pool*",
               "torch.*pool*", "torch.nn.Conv*", "torch.nn.LazyConv*", "torch.nn.*Pool*",
               *_tree("torch.nn.modules.conv", "torch.nn.modules.pooling", "torch.nn.grad", "torch.ao",
                      "torch.nn.quantized", "torch.nn.intrinsic", "torchvision.ops", "torchvision.models",
                      "datamodules.pretrained"),
               "numpy.convolve", "numpy.correlate"),
    attributes=("conv[123]d", "conv_transpose*", "conv_tbc", "convolution", "*_convolution*", "max_pool*", "avg_pool*",
                "adaptive_*pool*", "lp_pool*", "fractional_max_pool*", "max_unpool*", "_conv_forward",
                "Conv[123]d", "ConvTranspose*", "LazyConv*", "MaxPool*", "AvgPool*", "Adaptive*Pool*", "LPPool*",
                "FractionalMaxPool*", "MaxUnpool*", "_ConvNd", "_MaxPoolNd", "_AvgPoolNd", "conv*_input",
                "conv*_weight"),
    super_attributes=("forward", "__call__", "_conv_forward"),
)

TORCH_BATCH_NORM = Forbidden(
    label="torch's batch normalisation",
    qualified=("torch.batch_norm*", "torch.native_batch_norm*", "torch.cudnn_batch_norm*", "torch.miopen_batch_norm*",
               "torch.instance_norm", "torch.layer_norm", "torch.group_norm", "torch.native_layer_norm",
               "torch.native_group_norm", "torch.nn.functional.batch_norm", "torch.nn.functional.instance_norm",
               "torch.nn.functional.layer_norm", "torch.nn.functional.group_norm", "torch.nn.BatchNorm*",
               "torch.nn.LazyBatchNorm*", "torch.nn.SyncBatchNorm*", "torch.nn.InstanceNorm*",
               "torch.nn.LazyInstanceNorm*", "torch.nn.LayerNorm*", "torch.nn.GroupNorm*",
               *_tree("torch.nn.modules.batchnorm", "torch.nn.modules.instancenorm", "torch.nn.modules.normalization",
                      "torch.nn.utils.fusion")),
    attributes=("batch_norm*", "*_batch_norm*", "BatchNorm*", "LazyBatchNorm*", "SyncBatchNorm*", "_BatchNorm",
                "_NormBase", "instance_norm", "layer_norm", "group_norm", "InstanceNorm*", "LayerNorm", "GroupNorm"),
    super_attributes=("forward", "__call__"),
)

_FUNCTION_CLASSES = "{torch.autograd.Function|torch.autograd.function.*Function}"

HAND_WRITTEN_BACKWARD = Rule(
    "hand-written backward",
    scope=(f"{_FUNCTION_CLASSES}.*",),
    forbidden=AUTOGRAD,
    why="a torch.autograd.Function of this lab computes its gradients by hand: no autograd in any of its methods "
        "or in what they call",
)
OWN_SCALAR_AUTOGRAD = Rule(
    "own scalar autograd",
    scope=("Value",),
    forbidden=AUTOGRAD,
    why="Value is this lab's own automatic-differentiation engine: it may not use torch's",
)
OWN_CONV_AND_POOL = Rule(
    "own convolution and pooling",
    scope=("conv2d", "max_pool2d", "Conv2d.*", "MaxPool2d.*",
           "{torch.nn.Conv*|torch.nn.LazyConv*|torch.nn.modules.conv.*}.*",
           "{torch.nn.*Pool*|torch.nn.modules.pooling.*}.*"),
    forbidden=TORCH_CONV_AND_POOL,
    why="conv2d, max_pool2d and the layers built on them compute convolution and pooling themselves "
        "(F.unfold, reshapes and matrix products), never with torch's own",
    requires=("Conv2d.forward", "MaxPool2d.forward"),
)
OWN_BATCH_NORM = Rule(
    "own batch norm",
    scope=("BatchNorm2d",),
    forbidden=TORCH_BATCH_NORM,
    why="BatchNorm2d normalises by hand (batch statistics, running buffers), never with torch's batch norm",
)
AUTOGRAD_OR_OPTIMIZER = dataclasses.replace(
    AUTOGRAD, label="autograd or an optimizer",
    qualified=(*AUTOGRAD.qualified, *_tree("torch.optim")))

LOGREG_WITHOUT_AUTOGRAD = Rule(
    "gradients by hand",
    scope=("logistic_gradients", "BinaryLogisticRegression"),
    forbidden=AUTOGRAD_OR_OPTIMIZER,
    why="logistic_gradients writes the gradient formula and BinaryLogisticRegression trains with it, without autograd",
)

LAB_RULES: dict[str, tuple[Rule, ...]] = {
    "logreg": (LOGREG_WITHOUT_AUTOGRAD,),  # the handout: "Use no autograd here: write the formula"
    "mlp": (HAND_WRITTEN_BACKWARD, OWN_SCALAR_AUTOGRAD),
    "cnn": (OWN_CONV_AND_POOL, OWN_BATCH_NORM),
    "transfer": (),
    "rotation": (),
}


def lab_rules(lab: str, source: str | bytes, filename: str | None = None) -> list[Violation]:
    """The breaches of one lab's scoped rules (``LAB_RULES[lab]``) in a submission, in line order."""
    if lab not in LAB_RULES:
        raise ValueError(f"no rules for lab {lab!r}; the labs are {', '.join(LAB_RULES)}")
    filename = filename or f"{lab}.py"
    found = [v for rule in LAB_RULES[lab] for v in rule.check(source, filename)]
    # one report per spot: where two rules reach the same code, keep the rule that names it directly
    best: dict[tuple[int, int], Violation] = {}
    for v in found:
        kept = best.get((v.line, v.column))
        if kept is None or ("(reached from " in kept.what and "(reached from " not in v.what):
            best[v.line, v.column] = v
    return _unique(list(best.values()))


def check(source: str | bytes, filename: str = "submission.py", lab: str | None = None) -> list[Violation]:
    """scan, then the lab's scoped rules when lab is given: every violation, in line order."""
    found = scan(source, filename)
    if lab is not None:
        found += lab_rules(lab, source, filename)
    return _unique(found)


def _unique(violations: list[Violation]) -> list[Violation]:
    seen, out = set(), []
    for v in sorted(violations, key=lambda v: v.line):
        if (v.line, v.what) not in seen:
            seen.add((v.line, v.what))
            out.append(v)
    return out
