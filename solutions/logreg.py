"""Lab 1 — from the perceptron to softmax regression.

Notation (lecture notes, STAT 453 L03–L07):
- x: one example, a feature vector of length D;  X: a batch of shape (N, D)
- w: weights of shape (D,) (binary) or the rows of a layer (C, D) (C classes); b: bias
- z = wᵀx + b: the net input, or *logits*;  a = σ(z): the activation, a probability
- y: the true label, in {0, 1} (binary) or {0, ..., C-1} (C classes)

This is the reference. ``litlabs release`` makes the student's stub from it: each region between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` becomes ``raise NotImplementedError`` between
``### BEGIN YOUR SOLUTION`` and ``### END YOUR SOLUTION``; the ``# TODO`` comment above it stays and
says what to do. Do not change the signatures: the grader calls these functions by name.
"""
from __future__ import annotations

import lightning as L
import torch

from labs.common import EpochMetrics


# ---------------------------------------------------------------------------
# Part 1: the perceptron
# ---------------------------------------------------------------------------
def perceptron_step(w, b, x, y, lr=1.0):
    """Apply Rosenblatt's perceptron rule to one example.

    The perceptron predicts ŷ = 1 if wᵀx + b > 0 and ŷ = 0 otherwise. On a
    mistake it moves the boundary towards the example: err = y − ŷ (−1, 0 or 1),
    then w := w + lr·err·x and b := b + lr·err. When it is right, nothing changes.

    Inputs:
    - w: weights, tensor of shape (D,)
    - b: bias, tensor of shape ()
    - x: one example, tensor of shape (D,)
    - y: its label, 0 or 1 (a number or a tensor of shape ())
    - lr: learning rate η

    Returns a tuple (w_new, b_new) of the same shapes as (w, b). Do not modify
    w or b in place.
    """
    # TODO: predict ŷ with a threshold at 0, compute err = y − ŷ, and return the updated (w, b).
    ### BEGIN SOLUTION
    z = torch.dot(w, x) + b
    y_hat = (z > 0).to(w.dtype)
    err = y - y_hat
    return w + lr * err * x, b + lr * err
    ### END SOLUTION


# ---------------------------------------------------------------------------
# Part 2: the logistic neuron a = σ(wᵀx + b)
# ---------------------------------------------------------------------------
def sigmoid(z):
    """The logistic sigmoid σ(z) = 1 / (1 + e^(−z)), elementwise.

    Inputs:
    - z: tensor of any shape and floating dtype

    Returns a tensor of the same shape and dtype with values in [0, 1]. It must
    stay finite for any z: e^(−z) overflows for z ≈ −1000, so never evaluate e
    to a large positive power.
    """
    # TODO: compute σ(z) using only e^(−|z|), which never overflows (treat z ≥ 0 and z < 0 separately).
    ### BEGIN SOLUTION
    e = torch.exp(-z.abs())
    return torch.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    ### END SOLUTION


def binary_cross_entropy(logits, targets):
    """Mean binary cross-entropy computed from logits.

    With a = σ(z), the negative Bernoulli log-likelihood of one example is
    L = −[y·log a + (1 − y)·log(1 − a)]. Written in terms of z it becomes
    L = max(z, 0) − z·y + log(1 + e^(−|z|)), which is finite for any z.

    Inputs:
    - logits: tensor z of shape (N,)
    - targets: tensor y of shape (N,) with values in {0, 1} (any dtype)

    Returns a scalar tensor (shape ()): the mean of L over the N examples.
    """
    # TODO: return the mean loss over the batch, computed from the logits without taking log(σ(z)) directly.
    ### BEGIN SOLUTION
    targets = targets.to(logits.dtype)
    losses = logits.clamp_min(0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))
    return losses.mean()
    ### END SOLUTION


def logistic_gradients(x, y, w, b):
    """Gradient of the mean binary cross-entropy of logistic regression.

    Forward: z = Xw + b, a = σ(z), L = mean over i of BCE(a_i, y_i).
    The chain rule gives ∂L_i/∂z_i = a_i − y_i, so
    ∂L/∂w = (1/N) Σ_i (a_i − y_i)·x_i  and  ∂L/∂b = (1/N) Σ_i (a_i − y_i).

    Inputs:
    - x: tensor of shape (N, D)
    - y: tensor of shape (N,) with values in {0, 1}
    - w: tensor of shape (D,)
    - b: tensor of shape ()

    Returns a tuple (grad_w, grad_b) with grad_w of shape (D,) and grad_b of
    shape (), in the dtype of w. Use no autograd here: write the formula.
    """
    # TODO: compute a = σ(Xw + b), the errors a − y, and average their products with x over the batch.
    ### BEGIN SOLUTION
    a = sigmoid(x @ w + b)
    err = a - y.to(a.dtype)
    grad_w = x.T @ err / x.shape[0]
    grad_b = err.mean()
    return grad_w, grad_b
    ### END SOLUTION


# ---------------------------------------------------------------------------
# Part 3: softmax regression
# ---------------------------------------------------------------------------
def softmax(logits):
    """Softmax along the class dimension: a_j = e^(z_j) / Σ_k e^(z_k).

    Inputs:
    - logits: tensor of shape (N, C)

    Returns probas, a tensor of shape (N, C) whose rows are non-negative and
    sum to 1. Subtracting each row's maximum first changes nothing
    mathematically and keeps e^z from overflowing.
    """
    # TODO: shift each row by its maximum, exponentiate, and normalise each row to sum to 1.
    ### BEGIN SOLUTION
    shifted = logits - logits.max(dim=1, keepdim=True).values
    exp = torch.exp(shifted)
    return exp / exp.sum(dim=1, keepdim=True)
    ### END SOLUTION


