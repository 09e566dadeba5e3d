"""Lab transfer: mistakes and correct alternatives written by an independent student.

A helper given the handout, the stub and the reference -- not the checks -- wrote them as students
make them (``kind``, ``why``). ``litlabs audit`` grades them with the pinned table beside
(``grader/mistakes/transfer.py``); the test suite grades only the pinned table (each of these needs a
full grading, trainings included).
"""

from grader.instructor.audit import Alternative, Mistake

MISTAKES = [
    Mistake(
        "freeze only turns off requires_grad; batch norm left in training mode",
        replace=[
            (
                "    for layer in module.modules():\n        if isinstance(layer, _BatchNorm):\n            layer.eval()\n",
                "",
            ),
        ],
        kind="train vs eval",
        why="the student thinks requires_grad=False is all 'frozen' means (the classic BN-drift bug)",
    ),
    Mistake(
        "freeze looks for batch norm in module.children() only, missing nested layers",
        replace=[
            (
                "    for layer in module.modules():\n        if isinstance(layer, _BatchNorm):\n            layer.eval()\n",
                "    for layer in module.children():\n        if isinstance(layer, _BatchNorm):\n            layer.eval()\n",
            ),
        ],
        kind="train vs eval",
        why="children() looked like modules() to the student; DigitBackbone's BN live inside .features",
    ),
    Mistake(
        "freeze tests isinstance(layer, nn.BatchNorm2d) instead of _BatchNorm",
        replace=[
            (
                "        if isinstance(layer, _BatchNorm):\n            layer.eval()\n",
                "        if isinstance(layer, nn.BatchNorm2d):\n            layer.eval()\n",
            ),
        ],
        kind="edge point",
        why="the student only thought of the CNN's BatchNorm2d; BatchNorm1d / SyncBatchNorm keep counting",
    ),
    Mistake(
        "freeze sets track_running_stats = False instead of eval mode",
        replace=[
            (
                "        if isinstance(layer, _BatchNorm):\n            layer.eval()\n",
                "        if isinstance(layer, _BatchNorm):\n            layer.track_running_stats = False\n",
            ),
        ],
        kind="train vs eval",
        why="copied Lightning's BaseFinetuning.freeze_module; BN then normalises with batch statistics",
    ),
    Mistake(
        "freeze is Lightning's BaseFinetuning.freeze(module) with its default train_bn=True",
        replace=[
            (
                "    for parameter in module.parameters():\n        parameter.requires_grad_(False)\n    for layer in module.modules():\n        if isinstance(layer, _BatchNorm):\n            layer.eval()\n",
                "    BaseFinetuning.freeze(module)\n",
            ),
        ],
        kind="train vs eval",
        why="the Lightning docs' helper looked like exactly this function; its default keeps BN trainable",
    ),
    Mistake(
        "freeze sets batch-norm momentum to 0 instead of eval mode",
        replace=[
            (
                "        if isinstance(layer, _BatchNorm):\n            layer.eval()\n",
                "        if isinstance(layer, _BatchNorm):\n            layer.momentum = 0.0\n",
            ),
        ],
        kind="train vs eval",
        why="'momentum 0 means the running mean never moves' - but BN still normalises with batch statistics",
    ),
    Mistake(
        "freeze leaves the batch-norm affine parameters trainable",
        replace=[
            (
                "    for parameter in module.parameters():\n        parameter.requires_grad_(False)\n    for layer in module.modules():\n        if isinstance(layer, _BatchNorm):\n            layer.eval()\n",
                "    for layer in module.modules():\n        if isinstance(layer, _BatchNorm):\n            layer.eval()\n        else:\n            for parameter in layer.parameters(recurse=False):\n                parameter.requires_grad_(False)\n",
            ),
        ],
        kind="freezing",
        why="a blog trick ('let gamma/beta adapt'); the docstring says every parameter is frozen",
    ),
    Mistake(
        "unfreeze turns requires_grad back on but never calls module.train()",
        replace=[
            ("    module.train()\n    ### END SOLUTION", "    ### END SOLUTION"),
        ],
        kind="train vs eval",
        why="the student treats unfreeze as the mirror of requires_grad only; BN stays in eval mode",
    ),
    Mistake(
        "unfreeze puts only the batch-norm layers back in training mode",
        replace=[
            (
                "    module.train()\n    ### END SOLUTION",
                "    for layer in module.modules():\n        if isinstance(layer, _BatchNorm):\n            layer.train()\n    ### END SOLUTION",
            ),
        ],
        kind="train vs eval",
        why="mirrored freeze line by line; the docstring says the module is in training mode",
    ),
    Mistake(
        "unfreeze uses module.parameters(recurse=False): a container's nested parameters stay frozen",
        replace=[
            (
                "    for parameter in module.parameters():\n        parameter.requires_grad_(True)\n",
                "    for parameter in module.parameters(recurse=False):\n        parameter.requires_grad_(True)\n",
            ),
        ],
        kind="freezing",
        why="copied Lightning's make_trainable, which uses recurse=False on already-flattened modules",
    ),
    Mistake(
        "unfreeze only calls module.train(); requires_grad stays False",
        replace=[
            ("    for parameter in module.parameters():\n        parameter.requires_grad_(True)\n", ""),
        ],
        kind="freezing",
        why="the student confuses training mode with 'learning' (train() is the opposite of eval(), not of freeze)",
    ),
    Mistake(
        "head hard-codes 64 input features",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, num_classes)\n",
                "        self.head = nn.Linear(64, num_classes)\n",
            ),
        ],
        kind="architecture",
        why="DigitBackbone has 64 features; the docstring says never a number, read backbone.num_features",
    ),
    Mistake(
        "head always has 10 outputs (MNIST has 10 digits), num_classes ignored",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, num_classes)\n",
                "        self.head = nn.Linear(self.backbone.num_features, 10)\n",
            ),
        ],
        kind="argument ignored",
        why="the student thinks of MNIST's 10 classes; the target task has 5",
    ),
    Mistake(
        "head is a two-layer MLP instead of one linear layer",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, num_classes)\n",
                "        self.head = nn.Sequential(nn.Linear(self.backbone.num_features, self.backbone.num_features),\n                                  nn.ReLU(), nn.Linear(self.backbone.num_features, num_classes))\n",
            ),
        ],
        kind="architecture",
        why="'a stronger head' from a Kaggle notebook; the handout's head (and linear probe) is one nn.Linear",
    ),
    Mistake(
        "head ends with a softmax, so forward returns probabilities and cross_entropy is applied to them",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, num_classes)\n",
                "        self.head = nn.Sequential(nn.Linear(self.backbone.num_features, num_classes), nn.Softmax(dim=1))\n",
            ),
        ],
        kind="architecture",
        why="'a classifier outputs probabilities'; F.cross_entropy already applies log-softmax to logits",
    ),
    Mistake(
        "head without a bias",
        replace=[
            (
                "        self.head = nn.Linear(self.backbone.num_features, num_classes)\n",
                "        self.head = nn.Linear(self.backbone.num_features, num_classes, bias=False)\n",
            ),
        ],
        kind="architecture",
        why="copied bias=False from the backbone's convolutions (they are followed by BN; the head is not)",
    ),
    Mistake(
        "gradual: backbone not frozen in __init__ (left to the callback)",
        replace=[
            (
                '        if mode in ("linear_probe", "gradual", "last_k"):\n            freeze(self.backbone)\n',
                '        if mode in ("linear_probe", "last_k"):\n            freeze(self.backbone)\n',
            ),
        ],
        kind="flag ignored",
        why="'UnfreezeBackbone.freeze_before_training does it'; the docstring says freeze it for gradual",
    ),
    Mistake(
        "last_k: the backbone is not frozen first, so every layer learns",
        replace=[
            (
                '        if mode in ("linear_probe", "gradual", "last_k"):\n            freeze(self.backbone)\n',
                '        if mode in ("linear_probe", "gradual"):\n            freeze(self.backbone)\n',
            ),
        ],
        kind="freezing",
        why="the student only unfreezes the last k layers, forgetting they start out trainable",
    ),
    Mistake(
        "last_k: unfreezes list(backbone.children())[-k:] instead of the last k layers with parameters",
        replace=[
            (
                "            for layer in layers_with_parameters(self.backbone)[-k:]:\n                unfreeze(layer)\n",
                "            for layer in list(self.backbone.children())[-k:]:\n                unfreeze(layer)\n",
            ),
        ],
        kind="wrong layers",
        why="the ResNet idiom list(model.children())[-k:]; DigitBackbone has one child (features), so all unfreeze",
    ),
    Mistake(
        "last_k: unfreezes the last k parameter tensors instead of the last k layers",
        replace=[
            (
                "            for layer in layers_with_parameters(self.backbone)[-k:]:\n                unfreeze(layer)\n",
                "            for parameter in list(self.backbone.parameters())[-k:]:\n                parameter.requires_grad_(True)\n",
            ),
        ],
        kind="wrong layers",
        why="list(backbone.parameters())[-k:] looked like 'the last k layers'; k=2 gives bn3's weight and bias",
    ),
    Mistake(
        "last_k: counts the head as one of the k layers (unfreezes k-1; k=1 unfreezes everything)",
        replace=[
            (
                "            for layer in layers_with_parameters(self.backbone)[-k:]:\n                unfreeze(layer)\n",
                "            for layer in layers_with_parameters(self.backbone)[-(k - 1):]:\n                unfreeze(layer)\n",
            ),
        ],
        kind="off-by-one",
        why="'the last k layers' of the whole network include the head, thought the student",
    ),
    Mistake(
        "last_k: unfreezes the first k layers",
        replace=[
            (
                "            for layer in layers_with_parameters(self.backbone)[-k:]:\n                unfreeze(layer)\n",
                "            for layer in layers_with_parameters(self.backbone)[:k]:\n                unfreeze(layer)\n",
            ),
        ],
        kind="wrong layers",
        why="the student sliced [:k], thinking of 'the first k from the top'",
    ),
    Mistake(
        "last_k: k ignored, always the last 2 layers",
        replace=[
            (
                "            for layer in layers_with_parameters(self.backbone)[-k:]:\n                unfreeze(layer)\n",
                "            for layer in layers_with_parameters(self.backbone)[-2:]:\n                unfreeze(layer)\n",
            ),
        ],
        kind="argument ignored",
        why="hard-coded the default k=2 from the signature",
    ),
    Mistake(
        "scratch: backbone never reinitialised (the baseline starts from the pretrained weights)",
        replace=[
            ('        if mode == "scratch":\n            reinitialise(self.backbone)\n', ""),
        ],
        kind="baseline",
        why="the student thought 'scratch' only meant 'everything trains at lr'",
    ),
    Mistake(
        "scratch: a fresh DigitBackbone() replaces the given backbone",
        replace=[
            (
                "from datamodules.pretrained import load_backbone\n",
                "from datamodules.pretrained import DigitBackbone, load_backbone\n",
            ),
            (
                '        if mode == "scratch":\n            reinitialise(self.backbone)\n',
                '        if mode == "scratch":\n            self.backbone = DigitBackbone()\n',
            ),
        ],
        kind="baseline",
        why="'from scratch = a new network'; wrong for any other backbone (resnet18, a passed module)",
    ),
    Mistake(
        "fine_tune: batch-norm layers kept frozen",
        replace=[
            (
                '        if mode == "scratch":\n            reinitialise(self.backbone)\n',
                '        if mode == "scratch":\n            reinitialise(self.backbone)\n        if mode == "fine_tune":\n            for layer in self.backbone.modules():\n                if isinstance(layer, _BatchNorm):\n                    freeze(layer)\n',
            ),
        ],
        kind="freezing",
        why="common advice for small-batch fine-tuning; the handout says everything learns in fine_tune",
    ),
    Mistake(
        "backbone.eval() used instead of freeze (parameters still require grad)",
        replace=[
            (
                '        if mode in ("linear_probe", "gradual", "last_k"):\n            freeze(self.backbone)\n',
                '        if mode in ("linear_probe", "gradual", "last_k"):\n            self.backbone.eval()\n',
            ),
        ],
        kind="freezing",
        why="the student confuses eval mode with freezing",
    ),
    Mistake(
        "train() not overridden in effect: frozen BN woken up by model.train()",
        replace=[
            (
                "        for layer in self.backbone.modules():\n            if isinstance(layer, _BatchNorm) and not any(p.requires_grad for p in layer.parameters()):\n                layer.eval()\n",
                "",
            ),
        ],
        kind="train vs eval",
        why="'freeze already put BN in eval mode'; but model.train() wakes it (older Lightning called it after "
            "every validation; loops and the checks still do)",
    ),
    Mistake(
        "train() puts every batch-norm layer in eval mode, trainable ones too",
        replace=[
            (
                "        for layer in self.backbone.modules():\n            if isinstance(layer, _BatchNorm) and not any(p.requires_grad for p in layer.parameters()):\n                layer.eval()\n",
                "        for layer in self.backbone.modules():\n            if isinstance(layer, _BatchNorm):\n                layer.eval()\n",
            ),
        ],
        kind="train vs eval",
        why="the student dropped the 'whose parameters are all frozen' condition; fine_tune BN never update",
    ),
    Mistake(
        "train() calls super().train() without mode, so model.eval() leaves the model in training mode",
        replace=[
            ("        super().train(mode)\n", "        super().train()\n"),
        ],
        kind="argument ignored",
        why="the usual super().train() call; nn.Module.eval() is train(False)",
    ),
    Mistake(
        "train() tests any(not p.requires_grad) instead of not any(p.requires_grad)",
        replace=[
            (
                "not any(p.requires_grad for p in layer.parameters())",
                "any(not p.requires_grad for p in layer.parameters())",
            ),
        ],
        kind="edge point",
        why="a De Morgan slip; a BN with no affine parameters (or partly frozen) wakes up",
    ),
    Mistake(
        "train() decides by mode: every BN in eval for linear_probe/gradual/last_k",
        replace=[
            (
                "        for layer in self.backbone.modules():\n            if isinstance(layer, _BatchNorm) and not any(p.requires_grad for p in layer.parameters()):\n                layer.eval()\n",
                '        if self.hparams.mode in ("linear_probe", "gradual", "last_k"):\n            for layer in self.backbone.modules():\n                if isinstance(layer, _BatchNorm):\n                    layer.eval()\n',
            ),
        ],
        kind="train vs eval",
        why="tied eval mode to the mode name; last_k's unfrozen BN and gradual's unfrozen backbone stay in eval",
    ),
    Mistake(
        "train() re-applies freeze(backbone) in the frozen modes",
        replace=[
            (
                "        for layer in self.backbone.modules():\n            if isinstance(layer, _BatchNorm) and not any(p.requires_grad for p in layer.parameters()):\n                layer.eval()\n",
                '        if self.hparams.mode in ("linear_probe", "gradual", "last_k"):\n            freeze(self.backbone)\n',
            ),
        ],
        kind="freezing",
        why="'re-freeze to put BN back'; it re-freezes last_k's layers and gradual's unfrozen backbone",
    ),
    Mistake(
        "Adam instead of SGD with momentum 0.9",
        replace=[
            (
                "        return torch.optim.SGD(groups, lr=self.hparams.lr, momentum=0.9)\n",
                "        return torch.optim.Adam(groups, lr=self.hparams.lr)\n",
            ),
        ],
        kind="optimizer",
        why="Adam is the student's default; the docstring fixes SGD (momentum 0.9)",
    ),
    Mistake(
        "SGD without momentum",
        replace=[
            (
                "        return torch.optim.SGD(groups, lr=self.hparams.lr, momentum=0.9)\n",
                "        return torch.optim.SGD(groups, lr=self.hparams.lr)\n",
            ),
        ],
        kind="optimizer",
        why="plain SGD as in the logreg lab",
    ),
    Mistake(
        "one parameter group at lr (Lightning docs' filter(requires_grad)), no backbone_lr",
        replace=[
            (
                '        backbone_lr = self.hparams.lr if self.hparams.mode == "scratch" else self.hparams.backbone_lr\n        groups = [{"params": list(self.head.parameters()), "lr": self.hparams.lr}]\n        trainable = [p for p in self.backbone.parameters() if p.requires_grad]\n        if trainable:\n            groups.append({"params": trainable, "lr": backbone_lr})\n        return torch.optim.SGD(groups, lr=self.hparams.lr, momentum=0.9)\n',
                "        return torch.optim.SGD(filter(lambda p: p.requires_grad, self.parameters()), lr=self.hparams.lr, momentum=0.9)\n",
            ),
        ],
        kind="hyper-parameter",
        why="copied the BaseFinetuning docstring example; fine-tuning wrecks the backbone at lr=0.5",
    ),
    Mistake(
        "frozen backbone parameters put in the optimizer",
        replace=[
            (
                "        trainable = [p for p in self.backbone.parameters() if p.requires_grad]\n",
                "        trainable = list(self.backbone.parameters())\n",
            ),
        ],
        kind="freezing",
        why="'they get no gradient anyway'; the handout: never put a frozen parameter in the optimizer",
    ),
    Mistake(
        "an empty backbone group is kept for the linear probe",
        replace=[
            (
                '        if trainable:\n            groups.append({"params": trainable, "lr": backbone_lr})\n',
                '        groups.append({"params": trainable, "lr": backbone_lr})\n',
            ),
        ],
        kind="optimizer",
        why="always two groups; the TODO says leave out a group with no parameters",
    ),
    Mistake(
        "scratch: the backbone trains at backbone_lr instead of lr",
        replace=[
            (
                '        backbone_lr = self.hparams.lr if self.hparams.mode == "scratch" else self.hparams.backbone_lr\n',
                "        backbone_lr = self.hparams.backbone_lr\n",
            ),
        ],
        kind="baseline",
        why="the '(\"scratch\": lr too)' note overlooked; the baseline is handicapped",
    ),
    Mistake(
        "the two learning rates swapped (head at backbone_lr, backbone at lr)",
        replace=[
            (
                '        groups = [{"params": list(self.head.parameters()), "lr": self.hparams.lr}]\n',
                '        groups = [{"params": list(self.head.parameters()), "lr": self.hparams.backbone_lr}]\n',
            ),
            (
                '        backbone_lr = self.hparams.lr if self.hparams.mode == "scratch" else self.hparams.backbone_lr\n',
                "        backbone_lr = self.hparams.lr\n",
            ),
        ],
        kind="hyper-parameter",
        why="the student reasoned the pretrained part needs the big steps to adapt to the new digits",
    ),
    Mistake(
        "learning rates hard-coded to the defaults 0.5 / 0.01",
        replace=[
            (
                '        backbone_lr = self.hparams.lr if self.hparams.mode == "scratch" else self.hparams.backbone_lr\n',
                '        backbone_lr = 0.5 if self.hparams.mode == "scratch" else 0.01\n',
            ),
            (
                '        groups = [{"params": list(self.head.parameters()), "lr": self.hparams.lr}]\n',
                '        groups = [{"params": list(self.head.parameters()), "lr": 0.5}]\n',
            ),
        ],
        kind="argument ignored",
        why="copied the numbers from the signature instead of reading self.hparams",
    ),
    Mistake(
        "optimizer copied from the pretraining script: Nesterov and weight decay 5e-4",
        replace=[
            (
                "        return torch.optim.SGD(groups, lr=self.hparams.lr, momentum=0.9)\n",
                "        return torch.optim.SGD(groups, lr=self.hparams.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)\n",
            ),
        ],
        kind="optimizer",
        why="datamodules/pretrained.py's SGD looked like 'the course optimizer'",
    ),
    Mistake(
        "a backbone group only for fine_tune and scratch; last_k's unfrozen layers never optimised",
        replace=[
            ("        if trainable:\n", '        if trainable and self.hparams.mode in ("fine_tune", "scratch"):\n'),
        ],
        kind="flag ignored",
        why="the student thought only the 'fine-tune' rows of the table train backbone weights",
    ),
    Mistake(
        "backbone group built from self.parameters(): the head appears in both groups",
        replace=[
            (
                "        trainable = [p for p in self.backbone.parameters() if p.requires_grad]\n",
                "        trainable = [p for p in self.parameters() if p.requires_grad]\n",
            ),
        ],
        kind="optimizer",
        why="filtered the whole model's parameters for the second group; torch refuses duplicated parameters",
    ),
    Mistake(
        "a step learning-rate schedule added",
        replace=[
            (
                "        return torch.optim.SGD(groups, lr=self.hparams.lr, momentum=0.9)\n",
                '        optimizer = torch.optim.SGD(groups, lr=self.hparams.lr, momentum=0.9)\n        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.1)\n        return {"optimizer": optimizer, "lr_scheduler": scheduler}\n',
            ),
        ],
        kind="hyper-parameter",
        why="copied a StepLR from another lab's configure_optimizers; the handout fixes plain SGD at lr",
    ),
    Mistake(
        "one optimizer per learning rate instead of parameter groups",
        replace=[
            (
                "        return torch.optim.SGD(groups, lr=self.hparams.lr, momentum=0.9)\n",
                "        return [torch.optim.SGD(group['params'], lr=group['lr'], momentum=0.9) for group in groups]\n",
            ),
        ],
        kind="optimizer",
        why="the student did not know about parameter groups; Lightning's automatic optimisation takes one",
    ),
    Mistake(
        "freeze_before_training uses Lightning's self.freeze (train_bn=True)",
        replace=[
            ("        freeze(pl_module.backbone)\n", "        self.freeze(pl_module.backbone)\n"),
        ],
        kind="train vs eval",
        why="copied the BaseFinetuning docs example; BN stays trainable and in training mode",
    ),
    Mistake(
        "freeze_before_training uses self.freeze(train_bn=False): BN in training mode with batch statistics",
        replace=[
            ("        freeze(pl_module.backbone)\n", "        self.freeze(pl_module.backbone, train_bn=False)\n"),
        ],
        kind="train vs eval",
        why="train_bn=False sounded like 'freeze BN'; Lightning only sets track_running_stats=False",
    ),
    Mistake(
        "freeze_before_training does nothing",
        replace=[
            ("        freeze(pl_module.backbone)\n", "        pass  # TransferClassifier.__init__ froze it already\n"),
        ],
        kind="freezing",
        why="'__init__ already froze the gradual backbone'; the callback must freeze any module it is given",
    ),
    Mistake(
        "finetune_function unfreezes after at_epoch (current_epoch > at_epoch)",
        replace=[
            ("        if current_epoch == self.at_epoch:\n", "        if current_epoch > self.at_epoch:\n"),
        ],
        kind="off-by-one",
        why="read 'then' as 'after epoch at_epoch'",
    ),
    Mistake(
        "finetune_function unfreezes one epoch early (current_epoch + 1 == at_epoch)",
        replace=[
            ("        if current_epoch == self.at_epoch:\n", "        if current_epoch + 1 == self.at_epoch:\n"),
        ],
        kind="off-by-one",
        why="'Lightning counts epochs from 0, so epoch 5 is current_epoch 4'",
    ),
    Mistake(
        "finetune_function leaves lr out: Lightning's default lr / 10 instead of backbone_lr",
        replace=[
            (
                "            self.unfreeze_and_add_param_group(pl_module.backbone, optimizer, lr=pl_module.hparams.backbone_lr)\n",
                "            self.unfreeze_and_add_param_group(pl_module.backbone, optimizer)\n",
            ),
        ],
        kind="hyper-parameter",
        why="the Lightning docs example calls unfreeze_and_add_param_group without lr",
    ),
    Mistake(
        "finetune_function adds the backbone at lr instead of backbone_lr",
        replace=[
            (
                "            self.unfreeze_and_add_param_group(pl_module.backbone, optimizer, lr=pl_module.hparams.backbone_lr)\n",
                "            self.unfreeze_and_add_param_group(pl_module.backbone, optimizer, lr=pl_module.hparams.lr)\n",
            ),
        ],
        kind="hyper-parameter",
        why="took the module's main lr",
    ),
    Mistake(
        "finetune_function does not call this lab's unfreeze: BN stays in eval mode",
        replace=[
            ("            unfreeze(pl_module.backbone)\n", ""),
        ],
        kind="train vs eval",
        why="'unfreeze_and_add_param_group already unfreezes' - it sets requires_grad but not training mode",
    ),
    Mistake(
        "finetune_function reads pl_module.hparams.unfreeze_at instead of self.at_epoch",
        replace=[
            (
                "        if current_epoch == self.at_epoch:\n",
                "        if current_epoch == pl_module.hparams.unfreeze_at:\n",
            ),
        ],
        kind="argument ignored",
        why="the model's hyper-parameter looked like the source of truth; the callback's at_epoch is ignored",
    ),
    Mistake(
        "finetune_function passes train_bn=False: BN parameters unfrozen but never optimised",
        replace=[
            (
                "            self.unfreeze_and_add_param_group(pl_module.backbone, optimizer, lr=pl_module.hparams.backbone_lr)\n",
                "            self.unfreeze_and_add_param_group(pl_module.backbone, optimizer, lr=pl_module.hparams.backbone_lr,\n                                              train_bn=False)\n",
            ),
        ],
        kind="optimizer",
        why="'keep BN frozen when fine-tuning' advice; the handout adds the backbone's parameters",
    ),
    Mistake(
        "compare_regimes passes seed and max_epochs in the wrong positional order",
        replace=[
            (
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}\n            for budget in budgets}\n",
                "    return {budget: {regime: train_and_test(regime, budget, seed, max_epochs, accelerator) for regime in REGIMES}\n            for budget in budgets}\n",
            ),
        ],
        kind="experiment",
        why="positional call train_and_test(regime, budget, seed, max_epochs, ...)",
    ),
    Mistake(
        "compare_regimes does not pass seed and accelerator on",
        replace=[
            (
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}\n            for budget in budgets}\n",
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs) for regime in REGIMES}\n            for budget in budgets}\n",
            ),
        ],
        kind="argument ignored",
        why="train_and_test has defaults, so the student passed only what looked essential",
    ),
    Mistake(
        "compare_regimes returns {regime: {budget: acc}} (rows and columns swapped)",
        replace=[
            (
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}\n            for budget in budgets}\n",
                "    return {regime: {budget: train_and_test(regime, budget, max_epochs, seed, accelerator) for budget in budgets}\n            for regime in REGIMES}\n",
            ),
        ],
        kind="experiment",
        why="the student nested the loops the way the plot's legend reads",
    ),
    Mistake(
        "compare_regimes runs every mode in MODES, not the three REGIMES",
        replace=[
            (
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}\n            for budget in budgets}\n",
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in MODES}\n            for budget in budgets}\n",
            ),
        ],
        kind="experiment",
        why="'compare all the regimes' - MODES also has last_k and gradual",
    ),
    Mistake(
        "compare_regimes reports accuracies in percent",
        replace=[
            (
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}\n            for budget in budgets}\n",
                "    return {budget: {regime: 100 * train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}\n            for budget in budgets}\n",
            ),
        ],
        kind="experiment",
        why="percent read nicer in the printed table",
    ),
    Mistake(
        "compare_regimes keys the budgets by strings like '10 labels'",
        replace=[
            (
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}\n            for budget in budgets}\n",
                '    return {f"{budget} labels": {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}\n            for budget in budgets}\n',
            ),
        ],
        kind="experiment",
        why="made the keys print nicely; the docstring's keys are the numbers of labels per class",
    ),
    Mistake(
        "compare_regimes always trains 10 epochs (max_epochs ignored)",
        replace=[
            (
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}\n            for budget in budgets}\n",
                "    return {budget: {regime: train_and_test(regime, budget, 10, seed, accelerator) for regime in REGIMES}\n            for budget in budgets}\n",
            ),
        ],
        kind="argument ignored",
        why="hard-coded the default",
    ),
    Mistake(
        "compare_regimes uses seed + i for the i-th regime",
        replace=[
            (
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}\n            for budget in budgets}\n",
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed + i, accelerator)\n                     for i, regime in enumerate(REGIMES)}\n            for budget in budgets}\n",
            ),
        ],
        kind="seeding",
        why="'independent runs need different seeds'; the regimes no longer share data order and head init",
    ),
    Mistake(
        "compare_regimes overwrites each budget's dict inside the regime loop (one regime left)",
        replace=[
            (
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}\n            for budget in budgets}\n",
                "    results = {}\n    for budget in budgets:\n        for regime in REGIMES:\n            results[budget] = {regime: train_and_test(regime, budget, max_epochs, seed, accelerator)}\n    return results\n",
            ),
        ],
        kind="experiment",
        why="explicit loops with results[budget] = {regime: ...} inside the inner loop",
    ),
    Mistake(
        "compare_regimes loops over (10, 100) whatever budgets is",
        replace=[
            (
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}\n            for budget in budgets}\n",
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}\n            for budget in (10, 100)}\n",
            ),
        ],
        kind="argument ignored",
        why="hard-coded the handout's two budgets",
    ),
    Mistake(
        "forward runs the backbone under torch.no_grad() in every mode",
        replace=[
            (
                "        return self.head(self.backbone(x))\n",
                "        with torch.no_grad():\n            features = self.backbone(x)\n        return self.head(features)\n",
            ),
        ],
        kind="autograd",
        why="'the backbone is frozen, save memory' - fine for the probe, silently kills fine_tune/last_k/scratch",
    ),
    Mistake(
        "test_step updates the validation metrics (copied validation_step)",
        replace=[
            (
                "        self.metrics.update(stage, loss, logits, y)\n        return loss\n",
                "        self.metrics.update(stage, loss, logits, y)\n        return loss\n\n"
                '    def test_step(self, batch, batch_idx):\n        self._shared_step(batch, "val")\n',
            ),
        ],
        kind="logging",
        why="overrode ClassifierHooks' test_step with a copy of validation_step; test_acc is never logged, "
            "val_acc mixes in test data",
    ),
]

