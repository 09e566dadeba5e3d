"""grader/judge/policy/: the static integrity policy and the labs' scoped rules, on honest and on hostile source.

Honest code is every reference and stub, every deliberately wrong but honest submission the other tests
grade (read from their tables here, without importing them), the differently written Lab 1 submission,
the torch documentation's LinearFunction and micrograd's Value. None of it may be reported, except where a
lab's stated rule is broken. Hostile code is at least two examples of every family of attack, plus evasions
written for this file. Nothing here imports torch: the policy reads source text only.
"""
from __future__ import annotations

import ast
import dataclasses
import textwrap
import time
from pathlib import Path

import pytest

from grader.judge import policy
from grader.judge.policy import (
    AUTOGRAD,
    HAND_WRITTEN_BACKWARD,
    LAB_RULES,
    LOGREG_WITHOUT_AUTOGRAD,
    OWN_BATCH_NORM,
    OWN_CONV_AND_POOL,
    OWN_SCALAR_AUTOGRAD,
    TORCH_CONV_AND_POOL,
    Violation,
    check,
    lab_rules,
    scan,
    uses_in,
)

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
LABS = tuple(LAB_RULES)
REFERENCE = {lab: (ROOT / "solutions" / f"{lab}.py").read_text() for lab in LABS}
STUB = {lab: (ROOT / "labs" / f"{lab}.py").read_text() for lab in LABS}
FUTURE = "from __future__ import annotations\n"


def whats(violations) -> str:
    return "\n".join(str(v) for v in violations)


# ---------------------------------------------------------------------------
# The sources other tests grade, read from their tables (a tiny evaluator: strings, containers, str.replace,
# and the helpers the test modules build sources with)
# ---------------------------------------------------------------------------
class Unsupported(Exception):
    pass


def mutate(*replacements, source):
    for old, new in replacements:
        assert old in source, f"mutation target not found: {old!r}"
        source = source.replace(old, new, 1)
    return source


def evaluate(node: ast.AST, env: dict):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise Unsupported(node.id)
        return env[node.id]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        values = [evaluate(e, env) for e in node.elts]
        return {ast.Tuple: tuple, ast.List: list, ast.Set: set}[type(node)](values)
    if isinstance(node, ast.Dict):
        return {evaluate(k, env): evaluate(v, env) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return evaluate(node.left, env) + evaluate(node.right, env)
    if isinstance(node, ast.Call):
        args = [evaluate(a, env) for a in node.args]
        kwargs = {k.arg: evaluate(k.value, env) for k in node.keywords}
        if isinstance(node.func, ast.Attribute) and node.func.attr == "replace":
            return evaluate(node.func.value, env).replace(*args)
        if isinstance(node.func, ast.Name) and callable(env.get(node.func.id)):
            return env[node.func.id](*args, **kwargs)
    raise Unsupported(ast.unparse(node))


def module_env(tree: ast.Module, env: dict) -> dict:
    """env plus every module-level NAME = value of a test module that is plain data built from strings."""
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0],
                                                                                             ast.Name):
            try:
                env[statement.targets[0].id] = evaluate(statement.value, env)
            except Unsupported:
                pass
    return env


def read_test_module(name: str, env: dict | None = None):
    tree = ast.parse((TESTS / name).read_text())
    return tree, module_env(tree, dict(env or {}))


def logreg_env() -> dict:
    reference = REFERENCE["logreg"]

    def prepend(code, source=reference):
        return source.replace(FUTURE, FUTURE + code, 1)

    return {"REFERENCE": reference, "STUB": STUB["logreg"], "FUTURE": FUTURE, "prepend": prepend,
            "at_top": prepend, "mutate": lambda *r, source=reference: mutate(*r, source=source)}




def graded_mistakes() -> tuple[dict[tuple[str, str], str], list[str]]:
    """(lab, name) -> the submission, for every mistake and alternative of the audit's tables
    (grader/mistakes, pinned and independent students'); and the tables that could not be read
    (a test fails on them, collection does not)."""
    from grader.instructor.audit import AuditError, apply, variants_of

    found, unreadable = {}, []
    for lab in LABS:
        try:
            mistakes, alternatives = variants_of(lab)
            for variant in mistakes + alternatives:
                found[lab, variant.name] = apply(REFERENCE[lab], variant)
        except (AuditError, OSError, SyntaxError) as err:
            unreadable.append(f"{lab}: {err}")
    return found, unreadable


MISTAKES, UNREADABLE_TABLES = graded_mistakes()
# The graded mistakes that break a lab's stated rule: that rule must report them, and nothing else may.
RULE_BREAKERS = {
    ("logreg", "logistic gradients computed with autograd"): "gradients by hand",
    ("mlp", "Linear: backward secretly uses autograd"): "hand-written backward",
    ("mlp", "LinearFunction.backward recomputes the forward under enable_grad and calls torch.autograd.grad"):
        "hand-written backward",
    ("cnn", "conv2d calls F.conv2d"): "own convolution and pooling",
    ("cnn", "max_pool2d calls F.max_pool2d"): "own convolution and pooling",
    ("cnn", "conv2d returns F.conv2d (the im2col result only used as a check)"): "own convolution and pooling",
    ("cnn", "Conv2d.forward calls torch's own convolution (super().forward)"): "own convolution and pooling",
}


# ---------------------------------------------------------------------------
# Honest code passes
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("folder", ["solutions", "labs"])
def test_every_reference_and_stub_file_passes_the_policy_and_its_labs_rules(folder):
    files = sorted((ROOT / folder).glob("*.py"))
    assert {p.stem for p in files} >= set(LAB_RULES)
    for path in files:
        source = path.read_text()
        lab = path.stem if path.stem in LAB_RULES else None
        assert check(source, path.name, lab) == [], whats(check(source, path.name, lab))


def test_the_tables_of_graded_mistakes_were_read():
    assert UNREADABLE_TABLES == []
    per_lab = {lab: sum(1 for (lab_, _) in MISTAKES if lab_ == lab) for lab in LABS}
    assert min(per_lab.values()) >= 45, per_lab
    assert set(RULE_BREAKERS) <= set(MISTAKES)


@pytest.mark.parametrize("lab, mistake", sorted(MISTAKES), ids=lambda x: x)
def test_graded_mistakes_are_honest_code_and_only_rule_breakers_break_a_rule(lab, mistake):
    source = MISTAKES[lab, mistake]
    assert scan(source, f"{lab}.py") == [], whats(scan(source, f"{lab}.py"))
    broken = lab_rules(lab, source)
    if (lab, mistake) in RULE_BREAKERS:
        assert broken and {v.rule for v in broken} == {RULE_BREAKERS[lab, mistake]}, whats(broken)
    else:
        assert broken == [], whats(broken)


def test_the_secret_autograd_backward_is_named_line_by_line():
    broken = lab_rules("mlp", MISTAKES["mlp", "Linear: backward secretly uses autograd"])
    text = whats(broken)
    assert "LinearFunction.backward uses torch.enable_grad" in text
    assert "LinearFunction.backward uses torch.autograd.grad" in text
    assert "turns requires_grad on" in text and "asks for requires_grad" in text
    assert all(str(v).startswith("mlp.py, line ") for v in broken)


