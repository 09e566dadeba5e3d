"""Lab logreg: mistakes and correct alternatives written by an independent student.

A helper given the handout, the stub and the reference -- not the checks -- wrote them as students
make them (``kind``, ``why``). ``litlabs audit`` grades them with the pinned table beside
(``grader/mistakes/logreg.py``); the test suite grades only the pinned table (each of these needs a
full grading, trainings included).
"""

from grader.instructor.audit import Alternative, Mistake

MISTAKES = [
    Mistake(
        "perceptron predicts 1 at z == 0 (threshold >= 0)",
        replace=[
            ("    y_hat = (z > 0).to(w.dtype)\n", "    y_hat = (z >= 0).to(w.dtype)\n"),
        ],
        kind="edge point",
        why="copied Raschka's Perceptron.predict, np.where(net_input >= 0.0, 1, ...)",
    ),
    Mistake(
        "perceptron error written as prediction minus target",
        replace=[
            ("    err = y - y_hat\n", "    err = y_hat - y\n"),
        ],
        kind="sign",
        why="carried over the a - y of the logistic gradient into the perceptron rule, which adds lr*err*x",
    ),
    Mistake(
        "perceptron uses the ADALINE delta rule err = y - z",
        replace=[
            (
                "    y_hat = (z > 0).to(w.dtype)\n    err = y - y_hat\n",
                "    err = y - z  # learn from how far off the net input is\n",
            ),
        ],
        kind="wrong rule",
        why="mixed up Rosenblatt's rule with Widrow-Hoff from the same chapter: it updates even when right",
    ),
    Mistake(
        "perceptron never updates the bias",
        replace=[
            ("    return w + lr * err * x, b + lr * err\n", "    return w + lr * err * x, b\n"),
        ],
        kind="missing update",
        why="treated b as a fixed offset and only returned the new weights",
    ),
    Mistake(
        "perceptron prediction leaves out the bias",
        replace=[
            ("    z = torch.dot(w, x) + b\n    y_hat", "    z = torch.dot(w, x)\n    y_hat"),
        ],
        kind="wrong rule",
        why="wrote z = w.x as in the slide that folds b into w (x_0 = 1), but this lab keeps b separate",
    ),
    Mistake(
        "perceptron rule 'if y*z <= 0: w += y*x' used with 0/1 labels",
        replace=[
            (
                "    y_hat = (z > 0).to(w.dtype)\n    err = y - y_hat\n    return w + lr * err * x, b + lr * err\n",
                "    if y * z <= 0:\n        return w + lr * y * x, b + lr * y\n    return w.clone(), b.clone()\n",
            ),
        ],
        kind="wrong rule",
        why="copied the +-1 formulation; with y = 0 a false positive never moves w or b",
    ),
    Mistake(
        "perceptron predicts with sigmoid(z) > 0.5",
        replace=[
            ("    y_hat = (z > 0).to(w.dtype)\n", "    y_hat = (sigmoid(z) > 0.5).to(w.dtype)\n"),
        ],
        kind="edge point",
        why="reused the logistic neuron's decision rule; sigmoid rounds to 0.5 for tiny positive z",
    ),
    Mistake(
        "perceptron keeps the prediction as a bool tensor",
        replace=[
            ("    y_hat = (z > 0).to(w.dtype)\n", "    y_hat = z > 0\n"),
        ],
        kind="dtype",
        why="dropped the .to(dtype) after the comparison; y - bool tensor is not supported",
    ),
    Mistake(
        "sigmoid computed naively as 1 / (1 + exp(-z))",
        replace=[
            (
                "    e = torch.exp(-z.abs())\n    return torch.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))\n",
                "    return 1.0 / (1.0 + torch.exp(-z))\n",
            ),
        ],
        kind="numerical stability",
        why="the formula from the notes; exp(-z) overflows to inf for very negative z and tiny values become 0",
    ),
    Mistake(
        "sigmoid computed as exp(z) / (1 + exp(z))",
        replace=[
            (
                "    e = torch.exp(-z.abs())\n    return torch.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))\n",
                "    return torch.exp(z) / (1.0 + torch.exp(z))\n",
            ),
        ],
        kind="numerical stability",
        why="the other textbook form; inf / inf = nan for large positive z",
    ),
    Mistake(
        "sigmoid forgets the z < 0 branch (returns sigma(|z|))",
        replace=[
            (
                "    e = torch.exp(-z.abs())\n    return torch.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))\n",
                "    e = torch.exp(-z.abs())\n    return 1.0 / (1.0 + e)\n",
            ),
        ],
        kind="wrong formula",
        why="computed with e^(-|z|) as told but only wrote the z >= 0 case",
    ),
    Mistake(
        "sigmoid negative branch written as 1 - 1/(1 + e)",
        replace=[
            (
                "    e = torch.exp(-z.abs())\n    return torch.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))\n",
                "    e = torch.exp(-z.abs())\n    return torch.where(z >= 0, 1.0 / (1.0 + e), 1.0 - 1.0 / (1.0 + e))\n",
            ),
        ],
        kind="numerical stability",
        why="used sigma(-t) = 1 - sigma(t); catastrophic cancellation gives exactly 0 for z < -17 in float32",
    ),
    Mistake(
        "sigmoid output allocated with torch.empty(z.shape)",
        replace=[
            (
                "    e = torch.exp(-z.abs())\n    return torch.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))\n",
                "    out = torch.empty(z.shape)\n    pos = z >= 0\n    out[pos] = 1.0 / (1.0 + torch.exp(-z[pos]))\n    ez = torch.exp(z[~pos])\n    out[~pos] = ez / (1.0 + ez)\n    return out\n",
            ),
        ],
        kind="dtype/device",
        why="the StackOverflow masked version allocates with default dtype and device: float64 input gives float32 output",
    ),
    Mistake(
        "BCE computed as -[y log sigma(z) + (1-y) log(1 - sigma(z))]",
        replace=[
            (
                "    losses = logits.clamp_min(0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))\n",
                "    a = sigmoid(logits)\n    losses = -(targets * torch.log(a) + (1 - targets) * torch.log(1 - a))\n",
            ),
        ],
        kind="numerical stability",
        why="the likelihood formula straight from the notes; log(0) = -inf at logits of +-1000",
    ),
    Mistake(
        "BCE clips probabilities with eps = 1e-7",
        replace=[
            (
                "    losses = logits.clamp_min(0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))\n",
                "    a = sigmoid(logits)\n    eps = 1e-7\n    losses = -(targets * torch.log(a + eps) + (1 - targets) * torch.log(1 - a + eps))\n",
            ),
        ],
        kind="numerical stability",
        why="Keras-style epsilon; finite, but a logit of -1000 on a positive costs 16.1 instead of 1000",
    ),
    Mistake(
        "BCE stable formula written without the absolute value",
        replace=[
            (
                "    losses = logits.clamp_min(0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))\n",
                "    losses = logits.clamp_min(0) - logits * targets + torch.log1p(torch.exp(-logits))\n",
            ),
        ],
        kind="wrong formula",
        why="wrote max(z,0) - zy + log(1 + e^(-z)): wrong for every z < 0 and overflows there",
    ),
    Mistake(
        "BCE uses the +-1-label logistic loss log(1 + e^(-y z))",
        replace=[
            (
                "    losses = logits.clamp_min(0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))\n",
                "    losses = torch.log1p(torch.exp(-targets * logits))\n",
            ),
        ],
        kind="wrong formula",
        why="copied the margin form of the logistic loss, which assumes y in {-1, 1}; y = 0 gives log 2",
    ),
    Mistake(
        "BCE returns the per-example losses (no mean)",
        replace=[
            ("    return losses.mean()\n", "    return losses\n"),
        ],
        kind="shape",
        why="like reduction='none'; the docstring asks for a scalar",
    ),
    Mistake(
        "BCE max(z, 0) written as torch.max(logits, 0)[0]",
        replace=[
            ("logits.clamp_min(0) - logits * targets", "torch.max(logits, 0)[0] - logits * targets"),
        ],
        kind="wrong formula",
        why="np.maximum vs torch.max confusion: torch.max(t, 0) reduces over dim 0, so every example gets the batch max",
    ),
    Mistake(
        "logistic gradients summed over the batch, not averaged",
        replace=[
            ("    grad_w = x.T @ err / x.shape[0]\n", "    grad_w = x.T @ err\n"),
            ("    grad_b = err.mean()\n", "    grad_b = err.sum()\n"),
        ],
        kind="reduction",
        why="Raschka's code uses X.T.dot(errors) without 1/N",
    ),
    Mistake(
        "bias gradient summed while the weight gradient is averaged",
        replace=[
            ("    grad_b = err.mean()\n", "    grad_b = err.sum()\n"),
        ],
        kind="missing factor",
        why="divided grad_w by N but wrote grad_b = errors.sum() as in the textbook code",
    ),
    Mistake(
        "logistic error written as y - a (returns minus the gradient)",
        replace=[
            ("    err = a - y.to(a.dtype)\n", "    err = y.to(a.dtype) - a\n"),
        ],
        kind="sign",
        why="copied errors = y - output from Raschka's LogisticRegressionGD, where the update is +=",
    ),
    Mistake(
        "logistic gradient keeps the sigmoid derivative a(1-a)",
        replace=[
            ("    err = a - y.to(a.dtype)\n", "    err = (a - y.to(a.dtype)) * a * (1 - a)\n"),
        ],
        kind="extra factor",
        why="chain rule of the MSE loss (ADALINE with sigmoid); for BCE the a(1-a) cancels",
    ),
    Mistake(
        "logistic gradient divided by the number of features D",
        replace=[
            ("    grad_w = x.T @ err / x.shape[0]\n", "    grad_w = x.T @ err / x.shape[1]\n"),
        ],
        kind="shape",
        why="x.shape[1] instead of x.shape[0]: averaged over the wrong axis",
    ),
    Mistake(
        "logistic grad_w as (x * err).mean(0): err broadcast along features",
        replace=[
            ("    grad_w = x.T @ err / x.shape[0]\n", "    grad_w = (x * err).mean(0)\n"),
        ],
        kind="shape",
        why="forgot err[:, None]; (N, D) * (N,) broadcasts on the last axis (wrong when N == D, crash otherwise)",
    ),
    Mistake(
        "logistic gradient without the sigmoid (linear-regression gradient)",
        replace=[
            ("    a = sigmoid(x @ w + b)\n", "    a = x @ w + b\n"),
        ],
        kind="wrong formula",
        why="used z - y as the error, the ADALINE / least-squares gradient",
    ),
    Mistake(
        "logistic gradients cast everything to float32",
        replace=[
            (
                "    a = sigmoid(x @ w + b)\n",
                "    x, w, b = x.float(), w.float(), b.float()\n    a = sigmoid(x @ w + b)\n",
            ),
        ],
        kind="dtype/device",
        why="fixed a Double/Float mismatch with .float(); the docstring wants the dtype of w",
    ),
    Mistake(
        "logistic grad_b returned with shape (1,)",
        replace=[
            ("    grad_b = err.mean()\n", "    grad_b = err.sum(dim=0, keepdim=True) / x.shape[0]\n"),
        ],
        kind="shape",
        why="sum(dim=0, keepdim=True) habit; the docstring asks for shape ()",
    ),
    Mistake(
        "logistic gradients computed with autograd",
        replace=[
            (
                "    a = sigmoid(x @ w + b)\n    err = a - y.to(a.dtype)\n    grad_w = x.T @ err / x.shape[0]\n    grad_b = err.mean()\n",
                "    w = w.detach().clone().requires_grad_(True)\n    b = b.detach().clone().requires_grad_(True)\n    loss = binary_cross_entropy(x @ w + b, y)\n    grad_w, grad_b = torch.autograd.grad(loss, (w, b))\n",
            ),
        ],
        kind="autograd forbidden",
        why="checked the formula with backward and handed that in; breaks under no_grad (the docstring says no autograd)",
    ),
    Mistake(
        "softmax without subtracting the row maximum",
        replace=[
            (
                "    shifted = logits - logits.max(dim=1, keepdim=True).values\n    exp = torch.exp(shifted)\n",
                "    exp = torch.exp(logits)\n",
            ),
        ],
        kind="numerical stability",
        why="wrote e^z / sum e^z straight from the definition; e^1000 = inf, inf/inf = nan",
    ),
    Mistake(
        "softmax normalised along dim 0 (over the batch)",
        replace=[
            (
                "    shifted = logits - logits.max(dim=1, keepdim=True).values\n    exp = torch.exp(shifted)\n    return exp / exp.sum(dim=1, keepdim=True)\n",
                "    shifted = logits - logits.max(dim=0, keepdim=True).values\n    exp = torch.exp(shifted)\n    return exp / exp.sum(dim=0, keepdim=True)\n",
            ),
        ],
        kind="shape",
        why="the well-known numpy snippet uses axis=0 for a column of scores",
    ),
    Mistake(
        "softmax shifts by the global maximum instead of each row's",
        replace=[
            (
                "    shifted = logits - logits.max(dim=1, keepdim=True).values\n    exp = torch.exp(shifted)\n",
                "    shifted = logits - logits.max()\n    exp = torch.exp(shifted)\n",
            ),
        ],
        kind="numerical stability",
        why="logits.max() is enough for one example; a row far below the batch max underflows to 0/0",
    ),
    Mistake(
        "softmax row sum without keepdim",
        replace=[
            ("    return exp / exp.sum(dim=1, keepdim=True)\n", "    return exp / exp.sum(dim=1)\n"),
        ],
        kind="shape",
        why="(N, C) / (N,) broadcasts along the classes: wrong when N == C, crash otherwise",
    ),
    Mistake(
        "softmax normalised by the sum over the whole batch",
        replace=[
            ("    return exp / exp.sum(dim=1, keepdim=True)\n", "    return exp / exp.sum()\n"),
        ],
        kind="reduction",
        why="exp.sum() without a dim: the whole (N, C) tensor sums to 1, not each row",
    ),
    Mistake(
        "cross-entropy as log(softmax(z))",
        replace=[
            (
                "    shifted = logits - logits.max(dim=1, keepdim=True).values\n    log_probas = shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))\n",
                "    log_probas = torch.log(softmax(logits))\n",
            ),
        ],
        kind="numerical stability",
        why="reused the stable softmax and took its log; a probability of 0 gives log 0 = -inf",
    ),
    Mistake(
        "cross-entropy log-sum-exp trick without adding m back",
        replace=[
            (
                "    shifted = logits - logits.max(dim=1, keepdim=True).values\n    log_probas = shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))\n",
                "    m = logits.max(dim=1, keepdim=True).values\n    lse = torch.log(torch.exp(logits - m).sum(dim=1, keepdim=True))\n    log_probas = logits - lse\n",
            ),
        ],
        kind="numerical stability",
        why="computed log sum e^(z - m) and forgot the + m of the identity",
    ),
    Mistake(
        "cross-entropy picks log_probas[:, targets] (an N x N block)",
        replace=[
            (
                "    picked = log_probas[torch.arange(logits.shape[0]), targets]\n",
                "    picked = log_probas[:, targets]\n",
            ),
        ],
        kind="wrong index",
        why="numpy-style column indexing instead of pairing rows with targets",
    ),
    Mistake(
        "cross-entropy one-hot built with F.one_hot(targets) (no num_classes)",
        replace=[
            (
                "    picked = log_probas[torch.arange(logits.shape[0]), targets]\n",
                "    one_hot = torch.nn.functional.one_hot(targets).to(log_probas.dtype)\n    picked = (one_hot * log_probas).sum(dim=1)\n",
            ),
        ],
        kind="shape",
        why="one_hot infers C from the largest label in the batch; fails when the last class is absent",
    ),
    Mistake(
        "cross-entropy returns the mean log-likelihood (no minus)",
        replace=[
            ("    return -picked.mean()\n", "    return picked.mean()\n"),
        ],
        kind="sign",
        why="maximising the likelihood vs minimising its negative: the minus was lost",
    ),
    Mistake(
        "cross-entropy averaged over classes as well as examples",
        replace=[
            (
                "    picked = log_probas[torch.arange(logits.shape[0]), targets]\n    return -picked.mean()\n",
                "    one_hot = torch.nn.functional.one_hot(targets, logits.shape[1]).to(log_probas.dtype)\n    return -(one_hot * log_probas).mean()\n",
            ),
        ],
        kind="reduction",
        why="-(one_hot * log_probas).mean() divides by N*C instead of N",
    ),
    Mistake(
        "cross-entropy gathers along dim 0",
        replace=[
            (
                "    picked = log_probas[torch.arange(logits.shape[0]), targets]\n",
                "    picked = log_probas.gather(0, targets.unsqueeze(1)).squeeze(1)\n",
            ),
        ],
        kind="wrong index",
        why="gather(0, ...) picks log_probas[target_i, 0], not log_probas[i, target_i]",
    ),
    Mistake(
        "cross-entropy one-hot made with torch.eye(C) on the CPU",
        replace=[
            (
                "    picked = log_probas[torch.arange(logits.shape[0]), targets]\n",
                "    one_hot = torch.eye(logits.shape[1])[targets]\n    picked = (one_hot * log_probas).sum(dim=1)\n",
            ),
        ],
        kind="dtype/device",
        why="torch.eye(C)[targets] is created on the default device; fails for CUDA logits",
    ),
    Mistake(
        "sgd_step uses a hard-coded learning rate 0.01",
        replace=[
            (
                "        grad_w, grad_b = logistic_gradients(x, y, self.w, self.b)\n        self.w -= self.hparams.lr * grad_w\n        self.b -= self.hparams.lr * grad_b\n",
                "        grad_w, grad_b = logistic_gradients(x, y, self.w, self.b)\n        self.w -= 0.01 * grad_w\n        self.b -= 0.01 * grad_b\n",
            ),
        ],
        kind="hyper-parameter",
        why="Raschka's default eta=0.01 instead of self.hparams.lr",
    ),
    Mistake(
        "sgd_step computes the bias gradient after w has moved",
        replace=[
            (
                "        grad_w, grad_b = logistic_gradients(x, y, self.w, self.b)\n        self.w -= self.hparams.lr * grad_w\n        self.b -= self.hparams.lr * grad_b\n",
                "        self.w -= self.hparams.lr * logistic_gradients(x, y, self.w, self.b)[0]\n        self.b -= self.hparams.lr * logistic_gradients(x, y, self.w, self.b)[1]\n",
            ),
        ],
        kind="wrong update order",
        why="called logistic_gradients once per parameter, so b's gradient sees the updated w",
    ),
    Mistake(
        "sgd_step updates local copies, the buffers never change",
        replace=[
            (
                "        grad_w, grad_b = logistic_gradients(x, y, self.w, self.b)\n        self.w -= self.hparams.lr * grad_w\n        self.b -= self.hparams.lr * grad_b\n",
                "        w, b = self.w, self.b\n        grad_w, grad_b = logistic_gradients(x, y, w, b)\n        w = w - self.hparams.lr * grad_w\n        b = b - self.hparams.lr * grad_b\n",
            ),
        ],
        kind="missing update",
        why="w = w - lr*g rebinds a local name; the module's w and b stay at zero",
    ),
    Mistake(
        "sgd_step returns the loss after the update",
        replace=[
            (
                "        grad_w, grad_b = logistic_gradients(x, y, self.w, self.b)\n        self.w -= self.hparams.lr * grad_w\n        self.b -= self.hparams.lr * grad_b\n",
                "        grad_w, grad_b = logistic_gradients(x, y, self.w, self.b)\n        self.w -= self.hparams.lr * grad_w\n        self.b -= self.hparams.lr * grad_b\n        loss = binary_cross_entropy(self(x), y)\n",
            ),
        ],
        kind="return value",
        why="recomputed the loss to 'report the improvement'; the docstring asks for the loss before",
    ),
    Mistake(
        "sgd_step does one update per example (online SGD)",
        replace=[
            (
                "        grad_w, grad_b = logistic_gradients(x, y, self.w, self.b)\n        self.w -= self.hparams.lr * grad_w\n        self.b -= self.hparams.lr * grad_b\n",
                "        for i in range(x.shape[0]):\n            grad_w, grad_b = logistic_gradients(x[i:i + 1], y[i:i + 1], self.w, self.b)\n            self.w -= self.hparams.lr * grad_w\n            self.b -= self.hparams.lr * grad_b\n",
            ),
        ],
        kind="wrong rule",
        why="copied the per-example loop of the perceptron / Raschka's SGD; the docstring asks for one step on the batch",
    ),
    Mistake(
        "sgd_step divides the averaged gradient by N again",
        replace=[
            (
                "        grad_w, grad_b = logistic_gradients(x, y, self.w, self.b)\n        self.w -= self.hparams.lr * grad_w\n        self.b -= self.hparams.lr * grad_b\n",
                "        grad_w, grad_b = logistic_gradients(x, y, self.w, self.b)\n        self.w -= self.hparams.lr * grad_w / x.shape[0]\n        self.b -= self.hparams.lr * grad_b / x.shape[0]\n",
            ),
        ],
        kind="extra factor",
        why="thought logistic_gradients returns a sum and scaled by lr / N",
    ),
    Mistake(
        "Linear layer built as Linear(num_classes, num_features)",
        replace=[
            (
                "        self.linear = torch.nn.Linear(num_features, num_classes)\n",
                "        self.linear = torch.nn.Linear(num_classes, num_features)\n",
            ),
        ],
        kind="architecture",
        why="W is (C, D) in the notes, so the student passed (C, D) to nn.Linear",
    ),
    Mistake(
        "Linear layer without bias",
        replace=[
            (
                "        self.linear = torch.nn.Linear(num_features, num_classes)\n",
                "        self.linear = torch.nn.Linear(num_features, num_classes, bias=False)\n",
            ),
        ],
        kind="architecture",
        why="followed the slide that folds the bias into W, z = Wx; the handout's z = Wx + b has a bias",
    ),
    Mistake(
        "Linear layer hard-coded as Linear(784, 10)",
        replace=[
            (
                "        self.linear = torch.nn.Linear(num_features, num_classes)\n",
                "        self.linear = torch.nn.Linear(784, 10)\n",
            ),
        ],
        kind="argument ignored",
        why="MNIST sizes written in; num_features and num_classes ignored",
    ),
    Mistake(
        "hand-made W and b Parameters instead of a torch.nn.Linear self.linear",
        replace=[
            (
                "        self.linear = torch.nn.Linear(num_features, num_classes)\n",
                "        self.W = torch.nn.Parameter(torch.randn(num_classes, num_features) * 0.01)\n        self.b = torch.nn.Parameter(torch.zeros(num_classes))\n",
            ),
            (
                "        return self.linear(x.flatten(start_dim=1))\n",
                "        return x.flatten(start_dim=1) @ self.W.T + self.b\n",
            ),
        ],
        kind="layer class",
        why="wrote the model like the from-scratch notebook; the TODO asks for self.linear = nn.Linear",
    ),
    Mistake(
        "forward returns softmax probabilities instead of logits",
        replace=[
            (
                "        return self.linear(x.flatten(start_dim=1))\n",
                "        return softmax(self.linear(x.flatten(start_dim=1)))\n",
            ),
        ],
        kind="architecture",
        why="'softmax regression' so the model ends in softmax; cross_entropy then applies a second softmax",
    ),
    Mistake(
        "forward does not flatten the images",
        replace=[
            ("        return self.linear(x.flatten(start_dim=1))\n", "        return self.linear(x)\n"),
        ],
        kind="shape",
        why="passed x straight to the Linear layer; works for (N, D) vectors only",
    ),
    Mistake(
        "forward squeezes before flattening (batch of 1 breaks)",
        replace=[
            (
                "        return self.linear(x.flatten(start_dim=1))\n",
                "        return self.linear(x.squeeze().flatten(start_dim=1))\n",
            ),
        ],
        kind="shape",
        why="x.squeeze() to drop MNIST's channel also drops N when N = 1",
    ),
    Mistake(
        "forward flattens with x.view(-1, 784)",
        replace=[
            ("        return self.linear(x.flatten(start_dim=1))\n", "        return self.linear(x.view(-1, 784))\n"),
        ],
        kind="argument ignored",
        why="MNIST size hard-coded in the flatten; other num_features (digits 8x8) break",
    ),
    Mistake(
        "loss computed on detached logits",
        replace=[
            ("        loss = cross_entropy(logits, y)\n", "        loss = cross_entropy(logits.detach(), y)\n"),
        ],
        kind="autograd",
        why="copied the .detach() the metrics use; no gradient reaches the Linear layer",
    ),
    Mistake(
        "loss turned into a Python float with .item()",
        replace=[
            ("        loss = cross_entropy(logits, y)\n", "        loss = cross_entropy(logits, y).item()\n"),
        ],
        kind="return value",
        why="did .item() for logging; training_step must return a tensor that can be backpropagated",
    ),
    Mistake(
        "SoftmaxRegression trained with Adam",
        replace=[
            (
                "        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)\n",
                "        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)\n",
            ),
        ],
        kind="optimizer",
        why="Adam is the default in most tutorials; the handout says plain SGD",
    ),
    Mistake(
        "SoftmaxRegression SGD with momentum 0.9",
        replace=[
            (
                "        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)\n",
                "        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)\n",
            ),
        ],
        kind="optimizer",
        why="the PyTorch tutorial's SGD(lr, momentum=0.9); the handout says plain SGD",
    ),
    Mistake(
        "SoftmaxRegression optimizer lr hard-coded to 0.1",
        replace=[
            (
                "        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)\n",
                "        return torch.optim.SGD(self.parameters(), lr=0.1)\n",
            ),
        ],
        kind="hyper-parameter",
        why="tuned lr by hand in configure_optimizers; the lr argument is ignored",
    ),
    Mistake(
        "SoftmaxRegression default lr changed to 0.01",
        replace=[
            ("num_classes: int = 10, lr: float = 0.05", "num_classes: int = 10, lr: float = 0.01"),
        ],
        kind="hyper-parameter",
        why="lowered the default because the loss looked noisy; the signature says 0.05",
    ),
    Mistake(
        "SoftmaxRegression test_step records under 'val'",
        replace=[
            (
                '    def test_step(self, batch, batch_idx):\n        self._shared_step(batch, "test")\n',
                '    def test_step(self, batch, batch_idx):\n        self._shared_step(batch, "val")\n',
            ),
        ],
        kind="stage",
        why="copy-pasted validation_step; test metrics (test_acc) are never filled",
    ),
]

