"""Lab rotation: mistakes and correct alternatives written by an independent student.

A helper given the handout, the stub and the reference -- not the checks -- wrote them as students
make them (``kind``, ``why``). ``litlabs audit`` grades them with the pinned table beside
(``grader/mistakes/rotation.py``); the test suite grades only the pinned table (each of these needs a
full grading, trainings included).
"""

from grader.instructor.audit import Alternative, Mistake

MISTAKES = [
    Mistake(
        "rotate_batch: no square check, non-square images crash in torch.cat instead of a ValueError",
        replace=[
            (
                '    if x.shape[-1] != x.shape[-2]:\n        raise ValueError(f"rotate_batch needs square images, got height × width {tuple(x.shape[-2:])}")\n',
                "",
            ),
        ],
        kind="edge point",
        why="the student thought torch.rot90 would complain by itself about non-square images",
    ),
    Mistake(
        "rotate_batch: square check compares x.shape[1] with x.shape[2] (C with H)",
        replace=[
            ("    if x.shape[-1] != x.shape[-2]:\n", "    if x.shape[1] != x.shape[2]:\n"),
        ],
        kind="wrong shape/transpose",
        why="thought of images as channels-last (N, H, W, C) as in NumPy/PIL; every 1-channel MNIST batch is rejected",
    ),
    Mistake(
        "rotate_batch: assert instead of raising ValueError for non-square images",
        replace=[
            (
                '    if x.shape[-1] != x.shape[-2]:\n        raise ValueError(f"rotate_batch needs square images, got height × width {tuple(x.shape[-2:])}")\n',
                '    assert x.shape[-1] == x.shape[-2], f"square images needed, got {tuple(x.shape[-2:])}"\n',
            ),
        ],
        kind="edge point",
        why="used assert as for an internal sanity check; it raises AssertionError (and vanishes under python -O)",
    ),
    Mistake(
        "rotate_batch: quarter turns clockwise (k -> -k)",
        replace=[
            (
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n",
                "    rotated = torch.cat([torch.rot90(x, -k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n",
            ),
        ],
        kind="math",
        why="wanted 'rotate right' as in an image editor; labels 1 and 3 are swapped against the handout",
    ),
    Mistake(
        "rotate_batch: dims=(-1, -2), i.e. (width, height), which turns clockwise",
        replace=[
            (
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n",
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-1, -2)) for k in range(NUM_ROTATIONS)])\n",
            ),
        ],
        kind="math",
        why="wrote the axes in (x, y) order as for plotting; rot90 turns from the first dim towards the second",
    ),
    Mistake(
        "rotate_batch: torch.rot90(x, k) without dims turns the batch and channel axes",
        replace=[
            (
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n",
                "    rotated = torch.cat([torch.rot90(x, k) for k in range(NUM_ROTATIONS)])\n",
            ),
        ],
        kind="wrong shape/transpose",
        why="copied torch.rot90(x, 1) from the docs' 2-D example; the default dims=(0, 1)",
    ),
    Mistake(
        "rotate_batch: dims=(1, 2) copied from per-image code on a (C, H, W) image",
        replace=[
            (
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n",
                "    rotated = torch.cat([torch.rot90(x, k, dims=(1, 2)) for k in range(NUM_ROTATIONS)])\n",
            ),
        ],
        kind="wrong shape/transpose",
        why="tested torch.rot90(img, k, (1, 2)) on one image and pasted it into the batched function",
    ),
    Mistake(
        "rotate_batch: image-major layout (image i's four turns at 4i..4i+3) instead of blocks of N",
        replace=[
            (
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n",
                "    rotated = torch.stack([torch.rot90(x, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)], dim=1).flatten(0, 1)\n",
            ),
            (
                "    rotations = torch.arange(NUM_ROTATIONS, device=x.device).repeat_interleave(len(x))\n",
                "    rotations = torch.arange(NUM_ROTATIONS, device=x.device).repeat(len(x))\n",
            ),
        ],
        kind="wrong shape/transpose",
        why="followed RotNet's data loader, which stacks the four turns of each image together",
    ),
    Mistake(
        "rotate_batch: labels tiled with repeat (0,1,2,3,0,1,...) while the images are in blocks",
        replace=[
            (
                "    rotations = torch.arange(NUM_ROTATIONS, device=x.device).repeat_interleave(len(x))\n",
                "    rotations = torch.arange(NUM_ROTATIONS, device=x.device).repeat(len(x))\n",
            ),
        ],
        kind="off-by-one/indices",
        why="np.tile / np.repeat confusion: Tensor.repeat tiles, repeat_interleave repeats each element",
    ),
    Mistake(
        "rotate_batch: labels made on the CPU whatever x's device",
        replace=[
            (
                "    rotations = torch.arange(NUM_ROTATIONS, device=x.device).repeat_interleave(len(x))\n",
                "    rotations = torch.arange(NUM_ROTATIONS).repeat_interleave(len(x))\n",
            ),
        ],
        kind="device",
        why="torch.arange without device=; works on a laptop, fails (or moves data) on a GPU",
    ),
    Mistake(
        "rotate_batch: labels in x's dtype (float) instead of int64",
        replace=[
            (
                "    rotations = torch.arange(NUM_ROTATIONS, device=x.device).repeat_interleave(len(x))\n",
                "    rotations = torch.arange(NUM_ROTATIONS, device=x.device, dtype=x.dtype).repeat_interleave(len(x))\n",
            ),
        ],
        kind="dtype",
        why="applied the docstring's 'same dtype and device as x' to the labels too",
    ),
    Mistake(
        "rotate_batch: labels shaped (4N, 1), a column vector",
        replace=[
            (
                "    rotations = torch.arange(NUM_ROTATIONS, device=x.device).repeat_interleave(len(x))\n",
                "    rotations = torch.arange(NUM_ROTATIONS, device=x.device).repeat_interleave(len(x)).unsqueeze(1)\n",
            ),
        ],
        kind="wrong shape/transpose",
        why="kept the (N, 1) target shape of the logistic-regression lab",
    ),
    Mistake(
        "rotate_batch: images cast to float32 before turning",
        replace=[
            (
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n",
                "    rotated = torch.cat([torch.rot90(x.float(), k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n",
            ),
        ],
        kind="dtype",
        why="'the network needs float' — the docstring promises x's dtype (float64 input comes back float32)",
    ),
    Mistake(
        "rotate_batch: output preallocated with torch.zeros (CPU, default float32)",
        replace=[
            (
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n",
                "    n = len(x)\n    rotated = torch.zeros(NUM_ROTATIONS * n, *x.shape[1:])\n    for k in range(NUM_ROTATIONS):\n        rotated[k * n:(k + 1) * n] = torch.rot90(x, k, dims=(-2, -1))\n",
            ),
        ],
        kind="device",
        why="preallocated to 'save a cat', without x.new_zeros / device= / dtype=",
    ),
    Mistake(
        "rotate_batch: quarter turns counted 1..4 but labelled 0..3",
        replace=[
            (
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n",
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(1, NUM_ROTATIONS + 1)])\n",
            ),
        ],
        kind="off-by-one/indices",
        why="for k in range(1, 5) 'because 0 turns is no rotation'; block k is turned (k+1)·90°",
    ),
    Mistake(
        "rotate_batch: 90° made as a transpose (a reflection about the diagonal)",
        replace=[
            (
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n",
                "    turns = [x, x.transpose(-2, -1), x.flip(-2, -1), x.flip(-2, -1).transpose(-2, -1)]\n    rotated = torch.cat(turns)\n",
            ),
        ],
        kind="math",
        why="believed transposing an image turns it by a quarter; 270° as the transpose of the half turn",
    ),
    Mistake(
        "rotate_batch: 180° made as 'upside down', a vertical flip (a mirror image)",
        replace=[
            (
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n",
                "    turns = [x, torch.rot90(x, 1, dims=(-2, -1)), x.flip(-2), torch.rot90(x, 3, dims=(-2, -1))]\n    rotated = torch.cat(turns)\n",
            ),
        ],
        kind="math",
        why="upside-down = flip(-2) for the student; a half turn is a flip of both axes",
    ),
    Mistake(
        "rotate_batch: in-place transpose_ rewrites the caller's batch (and block 0)",
        replace=[
            (
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n",
                "    turns = [x]\n    for _ in range(NUM_ROTATIONS - 1):\n        turns.append(turns[-1].transpose_(-2, -1).flip(-2))\n    rotated = torch.cat(turns)\n",
            ),
        ],
        kind="mutation/in-place",
        why="used transpose_ to avoid a copy when chaining quarter turns",
    ),
    Mistake(
        "rotate_batch: one random rotation per image (N images) instead of all four (4N)",
        replace=[
            (
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n    rotations = torch.arange(NUM_ROTATIONS, device=x.device).repeat_interleave(len(x))\n",
                "    rotations = torch.randint(NUM_ROTATIONS, (len(x),), device=x.device)\n    rotated = torch.stack([torch.rot90(img, int(k), dims=(-2, -1)) for img, k in zip(x, rotations)])\n    rotated = rotated.reshape(x.shape)\n",
            ),
        ],
        kind="augmentation distribution",
        why="treated the rotation as a random augmentation, as in a torchvision RandomRotation pipeline",
    ),
    Mistake(
        "rotate_batch: the 4N images and labels shuffled before returning",
        replace=[
            (
                "    return rotated, rotations\n",
                "    order = torch.randperm(len(rotated), device=x.device)\n    return rotated[order], rotations[order]\n",
            ),
        ],
        kind="seed/shuffling",
        why="'so batch norm does not see sorted blocks' — breaks the documented block layout",
    ),
    Mistake(
        "rotate_batch returns (rotations, rotated), labels first",
        replace=[
            ("    return rotated, rotations\n", "    return rotations, rotated\n"),
            ("        rotated, rotations = rotate_batch(x)\n", "        rotations, rotated = rotate_batch(x)\n"),
        ],
        kind="interface",
        why="target-first habit; pretext_step unpacks it the same way so the student's own training works",
    ),
    Mistake(
        "rotate_batch: one-hot (4N, 4) float labels",
        replace=[
            (
                "    rotations = torch.arange(NUM_ROTATIONS, device=x.device).repeat_interleave(len(x))\n",
                "    rotations = F.one_hot(torch.arange(NUM_ROTATIONS, device=x.device).repeat_interleave(len(x)), NUM_ROTATIONS).to(x.dtype)\n",
            ),
            (
                "        self.metrics.update(stage, loss, logits, rotations)\n        return loss\n",
                "        self.metrics.update(stage, loss, logits, rotations.argmax(1))\n        return loss\n",
            ),
        ],
        kind="results format",
        why="soft targets from the mixup lecture; cross_entropy accepts probabilities, so training still works",
    ),
    Mistake(
        "RotationPretext: head hard-coded nn.Linear(64, 4)",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, NUM_ROTATIONS)\n",
                "        self.head = nn.Linear(64, NUM_ROTATIONS)\n",
            ),
        ],
        kind="architecture",
        why="read 64 features in the handout; any other backbone (Lab 4's ResNet-18) breaks",
    ),
    Mistake(
        "RotationPretext: head has 10 outputs (the digits) instead of 4 rotations",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, NUM_ROTATIONS)\n",
                "        self.head = nn.Linear(self.backbone.num_features, 10)\n",
            ),
        ],
        kind="architecture",
        why="copied the classifier head of Labs 3-4",
    ),
    Mistake(
        "RotationPretext: head is a 2-layer MLP, not one nn.Linear",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, NUM_ROTATIONS)\n",
                "        d = self.backbone.num_features\n        self.head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, NUM_ROTATIONS))\n",
            ),
        ],
        kind="architecture",
        why="RotNet's paper puts a non-linear classifier on the features; the handout fixes a linear head",
    ),
    Mistake(
        "RotationPretext: head without bias",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, NUM_ROTATIONS)\n",
                "        self.head = nn.Linear(self.backbone.num_features, NUM_ROTATIONS, bias=False)\n",
            ),
        ],
        kind="architecture",
        why="copied bias=False from DigitBackbone's convolutions (they are followed by batch norm; the head is not)",
    ),
    Mistake(
        "RotationPretext: head sized from the argument backbone (None by default) instead of self.backbone",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, NUM_ROTATIONS)\n",
                "        self.head = nn.Linear(backbone.num_features, NUM_ROTATIONS)\n",
            ),
        ],
        kind="argument dropped",
        why="used the constructor argument; RotationPretext() crashes with AttributeError on None",
    ),
    Mistake(
        "RotationPretext: builds a new DigitBackbone, ignoring the backbone passed in",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, NUM_ROTATIONS)\n",
                "        self.backbone = DigitBackbone()\n        self.head = nn.Linear(self.backbone.num_features, NUM_ROTATIONS)\n",
            ),
        ],
        kind="argument dropped",
        why="'the pretext needs a fresh network' — overwrote self.backbone in the TODO region",
    ),
    Mistake(
        "RotationPretext: softmax at the end of the head, then cross_entropy on probabilities",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, NUM_ROTATIONS)\n",
                "        self.head = nn.Sequential(nn.Linear(self.backbone.num_features, NUM_ROTATIONS), nn.Softmax(dim=1))\n",
            ),
        ],
        kind="loss",
        why="'the network should output probabilities'; cross_entropy applies log_softmax again",
    ),
    Mistake(
        "pretext_step drops rotation-symmetric digits (0, 1, 8) using the class labels",
        replace=[
            (
                "        x, _ = batch\n        rotated, rotations = rotate_batch(x)\n",
                "        x, y = batch\n        x = x[(y != 0) & (y != 1) & (y != 8)]  # these look the same upside down\n        rotated, rotations = rotate_batch(x)\n",
            ),
        ],
        kind="wrong labels/metric",
        why="clever: those digits look alike turned by 180°; but the pretext must never read y",
    ),
    Mistake(
        "pretext_step updates the 'fit' metrics whatever the stage",
        replace=[
            (
                "        self.metrics.update(stage, loss, logits, rotations)\n        return loss\n",
                '        self.metrics.update("fit", loss, logits, rotations)\n        return loss\n',
            ),
        ],
        kind="train vs eval",
        why="hard-coded the stage string; val_acc / test_acc are never computed (test accuracy comes out empty)",
    ),
    Mistake(
        "pretext_step: cross-entropy summed over the 4N images (reduction='sum')",
        replace=[
            (
                "        loss = F.cross_entropy(logits, rotations)\n",
                '        loss = F.cross_entropy(logits, rotations, reduction="sum")\n',
            ),
        ],
        kind="reduction",
        why="summed as in the notes' loss L = sum_i; the loss and gradient scale with the batch (lr 0.05 blows up)",
    ),
    Mistake(
        "pretext_step: F.nll_loss on raw logits (no log_softmax)",
        replace=[
            ("        loss = F.cross_entropy(logits, rotations)\n", "        loss = F.nll_loss(logits, rotations)\n"),
        ],
        kind="loss",
        why="nll_loss 'is the negative log-likelihood'; it only picks -logit[target]",
    ),
    Mistake(
        "pretext_step: hand-written softmax cross-entropy without max subtraction",
        replace=[
            (
                "        loss = F.cross_entropy(logits, rotations)\n",
                "        probs = logits.exp() / logits.exp().sum(dim=1, keepdim=True)\n        loss = -probs[torch.arange(len(rotations)), rotations].log().mean()\n",
            ),
        ],
        kind="numerical stability",
        why="wrote the notes' formula exp(z)/sum exp(z) literally; overflows to nan for large logits",
    ),
    Mistake(
        "pretext_step: log(softmax(z)) instead of log_softmax",
        replace=[
            (
                "        loss = F.cross_entropy(logits, rotations)\n",
                "        loss = F.nll_loss(torch.log(F.softmax(logits, dim=1)), rotations)\n",
            ),
        ],
        kind="numerical stability",
        why="two steps as in the notes; softmax underflows to 0 and log(0) = -inf (loss inf)",
    ),
    Mistake(
        "pretext_step: in-place log_ on the softmax output breaks backward",
        replace=[
            (
                "        loss = F.cross_entropy(logits, rotations)\n",
                "        loss = F.nll_loss(F.softmax(logits, dim=1).log_(), rotations)\n",
            ),
        ],
        kind="autograd",
        why="used log_ to save memory; softmax's backward needs its output unmodified",
    ),
    Mistake(
        "pretext_step rotates only in training; validation/test see upright images labelled 0",
        replace=[
            (
                "        x, _ = batch\n        rotated, rotations = rotate_batch(x)\n",
                '        x, _ = batch\n        if stage == "fit":\n            rotated, rotations = rotate_batch(x)\n        else:  # no augmentation at evaluation time\n            rotated, rotations = x, torch.zeros(len(x), dtype=torch.long, device=x.device)\n',
            ),
        ],
        kind="train vs eval",
        why="treated the rotation as data augmentation, 'never augment at evaluation time'",
    ),
    Mistake(
        "pretext_step: one forward pass per rotation, so batch norm normalises each rotation separately",
        replace=[
            (
                "        logits = self(rotated)\n",
                "        n = len(x)\n        logits = torch.cat([self(rotated[k * n:(k + 1) * n]) for k in range(NUM_ROTATIONS)])\n",
            ),
        ],
        kind="train vs eval",
        why="looped over the four blocks 'to save memory'; in training mode each block gets its own batch statistics (a shortcut the network can read), and running stats update four times",
    ),
    Mistake(
        "pretext_step forgets to return the loss (training_step returns None)",
        replace=[
            (
                "        self.metrics.update(stage, loss, logits, rotations)\n        return loss\n",
                "        self.metrics.update(stage, loss, logits, rotations)\n",
            ),
        ],
        kind="autograd",
        why="validation_step returns nothing, so the shared step returned nothing; Lightning skips every update",
    ),
    Mistake(
        "pretext_step returns loss.item()",
        replace=[
            (
                "        self.metrics.update(stage, loss, logits, rotations)\n        return loss\n",
                "        loss = loss.item()\n        self.metrics.update(stage, loss, logits, rotations)\n        return loss\n",
            ),
        ],
        kind="autograd",
        why="wanted a number to log; a float has no graph (and metrics.update calls .detach() on it)",
    ),
    Mistake(
        "RotationPretext.forward rotates its input: forward returns (4N, 4) logits",
        replace=[
            (
                '        """Return rotation logits (N, 4) for images x (N, C, H, W)."""\n        return self.head(self.backbone(x))\n',
                '        """Return rotation logits (N, 4) for images x (N, C, H, W)."""\n        rotated, _ = rotate_batch(x)\n        return self.head(self.backbone(rotated))\n',
            ),
            ("        logits = self(rotated)\n", "        logits = self(x)\n"),
        ],
        kind="interface",
        why="put the whole pretext inside forward so that self(x) 'does the task'",
    ),
    Mistake(
        "RotationPretext freezes its backbone (only the head learns the pretext)",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, NUM_ROTATIONS)\n",
                "        self.head = nn.Linear(self.backbone.num_features, NUM_ROTATIONS)\n        self.backbone.requires_grad_(False)\n",
            ),
        ],
        kind="freezing",
        why="copied the linear probe's freezing into the pretext model",
    ),
    Mistake(
        "pretext_step: cross-entropy with label smoothing 0.1",
        replace=[
            (
                "        loss = F.cross_entropy(logits, rotations)\n",
                "        loss = F.cross_entropy(logits, rotations, label_smoothing=0.1)\n",
            ),
        ],
        kind="loss",
        why="copied a modern training recipe; the check asks for the plain cross-entropy",
    ),
    Mistake(
        "LinearProbe: backbone put in eval mode but its parameters still require gradients",
        replace=[
            ("        self.backbone.requires_grad_(False)\n", ""),
        ],
        kind="freezing",
        why="believed eval() freezes a module",
    ),
    Mistake(
        "LinearProbe: backbone run under torch.no_grad() instead of requires_grad_(False)",
        replace=[
            ("        self.backbone.requires_grad_(False)\n", ""),
            (
                '        """Return logits (N, num_classes) for images x (N, C, H, W)."""\n        return self.head(self.backbone(x))\n',
                '        """Return logits (N, num_classes) for images x (N, C, H, W)."""\n        with torch.no_grad():\n            features = self.backbone(x)\n        return self.head(features)\n',
            ),
        ],
        kind="freezing",
        why="'no_grad freezes the features'; the parameters still report requires_grad=True",
    ),
    Mistake(
        "LinearProbe.__init__: backbone not put in eval mode",
        replace=[
            (
                "        self.backbone.requires_grad_(False)\n        self.backbone.eval()\n",
                "        self.backbone.requires_grad_(False)\n",
            ),
        ],
        kind="train vs eval",
        why="relied on train() being overridden; right after construction the backbone is in training mode",
    ),
    Mistake(
        "LinearProbe.train() leaves the backbone in training mode",
        replace=[
            (
                "        ### BEGIN SOLUTION\n        self.backbone.eval()\n        ### END SOLUTION\n        return self\n",
                "        ### BEGIN SOLUTION\n        pass\n        ### END SOLUTION\n        return self\n",
            ),
        ],
        kind="train vs eval",
        why="eval() in __init__ seemed enough; model.train() wakes batch norm, running stats move",
    ),
    Mistake(
        "LinearProbe.train(mode): backbone set to the opposite mode (train(not mode))",
        replace=[
            (
                "        ### BEGIN SOLUTION\n        self.backbone.eval()\n        ### END SOLUTION\n        return self\n",
                "        ### BEGIN SOLUTION\n        self.backbone.train(not mode)\n        ### END SOLUTION\n        return self\n",
            ),
        ],
        kind="train vs eval",
        why="'the backbone must do the opposite of the head'; model.eval() then puts batch norm in training mode",
    ),
    Mistake(
        "LinearProbe.train() returns the backbone instead of the model",
        replace=[
            (
                "        ### BEGIN SOLUTION\n        self.backbone.eval()\n        ### END SOLUTION\n        return self\n",
                "        ### BEGIN SOLUTION\n        return self.backbone.eval()\n        ### END SOLUTION\n        return self\n",
            ),
        ],
        kind="interface",
        why="wrote return self.backbone.eval() to 'return the result'",
    ),
    Mistake(
        "LinearProbe.train() calls self.eval(): infinite recursion",
        replace=[
            (
                "        ### BEGIN SOLUTION\n        self.backbone.eval()\n        ### END SOLUTION\n        return self\n",
                "        ### BEGIN SOLUTION\n        self.eval()\n        ### END SOLUTION\n        return self\n",
            ),
        ],
        kind="train vs eval",
        why="forgot that eval() is train(False), which is the method being overridden",
    ),
    Mistake(
        "LinearProbe: only the batch-norm layers put in eval mode (Lab 4's freeze), the backbone stays in train mode",
        replace=[
            (
                "        self.backbone.requires_grad_(False)\n        self.backbone.eval()\n",
                "        self.backbone.requires_grad_(False)\n        for layer in self.backbone.modules():\n            if isinstance(layer, nn.modules.batchnorm._BatchNorm):\n                layer.eval()\n",
            ),
            (
                "        ### BEGIN SOLUTION\n        self.backbone.eval()\n        ### END SOLUTION\n        return self\n",
                "        ### BEGIN SOLUTION\n        for layer in self.backbone.modules():\n            if isinstance(layer, nn.modules.batchnorm._BatchNorm):\n                layer.eval()\n        ### END SOLUTION\n        return self\n",
            ),
        ],
        kind="train vs eval",
        why="reused Lab 4's freeze; a backbone with dropout (or checking backbone.training) shows the difference",
    ),
    Mistake(
        "LinearProbe: head hard-coded to 10 outputs, num_classes ignored",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, num_classes)\n",
                "        self.head = nn.Linear(self.backbone.num_features, 10)\n",
            ),
        ],
        kind="argument dropped",
        why="MNIST has 10 digits",
    ),
    Mistake(
        "LinearProbe: head sized from DigitBackbone.num_features, not the given backbone's",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, num_classes)\n",
                "        self.head = nn.Linear(DigitBackbone.num_features, num_classes)\n",
            ),
        ],
        kind="architecture",
        why="read the class attribute; a backbone of another width (ResNet-18: 512) breaks",
    ),
    Mistake(
        "LinearProbe optimizer over self.parameters() (frozen backbone included)",
        replace=[
            (
                "        return torch.optim.SGD(self.head.parameters(), lr=self.hparams.lr, momentum=0.9)\n",
                "        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)\n",
            ),
        ],
        kind="optimizer/hyper-parameter",
        why="'frozen parameters get no gradient anyway'; the handout: the optimizer holds the head only",
    ),
    Mistake(
        "LinearProbe optimizer: plain SGD without momentum",
        replace=[
            (
                "        return torch.optim.SGD(self.head.parameters(), lr=self.hparams.lr, momentum=0.9)\n",
                "        return torch.optim.SGD(self.head.parameters(), lr=self.hparams.lr)\n",
            ),
        ],
        kind="optimizer/hyper-parameter",
        why="forgot momentum=0.9",
    ),
    Mistake(
        "LinearProbe optimizer: lr hard-coded 0.1, the lr argument ignored",
        replace=[
            (
                "        return torch.optim.SGD(self.head.parameters(), lr=self.hparams.lr, momentum=0.9)\n",
                "        return torch.optim.SGD(self.head.parameters(), lr=0.1, momentum=0.9)\n",
            ),
        ],
        kind="optimizer/hyper-parameter",
        why="wrote a 'usual' SGD learning rate instead of self.hparams.lr (0.5 by default)",
    ),
    Mistake(
        "LinearProbe optimizer: Adam instead of SGD with momentum",
        replace=[
            (
                "        return torch.optim.SGD(self.head.parameters(), lr=self.hparams.lr, momentum=0.9)\n",
                "        return torch.optim.Adam(self.head.parameters(), lr=self.hparams.lr)\n",
            ),
        ],
        kind="optimizer/hyper-parameter",
        why="Adam 'works out of the box'; the handout fixes SGD (momentum 0.9)",
    ),
    Mistake(
        "LinearProbe optimizer: nesterov and weight decay 5e-4 copied from the pretext optimizer",
        replace=[
            (
                "        return torch.optim.SGD(self.head.parameters(), lr=self.hparams.lr, momentum=0.9)\n",
                "        return torch.optim.SGD(self.head.parameters(), lr=self.hparams.lr, momentum=0.9, nesterov=True,\n                               weight_decay=5e-4)\n",
            ),
        ],
        kind="optimizer/hyper-parameter",
        why="copy-pasted RotationPretext.configure_optimizers",
    ),
    Mistake(
        "LinearProbe: requires_grad_(False) on the whole model, so the head is frozen too",
        replace=[
            ("        self.backbone.requires_grad_(False)\n", "        self.requires_grad_(False)\n"),
        ],
        kind="freezing",
        why="wrote self.requires_grad_(False) after creating the head; nothing can learn",
    ),
    Mistake(
        "LinearProbe: always loads the shipped rotation backbone, ignoring the backbone argument",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, num_classes)\n",
                '        self.backbone = load_backbone("rotation")\n        self.head = nn.Linear(self.backbone.num_features, num_classes)\n',
            ),
        ],
        kind="argument dropped",
        why="'the probe runs on the rotation features' — the random-feature baseline then probes rotation features",
    ),
    Mistake(
        "LinearProbe: self.backbone.requires_grad = False (a module attribute, not the parameters)",
        replace=[
            ("        self.backbone.requires_grad_(False)\n", "        self.backbone.requires_grad = False\n"),
        ],
        kind="freezing",
        why="classic: setting the attribute on the module does nothing to its parameters",
    ),
    Mistake(
        "ssl_experiment: the random backbone is not seeded",
        replace=[
            ("    torch.manual_seed(seed)\n", ""),
        ],
        kind="seed/shuffling",
        why="forgot torch.manual_seed(seed); the baseline's weights depend on the RNG the rotation probe consumed",
    ),
    Mistake(
        "ssl_experiment: the random backbone seeded with 0, not seed",
        replace=[
            ("    torch.manual_seed(seed)\n", "    torch.manual_seed(0)\n"),
        ],
        kind="seed/shuffling",
        why="hard-coded the seed 'so it is the same every run'",
    ),
    Mistake(
        "ssl_experiment: the two accuracies swapped in the result",
        replace=[
            (
                '    return {labels_per_class: {"rotation features": rotation, "random features": random}}\n',
                '    return {labels_per_class: {"rotation features": random, "random features": rotation}}\n',
            ),
        ],
        kind="results format",
        why="mixed up the variable names when writing the dict",
    ),
    Mistake(
        "ssl_experiment returns a flat dict without the labels_per_class key",
        replace=[
            (
                '    return {labels_per_class: {"rotation features": rotation, "random features": random}}\n',
                '    return {"rotation features": rotation, "random features": random}\n',
            ),
        ],
        kind="results format",
        why="thought the outer key redundant with one budget",
    ),
    Mistake(
        "ssl_experiment reports accuracies in percent",
        replace=[
            (
                '    return {labels_per_class: {"rotation features": rotation, "random features": random}}\n',
                '    return {labels_per_class: {"rotation features": 100 * rotation, "random features": 100 * random}}\n',
            ),
        ],
        kind="results format",
        why="wanted readable numbers for the write-up",
    ),
    Mistake(
        "ssl_experiment: labels_per_class not passed on to probe_accuracy",
        replace=[
            (
                "    rotation = probe_accuracy(pretext.backbone, labels_per_class, seed=seed, accelerator=accelerator)\n",
                "    rotation = probe_accuracy(pretext.backbone, seed=seed, accelerator=accelerator)\n",
            ),
            (
                "    random = probe_accuracy(DigitBackbone(), labels_per_class, seed=seed, accelerator=accelerator)\n",
                "    random = probe_accuracy(DigitBackbone(), seed=seed, accelerator=accelerator)\n",
            ),
        ],
        kind="argument dropped",
        why="probe_accuracy defaults to 10, the handout's budget, so the student's run looked right",
    ),
    Mistake(
        "ssl_experiment: pretext_images not passed on to pretrain",
        replace=[
            (
                "    pretext, _ = pretrain(pretext_images, seed=seed, accelerator=accelerator)\n",
                "    pretext, _ = pretrain(seed=seed, accelerator=accelerator)\n",
            ),
        ],
        kind="argument dropped",
        why="pretrain defaults to 100, the handout's number",
    ),
    Mistake(
        "ssl_experiment: accelerator not passed on (always CPU)",
        replace=[
            (
                "    pretext, _ = pretrain(pretext_images, seed=seed, accelerator=accelerator)\n",
                "    pretext, _ = pretrain(pretext_images, seed=seed)\n",
            ),
            (
                "    rotation = probe_accuracy(pretext.backbone, labels_per_class, seed=seed, accelerator=accelerator)\n",
                "    rotation = probe_accuracy(pretext.backbone, labels_per_class, seed=seed)\n",
            ),
            (
                "    random = probe_accuracy(DigitBackbone(), labels_per_class, seed=seed, accelerator=accelerator)\n",
                "    random = probe_accuracy(DigitBackbone(), labels_per_class, seed=seed)\n",
            ),
        ],
        kind="argument dropped",
        why="the defaults are 'cpu' and it ran on the laptop",
    ),
    Mistake(
        "ssl_experiment: pretrain(pretext_images, seed) passes the seed as max_epochs",
        replace=[
            (
                "    pretext, _ = pretrain(pretext_images, seed=seed, accelerator=accelerator)\n",
                "    pretext, _ = pretrain(pretext_images, seed, accelerator=accelerator)\n",
            ),
        ],
        kind="argument dropped",
        why="positional call against pretrain(pretext_images, max_epochs, seed, ...); seed 0 means 0 epochs",
    ),
    Mistake(
        "ssl_experiment: seed not passed on to probe_accuracy",
        replace=[
            (
                "    rotation = probe_accuracy(pretext.backbone, labels_per_class, seed=seed, accelerator=accelerator)\n",
                "    rotation = probe_accuracy(pretext.backbone, labels_per_class, accelerator=accelerator)\n",
            ),
            (
                "    random = probe_accuracy(DigitBackbone(), labels_per_class, seed=seed, accelerator=accelerator)\n",
                "    random = probe_accuracy(DigitBackbone(), labels_per_class, accelerator=accelerator)\n",
            ),
        ],
        kind="seed/shuffling",
        why="seeded only the pretraining; the probes always use seed 0",
    ),
    Mistake(
        "ssl_experiment: 'random' backbone is the pretext backbone re-initialised in place (aliasing)",
        replace=[
            (
                "    rotation = probe_accuracy(pretext.backbone, labels_per_class, seed=seed, accelerator=accelerator)\n    torch.manual_seed(seed)\n    random = probe_accuracy(DigitBackbone(), labels_per_class, seed=seed, accelerator=accelerator)\n",
                '    torch.manual_seed(seed)\n    random_backbone = pretext.backbone  # the same network, never trained\n    for layer in random_backbone.modules():\n        if hasattr(layer, "reset_parameters"):\n            layer.reset_parameters()\n    rotation = probe_accuracy(pretext.backbone, labels_per_class, seed=seed, accelerator=accelerator)\n    random = probe_accuracy(random_backbone, labels_per_class, seed=seed, accelerator=accelerator)\n',
            ),
        ],
        kind="baseline not what it says",
        why="random_backbone = pretext.backbone is no copy: resetting it wipes the pretrained features too",
    ),
]