def test_the_differently_written_logreg_submission_passes_the_policy_and_the_no_autograd_rule():
    """Lab 1 applies LOGREG_WITHOUT_AUTOGRAD (the handout: "Use no autograd here: write the formula"); the
    differently written submission writes its gradients with einsum and keeps full marks."""
    tree = ast.parse((TESTS / "test_grader_submissions.py").read_text())
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
                    and n.name == "test_correct_but_differently_written_submission_gets_full_marks")
    dedent = next(n for n in ast.walk(function) if isinstance(n, ast.Call) and ast.unparse(n.func) == "textwrap.dedent")
    source = textwrap.dedent(dedent.args[0].value)
    assert scan(source, "logreg.py") == [], whats(scan(source, "logreg.py"))
    assert lab_rules("logreg", source) == [], whats(lab_rules("logreg", source))
    broken = source.replace("    err = torch.sigmoid(", "    w.requires_grad_()\n    err = torch.sigmoid(")
    assert [v.what for v in lab_rules("logreg", broken)] == [v.what for v in LOGREG_WITHOUT_AUTOGRAD.check(broken,
                                                                                                         "logreg.py")]
    assert lab_rules("logreg", broken), "the rule must catch autograd in logistic_gradients"


def test_the_batch_and_import_tests_sources_honest_ones_pass_hostile_ones_are_caught():
    tree, env = read_test_module("test_batch.py", logreg_env())
    submissions = env["SUBMISSIONS"]
    caught = {student for student, (source, *_) in submissions.items() if scan(source, "logreg.py")}
    assert {"hu", "ka", "lu"} <= caught  # os.kill at import, the tamperer, a syntax error
    assert not caught & {"ada", "bo", "cy", "ed", "fa", "gu", "io", "jo"}  # honest, broken, looping or noisy
    tamperer = whats(scan(env["TAMPERER"], "logreg.py"))
    assert "imports os" in tamperer and "changes torch.softmax" in tamperer
    assert "changes torch.nn.functional.cross_entropy" in tamperer and "calls open()" in tamperer

    tree, env = read_test_module("test_grader_submissions.py", logreg_env())
    zero = {case: whats(scan(source, "logreg.py")) for case, (source, _) in env["ZERO"].items()}
    assert zero["an endless loop at import"] == ""  # not a policy matter: the time limit stops it
    assert "imports sys" in zero["sys.exit(0) at import"] and "imports os" in zero["os._exit(0) at import"]
    assert "imports everything from solutions.logreg (import *) (a submission may not use the grader's" in \
        zero["importing the reference solution"]
    assert "cannot be read as Python source: SyntaxError" in zero["a syntax error"]

    tree, env = read_test_module("test_confinement.py")
    walker = whats(scan(env["WALKER"], "logreg.py"))
    assert "imports os" in walker and "calls open()" in walker and "calls exec()" in walker


TORCH_DOCS_LINEAR_FUNCTION = '''
import torch
from torch.autograd import Function
from torch import nn


class LinearFunction(Function):

    # Note that forward, setup_context, and backward are @staticmethods
    @staticmethod
    def forward(input, weight, bias):
        output = input.mm(weight.t())
        if bias is not None:
            output += bias.unsqueeze(0).expand_as(output)
        return output

    @staticmethod
    # inputs is a Tuple of all of the inputs passed to forward.
    # output is the output of the forward().
    def setup_context(ctx, inputs, output):
        input, weight, bias = inputs
        ctx.save_for_backward(input, weight, bias)

    # This function has only a single output, so it gets only one gradient
    @staticmethod
    def backward(ctx, grad_output):
        input, weight, bias = ctx.saved_tensors
        grad_input = grad_weight = grad_bias = None

        if ctx.needs_input_grad[0]:
            grad_input = grad_output.mm(weight)
        if ctx.needs_input_grad[1]:
            grad_weight = grad_output.t().mm(input)
        if bias is not None and ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum(0)

        return grad_input, grad_weight, grad_bias


class OldStyleLinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias=None):
        ctx.save_for_backward(input, weight, bias)
        output = input.mm(weight.t())
        if bias is not None:
            output += bias.unsqueeze(0).expand_as(output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        input, weight, bias = ctx.saved_tensors
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = grad_output.mm(weight)
        if ctx.needs_input_grad[1]:
            grad_weight = grad_output.t().mm(input)
        if bias is not None and ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum(0)
        return grad_input, grad_weight, grad_bias


linear = LinearFunction.apply


class Linear(nn.Module):
    def __init__(self, input_features, output_features, bias=True):
        super().__init__()
        self.input_features = input_features
        self.output_features = output_features
        self.weight = nn.Parameter(torch.empty(output_features, input_features))
        if bias:
            self.bias = nn.Parameter(torch.empty(output_features))
        else:
            self.register_parameter('bias', None)
        nn.init.uniform_(self.weight, -0.1, 0.1)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -0.1, 0.1)

    def forward(self, input):
        return LinearFunction.apply(input, self.weight, self.bias)

    def extra_repr(self):
        return 'input_features={}, output_features={}, bias={}'.format(
            self.input_features, self.output_features, self.bias is not None
        )


from torch.autograd import gradcheck

input = (torch.randn(20, 20, dtype=torch.double, requires_grad=True),
         torch.randn(30, 20, dtype=torch.double, requires_grad=True))
test = gradcheck(linear, input, eps=1e-6, atol=1e-4)
'''


def test_the_torch_documentations_linear_function_passes():
    assert check(TORCH_DOCS_LINEAR_FUNCTION, "mlp.py", "mlp") == [], \
        whats(check(TORCH_DOCS_LINEAR_FUNCTION, "mlp.py", "mlp"))


MICROGRAD = '''
import math


class Value:
    """ stores a single scalar value and its gradient """

    def __init__(self, data, _children=(), _op=''):
        self.data = data
        self.grad = 0
        # internal variables used for autograd graph construction
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op # the op that produced this node, for graphviz / debugging / etc

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), '+')

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward

        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), '*')

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward

        return out

    def __pow__(self, other):
        assert isinstance(other, (int, float)), "only supporting int/float powers for now"
        out = Value(self.data**other, (self,), f'**{other}')

        def _backward():
            self.grad += (other * self.data**(other-1)) * out.grad
        out._backward = _backward

        return out

    def relu(self):
        out = Value(0 if self.data < 0 else self.data, (self,), 'ReLU')

        def _backward():
            self.grad += (out.data > 0) * out.grad
        out._backward = _backward

        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,), 'tanh')
        out._backward = lambda: setattr(self, "grad", self.grad + (1 - t ** 2) * out.grad)
        return out

    def backward(self):

        # topological order all of the children in the graph
        topo = []
        visited = set()
        def build_topo(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build_topo(child)
                topo.append(v)
        build_topo(self)

        # go one variable at a time and apply the chain rule to get its gradient
        self.grad = 1
        for v in reversed(topo):
            v._backward()

    def __neg__(self): # -self
        return self * -1

    def __radd__(self, other): # other + self
        return self + other

    def __sub__(self, other): # self - other
        return self + (-other)

    def __rsub__(self, other): # other - self
        return other + (-self)

    def __rmul__(self, other): # other * self
        return self * other

    def __truediv__(self, other): # self / other
        return self * other**-1

    def __rtruediv__(self, other): # other / self
        return other * self**-1

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"


def children_of(v):
    return [c._op for c in v._prev]
'''