ALTERNATIVES = [
    Alternative(
        "perceptron_step with Python floats and an if, as in Raschka's Perceptron.fit",
        replace=[
            (
                "    y_hat = (z > 0).to(w.dtype)\n    err = y - y_hat\n    return w + lr * err * x, b + lr * err\n",
                "    prediction = 1.0 if float(z) > 0.0 else 0.0\n    update = lr * (float(y) - prediction)\n    return w + update * x, b + update\n",
            ),
        ],
    ),
    Alternative(
        "sigmoid by masked assignment into torch.empty_like (the StackOverflow stable sigmoid)",
        replace=[
            (
                "    e = torch.exp(-z.abs())\n    return torch.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))\n",
                "    out = torch.empty_like(z)\n    pos = z >= 0\n    out[pos] = 1.0 / (1.0 + torch.exp(-z[pos]))\n    ez = torch.exp(z[~pos])\n    out[~pos] = ez / (1.0 + ez)\n    return out\n",
            ),
        ],
    ),
    Alternative(
        "sigmoid as exp(log sigma(z)) with a hand-written stable log-sigmoid",
        replace=[
            (
                "    e = torch.exp(-z.abs())\n    return torch.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))\n",
                "    log_sigma = -((-z).clamp_min(0) + torch.log1p(torch.exp(-z.abs())))\n    return torch.exp(log_sigma)\n",
            ),
        ],
    ),
    Alternative(
        "BCE as y*softplus(-z) + (1-y)*softplus(z) with a stable softplus",
        replace=[
            (
                "    losses = logits.clamp_min(0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))\n",
                "    def softplus(t):\n        return t.clamp_min(0) + torch.log1p(torch.exp(-t.abs()))\n    losses = targets * softplus(-logits) + (1 - targets) * softplus(logits)\n",
            ),
        ],
    ),
    Alternative(
        "BCE as logaddexp(0, z) - z*y",
        replace=[
            (
                "    losses = logits.clamp_min(0) - logits * targets + torch.log1p(torch.exp(-logits.abs()))\n",
                "    losses = torch.logaddexp(torch.zeros_like(logits), logits) - logits * targets\n",
            ),
        ],
    ),
    Alternative(
        "logistic_gradients as a loop over the examples (the CSE 3521 notes' SGD sum)",
        replace=[
            (
                "    a = sigmoid(x @ w + b)\n    err = a - y.to(a.dtype)\n    grad_w = x.T @ err / x.shape[0]\n    grad_b = err.mean()\n    return grad_w, grad_b\n",
                "    n = x.shape[0]\n    grad_w = torch.zeros_like(w)\n    grad_b = torch.zeros_like(b)\n    for i in range(n):\n        a_i = sigmoid(torch.dot(x[i], w) + b)\n        err_i = a_i - y[i].to(a_i.dtype)\n        grad_w = grad_w + err_i * x[i]\n        grad_b = grad_b + err_i\n    return grad_w / n, grad_b / n\n",
            ),
        ],
    ),
    Alternative(
        "logistic_gradients with einsum and an explicit sum / N",
        replace=[
            (
                "    grad_w = x.T @ err / x.shape[0]\n    grad_b = err.mean()\n",
                "    n = len(err)\n    grad_w = torch.einsum('n,nd->d', err, x) / n\n    grad_b = err.sum() / n\n",
            ),
        ],
    ),
    Alternative(
        "softmax as exp(s - logsumexp(s)) on the amax-shifted logits s",
        replace=[
            (
                "    shifted = logits - logits.max(dim=1, keepdim=True).values\n    exp = torch.exp(shifted)\n    return exp / exp.sum(dim=1, keepdim=True)\n",
                "    s = logits - torch.amax(logits, dim=1, keepdim=True)\n    return torch.exp(s - torch.logsumexp(s, dim=1, keepdim=True))\n",
            ),
        ],
    ),
    Alternative(
        "cross_entropy as logsumexp minus the gathered true logit",
        replace=[
            (
                "    shifted = logits - logits.max(dim=1, keepdim=True).values\n    log_probas = shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))\n    picked = log_probas[torch.arange(logits.shape[0]), targets]\n    return -picked.mean()\n",
                "    lse = torch.logsumexp(logits, dim=1)\n    true_logit = logits.gather(1, targets.unsqueeze(1)).squeeze(1)\n    return (lse - true_logit).mean()\n",
            ),
        ],
    ),
    Alternative(
        "cross_entropy with m + log sum e^(z-m) and a one-hot mask",
        replace=[
            (
                "    shifted = logits - logits.max(dim=1, keepdim=True).values\n    log_probas = shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))\n    picked = log_probas[torch.arange(logits.shape[0]), targets]\n    return -picked.mean()\n",
                "    m = logits.max(dim=1, keepdim=True).values\n    lse = m + torch.log(torch.exp(logits - m).sum(dim=1, keepdim=True))\n    one_hot = torch.nn.functional.one_hot(targets, num_classes=logits.shape[1]).to(logits.dtype)\n    return -((logits - lse) * one_hot).sum(dim=1).mean()\n",
            ),
        ],
    ),
    Alternative(
        "sgd_step reassigns the buffers out of place",
        replace=[
            (
                "        grad_w, grad_b = logistic_gradients(x, y, self.w, self.b)\n        self.w -= self.hparams.lr * grad_w\n        self.b -= self.hparams.lr * grad_b\n",
                "        grad_w, grad_b = logistic_gradients(x, y, self.w, self.b)\n        lr = self.hparams.lr\n        self.w = self.w - lr * grad_w\n        self.b = self.b - lr * grad_b\n",
            ),
        ],
    ),
    Alternative(
        "SoftmaxRegression with keyword Linear and reshape(N, -1)",
        replace=[
            (
                "        self.linear = torch.nn.Linear(num_features, num_classes)\n",
                "        self.linear = torch.nn.Linear(in_features=num_features, out_features=num_classes, bias=True)\n",
            ),
            (
                "        return self.linear(x.flatten(start_dim=1))\n",
                "        return self.linear(x.reshape(x.shape[0], -1))\n",
            ),
        ],
    ),
    Alternative(
        "SoftmaxRegression forward through torch.nn.functional.linear with the layer's weight and bias",
        replace=[
            (
                "        return self.linear(x.flatten(start_dim=1))\n",
                "        flat = torch.flatten(x, 1)\n        return torch.nn.functional.linear(flat, self.linear.weight, self.linear.bias)\n",
            ),
        ],
    ),
]