ALTERNATIVES = [
    Alternative(
        "rotate_batch by chaining quarter turns: transpose the last two dims (x.mT), then flip rows",
        replace=[
            (
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n",
                "    turns = [x]\n    for _ in range(NUM_ROTATIONS - 1):\n        turns.append(turns[-1].mT.flip(-2))  # one more quarter turn counter-clockwise\n    rotated = torch.cat(turns)\n",
            ),
        ],
    ),
    Alternative(
        "rotate_batch with torch.stack(...).flatten(0, 1), Tensor.rot90, labels as arange(4N) // N",
        replace=[
            (
                '    if x.shape[-1] != x.shape[-2]:\n        raise ValueError(f"rotate_batch needs square images, got height × width {tuple(x.shape[-2:])}")\n',
                '    height, width = x.shape[-2:]\n    if height != width:\n        raise ValueError(f"images must be square, got shape {tuple(x.shape)}")\n',
            ),
            (
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n",
                "    rotated = torch.stack([x.rot90(k, (-2, -1)) for k in range(NUM_ROTATIONS)]).flatten(0, 1)\n",
            ),
            (
                "    rotations = torch.arange(NUM_ROTATIONS, device=x.device).repeat_interleave(len(x))\n",
                "    rotations = torch.arange(NUM_ROTATIONS * len(x), device=x.device) // max(len(x), 1)\n",
            ),
        ],
    ),
    Alternative(
        "rotate_batch into preallocated x.new_empty / torch.empty(dtype=long, device=x.device) slices",
        replace=[
            (
                "    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(NUM_ROTATIONS)])\n    rotations = torch.arange(NUM_ROTATIONS, device=x.device).repeat_interleave(len(x))\n",
                "    n = x.shape[0]\n    rotated = x.new_empty((NUM_ROTATIONS * n, *x.shape[1:]))\n    rotations = torch.empty(NUM_ROTATIONS * n, dtype=torch.long, device=x.device)\n    for k in range(NUM_ROTATIONS):\n        rotated[k * n:(k + 1) * n] = torch.rot90(x, k, dims=(-2, -1))\n        rotations[k * n:(k + 1) * n] = k\n",
            ),
        ],
    ),
    Alternative(
        "pretext_step with an explicit logsumexp cross-entropy (stable) and batch[0]",
        replace=[
            (
                "        x, _ = batch\n        rotated, rotations = rotate_batch(x)\n",
                "        x = batch[0]  # the class labels batch[1] are never touched\n        rotated, rotations = rotate_batch(x)\n",
            ),
            (
                "        loss = F.cross_entropy(logits, rotations)\n",
                "        picked = logits.gather(1, rotations.unsqueeze(1)).squeeze(1)\n        loss = (torch.logsumexp(logits, dim=1) - picked).mean()\n",
            ),
        ],
    ),
    Alternative(
        "pretext head with keyword arguments and the loss as nll_loss(log_softmax), forward via backbone then head",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, NUM_ROTATIONS)\n",
                "        self.head = nn.Linear(in_features=self.backbone.num_features, out_features=NUM_ROTATIONS, bias=True)\n",
            ),
            (
                "        logits = self(rotated)\n",
                "        features = self.backbone(rotated)\n        logits = self.head(features)\n",
            ),
            (
                "        loss = F.cross_entropy(logits, rotations)\n",
                "        loss = F.nll_loss(F.log_softmax(logits, dim=1), rotations)\n",
            ),
        ],
    ),
    Alternative(
        "LinearProbe frozen with a loop over parameters and train(False); features under no_grad too",
        replace=[
            (
                "        self.backbone.requires_grad_(False)\n        self.backbone.eval()\n",
                "        for parameter in self.backbone.parameters():\n            parameter.requires_grad = False\n        self.backbone.train(False)\n",
            ),
            (
                '        """Return logits (N, num_classes) for images x (N, C, H, W)."""\n        return self.head(self.backbone(x))\n',
                '        """Return logits (N, num_classes) for images x (N, C, H, W)."""\n        with torch.no_grad():\n            features = self.backbone(x)\n        return self.head(features)\n',
            ),
            (
                "        ### BEGIN SOLUTION\n        self.backbone.eval()\n        ### END SOLUTION\n        return self\n",
                "        ### BEGIN SOLUTION\n        if mode:  # train(False) already put everything in eval mode\n            self.backbone.train(False)\n        ### END SOLUTION\n        return self\n",
            ),
        ],
    ),
    Alternative(
        "LinearProbe optimizer over the trainable parameters, as one parameter-group dict",
        replace=[
            (
                "        return torch.optim.SGD(self.head.parameters(), lr=self.hparams.lr, momentum=0.9)\n",
                '        trainable = [p for p in self.parameters() if p.requires_grad]  # the head only\n        return torch.optim.SGD([{"params": trainable, "lr": self.hparams.lr}], lr=self.hparams.lr, momentum=0.9)\n',
            ),
        ],
    ),
    Alternative(
        "ssl_experiment builds the seeded random backbone first, keyword arguments, dict built step by step",
        replace=[
            (
                '    pretext, _ = pretrain(pretext_images, seed=seed, accelerator=accelerator)\n    rotation = probe_accuracy(pretext.backbone, labels_per_class, seed=seed, accelerator=accelerator)\n    torch.manual_seed(seed)\n    random = probe_accuracy(DigitBackbone(), labels_per_class, seed=seed, accelerator=accelerator)\n    return {labels_per_class: {"rotation features": rotation, "random features": random}}\n',
                '    torch.manual_seed(seed)\n    untrained = DigitBackbone()  # the same network, never trained\n    pretext, _pretext_accuracy = pretrain(pretext_images=pretext_images, seed=seed, accelerator=accelerator)\n    results = {}\n    for name, backbone in (("rotation features", pretext.backbone), ("random features", untrained)):\n        results[name] = probe_accuracy(backbone, labels_per_class=labels_per_class, seed=seed,\n                                       accelerator=accelerator)\n    return {labels_per_class: results}\n',
            ),
        ],
    ),
]
