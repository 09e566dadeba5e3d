"""Lab mlp: mistakes and correct alternatives written by an independent student.

A helper given the handout, the stub and the reference -- not the checks -- wrote them as students
make them (``kind``, ``why``). ``litlabs audit`` grades them with the pinned table beside
(``grader/mistakes/mlp.py``); the test suite grades only the pinned table (each of these needs a
full grading, trainings included).
"""

from grader.instructor.audit import Alternative, Mistake

MISTAKES = [
    Mistake(
        "Value.__mul__ backward adds the local gradient but never multiplies by out.grad",
        replace=[
            (
                "self.grad += other.data * out.grad\n            other.grad += self.data * out.grad",
                "self.grad += other.data\n            other.grad += self.data",
            ),
        ],
        kind="upstream gradient ignored",
        why="copied the op table's 'local gradient: other' literally and forgot the chain rule's upstream factor",
    ),
    Mistake(
        "Value.__mul__ backward assigns the gradient (=) instead of accumulating (+=)",
        replace=[
            (
                "self.grad += other.data * out.grad\n            other.grad += self.data * out.grad",
                "self.grad = other.data * out.grad\n            other.grad = self.data * out.grad",
            ),
        ],
        kind="gradient accumulation",
        why="thought every value receives its gradient from exactly one place; x*x then gets x instead of 2x",
    ),
    Mistake(
        "Value.__pow__ backward forgets to multiply by out.grad",
        replace=[
            (
                "self.grad += exponent * self.data ** (exponent - 1) * out.grad",
                "self.grad += exponent * self.data ** (exponent - 1)",
            ),
        ],
        kind="upstream gradient ignored",
        why="tested only x**k as the final output, where out.grad is 1",
    ),
    Mistake(
        "Value.__pow__ backward written as k*out/x, which divides by zero at x = 0",
        replace=[
            (
                "self.grad += exponent * self.data ** (exponent - 1) * out.grad",
                "self.grad += exponent * out.data / self.data * out.grad",
            ),
        ],
        kind="division by zero at an edge",
        why="simplified k*x**(k-1) to k*x**k/x 'to reuse the forward result'",
    ),
    Mistake(
        "Value.relu backward lets the gradient through at x == 0",
        replace=[
            ("self.grad += (self.data > 0) * out.grad", "self.grad += (self.data >= 0) * out.grad"),
        ],
        kind="edge point",
        why="used >= ('the subgradient at 0 can be 1'), but the table and torch give 0 at 0",
    ),
    Mistake(
        "Value.tanh backward uses 1 - x**2 with the input x instead of the output t",
        replace=[
            ("self.grad += (1 - t**2) * out.grad", "self.grad += (1 - self.data**2) * out.grad"),
        ],
        kind="wrong saved value",
        why="read '1 - tanh(x)^2' as '1 - x^2' while writing the closure",
    ),
    Mistake(
        "Value.exp backward uses x as the local gradient instead of e**x",
        replace=[
            ("self.grad += out.data * out.grad", "self.grad += self.data * out.grad"),
        ],
        kind="wrong saved value",
        why="pattern-matched on mul ('the local gradient is the other operand') and wrote self.data",
    ),
    Mistake(
        "Value.backward walks the topological order forwards (leaves first)",
        replace=[
            ("for node in reversed(order):", "for node in order:"),
        ],
        kind="graph traversal order",
        why="believed the DFS list already starts at the output, so dropped reversed()",
    ),
    Mistake(
        "Value.backward uses a breadth-first walk from the output instead of a topological sort",
        replace=[
            (
                "        order, seen = [], set()\n\n        def visit(node):\n            if node not in seen:\n                seen.add(node)\n                for child in node._prev:\n                    visit(child)\n                order.append(node)\n\n        visit(self)\n        self.grad = 1.0\n        for node in reversed(order):\n            node._backward()\n",
                "        seen = {self}\n        queue = [self]\n        self.grad = 1.0\n        while queue:\n            node = queue.pop(0)\n            node._backward()\n            for child in node._prev:\n                if child not in seen:\n                    seen.add(child)\n                    queue.append(child)\n",
            ),
        ],
        kind="graph traversal order",
        why="BFS from the output looks 'output to leaves', but a node can be processed before all its users",
    ),
    Mistake(
        "Value.backward topological sort without a visited set: shared nodes backpropagated once per path",
        replace=[
            (
                "        order, seen = [], set()\n\n        def visit(node):\n            if node not in seen:\n                seen.add(node)\n                for child in node._prev:\n                    visit(child)\n                order.append(node)\n\n        visit(self)\n        self.grad = 1.0\n        for node in reversed(order):\n            node._backward()\n",
                "        order = []\n\n        def visit(node):\n            for child in node._prev:\n                visit(child)\n            order.append(node)\n\n        visit(self)\n        self.grad = 1.0\n        for node in reversed(order):\n            node._backward()\n",
            ),
        ],
        kind="graph traversal order",
        why="dropped the 'seen' set as unnecessary for a tree, but expression graphs share sub-expressions",
    ),
    Mistake(
        "Value.backward zeroes every grad in the graph first",
        replace=[
            (
                "        visit(self)\n        self.grad = 1.0\n",
                "        visit(self)\n        for node in order:\n            node.grad = 0.0\n        self.grad = 1.0\n",
            ),
        ],
        kind="gradient accumulation",
        why="imitated optimizer.zero_grad() inside backward, so two graphs sharing a leaf no longer add up",
    ),
    Mistake(
        "LinearFunction.backward: dW = X^T dY (the transpose of the gradient)",
        replace=[
            ("grad_weight = grad_output.T @ x", "grad_weight = x.T @ grad_output"),
        ],
        kind="wrong shape / transpose",
        why="derived dW for the notes' numpy layout Y = X W with W (D_in, D_out)",
    ),
    Mistake(
        "LinearFunction.backward: db is the batch mean of dY instead of the sum",
        replace=[
            ("grad_bias = grad_output.sum(dim=0)", "grad_bias = grad_output.mean(dim=0)"),
        ],
        kind="wrong reduction",
        why="'the loss is a mean over the batch, so the bias gradient averages too' (the 1/N is already in dY)",
    ),
    Mistake(
        "LinearFunction.backward: db sums dY over the class axis (dim=1) instead of the batch",
        replace=[
            ("grad_bias = grad_output.sum(dim=0)", "grad_bias = grad_output.sum(dim=1)"),
        ],
        kind="wrong shape / axis",
        why="confused which axis sum(dim=...) removes; passes when N == D_out",
    ),
    Mistake(
        "LinearFunction.backward: dX = dY W^T",
        replace=[
            ("grad_x = grad_output @ weight\n", "grad_x = grad_output @ weight.T\n"),
        ],
        kind="wrong shape / transpose",
        why="'the forward uses W^T so the backward must too'; only runs for square layers",
    ),
    Mistake(
        "LinearFunction.backward assumes L = sum(Y): uses a matrix of ones instead of dY",
        replace=[
            (
                "        grad_x = grad_output @ weight\n        grad_weight = grad_output.T @ x\n        grad_bias = grad_output.sum(dim=0)\n",
                "        ones = torch.ones(x.shape[0], weight.shape[0], dtype=x.dtype, device=x.device)\n        grad_x = ones @ weight\n        grad_weight = ones.T @ x\n        grad_bias = ones.sum(dim=0)\n",
            ),
        ],
        kind="upstream gradient ignored",
        why="checked the formulas only with y.sum().backward(), where the upstream gradient is all ones",
    ),
    Mistake(
        "LinearFunction.backward divides dW and db by the batch size",
        replace=[
            (
                "        grad_x = grad_output @ weight\n        grad_weight = grad_output.T @ x\n        grad_bias = grad_output.sum(dim=0)\n",
                "        grad_x = grad_output @ weight\n        grad_weight = grad_output.T @ x / x.shape[0]\n        grad_bias = grad_output.sum(dim=0) / x.shape[0]\n",
            ),
        ],
        kind="missing / extra factor",
        why="averaged over the batch a second time, as in the notes' hand-written batch gradient of a summed loss",
    ),
    Mistake(
        "LinearFunction.backward recomputes the forward under enable_grad and calls torch.autograd.grad",
        replace=[
            (
                "        grad_x = grad_output @ weight\n        grad_weight = grad_output.T @ x\n        grad_bias = grad_output.sum(dim=0)\n",
                "        with torch.enable_grad():\n            x_ = x.detach().requires_grad_()\n            w_ = weight.detach().requires_grad_()\n            b_ = torch.zeros(weight.shape[0], dtype=x.dtype, device=x.device, requires_grad=True)\n            y = x_ @ w_.T + b_\n            grad_x, grad_weight, grad_bias = torch.autograd.grad(y, (x_, w_, b_), grad_output)\n",
            ),
        ],
        kind="hand-written backward required",
        why="could not get the shapes right so let autograd do it inside backward, which the handout forbids",
    ),
    Mistake(
        "ReLUFunction.backward masks with a >= 0, which lets every gradient through",
        replace=[
            (
                "return grad_output * (a > 0).to(grad_output.dtype)",
                "return grad_output * (a >= 0).to(grad_output.dtype)",
            ),
        ],
        kind="edge point",
        why="wrote 'z >= 0' for the active region, but the saved a = max(0, z) is never negative",
    ),
    Mistake(
        "ReLUFunction.backward returns the local derivative [a > 0] without the upstream gradient",
        replace=[
            ("return grad_output * (a > 0).to(grad_output.dtype)", "return (a > 0).to(grad_output.dtype)"),
        ],
        kind="upstream gradient ignored",
        why="returned f'(z) instead of upstream x local; right only for L = sum(relu(z))",
    ),
    Mistake(
        "ReLUFunction.backward zeroes grad_output in place and returns it",
        replace=[
            (
                "return grad_output * (a > 0).to(grad_output.dtype)",
                "grad_output[a <= 0] = 0\n        return grad_output",
            ),
        ],
        kind="in-place op breaks autograd",
        why="cs231n's relu_backward 'dx = dout; dx[x <= 0] = 0' without the copy; fails on expanded upstream grads",
    ),
    Mistake(
        "SigmoidFunction.backward applies sigma(.)(1 - sigma(.)) to the saved output",
        replace=[
            ("return grad_output * a * (1 - a)", "return grad_output * torch.sigmoid(a) * (1 - torch.sigmoid(a))"),
        ],
        kind="wrong saved tensor",
        why="used the textbook sigma'(z) = sigma(z)(1 - sigma(z)) but plugged in a = sigma(z) as if it were z",
    ),
    Mistake(
        "SigmoidFunction.backward returns a(1 - a) without the upstream gradient",
        replace=[
            ("return grad_output * a * (1 - a)", "return a * (1 - a)"),
        ],
        kind="upstream gradient ignored",
        why="returned the derivative only; correct just for L = sum(sigmoid(z))",
    ),
    Mistake(
        "TanhFunction.backward uses sech^2 of the saved output instead of 1 - a^2",
        replace=[
            ("return grad_output * (1 - a * a)", "return grad_output / torch.cosh(a) ** 2"),
        ],
        kind="wrong saved tensor",
        why="remembered tanh' = 1/cosh^2 and evaluated it at a = tanh(z) instead of z",
    ),
    Mistake(
        "TanhFunction.backward copy-pasted from sigmoid: a(1 - a)",
        replace=[
            ("return grad_output * (1 - a * a)", "return grad_output * a * (1 - a)"),
        ],
        kind="wrong local gradient",
        why="copy-pasted SigmoidFunction and only changed the forward",
    ),
    Mistake(
        "SoftmaxCrossEntropy forward without max subtraction: inf/NaN for logits of 1000",
        replace=[
            ("shifted = logits - logits.max(dim=1, keepdim=True).values\n", "shifted = logits\n"),
        ],
        kind="numerical stability",
        why="'log-softmax is shift-invariant, so subtracting the max changes nothing' (it changes overflow)",
    ),
    Mistake(
        "SoftmaxCrossEntropy subtracts the batch's single largest logit instead of each row's",
        replace=[
            ("logits.max(dim=1, keepdim=True).values", "logits.max()"),
        ],
        kind="numerical stability",
        why="ported the one-example version (z - max(z)); a row far below the batch max underflows to log(0)",
    ),
    Mistake(
        "SoftmaxCrossEntropy subtracts the column-wise max (dim=0)",
        replace=[
            ("logits.max(dim=1, keepdim=True).values", "logits.max(dim=0, keepdim=True).values"),
        ],
        kind="wrong axis",
        why="took the max over the batch dimension; a per-class shift changes each row's softmax",
    ),
    Mistake(
        "SoftmaxCrossEntropy row max without keepdim broadcasts along the class axis",
        replace=[
            ("logits.max(dim=1, keepdim=True).values", "logits.max(dim=1).values"),
        ],
        kind="wrong shape / broadcasting",
        why="forgot keepdim=True; the (N,) maxima broadcast against (N, C) column-wise (silently wrong when N == C)",
    ),
    Mistake(
        "SoftmaxCrossEntropy returns the summed loss (forward and backward consistently without 1/N)",
        replace=[
            (
                "loss = -log_probas[torch.arange(len(targets), device=logits.device), targets].mean()",
                "loss = -log_probas[torch.arange(len(targets), device=logits.device), targets].sum()",
            ),
            (
                "return (probas - onehot) / len(targets) * grad_output, None",
                "return (probas - onehot) * grad_output, None",
            ),
        ],
        kind="wrong reduction",
        why="summed the notes' per-example loss -log p_y over the batch; the docstring fixes the mean",
    ),
    Mistake(
        "SoftmaxCrossEntropy backward forgets the 1/N of the batch mean",
        replace=[
            (
                "return (probas - onehot) / len(targets) * grad_output, None",
                "return (probas - onehot) * grad_output, None",
            ),
        ],
        kind="missing factor",
        why="used the single-example gradient p - onehot(y)",
    ),
    Mistake(
        "SoftmaxCrossEntropy backward ignores the upstream gradient dL",
        replace=[
            (
                "return (probas - onehot) / len(targets) * grad_output, None",
                "return (probas - onehot) / len(targets), None",
            ),
        ],
        kind="upstream gradient ignored",
        why="assumed the loss is always the graph's output, so dL = 1 (breaks loss * weight, loss / accumulate)",
    ),
    Mistake(
        "SoftmaxCrossEntropy picks log_probas[:, targets], an (N, N) block, not one entry per row",
        replace=[
            ("log_probas[torch.arange(len(targets), device=logits.device), targets]", "log_probas[:, targets]"),
        ],
        kind="indexing",
        why="numpy-style indexing with one index array selects whole columns",
    ),
    Mistake(
        "SoftmaxCrossEntropy saves the log-probabilities and backward uses them as probabilities",
        replace=[
            ("ctx.save_for_backward(log_probas.exp(), targets)", "ctx.save_for_backward(log_probas, targets)"),
        ],
        kind="wrong saved tensor",
        why="saved log_probas (already computed) and forgot the .exp()",
    ),
    Mistake(
        "SoftmaxCrossEntropy backward returns only dlogits (no None for the targets)",
        replace=[
            (
                "return (probas - onehot) / len(targets) * grad_output, None",
                "return (probas - onehot) / len(targets) * grad_output",
            ),
        ],
        kind="wrong number of gradients",
        why="'targets get no gradient' read as 'return nothing for them'",
    ),
    Mistake(
        "SoftmaxCrossEntropy loss is the mean of onehot * log_probas over all N*C entries",
        replace=[
            (
                "loss = -log_probas[torch.arange(len(targets), device=logits.device), targets].mean()",
                "onehot = torch.nn.functional.one_hot(targets, logits.shape[1]).to(logits.dtype)\n        loss = -(onehot * log_probas).mean()",
            ),
        ],
        kind="wrong reduction",
        why="wrote -(onehot * log p).mean() from the vectorised formula; .mean() divides by N*C, not N",
    ),
    Mistake(
        "SoftmaxCrossEntropy backward builds one-hot rows from torch.eye(C) (CPU, float32)",
        replace=[
            (
                "onehot = torch.nn.functional.one_hot(targets, probas.shape[1]).to(probas.dtype)",
                "onehot = torch.eye(probas.shape[1])[targets]",
            ),
        ],
        kind="device / dtype",
        why="torch.eye(C)[targets] is a CPU float32 tensor: fails on GPU, changes bf16/fp16 gradients to float32",
    ),
    Mistake(
        "SoftmaxCrossEntropy takes the log of the (stable) softmax: log(0) = -inf for far-off logits",
        replace=[
            (
                "log_probas = shifted - shifted.exp().sum(dim=1, keepdim=True).log()",
                "probas = shifted.exp() / shifted.exp().sum(dim=1, keepdim=True)\n        log_probas = probas.log()",
            ),
        ],
        kind="numerical stability",
        why="computed the softmax stably, then log(softmax) instead of the log-sum-exp form",
    ),
    Mistake(
        "Linear.forward computes x @ W.T + b directly instead of LinearFunction.apply",
        replace=[
            ("return LinearFunction.apply(x, self.weight, self.bias)", "return x @ self.weight.T + self.bias"),
        ],
        kind="own layer bypassed",
        why="'autograd gives the same numbers', so the hand-written backward is never used",
    ),
    Mistake(
        "xavier_normal_ uses weight.shape[0] (fan-out) as D_in",
        replace=[
            ("std = 1.0 / math.sqrt(weight.shape[1])", "std = 1.0 / math.sqrt(weight.shape[0])"),
        ],
        kind="initialisation rule (fan-in)",
        why="the notes' numpy W is (D_in, D_out), so shape[0] 'is' D_in",
    ),
    Mistake(
        "xavier_normal_ uses Glorot's fan-average std sqrt(2/(D_in + D_out))",
        replace=[
            ("std = 1.0 / math.sqrt(weight.shape[1])", "std = math.sqrt(2.0 / (weight.shape[0] + weight.shape[1]))"),
        ],
        kind="initialisation rule (formula)",
        why="copied torch.nn.init.xavier_normal_'s formula; equal to 1/sqrt(D_in) only for square weights",
    ),
    Mistake(
        "xavier_normal_ ignores its generator argument",
        replace=[
            (
                "    with torch.no_grad():\n        return weight.normal_(0.0, std, generator=generator)\n    ### END SOLUTION\n\n\ndef he_normal_",
                "    with torch.no_grad():\n        return weight.normal_(0.0, std)\n    ### END SOLUTION\n\n\ndef he_normal_",
            ),
        ],
        kind="documented argument dropped",
        why="wrote normal_(0, std) and forgot generator=, so seeded draws are not reproducible",
    ),
    Mistake(
        "xavier_normal_ draws uniform(-std, std) instead of a normal of that std",
        replace=[
            (
                "    with torch.no_grad():\n        return weight.normal_(0.0, std, generator=generator)\n    ### END SOLUTION\n\n\ndef he_normal_",
                "    with torch.no_grad():\n        return weight.uniform_(-std, std, generator=generator)\n    ### END SOLUTION\n\n\ndef he_normal_",
            ),
        ],
        kind="initialisation distribution",
        why="mixed it up with nn.Linear's default uniform init; the std is then std/sqrt(3)",
    ),
    Mistake(
        "xavier_normal_ fills the weight without torch.no_grad(): fails on a Parameter",
        replace=[
            (
                "    with torch.no_grad():\n        return weight.normal_(0.0, std, generator=generator)\n    ### END SOLUTION\n\n\ndef he_normal_",
                "    return weight.normal_(0.0, std, generator=generator)\n    ### END SOLUTION\n\n\ndef he_normal_",
            ),
        ],
        kind="in-place op on a leaf",
        why="tested on plain tensors only; MLP(activation='tanh') raises on the in-place op on a leaf that requires grad",
    ),
    Mistake(
        "he_normal_ passes the variance 2/D_in as the std",
        replace=[
            ("std = math.sqrt(2.0 / weight.shape[1])", "std = 2.0 / weight.shape[1]"),
        ],
        kind="missing factor (variance vs std)",
        why="Var(w) = 2/D_in from the derivation went straight into normal_'s std argument",
    ),
    Mistake(
        "he_normal_ returns a new tensor instead of filling weight in place",
        replace=[
            (
                "    with torch.no_grad():\n        return weight.normal_(0.0, std, generator=generator)\n    ### END SOLUTION\n\n\ndef activation_statistics",
                "    return torch.randn(weight.shape, generator=generator) * std\n    ### END SOLUTION\n\n\ndef activation_statistics",
            ),
        ],
        kind="in-place promise broken",
        why="wrote 'return torch.randn(shape) * std'; callers that ignore the return value keep torch.empty garbage",
    ),
    Mistake(
        "he_normal_ fills in place but returns None",
        replace=[
            (
                "    with torch.no_grad():\n        return weight.normal_(0.0, std, generator=generator)\n    ### END SOLUTION\n\n\ndef activation_statistics",
                "    with torch.no_grad():\n        weight.normal_(0.0, std, generator=generator)\n    ### END SOLUTION\n\n\ndef activation_statistics",
            ),
        ],
        kind="documented return value",
        why="'in-place functions return nothing'; the docstring says Returns weight",
    ),
    Mistake(
        "activation_statistics draws x from the global RNG instead of the seeded generator",
        replace=[
            ("h = torch.randn(batch, width, generator=generator)", "h = torch.randn(batch, width)"),
        ],
        kind="seed / generator not used",
        why="passed the generator to the weights only; results change with torch's global state",
    ),
    Mistake(
        "activation_statistics re-seeds a fresh generator for every layer",
        replace=[
            (
                "        weight = torch.empty(width, width)\n",
                "        weight = torch.empty(width, width)\n        generator = torch.Generator().manual_seed(seed)\n",
            ),
        ],
        kind="seeding",
        why="'each layer reproducible': every layer gets the same W, made from the same numbers as x",
    ),
    Mistake(
        "activation_statistics initialises all weights before drawing x",
        replace=[
            (
                '    h = torch.randn(batch, width, generator=generator)\n    act = {"tanh": torch.tanh, "relu": torch.relu}[activation]\n    stds = []\n    for _ in range(depth):\n        weight = torch.empty(width, width)\n        if init == "xavier":\n            xavier_normal_(weight, generator)\n        elif init == "he":\n            he_normal_(weight, generator)\n        else:\n            weight.normal_(0.0, float(init), generator=generator)\n        h = act(h @ weight.T)\n        stds.append(h.std())\n',
                '    act = {"tanh": torch.tanh, "relu": torch.relu}[activation]\n    weights = []\n    for _ in range(depth):\n        weight = torch.empty(width, width)\n        if init == "xavier":\n            xavier_normal_(weight, generator)\n        elif init == "he":\n            he_normal_(weight, generator)\n        else:\n            weight.normal_(0.0, float(init), generator=generator)\n        weights.append(weight)\n    h = torch.randn(batch, width, generator=generator)\n    stds = []\n    for weight in weights:\n        h = act(h @ weight.T)\n        stds.append(h.std())\n',
            ),
        ],
        kind="order of random draws",
        why="built the network first, then the input; the docstring fixes x first, then each W",
    ),
    Mistake(
        "activation_statistics records the std of the pre-activations z, not of act(z)",
        replace=[
            (
                "h = act(h @ weight.T)\n        stds.append(h.std())",
                "z = h @ weight.T\n        stds.append(z.std())\n        h = act(z)",
            ),
        ],
        kind="wrong quantity",
        why="recorded the spread entering the non-linearity instead of the layer's activations",
    ),
    Mistake(
        "activation_statistics copies the notes' dims = [width] * depth zip: depth - 1 layers",
        replace=[
            (
                "    for _ in range(depth):\n        weight = torch.empty(width, width)",
                "    dims = [width] * depth\n    for _ in zip(dims[:-1], dims[1:]):\n        weight = torch.empty(width, width)",
            ),
        ],
        kind="off-by-one",
        why="the notes use [4096] * 7 for 6 layers; with depth entries the zip gives depth - 1",
    ),
    Mistake(
        "activation_statistics applies h @ W (the notes' x.dot(W)) instead of h @ W.T",
        replace=[
            ("h = act(h @ weight.T)", "h = act(h @ weight)"),
        ],
        kind="weight layout",
        why="followed the notes' numpy layout; the docstring says h = act(h W^T) with W (D_out, D_in)",
    ),
    Mistake(
        "activation_statistics returns a Python list of floats",
        replace=[
            ("return torch.stack(stds)", "return [s.item() for s in stds]"),
        ],
        kind="result format",
        why="converted to floats for printing; the docstring promises a float tensor of shape (depth,)",
    ),
    Mistake(
        "dropout treats p as the probability of keeping a unit",
        replace=[
            (
                "mask = (torch.rand_like(x) >= p).to(x.dtype)\n    return x * mask / (1 - p)",
                "mask = (torch.rand_like(x) < p).to(x.dtype)\n    return x * mask / p",
            ),
        ],
        kind="convention (p)",
        why="the notes' cs231n code uses p = probability of keeping; the docstring's p is the drop probability",
    ),
    Mistake(
        "dropout does not scale the survivors by 1/(1 - p)",
        replace=[
            ("return x * mask / (1 - p)", "return x * mask"),
        ],
        kind="missing factor",
        why="implemented the notes' vanilla dropout and forgot the inverted scaling",
    ),
    Mistake(
        "dropout is vanilla: no scaling in training, multiply by (1 - p) at test time",
        replace=[
            (
                "if not training or p == 0:\n        return x\n",
                "if p == 0:\n        return x\n    if not training:\n        return x * (1 - p)\n",
            ),
            ("return x * mask / (1 - p)", "return x * mask"),
        ],
        kind="train vs eval",
        why="followed the notes' 'scale at test time' version instead of inverted dropout",
    ),
    Mistake(
        "dropout ignores the training flag",
        replace=[
            ("if not training or p == 0:", "if p == 0:"),
        ],
        kind="train vs eval",
        why="assumed it is only called while training, so it still drops units in eval mode",
    ),
    Mistake(
        "dropout has no p == 1 case: 0/0 gives NaN",
        replace=[
            ("    if p == 1:\n        return torch.zeros_like(x)\n", ""),
        ],
        kind="division by zero",
        why="the general formula x*mask/(1-p) 'covers every p'",
    ),
    Mistake(
        "dropout draws one mask per batch and shares it across all examples",
        replace=[
            (
                "mask = (torch.rand_like(x) >= p).to(x.dtype)",
                "mask = (torch.rand(x.shape[1:], dtype=x.dtype, device=x.device) >= p).to(x.dtype)",
            ),
        ],
        kind="wrong mask shape",
        why="read 'a fresh random mask for every batch' as one mask per batch, broadcast over the examples",
    ),
    Mistake(
        "dropout mask made with torch.rand(x.shape).float(): CPU float32",
        replace=[
            ("mask = (torch.rand_like(x) >= p).to(x.dtype)", "mask = (torch.rand(x.shape) >= p).float()"),
        ],
        kind="device / dtype",
        why="torch.rand(shape) ignores x's device and dtype: fails on GPU, half-precision inputs come back as float32",
    ),
    Mistake(
        "dropout multiplies x in place (x.mul_(mask).div_(1 - p))",
        replace=[
            ("return x * mask / (1 - p)", "return x.mul_(mask).div_(1 - p)"),
        ],
        kind="in-place op breaks autograd",
        why="in-place to save memory: mutates the caller's tensor and breaks backward through the activation",
    ),
    Mistake(
        "dropout re-seeds the global generator on every call",
        replace=[
            (
                "mask = (torch.rand_like(x) >= p).to(x.dtype)",
                "torch.manual_seed(0)\n    mask = (torch.rand_like(x) >= p).to(x.dtype)",
            ),
        ],
        kind="seeding",
        why="added torch.manual_seed(0) 'for reproducibility': every call drops the same units",
    ),
    Mistake(
        "MLP initialises every activation with xavier_normal_ (He never used for ReLU)",
        replace=[
            ('initialise = he_normal_ if activation == "relu" else xavier_normal_', "initialise = xavier_normal_"),
        ],
        kind="initialisation rule",
        why="used Xavier as 'the' init from the notes regardless of the activation",
    ),
    Mistake(
        "MLP never re-initialises: tanh/sigmoid layers keep Linear's He init",
        replace=[
            (
                '        initialise = he_normal_ if activation == "relu" else xavier_normal_\n        for layer in self.layers:\n            initialise(layer.weight)\n',
                "",
            ),
        ],
        kind="initialisation rule",
        why="'Linear already initialises its weights', so skipped the activation-dependent rule",
    ),
    Mistake(
        "MLP applies the activation to the logits too",
        replace=[
            ("return self.layers[-1](h)", "return activation.apply(self.layers[-1](h))"),
        ],
        kind="architecture",
        why="applied Linear -> activation to every layer including the output one",
    ),
    Mistake(
        "MLP applies dropout to the logits too",
        replace=[
            ("return self.layers[-1](h)", "return dropout(self.layers[-1](h), self.hparams.dropout, self.training)"),
        ],
        kind="architecture",
        why="'dropout after each layer' read as after the output layer as well",
    ),
    Mistake(
        "MLP puts dropout between the Linear layer and its activation",
        replace=[
            (
                "h = dropout(activation.apply(layer(h)), self.hparams.dropout, self.training)",
                "h = activation.apply(dropout(layer(h), self.hparams.dropout, self.training))",
            ),
        ],
        kind="architecture",
        why="Linear -> dropout -> activation; the same for ReLU, different for tanh/sigmoid",
    ),
    Mistake(
        "MLP also drops input pixels",
        replace=[
            ("h = x.flatten(start_dim=1)", "h = dropout(x.flatten(start_dim=1), self.hparams.dropout, self.training)"),
        ],
        kind="architecture",
        why="dropout 'on every layer', the input included; the handout puts it after each hidden layer only",
    ),
    Mistake(
        "MLP calls dropout with training=True always",
        replace=[
            ("self.hparams.dropout, self.training)", "self.hparams.dropout, True)"),
        ],
        kind="train vs eval",
        why="'dropout is for training' so passed True; validation and test predictions stay random",
    ),
    Mistake(
        "MLP uses torch.relu / torch.tanh / torch.sigmoid instead of the lab's activation Functions",
        replace=[
            (
                "h = dropout(activation.apply(layer(h)),",
                'h = dropout({"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[self.hparams.activation](layer(h)),',
            ),
        ],
        kind="own layer bypassed",
        why="same values, so the hand-written backward passes are never exercised",
    ),
    Mistake(
        "MLP.forward hard-codes x.view(-1, 784)",
        replace=[
            ("h = x.flatten(start_dim=1)", "h = x.view(-1, 784)"),
        ],
        kind="documented argument ignored (num_features)",
        why="wrote MNIST's 28*28; fails for num_features != 784 (e.g. 8x8 digits)",
    ),
    Mistake(
        "MLP.forward squeezes x before flattening: a batch of 1 loses its batch dimension",
        replace=[
            ("h = x.flatten(start_dim=1)", "x = x.squeeze()\n        h = x.reshape(len(x), -1)"),
        ],
        kind="edge case (batch of 1)",
        why="x.squeeze() to drop the channel dimension also drops N when N == 1",
    ),
    Mistake(
        "MLP hard-codes the layers 784-256-128-10 and ignores hidden",
        replace=[
            (
                "self.layers = torch.nn.ModuleList(Linear(d_in, d_out) for d_in, d_out in zip(sizes[:-1], sizes[1:]))",
                "self.layers = torch.nn.ModuleList([Linear(num_features, 256), Linear(256, 128), Linear(128, num_classes)])",
            ),
        ],
        kind="documented argument ignored (hidden)",
        why="built the handout's default network literally",
    ),
    Mistake(
        "MLP builds one Linear per hidden size and forgets the output layer",
        replace=[
            (
                "self.layers = torch.nn.ModuleList(Linear(d_in, d_out) for d_in, d_out in zip(sizes[:-1], sizes[1:]))",
                "self.layers = torch.nn.ModuleList(Linear(sizes[i], sizes[i + 1]) for i in range(len(hidden)))",
            ),
        ],
        kind="off-by-one",
        why="'one layer per entry of hidden': the logits come out hidden[-1] wide",
    ),
    Mistake(
        "MLP keeps its layers in a plain Python list (not registered as sub-modules)",
        replace=[
            (
                "self.layers = torch.nn.ModuleList(Linear(d_in, d_out) for d_in, d_out in zip(sizes[:-1], sizes[1:]))",
                "self.layers = [Linear(d_in, d_out) for d_in, d_out in zip(sizes[:-1], sizes[1:])]",
            ),
        ],
        kind="parameters not registered",
        why="a list works in forward, but parameters(), state_dict() and .to(device) never see the layers",
    ),
    Mistake(
        "MLP uses torch.nn.Linear instead of the lab's Linear",
        replace=[
            ("ModuleList(Linear(d_in, d_out)", "ModuleList(torch.nn.Linear(d_in, d_out)"),
        ],
        kind="wrong layer class",
        why="same weight layout, so it 'works'; no LinearFunction in the graph and biases not 0",
    ),
    Mistake(
        "MLP uses the notes' dropout p = 0.5 instead of the dropout argument",
        replace=[
            ("self.hparams.dropout, self.training)", "0.5, self.training)"),
        ],
        kind="hyper-parameter not the documented one",
        why="hard-coded the cs231n example's p",
    ),
    Mistake(
        "configure_optimizers uses Adam instead of SGD with Nesterov momentum",
        replace=[
            (
                "optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9, nesterov=True)",
                "optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)",
            ),
        ],
        kind="optimizer not the handout's",
        why="switched to Adam 'because it always works'",
    ),
    Mistake(
        "configure_optimizers drops nesterov=True (plain momentum)",
        replace=[
            (
                "optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9, nesterov=True)",
                "optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)",
            ),
        ],
        kind="hyper-parameter not the documented one",
        why="copied SGD(momentum=0.9) from the PyTorch quickstart",
    ),
    Mistake(
        "configure_optimizers hard-codes lr = 0.1 and ignores the lr argument",
        replace=[
            (
                "optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9, nesterov=True)",
                "optimizer = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9, nesterov=True)",
            ),
            ("max_lr=self.hparams.lr,", "max_lr=0.1,"),
        ],
        kind="documented argument ignored (lr)",
        why="kept the learning rate they found by hand in both the optimizer and the schedule",
    ),
    Mistake(
        "one-cycle schedule stepped once per epoch although sized in steps",
        replace=[
            ('"interval": "step"', '"interval": "epoch"'),
        ],
        kind="schedule",
        why="left Lightning's default interval 'epoch'; the lr then barely leaves its initial value",
    ),
    Mistake(
        "random_shift augmentation applied in every stage, validation and test included",
        replace=[
            (
                "if self.training and self.hparams.max_shift and x.dim() == 4:",
                "if self.hparams.max_shift and x.dim() == 4:",
            ),
        ],
        kind="train vs eval",
        why="dropped self.training from the augmentation condition",
    ),
    Mistake(
        "validation_step updates the training metrics (stage 'fit')",
        replace=[
            (
                "        self.metrics.update(stage, loss, logits, y)\n        return loss\n",
                "        self.metrics.update(stage, loss, logits, y)\n        return loss\n\n"
                '    def validation_step(self, batch, batch_idx):\n        self._shared_step(batch, "fit")\n',
            ),
        ],
        kind="stage mix-up",
        why="overrode ClassifierHooks' validation_step with a copy of training_step; validation batches are "
            "counted into train_loss/train_acc, val_* is empty",
    ),
    Mistake(
        "training uses F.cross_entropy instead of SoftmaxCrossEntropyFunction",
        replace=[
            (
                "loss = SoftmaxCrossEntropyFunction.apply(logits, y)",
                "loss = torch.nn.functional.cross_entropy(logits, y)",
            ),
        ],
        kind="own layer bypassed",
        why="swapped in torch's loss while debugging and never switched back",
    ),
    Mistake(
        "on_test_epoch_end logs the validation metrics (val_* names, no test_acc)",
        replace=[
            (
                "        self.metrics.update(stage, loss, logits, y)\n        return loss\n",
                "        self.metrics.update(stage, loss, logits, y)\n        return loss\n\n"
                '    def on_test_epoch_end(self):\n        self.metrics.log_epoch(self, "val")\n',
            ),
        ],
        kind="logging names",
        why="overrode ClassifierHooks' on_test_epoch_end with a copy of on_validation_epoch_end",
    ),
]