def cross_entropy(logits, targets):
    """Mean multi-class cross-entropy from logits and integer labels.

    For one example with true class t: L = −log a_t = −z_t + log Σ_k e^(z_k).

    Inputs:
    - logits: tensor of shape (N, C)
    - targets: int64 tensor of shape (N,) with values in {0, ..., C-1}

    Returns a scalar tensor (shape ()): the mean of L over the N examples. It
    must be finite for logits of ±1000 (use the log-sum-exp trick).
    """
    # TODO: compute log-probabilities with the log-sum-exp trick, pick each example's true class, average.
    ### BEGIN SOLUTION
    shifted = logits - logits.max(dim=1, keepdim=True).values
    log_probas = shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))
    picked = log_probas[torch.arange(logits.shape[0]), targets]
    return -picked.mean()
    ### END SOLUTION


# ---------------------------------------------------------------------------
# Part 4: the models as LightningModules
# ---------------------------------------------------------------------------
class BinaryLogisticRegression(L.LightningModule):
    """Logistic regression trained by the hand-derived SGD rule, without autograd.

    Lightning's *manual optimisation* is switched on, so Lightning calls
    ``training_step`` and leaves the update to us; ``sgd_step`` applies
    w := w − lr·∂L/∂w and b := b − lr·∂L/∂b using ``logistic_gradients``.

    Inputs to ``forward``: images or features of shape (N, ...), flattened to (N, D).
    """

    def __init__(self, num_features: int = 784, lr: float = 0.1):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        # Buffers, not Parameters: nothing here is learned through autograd.
        self.register_buffer("w", torch.zeros(num_features))
        self.register_buffer("b", torch.zeros(()))
        self.metrics = EpochMetrics(num_classes=None)  # binary: logits (N,), targets 0/1

    def forward(self, x):
        """Return the logits z = Xw + b, of shape (N,)."""
        return x.flatten(1) @ self.w + self.b

    def sgd_step(self, x, y):
        """One SGD update on the batch (x of shape (N, ...), y of shape (N,)).

        Returns the mean binary cross-entropy *before* the update, a scalar tensor.
        """
        x = x.flatten(1)
        loss = binary_cross_entropy(self(x), y)
        # TODO: get (grad_w, grad_b) from logistic_gradients and step w and b against the gradient, scaled by
        # self.hparams.lr.
        ### BEGIN SOLUTION
        grad_w, grad_b = logistic_gradients(x, y, self.w, self.b)
        self.w -= self.hparams.lr * grad_w
        self.b -= self.hparams.lr * grad_b
        ### END SOLUTION
        return loss

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = self.sgd_step(x, y)
        self.metrics.update("fit", loss, logits, y)
        return loss

    def _eval_step(self, batch, stage):
        x, y = batch
        logits = self(x)
        self.metrics.update(stage, binary_cross_entropy(logits, y), logits, y)

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def on_train_epoch_end(self):
        self.metrics.log_epoch(self, "fit")
        # Manual optimisation has no optimizer, so keep DDP replicas equal by hand:
        # each process stepped on its own shard, so average w and b across them.
        if self.trainer.world_size > 1:
            for tensor in (self.w, self.b):
                tensor.copy_(self.all_gather(tensor).mean(dim=0))

    def on_validation_epoch_end(self):
        self.metrics.log_epoch(self, "val")

    def on_test_epoch_end(self):
        self.metrics.log_epoch(self, "test")

    def configure_optimizers(self):
        return None  # the update rule is written out in sgd_step


class SoftmaxRegression(L.LightningModule):
    """Multinomial (softmax) logistic regression: logits = XWᵀ + b, C classes.

    Inputs to ``forward``: tensor of shape (N, ...) such as images (N, 1, 28, 28),
    flattened to (N, num_features). Output: logits of shape (N, num_classes).
    Trained with ``cross_entropy`` and plain SGD.
    """

    def __init__(self, num_features: int = 784, num_classes: int = 10, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        # TODO: create self.linear, a torch.nn.Linear layer from num_features inputs to num_classes outputs.
        ### BEGIN SOLUTION
        self.linear = torch.nn.Linear(num_features, num_classes)
        ### END SOLUTION
        self.metrics = EpochMetrics(num_classes)

    def forward(self, x):
        """Return logits of shape (N, num_classes) for x of shape (N, ...)."""
        # TODO: flatten every example to a vector of num_features values and apply the linear layer.
        ### BEGIN SOLUTION
        return self.linear(x.flatten(start_dim=1))
        ### END SOLUTION

    def _shared_step(self, batch, stage):
        x, y = batch
        logits = self(x)
        # TODO: compute the loss with this lab's cross_entropy.
        ### BEGIN SOLUTION
        loss = cross_entropy(logits, y)
        ### END SOLUTION
        self.metrics.update(stage, loss, logits, y)
        return loss

    # Lightning's hooks, written out; from Lab 2 on, models inherit these six from labs.common.ClassifierHooks.
    def training_step(self, batch, batch_idx):
        return self._shared_step(batch, "fit")

    def validation_step(self, batch, batch_idx):
        self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._shared_step(batch, "test")

    def on_train_epoch_end(self):
        self.metrics.log_epoch(self, "fit")

    def on_validation_epoch_end(self):
        self.metrics.log_epoch(self, "val")

    def on_test_epoch_end(self):
        self.metrics.log_epoch(self, "test")

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)