def test_micrograd_style_value_code_passes():
    assert check(MICROGRAD, "mlp.py", "mlp") == [], whats(check(MICROGRAD, "mlp.py", "mlp"))


# Other honest ways to write the labs' hand-written parts: none of them may be reported.
HONEST_VARIANTS = {
    "mlp": [
        ("grad_x = grad_output @ weight\n        grad_weight = grad_output.T @ x\n        grad_bias = grad_output.sum(dim=0)",
         "grad_x = torch.mm(grad_output, weight)\n        grad_weight = torch.einsum('no,ni->oi', grad_output, x)\n"
         "        grad_bias = grad_output.sum(0) if ctx.needs_input_grad[2] else None"),
        ("        return grad_output * a * (1 - a)\n", "        return SigmoidFunction._local(a) * grad_output\n\n"
         "    @staticmethod\n    def _local(a):\n        return a * (1 - a)\n"),
    ],
    "cnn": [
        ("    columns = F.unfold(x, (kernel_h, kernel_w), padding=(pad_h, pad_w), stride=(stride_h, stride_w))\n"
         "    out = weight.reshape(c_out, -1) @ columns  # (N, C_out, H_out·W_out)\n",
         "    padded = F.pad(x, (pad_w, pad_w, pad_h, pad_h))\n"
         "    patches = padded.unfold(2, kernel_h, stride_h).unfold(3, kernel_w, stride_w)\n"
         "    out = torch.einsum('nchwij,ocij->nohw', patches, weight).reshape(n, c_out, -1)\n"),
        ("    windows = F.unfold(x, (kernel_h, kernel_w), stride=(stride_h, stride_w))\n",
         "    windows = torch.stack([x[:, :, i:i + stride_h * h_out:stride_h, j:j + stride_w * w_out:stride_w]\n"
         "                           for i in range(kernel_h) for j in range(kernel_w)], dim=2)\n"),
        ("            mean = x.mean(dim=(0, 2, 3))\n            var = x.var(dim=(0, 2, 3), unbiased=False)\n",
         "            var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)\n"),
    ],
    "logreg": [
        ("    a = sigmoid(x @ w + b)\n", "    a = torch.sigmoid(torch.addmv(b.expand(x.shape[0]), x, w))\n"),
        ("        self.w -= self.hparams.lr * grad_w\n        self.b -= self.hparams.lr * grad_b\n",
         "        with torch.no_grad():\n            self.w.sub_(self.hparams.lr * grad_w)\n"
         "            self.b.copy_(self.b - self.hparams.lr * grad_b)\n"),
    ],
}


@pytest.mark.parametrize("lab", sorted(HONEST_VARIANTS))
def test_honest_variants_of_the_hand_written_parts_pass(lab):
    for replacement in HONEST_VARIANTS[lab]:
        source = mutate(replacement, source=REFERENCE[lab])
        assert check(source, f"{lab}.py", lab) == [], whats(check(source, f"{lab}.py", lab))


# Whole labs written the way a student might: other imports, loops, in-place updates, aliases, once_differentiable.
STUDENT_MLP = '''
import math
from typing import Optional

import lightning as L
import numpy as np
import torch
import torch.nn as nn
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from labs.common import EpochMetrics


class Value:
    def __init__(self, data, _children=(), _op=""):
        self.data, self.grad = float(data), 0.0
        self._backward = lambda: None
        self._prev, self._op = tuple(_children), _op

    def _wrap(self, other):
        return other if isinstance(other, Value) else Value(other)

    def __add__(self, other):
        other = self._wrap(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = self._wrap(other)
        out = Value(self.data * other.data, (self, other), "*")
        out._backward = lambda: (setattr(self, "grad", self.grad + other.data * out.grad),
                                 setattr(other, "grad", other.grad + self.data * out.grad))
        return out

    def __pow__(self, k):
        out = Value(self.data ** k, (self,), "pow")

        def _backward():
            self.grad += k * self.data ** (k - 1) * out.grad
        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad
        out._backward = _backward
        return out

    def backward(self):
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
            elif node not in seen:
                seen.add(node)
                stack.append((node, True))
                stack.extend((child, False) for child in node._prev)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()

    __radd__ = __add__
    __rmul__ = __mul__

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + (-other)

    def __truediv__(self, other):
        return self * other ** -1


class LinearFunction(Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight, bias)
        return torch.addmm(bias, x, weight.t())

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, weight, bias = ctx.saved_tensors
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = dy.mm(weight)
        if ctx.needs_input_grad[1]:
            dw = dy.t().mm(x)
        if ctx.needs_input_grad[2]:
            db = dy.sum(0)
        return dx, dw, db


class ReLUFunction(Function):
    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return torch.relu(z)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        out = g.clone()
        out[z <= 0] = 0
        return out


class SoftmaxCrossEntropyFunction(Function):
    @staticmethod
    def forward(ctx, logits, targets):
        log_p = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        ctx.save_for_backward(log_p.exp(), targets)
        ctx.mark_non_differentiable(targets)
        return -log_p.gather(1, targets[:, None]).mean()

    @staticmethod
    def backward(ctx, g):
        probs, targets = ctx.saved_tensors
        grad = probs.clone()
        grad[torch.arange(len(targets)), targets] -= 1
        return grad * g / len(targets), None


def dropout(x, p, training):
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    mask = (torch.rand(x.shape, device=x.device) > p).to(x.dtype)
    return x * mask / (1.0 - p)


class Linear(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) * math.sqrt(2 / d_in))
        self.bias = nn.Parameter(torch.zeros(d_out))

    def forward(self, x):
        return LinearFunction.apply(x, self.weight, self.bias)


class MLP(L.LightningModule):
    def __init__(self, num_features=784, hidden=(256, 128), num_classes=10, activation="relu", dropout=0.2, lr=0.05):
        super().__init__()
        self.save_hyperparameters()
        sizes = [num_features, *hidden, num_classes]
        self.layers = nn.ModuleList([Linear(a, b) for a, b in zip(sizes, sizes[1:])])
        self.metrics = EpochMetrics(num_classes)
        self._act: Optional[type] = ReLUFunction

    def forward(self, x):
        h = x.view(x.size(0), -1)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = dropout(self._act.apply(h), self.hparams.dropout, self.training)
        return h

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = SoftmaxCrossEntropyFunction.apply(logits, y)
        self.log("train_loss", loss, on_epoch=True)
        self.metrics.update("fit", loss, logits, y)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9, nesterov=True)


if __name__ == "__main__":
    a, b = Value(2.0), Value(-3.0)
    c = (a * b + a ** 2).exp()
    c.backward()
    print(a.grad, b.grad, np.float32(c.data))
'''