ALTERNATIVES = [
    Alternative(
        "Value.backward with an iterative post-order DFS (explicit stack, no recursion)",
        replace=[
            (
                "        order, seen = [], set()\n\n        def visit(node):\n            if node not in seen:\n                seen.add(node)\n                for child in node._prev:\n                    visit(child)\n                order.append(node)\n\n        visit(self)\n        self.grad = 1.0\n        for node in reversed(order):\n            node._backward()\n",
                "        order, seen = [], set()\n        stack = [(self, False)]\n        while stack:\n            node, expanded = stack.pop()\n            if expanded:\n                order.append(node)\n            elif node not in seen:\n                seen.add(node)\n                stack.append((node, True))\n                for child in reversed(node._prev):\n                    stack.append((child, False))\n        self.grad = 1.0\n        for node in reversed(order):\n            node._backward()\n",
            ),
        ],
    ),
    Alternative(
        "Value.backward ordered by Kahn's algorithm (count each node's users, release a node when all have passed)",
        replace=[
            (
                "        order, seen = [], set()\n\n        def visit(node):\n            if node not in seen:\n                seen.add(node)\n                for child in node._prev:\n                    visit(child)\n                order.append(node)\n\n        visit(self)\n        self.grad = 1.0\n        for node in reversed(order):\n            node._backward()\n",
                "        users, stack, seen = {}, [self], {self}\n        while stack:\n            node = stack.pop()\n            for child in node._prev:\n                users[child] = users.get(child, 0) + 1\n                if child not in seen:\n                    seen.add(child)\n                    stack.append(child)\n        self.grad = 1.0\n        ready = [self]\n        while ready:\n            node = ready.pop()\n            node._backward()\n            for child in node._prev:\n                users[child] -= 1\n                if users[child] == 0:\n                    ready.append(child)\n",
            ),
        ],
    ),
    Alternative(
        "Value local gradients in micrograd's style (from out.data, upstream first)",
        replace=[
            (
                "self.grad += other.data * out.grad\n            other.grad += self.data * out.grad",
                "self.grad += out.grad * other.data\n            other.grad += out.grad * self.data",
            ),
            (
                "self.grad += exponent * self.data ** (exponent - 1) * out.grad",
                "self.grad += (exponent * self.data ** (exponent - 1)) * out.grad",
            ),
            ("self.grad += (self.data > 0) * out.grad", "self.grad += (out.data > 0) * out.grad"),
            ("self.grad += (1 - t**2) * out.grad", "self.grad += (1 - out.data**2) * out.grad"),
        ],
    ),
    Alternative(
        "LinearFunction as the PyTorch docs' 'Extending torch.autograd' writes it (mm, needs_input_grad, bias saved)",
        replace=[
            (
                "        ctx.save_for_backward(x, weight)\n        return x @ weight.T + bias\n",
                "        ctx.save_for_backward(x, weight, bias)\n        output = x.mm(weight.t())\n        output += bias.unsqueeze(0).expand_as(output)\n        return output\n",
            ),
            ("x, weight = ctx.saved_tensors", "x, weight, bias = ctx.saved_tensors"),
            (
                "        grad_x = grad_output @ weight\n        grad_weight = grad_output.T @ x\n        grad_bias = grad_output.sum(dim=0)\n        return grad_x, grad_weight, grad_bias\n",
                "        grad_x = grad_weight = grad_bias = None\n        if ctx.needs_input_grad[0]:\n            grad_x = grad_output.mm(weight)\n        if ctx.needs_input_grad[1]:\n            grad_weight = grad_output.t().mm(x)\n        if bias is not None and ctx.needs_input_grad[2]:\n            grad_bias = grad_output.sum(0)\n        return grad_x, grad_weight, grad_bias\n",
            ),
        ],
    ),
    Alternative(
        "LinearFunction.backward with torch.einsum",
        replace=[
            (
                "        grad_x = grad_output @ weight\n        grad_weight = grad_output.T @ x\n        grad_bias = grad_output.sum(dim=0)\n",
                '        grad_x = torch.einsum("no,oi->ni", grad_output, weight)\n        grad_weight = torch.einsum("no,ni->oi", grad_output, x)\n        grad_bias = torch.einsum("no->o", grad_output)\n',
            ),
        ],
    ),
    Alternative(
        "activation backwards with torch.where and factored derivatives",
        replace=[
            (
                "return grad_output * (a > 0).to(grad_output.dtype)",
                "return torch.where(a > 0, grad_output, torch.zeros_like(grad_output))",
            ),
            ("return grad_output * a * (1 - a)", "return grad_output * (a - a * a)"),
            ("return grad_output * (1 - a * a)", "return grad_output * (1 - a) * (1 + a)"),
        ],
    ),
    Alternative(
        "SoftmaxCrossEntropy with torch.logsumexp and gather; backward subtracts 1 at the targets in a copy",
        replace=[
            (
                "shifted = logits - logits.max(dim=1, keepdim=True).values\n        log_probas = shifted - shifted.exp().sum(dim=1, keepdim=True).log()\n        loss = -log_probas[torch.arange(len(targets), device=logits.device), targets].mean()",
                "log_probas = logits - torch.logsumexp(logits, dim=1, keepdim=True)\n        loss = -log_probas.gather(1, targets[:, None]).sum() / targets.shape[0]",
            ),
            (
                "        onehot = torch.nn.functional.one_hot(targets, probas.shape[1]).to(probas.dtype)\n        return (probas - onehot) / len(targets) * grad_output, None",
                "        grad = probas.clone()\n        grad[torch.arange(targets.shape[0], device=probas.device), targets] -= 1\n        return grad * (grad_output / targets.shape[0]), None",
            ),
        ],
    ),
    Alternative(
        "dropout with a boolean keep-mask and torch.where",
        replace=[
            (
                "mask = (torch.rand_like(x) >= p).to(x.dtype)\n    return x * mask / (1 - p)",
                "keep = torch.rand_like(x) >= p\n    return torch.where(keep, x / (1 - p), torch.zeros_like(x))",
            ),
        ],
    ),
    Alternative(
        "initialisers through torch.nn.init (kaiming_normal_ for He) and .data for Xavier",
        replace=[
            (
                "    with torch.no_grad():\n        return weight.normal_(0.0, std, generator=generator)\n    ### END SOLUTION\n\n\ndef he_normal_",
                "    weight.data.normal_(0.0, std, generator=generator)\n    return weight\n    ### END SOLUTION\n\n\ndef he_normal_",
            ),
            (
                "    std = math.sqrt(2.0 / weight.shape[1])\n    with torch.no_grad():\n        return weight.normal_(0.0, std, generator=generator)\n    ### END SOLUTION\n\n\ndef activation_statistics",
                '    return torch.nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu", generator=generator)\n    ### END SOLUTION\n\n\ndef activation_statistics',
            ),
        ],
    ),
    Alternative(
        "activation_statistics with F.linear, torch.nn.init.normal_ and a preallocated result",
        replace=[
            (
                '    generator = torch.Generator().manual_seed(seed)\n    h = torch.randn(batch, width, generator=generator)\n    act = {"tanh": torch.tanh, "relu": torch.relu}[activation]\n    stds = []\n    for _ in range(depth):\n        weight = torch.empty(width, width)\n        if init == "xavier":\n            xavier_normal_(weight, generator)\n        elif init == "he":\n            he_normal_(weight, generator)\n        else:\n            weight.normal_(0.0, float(init), generator=generator)\n        h = act(h @ weight.T)\n        stds.append(h.std())\n    return torch.stack(stds)\n',
                '    generator = torch.Generator()\n    generator.manual_seed(seed)\n    h = torch.randn(batch, width, generator=generator)\n    act = torch.tanh if activation == "tanh" else torch.nn.functional.relu\n    rules = {"xavier": xavier_normal_, "he": he_normal_}\n    stds = torch.empty(depth)\n    for layer in range(depth):\n        weight = torch.empty(width, width)\n        if isinstance(init, str):\n            rules[init](weight, generator=generator)\n        else:\n            torch.nn.init.normal_(weight, mean=0.0, std=init, generator=generator)\n        h = act(torch.nn.functional.linear(h, weight))\n        stds[layer] = h.std()\n    return stds\n',
            ),
        ],
    ),
    Alternative(
        "MLP built layer by layer (init right after each layer) and forward with enumerate",
        replace=[
            (
                '        self.layers = torch.nn.ModuleList(Linear(d_in, d_out) for d_in, d_out in zip(sizes[:-1], sizes[1:]))\n        initialise = he_normal_ if activation == "relu" else xavier_normal_\n        for layer in self.layers:\n            initialise(layer.weight)\n',
                '        self.layers = torch.nn.ModuleList()\n        for d_in, d_out in zip(sizes, sizes[1:]):\n            layer = Linear(d_in, d_out)\n            (he_normal_ if activation == "relu" else xavier_normal_)(layer.weight)\n            self.layers.append(layer)\n',
            ),
            (
                "        h = x.flatten(start_dim=1)\n        for layer in self.layers[:-1]:\n            h = dropout(activation.apply(layer(h)), self.hparams.dropout, self.training)\n        return self.layers[-1](h)\n",
                "        h = x.reshape(x.shape[0], -1)\n        last = len(self.layers) - 1\n        for i, layer in enumerate(self.layers):\n            h = layer(h)\n            if i < last:\n                h = activation.apply(h)\n                h = dropout(h, self.hparams.dropout, self.training)\n        return h\n",
            ),
        ],
    ),
]