ALTERNATIVES = [
    Alternative(
        "freeze with Module.requires_grad_ and Module.apply",
        replace=[
            (
                "    for parameter in module.parameters():\n        parameter.requires_grad_(False)\n    for layer in module.modules():\n        if isinstance(layer, _BatchNorm):\n            layer.eval()\n",
                "    module.requires_grad_(False)\n    module.apply(lambda layer: layer.eval() if isinstance(layer, _BatchNorm) else None)\n",
            ),
        ],
    ),
    Alternative(
        "unfreeze with Module.requires_grad_(True) and train(True)",
        replace=[
            (
                "    for parameter in module.parameters():\n        parameter.requires_grad_(True)\n    module.train()\n    ### END SOLUTION",
                "    module.requires_grad_(True)\n    module.train(True)\n    ### END SOLUTION",
            ),
        ],
    ),
    Alternative(
        "__init__ as an if/elif chain on the mode, keyword nn.Linear",
        replace=[
            (
                '        self.head = nn.Linear(self.backbone.num_features, num_classes)\n        if mode in ("linear_probe", "gradual", "last_k"):\n            freeze(self.backbone)\n        if mode == "last_k":\n            for layer in layers_with_parameters(self.backbone)[-k:]:\n                unfreeze(layer)\n        if mode == "scratch":\n            reinitialise(self.backbone)\n',
                '        self.head = nn.Linear(in_features=self.backbone.num_features, out_features=num_classes)\n        if mode == "scratch":\n            reinitialise(self.backbone)\n        elif mode != "fine_tune":  # linear_probe, gradual, last_k start frozen\n            freeze(self.backbone)\n            if mode == "last_k":\n                for layer in layers_with_parameters(self.backbone)[-k:]:\n                    unfreeze(layer)\n',
            ),
        ],
    ),
    Alternative(
        "train() collects the frozen BN layers first, then layer.train(False)",
        replace=[
            (
                "        for layer in self.backbone.modules():\n            if isinstance(layer, _BatchNorm) and not any(p.requires_grad for p in layer.parameters()):\n                layer.eval()\n",
                "        frozen_bn = [layer for layer in self.modules() if isinstance(layer, _BatchNorm)\n                     and all(not p.requires_grad for p in layer.parameters())]\n        for layer in frozen_bn:\n            layer.train(False)\n",
            ),
        ],
    ),
    Alternative(
        "train() with self.backbone.apply and a named helper",
        replace=[
            (
                "        for layer in self.backbone.modules():\n            if isinstance(layer, _BatchNorm) and not any(p.requires_grad for p in layer.parameters()):\n                layer.eval()\n",
                "        def keep_frozen_bn_in_eval(layer):\n            if isinstance(layer, _BatchNorm) and not any(p.requires_grad for p in layer.parameters()):\n                layer.eval()\n        self.backbone.apply(keep_frozen_bn_in_eval)\n",
            ),
        ],
    ),
    Alternative(
        "configure_optimizers from named_parameters with filter(), groups built conditionally",
        replace=[
            (
                '        backbone_lr = self.hparams.lr if self.hparams.mode == "scratch" else self.hparams.backbone_lr\n        groups = [{"params": list(self.head.parameters()), "lr": self.hparams.lr}]\n        trainable = [p for p in self.backbone.parameters() if p.requires_grad]\n        if trainable:\n            groups.append({"params": trainable, "lr": backbone_lr})\n        return torch.optim.SGD(groups, lr=self.hparams.lr, momentum=0.9)\n',
                '        head = [p for name, p in self.named_parameters() if name.startswith("head.")]\n        backbone = list(filter(lambda p: p.requires_grad, self.backbone.parameters()))\n        backbone_lr = {"scratch": self.hparams.lr}.get(self.hparams.mode, self.hparams.backbone_lr)\n        groups = [{"params": head, "lr": self.hparams.lr}]\n        groups += [{"params": backbone, "lr": backbone_lr}] if backbone else []\n        return torch.optim.SGD(params=groups, lr=self.hparams.lr, momentum=0.9, dampening=0.0)\n',
            ),
        ],
    ),
    Alternative(
        "finetune_function adds the group with optimizer.add_param_group itself",
        replace=[
            (
                "            self.unfreeze_and_add_param_group(pl_module.backbone, optimizer, lr=pl_module.hparams.backbone_lr)\n",
                '            optimizer.add_param_group({"params": list(pl_module.backbone.parameters()),\n                                       "lr": pl_module.hparams.backbone_lr})\n',
            ),
        ],
    ),
    Alternative(
        "finetune_function in the Lightning docs' order: helper with keywords first, then this lab's unfreeze",
        replace=[
            (
                "            unfreeze(pl_module.backbone)\n            self.unfreeze_and_add_param_group(pl_module.backbone, optimizer, lr=pl_module.hparams.backbone_lr)\n",
                "            self.unfreeze_and_add_param_group(modules=pl_module.backbone, optimizer=optimizer,\n                                              lr=pl_module.hparams.backbone_lr, train_bn=True)\n            unfreeze(pl_module.backbone)  # training mode for the batch-norm layers\n",
            ),
        ],
    ),
    Alternative(
        "compare_regimes with explicit loops and keyword arguments",
        replace=[
            (
                "    return {budget: {regime: train_and_test(regime, budget, max_epochs, seed, accelerator) for regime in REGIMES}\n            for budget in budgets}\n",
                "    results = {}\n    for budget in budgets:\n        results[budget] = {}\n        for regime in REGIMES:\n            results[budget][regime] = train_and_test(regime, labels_per_class=budget, max_epochs=max_epochs,\n                                                     seed=seed, accelerator=accelerator)\n    return results\n",
            ),
        ],
    ),
]