STUDENT_CNN = '''
import lightning as L
import torch
from torch import nn
from torch.nn import functional as F
from torchvision.transforms import v2

from labs.common import EpochMetrics


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def conv2d(x, weight, bias=None, stride=1, padding=0):
    N, C, H, W = x.shape
    F_, _, HH, WW = weight.shape
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    xp = F.pad(x, (pw, pw, ph, ph))
    H_out, W_out = conv_output_size(H, HH, sh, ph), conv_output_size(W, WW, sw, pw)
    out = x.new_zeros(N, F_, H_out, W_out)
    for i in range(H_out):
        for j in range(W_out):
            patch = xp[:, :, i * sh:i * sh + HH, j * sw:j * sw + WW]
            out[:, :, i, j] = torch.tensordot(patch, weight, dims=([1, 2, 3], [1, 2, 3]))
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    return out


def max_pool2d(x, kernel_size, stride=None):
    kh, kw = pair(kernel_size)
    sh, sw = pair(stride if stride is not None else kernel_size)
    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)
    n, c, ho, wo = windows.shape[:4]
    return windows.reshape(n, c, ho, wo, kh * kw).max(dim=-1).values


class Conv2d(nn.Conv2d):
    def forward(self, x):
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)


class MaxPool2d(nn.MaxPool2d):
    def forward(self, x):
        return max_pool2d(x, self.kernel_size, self.stride)


class BatchNorm2d(nn.Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x):
        if self.training:
            var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False, keepdim=True)
            n = x.numel() / x.size(1)
            with torch.no_grad():
                self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean.flatten()
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var.flatten() * n / (n - 1))
                self.num_batches_tracked.add_(1)
        else:
            mean = self.running_mean.view(1, -1, 1, 1)
            var = self.running_var.view(1, -1, 1, 1)
        return self.weight.view(1, -1, 1, 1) * (x - mean) / torch.sqrt(var + self.eps) + self.bias.view(1, -1, 1, 1)


def train_transforms(image_size=28, max_shift=2):
    return v2.Compose([v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge"), v2.ToDtype(torch.float32)])


class LeNet5(L.LightningModule):
    def __init__(self, num_classes=10, input_shape=(1, 28, 28), batch_norm=True, augment=True, max_shift=2, lr=0.1):
        super().__init__()
        self.save_hyperparameters()
        c, h, w = input_shape
        norm = (lambda k: nn.BatchNorm2d(k)) if batch_norm else (lambda k: nn.Identity())
        self.features = nn.Sequential(
            Conv2d(c, 6, 5, padding=2, bias=not batch_norm), norm(6), nn.ReLU(), MaxPool2d(2),
            Conv2d(6, 16, 5, bias=not batch_norm), norm(16), nn.ReLU(), MaxPool2d(2))
        for p in (2, 0):
            h, w = [conv_output_size(conv_output_size(s, 5, padding=p), 2, 2) for s in (h, w)]
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * h * w, 120), nn.ReLU(), nn.Linear(120, 84),
                                        nn.ReLU(), nn.Linear(84, num_classes))
        self.metrics = EpochMetrics(num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.metrics.update("fit", loss, logits, y)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.hparams.lr, total_steps=self.trainer.estimated_stepping_batches)}
'''


@pytest.mark.parametrize("lab, source", [("mlp", STUDENT_MLP), ("cnn", STUDENT_CNN)])
def test_whole_labs_written_differently_pass(lab, source):
    assert check(source, f"{lab}.py", lab) == [], whats(check(source, f"{lab}.py", lab))


KITCHEN_SINK = '''
from __future__ import annotations

import collections.abc
import dataclasses
import enum
import functools
import itertools
import math
import operator
import random
import typing
import warnings
from typing import Callable

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from datamodules import build_datamodule
from labs.common import EpochMetrics

__all__ = ["Model"]


class Mode(enum.Enum):
    FAST = "fast"


@dataclasses.dataclass(frozen=True)
class Config:
    width: int = 8
    act: Callable = torch.relu


def pick(name: str):
    match name:
        case "relu" | "tanh" as chosen:
            return {"relu": torch.relu, "tanh": torch.tanh}[chosen]
        case {"kind": kind, **rest}:
            return rest
        case _:
            raise ValueError(f"unknown activation {name!r}")


class Model(L.LightningModule):
    def __init__(self, config: Config = Config()):
        super().__init__()
        self._cache = {}
        self.layers = nn.ModuleList(nn.Linear(config.width, config.width) for _ in range(2))
        self.metrics = EpochMetrics(10)
        self.extra = getattr(config, "width", 8)
        if hasattr(self, "layers"):
            setattr(self, "depth", len(self.layers))

    def forward(self, x):
        for layer in self.layers:
            x = F.relu(layer(x))
        total = functools.reduce(operator.add, (p.numel() for p in self.parameters()))
        if (n := total) > 10 ** 9:
            warnings.warn("large", stacklevel=2)
        return x

    def __getattr__(self, name):
        return super().__getattr__(name)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("loss", loss, prog_bar=True)
        print("step {} loss {:.3f}".format(batch_idx, float(loss)), type(self).__name__, self.__class__.__name__)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def frozen_norms(self):
        return [m for m in self.modules() if isinstance(m, (_BatchNorm, _ConvNd)) and not m.training]


async def later(x):
    async with x as y:
        return [z async for z in y]


def gen():
    total = 0
    while True:
        received = yield total
        total += received or 0


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad = False
    with torch.no_grad(), torch.set_grad_enabled(False):
        pass
    try:
        pass
    except (ValueError, TypeError) as err:
        raise RuntimeError(str(err)) from err
    finally:
        rng = np.random.default_rng(0)
        random.seed(0)
        torch.manual_seed(0)
        _ = [i * j for i, j in itertools.product(range(2), repeat=2) if i]
        _ = {k: v for k, v in zip("ab", (1, 2))}
        _ = math.isfinite(rng.random())
        _ = isinstance(module, collections.abc.Iterable) or issubclass(type(module), nn.Module)
        _ = lambda t, s=2: t * s
        _ = typing.cast(int, 3)
        _ = [x for x in range(3)][::-1]


if __name__ == "__main__":
    print(Model())
'''


def test_an_honest_file_full_of_language_features_passes():
    assert scan(KITCHEN_SINK, "transfer.py") == [], whats(scan(KITCHEN_SINK, "transfer.py"))


def test_the_policy_never_crashes_on_the_repositorys_python_files():
    files = [p for folder in ("grader", "tests", "datamodules", "benchmarks", "labs", "solutions")
             for p in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 40
    for path in files:
        source = path.read_text()
        for violation in check(source, path.name, "mlp"):
            assert isinstance(violation, Violation) and violation.line >= 1 and "\n" not in str(violation)


# ---------------------------------------------------------------------------
# Hostile code is caught: at least two examples of every family
# ---------------------------------------------------------------------------
HOSTILE = {  # family -> [(source, what the report must say)]
    "gc and frames": [
        ("import gc\nleaks = [o for o in gc.get_objects() if type(o).__name__ == 'Tensor']\n", "imports gc"),
        ("import inspect\nf = inspect.currentframe()\n", "imports inspect"),
        ("def f():\n    try:\n        raise ValueError\n    except ValueError as e:\n"
         "        return e.__traceback__.tb_frame.f_back.f_locals\n", "reads e.__traceback__"),
        ("def g():\n    yield 1\nframe = g().gi_frame.f_back\n", "reads g().gi_frame"),
        ("def f(fn):\n    return fn.__globals__['expected']\n", "reads fn.__globals__"),
        ("def f(fn):\n    return fn.__closure__[0].cell_contents\n", "reads fn.__closure__"),
        ("x = object.__subclasses__()\n", "reads object.__subclasses__"),
        ("import ctypes\nctypes.pythonapi\n", "imports ctypes"),
    ],
    "sys.modules and the grader": [
        ("import sys\nops = sys.modules['grader.sandbox.ops']\n", "imports sys"),
        ("import torch\nops = torch.sys.modules['grader.sandbox.ops']\n", "reaches the sys module through torch"),
        ("import warnings\nops = warnings.sys.modules['grader.sandbox.ops']\n",
         "reaches the sys module through warnings"),
        ("from grader.sandbox.ops import _REAL_ENGINE\n", "imports _REAL_ENGINE from grader.sandbox.ops"),
        ("from solutions.mlp import *\n", "imports everything from solutions.mlp"),
        ("import importlib\nm = importlib.import_module('grader')\n", "imports importlib"),
    ],
    "monkeypatching torch": [
        ("import torch\ntorch.nn.Module.state_dict = lambda self, *a, **k: {}\n", "changes torch.nn.Module.state_dict"),
        ("import torch.nn.functional as F\nF.conv2d = lambda *a, **k: None\n", "changes torch.nn.functional.conv2d"),
        ("from torch.autograd.variable import Variable\nVariable._execution_engine = object()\n",
         "changes torch.autograd.variable.Variable._execution_engine"),
        ("import torch\nsetattr(torch.nn.Module, 'train', lambda self, mode=True: self)\n",
         "changes torch.nn.Module.train"),
        ("import torch\nModule = torch.nn.Module\nModule.eval = lambda self: self\n", "changes torch.nn.Module.eval"),
        ("import torch\nfor cls in (torch.nn.Linear, torch.nn.Conv2d):\n    cls.forward = lambda self, x: x\n",
         "changes cls.forward"),
        ("import torch\ndel torch.nn.functional.cross_entropy\n", "deletes torch.nn.functional.cross_entropy"),
        ("import torch\ntorch.Tensor.__eq__ = lambda a, b: True\n", "changes torch.Tensor.__eq__"),
        ("def f(x):\n    type(x).allclose = lambda *a, **k: True\n", "changes type(x).allclose"),
        ("import torch\ntorch.backends.cudnn.deterministic = False\n", "changes torch.backends.cudnn.deterministic"),
    ],
    "torch._C and the engine": [
        ("import torch\nengine = torch._C._ImperativeEngine()\n", "uses torch._C"),
        ("from torch._C import _ImperativeEngine\n", "imports _ImperativeEngine from torch._C"),
        ("from torch import _C\n", "imports _C from torch"),
        ("import torch._C\n", "imports torch._C"),
        ("import torch\nconv = torch.ops.aten.convolution\n", "uses torch.ops.aten.convolution"),
        ("import torch\nnn = torch._C._nn\n", "uses torch._C"),
        ("from torch.autograd.variable import Variable\nengine = Variable._execution_engine\n",
         "uses torch.autograd.variable.Variable._execution_engine"),
    ],
    "getattr with a computed name": [
        ("import torch\nC = getattr(torch, '_' + 'C')\n", "calls getattr() with a computed attribute name"),
        ("def f(obj, name):\n    return getattr(obj, name)\n", "calls getattr() with a computed attribute name"),
        ("import torch\nC = getattr(torch, '_C')\n", "uses torch._C"),
        ("get = getattr\n", "uses getattr as a value"),
        ("import functools\nget = functools.partial(getattr, object)\n", "uses getattr as a value"),
        ("import operator\nglobals_of = operator.attrgetter('__globals__')\n", "reads .__globals__ through"),
        ("import operator\nget = operator.attrgetter(''.join(['__glo', 'bals__']))\n",
         "calls operator.attrgetter() with a computed attribute name"),
    ],
    "__import__ and code built at run time": [
        ("os = __import__('os')\n", "uses __import__"),
        ("x = eval('1 + 1')\n", "calls eval()"),
        ("exec('import os')\n", "calls exec()"),
        ("code = compile('1', 'x', 'eval')\n", "calls compile()"),
        ("b = __builtins__\n", "uses __builtins__"),
        ("g = globals()\n", "calls globals()"),
        ("import torch\nX = type('LinearFunction', (torch.autograd.Function,), {})\n",
         "calls type() with three arguments"),
        ("import abc\nX = abc.ABCMeta('X', (), {})\n", "calls abc.ABCMeta() to make a class at run time"),
        ("text = open('/etc/hostname').read()\n", "calls open()"),
    ],
    "other packages' escape hatches": [
        ("import torch\nlib = torch.library.Library('aten', 'IMPL')\n", "uses torch.library.Library"),
        ("import torch\nstate = torch.load('x.pt')\n", "uses torch.load"),
        ("import numpy as np\nc = np.ctypeslib\n", "reaches the ctypeslib module through np"),
        ("import torch\ntorch.set_default_dtype(torch.float64)\n", "changes a global setting with torch.set_default_dtype"),
        ("import torch\ntorch.nn.modules.module.register_module_forward_hook(print)\n",
         "uses torch.nn.modules.module.register_module_forward_hook"),
        ("import torch\nclass T(torch.Tensor):\n    @classmethod\n    def __torch_function__(cls, f, t, a=(), k=None):\n"
         "        return True\n", "defines __torch_function__"),
        ("import pathlib\npathlib.Path('results.json').write_text('{}')\n", "imports pathlib"),
        ("import subprocess\nsubprocess.run(['sleep', '300'])\n", "imports subprocess"),
    ],
}


@pytest.mark.parametrize("family", sorted(HOSTILE))
def test_hostile_code_is_caught(family):
    assert len(HOSTILE[family]) >= 2
    for source, expected in HOSTILE[family]:
        found = whats(scan(source, "mlp.py"))
        assert expected in found, f"{source!r}\n-> {found or 'nothing'}"


def mlp_with_backward(body: str) -> str:
    return mutate(("        grad_x = grad_output @ weight\n        grad_weight = grad_output.T @ x\n"
                   "        grad_bias = grad_output.sum(dim=0)\n        return grad_x, grad_weight, grad_bias\n", body),
                  source=REFERENCE["mlp"])


def cnn_conv2d_returning(expression: str) -> str:
    return mutate(("    h_out = conv_output_size(height, kernel_h, stride_h, pad_h)\n", f"    return {expression}\n"),
                  source=REFERENCE["cnn"])


SCOPED_HOSTILE = {  # name -> (lab, source, what the report must say)
    "autograd.grad in backward through a helper function": (
        "mlp", mlp_with_backward("        return _grads(x, weight, grad_output)\n") + textwrap.dedent('''

            def _grads(x, weight, grad_output):
                with torch.enable_grad():
                    x_, w_ = x.detach().requires_grad_(), weight.detach().requires_grad_()
                    return torch.autograd.grad(x_ @ w_.T, (x_, w_), grad_output) + (grad_output.sum(0),)
        '''), "_grads uses torch.autograd.grad (reached from LinearFunction.backward)"),
    "autograd.grad through a module-level alias used as a default": (
        "mlp", mlp_with_backward("        return _vjp(x, weight, grad_output)\n")
        + "\nimport torch.autograd as ag\n\n\ndef _vjp(x, w, g, grad=ag.grad):\n    return grad(x, w, g)\n",
        "_vjp uses torch.autograd.grad (reached from LinearFunction.backward)"),
    "grad_fn walking in backward": (
        "mlp", mlp_with_backward("        node = grad_output.grad_fn\n        while node is not None:\n"
                                 "            node = node.next_functions[0][0]\n"
                                 "        return grad_output @ weight, grad_output.T @ x, grad_output.sum(0)\n"),
        "LinearFunction.backward uses grad_output.grad_fn"),
    "grad_fn walking in a static method of another class": (
        "mlp", mlp_with_backward("        return Walker.walk(x, weight, grad_output)\n")
        + "\n\nclass Walker:\n    @staticmethod\n    def walk(x, w, g):\n        return [n for n, _ in g.grad_fn.next_functions]\n",
        "Walker.walk uses g.grad_fn.next_functions (reached from LinearFunction.backward)"),
    ".backward() under set_grad_enabled in backward": (
        "mlp", mlp_with_backward("        with torch.set_grad_enabled(True):\n            (x @ weight.T).backward(grad_output)\n"
                                 "        return x.grad, weight.grad, None\n"),
        "LinearFunction.backward uses torch.set_grad_enabled"),
    "the engine itself in backward": (
        "mlp", mlp_with_backward("        engine = torch.autograd.Variable._execution_engine\n"
                                 "        return engine.run_backward((x,), (grad_output,), False)\n"),
        "LinearFunction.backward uses torch.autograd.Variable._execution_engine"),
    "the Value engine on torch's autograd": (
        "mlp", REFERENCE["mlp"].replace("        order, seen = [], set()\n",
                                        "        torch.tensor(self.data, requires_grad=True).backward()\n"
                                        "        order, seen = [], set()\n"),
        "Value.backward uses torch.tensor(self.data, requires_grad=True).backward ("),
    "F.conv2d wrapped in a renamed Function": (
        "cnn", cnn_conv2d_returning("Im2Col.apply(x, weight, bias, stride, padding)") + textwrap.dedent('''

            class Im2Col(torch.autograd.Function):
                @staticmethod
                def forward(ctx, x, w, b, s, p):
                    ctx.save_for_backward(x, w)
                    return F.conv2d(x, w, b, s, p)

                @staticmethod
                def backward(ctx, g):
                    x, w = ctx.saved_tensors
                    return torch.nn.grad.conv2d_input(x.shape, w, g), None, None, None, None
        '''), "Im2Col.forward uses torch.nn.functional.conv2d (reached from conv2d)"),
    "torch.conv2d in a helper": (
        "cnn", cnn_conv2d_returning("_correlate(x, weight)") + "\n\ndef _correlate(x, w):\n    return torch.conv2d(x, w)\n",
        "_correlate uses torch.conv2d (reached from conv2d)"),
    "F.max_pool2d through a module-level alias": (
        "cnn", mutate(("    h_out = conv_output_size(height, kernel_h, stride_h)\n", "    return _pool(x, kernel_size)\n"),
                      source=REFERENCE["cnn"]) + "\n_pool = F.max_pool2d\n",
        "max_pool2d uses torch.nn.functional.max_pool2d"),
    "torch's MaxPool2d module used to compute": (
        "cnn", mutate(("    h_out = conv_output_size(height, kernel_h, stride_h)\n",
                       "    return torch.nn.MaxPool2d(kernel_size, stride)(x)\n"), source=REFERENCE["cnn"]),
        "max_pool2d uses torch.nn.MaxPool2d"),
    "Conv2d calling the inherited forward": (
        "cnn", REFERENCE["cnn"].replace("        return conv2d(x, self.weight, self.bias, self.stride, self.padding)",
                                        "        return super().forward(x)"),
        "Conv2d.forward calls super().forward"),
    "Conv2d calling torch's _conv_forward": (
        "cnn", REFERENCE["cnn"].replace("        return conv2d(x, self.weight, self.bias, self.stride, self.padding)",
                                        "        return self._conv_forward(x, self.weight, self.bias)"),
        "Conv2d.forward uses self._conv_forward"),
    "MaxPool2d without a forward": (
        "cnn", REFERENCE["cnn"].replace("    def forward(self, x):\n        return max_pool2d(x, self.kernel_size, "
                                        "self.stride)\n", "    pass\n"),
        "MaxPool2d does not define forward"),
    "BatchNorm2d as torch's": (
        "cnn", REFERENCE["cnn"].replace("class BatchNorm2d(torch.nn.Module):",
                                        "class BatchNorm2d(torch.nn.BatchNorm2d):\n    pass\n\n\nclass _Old(torch.nn.Module):"),
        "BatchNorm2d uses torch.nn.BatchNorm2d"),
    "BatchNorm2d calling F.batch_norm": (
        "cnn", REFERENCE["cnn"].replace("        x_hat = (x - mean", "        return F.batch_norm(x, mean, var)\n"
                                        "        x_hat = (x - mean"),
        "BatchNorm2d.forward uses torch.nn.functional.batch_norm"),
    "logistic_gradients by autograd": (
        "logreg", mutate(("    a = sigmoid(x @ w + b)\n", "    w = w.clone().requires_grad_()\n"
                          "    binary_cross_entropy(x @ w + b, y).backward()\n    return w.grad, None\n"
                          "    a = sigmoid(x @ w + b)\n"), source=REFERENCE["logreg"]),
        "logistic_gradients uses binary_cross_entropy(x @ w + b, y).backward"),
    "BinaryLogisticRegression with manual_backward": (
        "logreg", mutate(("        grad_w, grad_b = logistic_gradients(x, y, self.w, self.b)\n",
                          "        self.manual_backward(loss)\n        grad_w, grad_b = self.w.grad, self.b.grad\n"),
                         source=REFERENCE["logreg"]),
        "BinaryLogisticRegression.sgd_step uses self.manual_backward"),
}


@pytest.mark.parametrize("name", sorted(SCOPED_HOSTILE))
def test_scoped_rules_catch_autograd_and_torchs_own_layers_where_the_lab_forbids_them(name):
    lab, source, expected = SCOPED_HOSTILE[name]
    assert scan(source, f"{lab}.py") == [] or name == "the engine itself in backward"
    # Lab 1 does not apply its rule (LAB_RULES["logreg"] is empty): the rule itself is tested here
    found = whats(LOGREG_WITHOUT_AUTOGRAD.check(source, "logreg.py") if lab == "logreg" else lab_rules(lab, source))
    assert expected in found, found or "nothing"


# ---------------------------------------------------------------------------
# Evasions written for this file
# ---------------------------------------------------------------------------
def test_evasion_a_utf7_encoding_turns_a_comment_into_code():
    """Read as UTF-8 the import is in a comment; Python, honouring the cookie, decodes +AAo- as a newline."""
    source = "# coding: utf-7\nx = 1  #+AAo-import os\n"
    assert ast.parse(source).body[-1].__class__ is ast.Assign  # what a UTF-8 reader sees: no import
    assert "declares the source encoding utf-7" in whats(scan(source, "mlp.py"))
    assert scan("# -*- coding: utf-8 -*-\nx = 1\n", "mlp.py") == []
    assert "not UTF-8" in whats(scan("x = 'caf\xe9'\n".encode("latin-1"), "mlp.py"))


def test_evasion_format_templates_read_attributes():
    found = whats(scan("def f():\n    pass\nleak = '{0.__globals__}'.format(f)\n", "mlp.py"))
    assert "reads .__globals__ in a format template" in found
    found = whats(scan("def f():\n    pass\nleak = '{0.x:{0.__globals__}}'.format(f)\n", "mlp.py"))
    assert "reads .__globals__ in a format template" in found
    found = whats(scan("t = '{0._' + '_globals__}'\nleak = t.format(print)\n", "mlp.py"))
    assert "formats with a template that is not written out" in found


def test_evasion_monkeypatching_through_values_the_file_passes_around():
    cases = {
        "import torch\ndef patch(c, f):\n    c.forward = f\npatch(torch.nn.Linear, print)\n": "changes c.forward",
        "import torch, functools\ndef patch(c):\n    c.forward = None\nfunctools.partial(patch, torch.nn.Linear)()\n":
            "changes c.forward",
        "import torch\ntry:\n    raise ValueError(torch.nn.Linear)\nexcept ValueError as e:\n    e.args[0].forward = None\n":
            "changes e.args[0].forward",
        "import torch\ndef get():\n    return torch.nn.Linear\nget().forward = None\n": "changes get().forward",
        "import torch\nclass A:\n    def __init__(self):\n        self.c = torch.nn.Linear\n"
        "    def go(self):\n        self.c.forward = None\n": "changes self.c.forward",
        "import torch\nbox = []\nbox.append(torch.nn.Linear)\nbox[0].forward = None\n": "changes box[0].forward",
        "import torch\nclass P:\n    def __init__(self, c):\n        c.forward = None\nP(torch.nn.Linear)\n":
            "changes c.forward",
        "import torch\nclasses = list(map(lambda c: c, [torch.nn.Linear]))\nclasses[0].forward = None\n":
            "changes classes[0].forward",
    }
    for source, expected in cases.items():
        assert expected in whats(scan(source, "mlp.py")), source
    honest = ("import torch\nacts = {'tanh': torch.tanh}\nacts['relu'] = torch.relu\nlayers = []\n"
              "layers.append(torch.nn.ReLU())\nlayers[0].inplace = True\n")
    assert scan(honest, "mlp.py") == []  # own containers of torch objects, and torch instances, are the file's own


def test_evasion_gradients_computed_by_autograd_in_forward_and_stored_for_backward():
    source = REFERENCE["mlp"].replace(
        "        a = torch.sigmoid(z)\n        ctx.save_for_backward(a)\n",
        "        with torch.enable_grad():\n            zz = z.detach().requires_grad_()\n            a = torch.sigmoid(zz)\n"
        "            (d,) = torch.autograd.grad(a.sum(), zz)\n        ctx.save_for_backward(d)\n        a = a.detach()\n")
    found = whats(lab_rules("mlp", source))
    assert "SigmoidFunction.forward uses torch.autograd.grad" in found


def test_evasion_a_backward_that_is_not_written_in_the_function_class():
    """Inherited from a mixin, or assigned to the class from outside: either way it is the class's backward."""
    by_hand = "    @staticmethod\n    def backward(ctx, grad_output):\n        x, weight = ctx.saved_tensors\n"
    cheat = "    return torch.autograd.grad(ctx.y, ctx.inputs, g)\n"
    mixin = mutate(("class LinearFunction(torch.autograd.Function):",
                    f"class _Grads:\n    @staticmethod\n    def backward(ctx, g):\n    {cheat}\n\n"
                    "class LinearFunction(_Grads, torch.autograd.Function):"),
                   (by_hand, by_hand.replace("def backward", "def _unused")), source=REFERENCE["mlp"])
    assert "_Grads.backward uses torch.autograd.grad" in whats(lab_rules("mlp", mixin))
    for assign in ("LinearFunction.backward = staticmethod(_cheat)", "setattr(LinearFunction, 'backward', _cheat)"):
        source = REFERENCE["mlp"] + f"\n\ndef _cheat(ctx, g):\n{cheat}\n\n{assign}\n"
        assert "_cheat uses torch.autograd.grad (reached from LinearFunction.backward)" in whats(
            lab_rules("mlp", source)), assign
    source = mlp_with_backward("        import operator\n        operator.methodcaller('backward', grad_output)(ctx.y)\n"
                               "        return None, None, None\n")
    assert "LinearFunction.backward uses .backward through operator.methodcaller()" in whats(lab_rules("mlp", source))


def test_evasion_an_own_object_whose_operator_runs_autograd_is_handed_to_the_function():
    """Nothing in LinearFunction names the class Sneaky: its object comes in through forward's arguments."""
    source = mlp_with_backward("        return grad_output @ weight * ctx.helper, grad_output.T @ x, None\n") + \
        textwrap.dedent('''

            class Sneaky:
                def __rmul__(self, other):
                    return torch.autograd.grad(other.sum(), other, retain_graph=True)[0]
        ''')
    assert "Sneaky.__rmul__ uses torch.autograd.grad" in whats(lab_rules("mlp", source))


def test_evasion_torchs_own_layers_inside_a_pretrained_model():
    source = cnn_conv2d_returning("load_backbone('digits04').features[0](x)").replace(
        "from labs.common import", "from datamodules.pretrained import load_backbone\nfrom labs.common import", 1)
    assert "conv2d uses datamodules.pretrained.load_backbone" in whats(lab_rules("cnn", source))
    source = cnn_conv2d_returning("torchvision.models.resnet18().conv1(x)").replace(
        "import torch\n", "import torch\nimport torchvision\n", 1)
    assert "conv2d uses torchvision.models.resnet18" in whats(lab_rules("cnn", source))


def test_evasion_lightning_trains_the_binary_model_with_autograd_and_an_optimizer():
    source = mutate(("        return None  # the update rule is written out in sgd_step",
                     "        return torch.optim.SGD([self.w], lr=0.1)"), source=REFERENCE["logreg"])
    assert "BinaryLogisticRegression.configure_optimizers uses torch.optim.SGD" in whats(LOGREG_WITHOUT_AUTOGRAD.check(source))
    source = mutate(("        self.automatic_optimization = False\n", "        self.automatic_optimization = True\n"),
                    source=REFERENCE["logreg"])
    assert "turns Lightning's automatic optimisation on" in whats(LOGREG_WITHOUT_AUTOGRAD.check(source))
    assert LOGREG_WITHOUT_AUTOGRAD.check(REFERENCE["logreg"]) == []  # SoftmaxRegression's optimizer is not in the scope
    source = mutate(('        self.register_buffer("w", torch.zeros(num_features))\n',
                     "        self.w = torch.nn.Parameter(torch.zeros(num_features), requires_grad=False)\n"),
                    source=REFERENCE["logreg"])
    assert LOGREG_WITHOUT_AUTOGRAD.check(source) == []  # a frozen Parameter is as good as a buffer


def test_evasion_dunders_called_by_hand_and_super_with_arguments():
    cases = {
        "import torch\ntorch.no_grad().__enter__()\n": "reads torch.no_grad().__enter__",
        "import torch\nsuper(torch.nn.Module, torch.nn.Linear).__setattr__('forward', print)\n": "__setattr__",
        "import torch\nengine = super(torch.nn.Linear, torch.nn.Linear)._conv_forward\n": "a private attribute",
        "import torch\ntorch.nn.functional.__dict__['conv2d'] = print\n":
            "changes an item of torch.nn.functional.__dict__",
        "import torch\ntorch.nn.functional.__all__.append('x')\n":
            "calls torch.nn.functional.__all__.append(), changing another package",
        "import warnings\nwarnings.filters.clear()\n": "calls warnings.filters.clear(), changing another package",
    }
    for source, expected in cases.items():
        assert expected in whats(scan(source, "mlp.py")), source


def test_evasion_system_modules_and_functions_reached_through_allowed_modules():
    cases = {
        "import torch\nops = torch.sys.modules['grader.sandbox.ops']\n": "reaches the sys module through torch",
        "import datamodules.pretrained\ndatamodules.pretrained.os.system('id')\n": "datamodules.pretrained.os",
        "import datamodules.base\ndatamodules.base.Path('results.json').write_text('{}')\n":
            "uses datamodules.base.Path",
        "from datamodules.base import Path\n": "imports Path from datamodules.base",
        "from datamodules import base\nmodules = [base]\nP = modules[0].Path\n": "uses modules[0].Path",
        "import numpy\nlib = numpy.ctypeslib.ctypes\n": "numpy.ctypeslib",
    }
    for source, expected in cases.items():
        assert expected in whats(scan(source, "mlp.py")), source
    assert scan("import torch\nx = torch.stack([torch.zeros(1)]).T\n", "mlp.py") == []


def test_evasion_annotations_evaluated_by_get_type_hints_and_dynamic_classes():
    source = "import typing\ndef f(x: \"__import__('os').system('id')\"):\n    pass\ntyping.get_type_hints(f)\n"
    assert "uses typing.get_type_hints" in whats(scan(source, "mlp.py"))
    source = "import dataclasses\nX = dataclasses.make_dataclass('X', ['a'])\n"
    assert "uses dataclasses.make_dataclass" in whats(scan(source, "mlp.py"))
    # without `from __future__ import annotations`, annotations are code that runs at definition time
    assert "calls eval()" in whats(scan("def f(x: eval('1')):\n    pass\n", "mlp.py"))


def test_evasion_a_shadowed_getattr_is_not_taken_for_an_attribute_access():
    source = "import torch\ndef getattr(obj, name):\n    return obj\nC = getattr(torch, '_C')\n"
    assert scan(source, "mlp.py") == []  # the submission's own getattr: harmless
    source = "import torch\nfrom operator import attrgetter as getattr\nC = getattr('_C')(torch)\n"
    assert "reads ._C, a private attribute through operator.attrgetter()" in whats(scan(source, "mlp.py"))


# ---------------------------------------------------------------------------
# The API
# ---------------------------------------------------------------------------
def test_a_violation_is_one_frozen_line_a_student_can_read():
    (violation,) = scan("import gc\n", "mlp.py")
    assert str(violation) == ("mlp.py, line 1: imports gc (introspection of the grader's process is not allowed "
                              "in a submission)")
    assert (violation.line, violation.what, violation.rule) == (1, "imports gc", "integrity")
    with pytest.raises(dataclasses.FrozenInstanceError):
        violation.line = 2


def test_uses_in_takes_scopes_by_name_by_method_and_by_base_class():
    source = mlp_with_backward("        return _grads(x, weight, grad_output)\n") + \
        "\n\ndef _grads(x, w, g):\n    return torch.autograd.grad(x, w, g)\n"
    assert uses_in(source, "LinearFunction.backward", AUTOGRAD)
    assert uses_in(source, "LinearFunction.*", AUTOGRAD)
    assert uses_in(source, "{torch.autograd.Function}.backward", AUTOGRAD)
    assert uses_in(source, "_grads", AUTOGRAD, why="no autograd")[0].why == "no autograd"
    assert uses_in(source, ("ReLUFunction.backward", "MLP.configure_optimizers"), AUTOGRAD) == []
    reached = whats(uses_in(source, "Linear", AUTOGRAD))  # Linear.forward calls LinearFunction.apply
    assert "_grads uses torch.autograd.grad (reached from Linear)" in reached
    assert uses_in(source, "no_such_function", AUTOGRAD) == []
    assert uses_in(REFERENCE["cnn"], ("conv2d", "max_pool2d"), TORCH_CONV_AND_POOL) == []
    with pytest.raises(ValueError):
        uses_in(source, "not a spec!", AUTOGRAD)


def test_lab_rules_cover_every_lab_and_name_the_rule():
    from grader.course import LABS as REGISTERED

    assert set(LAB_RULES) == set(REGISTERED)
    assert LAB_RULES["mlp"] == (HAND_WRITTEN_BACKWARD, OWN_SCALAR_AUTOGRAD)
    assert LAB_RULES["cnn"] == (OWN_CONV_AND_POOL, OWN_BATCH_NORM)
    with pytest.raises(ValueError, match="no rules for lab 'nope'"):
        lab_rules("nope", "")
    broken = check(cnn_conv2d_returning("F.conv2d(x, weight)") + "\nimport os\n", "cnn.py", "cnn")
    assert [v.rule for v in broken] == ["own convolution and pooling", "integrity"]


def test_unreadable_sources_are_one_violation_and_no_scoped_report():
    (violation,) = scan("def broken(:\n", "logreg.py")
    assert violation.what.startswith("cannot be read as Python source: SyntaxError")
    assert LOGREG_WITHOUT_AUTOGRAD.check("def broken(:\n") == []
    assert scan("x = 1\0\n", "logreg.py")[0].what.startswith("cannot be read as Python source")


def test_a_byte_order_mark_is_ignored_and_nesting_too_deep_to_follow_counts_as_foreign():
    assert scan("\ufeff" + REFERENCE["logreg"], "logreg.py") == []
    assert scan(b"\xef\xbb\xbf" + REFERENCE["logreg"].encode(), "logreg.py") == []
    source = "import torch\nx = torch" + "[0]" * 100 + "\nx.forward = None\n"
    assert "changes x.forward" in whats(scan(source, "mlp.py"))


def test_the_policy_is_fast_on_the_biggest_reference_and_on_a_longer_file():
    biggest = max(REFERENCE.values(), key=lambda s: s.count("\n"))
    longer = REFERENCE["mlp"] + REFERENCE["cnn"].split("from labs.common import", 1)[1].split("\n", 1)[1]
    assert biggest.count("\n") > 400 and longer.count("\n") > 700
    for source, lab in ((biggest, "mlp"), (longer, "cnn")):
        cpu = []
        for _ in range(5):
            policy._analyse.cache_clear()  # no cached analysis: the whole work each time
            start = time.process_time()
            check(source, "x.py", lab)
            cpu.append(time.process_time() - start)
        assert min(cpu) < 0.050, cpu
