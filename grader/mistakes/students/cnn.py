"""Lab cnn: mistakes and correct alternatives written by an independent student.

A helper given the handout, the stub and the reference -- not the checks -- wrote them as students
make them (``kind``, ``why``). ``litlabs audit`` grades them with the pinned table beside
(``grader/mistakes/cnn.py``); the test suite grades only the pinned table (each of these needs a
full grading, trainings included).
"""

from grader.instructor.audit import Alternative, Mistake

MISTAKES = [
    Mistake(
        "conv_output_size ignores dilation (as a student wrote it)",
        replace=[
            (
                "    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1",
                "    return (size + 2 * padding - kernel_size) // stride + 1",
            ),
        ],
        kind="argument dropped",
        why="copied the CS231n formula (W - F + 2P)/S + 1, which has no dilation term",
    ),
    Mistake(
        "conv_output_size adds the padding once instead of at both ends",
        replace=[
            (
                "    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1",
                "    return (size + padding - dilation * (kernel_size - 1) - 1) // stride + 1",
            ),
        ],
        kind="missing factor",
        why="read 'padding=p' as p zeros in total rather than p on each side",
    ),
    Mistake(
        "conv_output_size rounds up (ceil) instead of down",
        replace=[
            (
                "    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1",
                "    return -(-(size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride) + 1",
            ),
        ],
        kind="off-by-one",
        why="mixed it up with MaxPool2d(ceil_mode=True) / TensorFlow's 'SAME' output size, which keep a partial last window",
    ),
    Mistake(
        "conv_output_size uses true division and returns a float",
        replace=[
            (
                "    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1",
                "    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1",
            ),
        ],
        kind="results in the wrong format",
        why="typed the notes' fraction literally with / and forgot the floor; 14.5 comes back for odd sizes",
    ),
    Mistake(
        "dilated kernel taken to span dilation*k pixels instead of dilation*(k-1)+1",
        replace=[
            (
                "    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1",
                "    return (size + 2 * padding - dilation * kernel_size) // stride + 1",
            ),
        ],
        kind="off-by-one",
        why="pictured a dilated 3x3 kernel as 'three times wider' and subtracted d*k",
    ),
    Mistake(
        "conv_parameter_count counts the biases even when bias=False",
        replace=[
            ("+ (out_channels if bias else 0)", "+ out_channels"),
        ],
        kind="documented flag ignored",
        why="every layer in the lecture has a bias; the flag was never read",
    ),
    Mistake(
        "conv_parameter_count gives one bias per input channel",
        replace=[
            ("+ (out_channels if bias else 0)", "+ (in_channels if bias else 0)"),
        ],
        kind="wrong shape",
        why="thought each input channel's slice of the filter carries its own bias",
    ),
    Mistake(
        "conv_parameter_count forgets that a filter spans all input channels",
        replace=[
            (
                "    return out_channels * in_channels * kernel_h * kernel_w +",
                "    return out_channels * kernel_h * kernel_w +",
            ),
        ],
        kind="missing factor",
        why="pictured one 2-D kH x kW kernel per output map, as in the single-channel slides",
    ),
    Mistake(
        "conv_parameter_count assumes a square kernel (kH*kH)",
        replace=[
            (
                "    return out_channels * in_channels * kernel_h * kernel_w +",
                "    return out_channels * in_channels * kernel_h ** 2 +",
            ),
        ],
        kind="argument dropped",
        why="every kernel in LeNet-5 is 5x5, so the width of a (kH, kW) pair was never used",
    ),
    Mistake(
        "conv2d: unfold called without the stride",
        replace=[
            (
                "    columns = F.unfold(x, (kernel_h, kernel_w), padding=(pad_h, pad_w), stride=(stride_h, stride_w))",
                "    columns = F.unfold(x, (kernel_h, kernel_w), padding=(pad_h, pad_w))",
            ),
        ],
        kind="argument dropped",
        why="passed the stride to conv_output_size and assumed unfold would 'know' it",
    ),
    Mistake(
        "conv2d: unfold called without the padding",
        replace=[
            (
                "    columns = F.unfold(x, (kernel_h, kernel_w), padding=(pad_h, pad_w), stride=(stride_h, stride_w))",
                "    columns = F.unfold(x, (kernel_h, kernel_w), stride=(stride_h, stride_w))",
            ),
        ],
        kind="argument dropped",
        why="only the output-size formula got the padding; the columns were taken from the unpadded image",
    ),
    Mistake(
        "conv2d: stride and padding passed to conv_output_size in the wrong order",
        replace=[
            (
                "    h_out = conv_output_size(height, kernel_h, stride_h, pad_h)\n    w_out = conv_output_size(width, kernel_w, stride_w, pad_w)",
                "    h_out = conv_output_size(height, kernel_h, pad_h, stride_h)\n    w_out = conv_output_size(width, kernel_w, pad_w, stride_w)",
            ),
        ],
        kind="argument dropped",
        why="called it positionally as (size, kernel, padding, stride), the order torch's Conv2d docs list them in the text",
    ),
    Mistake(
        "conv2d: a (rows, columns) stride pair collapsed to its first number",
        replace=[
            (
                "    w_out = conv_output_size(width, kernel_w, stride_w, pad_w)",
                "    w_out = conv_output_size(width, kernel_w, stride_h, pad_w)",
            ),
            ("padding=(pad_h, pad_w), stride=(stride_h, stride_w))", "padding=(pad_h, pad_w), stride=stride_h)"),
        ],
        kind="argument dropped",
        why="treated stride as an int everywhere (LeNet only uses stride 1), so stride=(1, 2) strides the columns by 1",
    ),
    Mistake(
        "conv2d: filters flattened channels-last (kH, kW, C_in) against unfold's (C_in, kH, kW) columns",
        replace=[
            (
                "    out = weight.reshape(c_out, -1) @ columns",
                "    out = weight.permute(0, 2, 3, 1).reshape(c_out, -1) @ columns",
            ),
        ],
        kind="wrong shape/transpose",
        why="copied the row layout of a NumPy im2col (CS231n fast_layers) that orders patches kH, kW, C",
    ),
    Mistake(
        "conv2d flips the kernel (true convolution instead of cross-correlation)",
        replace=[
            (
                "    out = weight.reshape(c_out, -1) @ columns",
                "    out = weight.flip(-2, -1).reshape(c_out, -1) @ columns",
            ),
        ],
        kind="wrong formula",
        why="the maths definition of convolution flips the filter; the handout says libraries (and F.conv2d) do not",
    ),
    Mistake(
        "conv2d: feature maps reshaped as (W_out, H_out) and transposed",
        replace=[
            (
                "    return out.reshape(n, c_out, h_out, w_out)",
                "    return out.reshape(n, c_out, w_out, h_out).transpose(2, 3)",
            ),
        ],
        kind="wrong shape/transpose",
        why="assumed unfold enumerates patch positions column by column, like MATLAB's im2col",
    ),
    Mistake(
        "conv2d: W_out computed from the height",
        replace=[
            (
                "    w_out = conv_output_size(width, kernel_w, stride_w, pad_w)",
                "    w_out = conv_output_size(height, kernel_w, stride_w, pad_w)",
            ),
        ],
        kind="off-by-one in indices",
        why="copy-pasted the H_out line and changed only the kernel and stride; every test image was square",
    ),
    Mistake(
        "conv2d computes the product in float32 whatever x's dtype",
        replace=[
            (
                "    out = weight.reshape(c_out, -1) @ columns",
                "    out = weight.reshape(c_out, -1).float() @ columns.float()",
            ),
        ],
        kind="default dtype instead of x's dtype",
        why="added .float() to silence a dtype-mismatch error from a test with a double image",
    ),
    Mistake(
        "conv2d: a missing bias replaced by torch.zeros(C_out) (CPU, float32)",
        replace=[
            (
                "    if bias is not None:\n        out = out + bias.reshape(1, c_out, 1)",
                "    if bias is None:\n        bias = torch.zeros(c_out)\n    out = out + bias.reshape(1, c_out, 1)",
            ),
        ],
        kind="tensor created on the CPU / default dtype",
        why="wanted a single code path for the bias; zeros() ignores x's device and dtype (half/bfloat16 output turns float32, CUDA fails)",
    ),
    Mistake(
        "conv2d tests the bias with `if bias:`",
        replace=[
            (
                "    if bias is not None:\n        out = out + bias.reshape(1, c_out, 1)",
                "    if bias:\n        out = out + bias.reshape(1, c_out, 1)",
            ),
        ],
        kind="edge point",
        why="Python habit for an optional argument; a tensor of several biases has no truth value, a single zero bias is skipped",
    ),
    Mistake(
        "conv2d returns F.conv2d (the im2col result only used as a check)",
        replace=[
            (
                "    return out.reshape(n, c_out, h_out, w_out)",
                "    assert out.shape[-1] == h_out * w_out\n    return F.conv2d(x, weight, bias, (stride_h, stride_w), (pad_h, pad_w))",
            ),
        ],
        kind="which function is used",
        why="'the values must match F.conv2d', so the student returned F.conv2d itself",
    ),
    Mistake(
        "hand-written conv backward averages the bias gradient instead of summing it",
        replace=[
            (
                "def conv2d(x: torch.Tensor,",
                'class _Im2colConv(torch.autograd.Function):\n    """im2col convolution with the backward pass written out (to see where each gradient comes from)."""\n\n    @staticmethod\n    def forward(ctx, x, weight, bias, stride, padding, out_hw):\n        columns = F.unfold(x, tuple(weight.shape[2:]), padding=padding, stride=stride)\n        ctx.save_for_backward(columns, weight)\n        ctx.x_hw, ctx.stride, ctx.padding, ctx.has_bias = tuple(x.shape[2:]), stride, padding, bias is not None\n        out = weight.reshape(weight.shape[0], -1) @ columns\n        if bias is not None:\n            out = out + bias.reshape(1, -1, 1)\n        return out.reshape(x.shape[0], weight.shape[0], *out_hw)\n\n    @staticmethod\n    def backward(ctx, grad_out):\n        columns, weight = ctx.saved_tensors\n        c_out = weight.shape[0]\n        g = grad_out.reshape(grad_out.shape[0], c_out, -1)  # (N, C_out, L)\n        grad_w = (g @ columns.transpose(1, 2)).sum(0).reshape(weight.shape)\n        grad_cols = weight.reshape(c_out, -1).t() @ g  # (N, C_in·kH·kW, L)\n        grad_x = F.fold(grad_cols, ctx.x_hw, tuple(weight.shape[2:]), padding=ctx.padding, stride=ctx.stride)\n        grad_b = g.mean(dim=(0, 2)) if ctx.has_bias else None\n        return grad_x, grad_w, grad_b, None, None, None\n\n\ndef conv2d(x: torch.Tensor,',
            ),
            (
                "    h_out = conv_output_size(height, kernel_h, stride_h, pad_h)\n    w_out = conv_output_size(width, kernel_w, stride_w, pad_w)\n    columns = F.unfold(x, (kernel_h, kernel_w), padding=(pad_h, pad_w), stride=(stride_h, stride_w))\n    out = weight.reshape(c_out, -1) @ columns  # (N, C_out, H_out·W_out)\n    if bias is not None:\n        out = out + bias.reshape(1, c_out, 1)\n    return out.reshape(n, c_out, h_out, w_out)\n",
                "    h_out = conv_output_size(height, kernel_h, stride_h, pad_h)\n    w_out = conv_output_size(width, kernel_w, stride_w, pad_w)\n    return _Im2colConv.apply(x, weight, bias, (stride_h, stride_w), (pad_h, pad_w), (h_out, w_out))\n",
            ),
        ],
        kind="hand-written backward: wrong reduction",
        why="wrote the backward out to understand it and used .mean like the loss's reduction; bias grad is 1/(N*L) too small",
    ),
    Mistake(
        "hand-written conv backward takes the weight gradient from the first image only",
        replace=[
            (
                "def conv2d(x: torch.Tensor,",
                'class _Im2colConv(torch.autograd.Function):\n    """im2col convolution with the backward pass written out (to see where each gradient comes from)."""\n\n    @staticmethod\n    def forward(ctx, x, weight, bias, stride, padding, out_hw):\n        columns = F.unfold(x, tuple(weight.shape[2:]), padding=padding, stride=stride)\n        ctx.save_for_backward(columns, weight)\n        ctx.x_hw, ctx.stride, ctx.padding, ctx.has_bias = tuple(x.shape[2:]), stride, padding, bias is not None\n        out = weight.reshape(weight.shape[0], -1) @ columns\n        if bias is not None:\n            out = out + bias.reshape(1, -1, 1)\n        return out.reshape(x.shape[0], weight.shape[0], *out_hw)\n\n    @staticmethod\n    def backward(ctx, grad_out):\n        columns, weight = ctx.saved_tensors\n        c_out = weight.shape[0]\n        g = grad_out.reshape(grad_out.shape[0], c_out, -1)  # (N, C_out, L)\n        grad_w = (g[0] @ columns[0].t()).reshape(weight.shape)\n        grad_cols = weight.reshape(c_out, -1).t() @ g  # (N, C_in·kH·kW, L)\n        grad_x = F.fold(grad_cols, ctx.x_hw, tuple(weight.shape[2:]), padding=ctx.padding, stride=ctx.stride)\n        grad_b = g.sum(dim=(0, 2)) if ctx.has_bias else None\n        return grad_x, grad_w, grad_b, None, None, None\n\n\ndef conv2d(x: torch.Tensor,',
            ),
            (
                "    h_out = conv_output_size(height, kernel_h, stride_h, pad_h)\n    w_out = conv_output_size(width, kernel_w, stride_w, pad_w)\n    columns = F.unfold(x, (kernel_h, kernel_w), padding=(pad_h, pad_w), stride=(stride_h, stride_w))\n    out = weight.reshape(c_out, -1) @ columns  # (N, C_out, H_out·W_out)\n    if bias is not None:\n        out = out + bias.reshape(1, c_out, 1)\n    return out.reshape(n, c_out, h_out, w_out)\n",
                "    h_out = conv_output_size(height, kernel_h, stride_h, pad_h)\n    w_out = conv_output_size(width, kernel_w, stride_w, pad_w)\n    return _Im2colConv.apply(x, weight, bias, (stride_h, stride_w), (pad_h, pad_w), (h_out, w_out))\n",
            ),
        ],
        kind="hand-written backward: right only for a batch of one",
        why="derived dL/dW = G X_col^T for one image and forgot that the batch's images all add to it",
    ),
    Mistake(
        "max_pool2d: stride=None taken as stride 1 (overlapping windows)",
        replace=[
            (
                "    stride_h, stride_w = pair(kernel_size if stride is None else stride)",
                "    stride_h, stride_w = pair(stride or 1)",
            ),
        ],
        kind="default changed",
        why="convolution's stride defaults to 1, so `stride or 1` looked natural; pooling's default is the kernel size",
    ),
    Mistake(
        "max_pool2d: windows viewed as (N, C, L, kH*kW)",
        replace=[
            (
                "    windows = windows.reshape(n, channels, kernel_h * kernel_w, h_out * w_out)\n    return windows.max(dim=2).values.reshape(n, channels, h_out, w_out)\n",
                "    windows = windows.reshape(n, channels, h_out * w_out, kernel_h * kernel_w)\n    return windows.max(dim=3).values.reshape(n, channels, h_out, w_out)\n",
            ),
        ],
        kind="wrong shape/transpose",
        why="assumed the window is unfold's last dimension and took the max over it",
    ),
    Mistake(
        "max_pool2d: windows viewed as (N, kH*kW, C, L) (window index outermost)",
        replace=[
            (
                "    windows = windows.reshape(n, channels, kernel_h * kernel_w, h_out * w_out)\n    return windows.max(dim=2).values.reshape(n, channels, h_out, w_out)\n",
                "    windows = windows.reshape(n, kernel_h * kernel_w, channels, h_out * w_out)\n    return windows.max(dim=1).values.reshape(n, channels, h_out, w_out)\n",
            ),
        ],
        kind="wrong shape/transpose",
        why="thought unfold stacks the window positions first and the channels inside; only right for C = 1",
    ),
    Mistake(
        "max_pool2d uses amax, whose gradient is shared among tied maxima",
        replace=[
            (
                "    return windows.max(dim=2).values.reshape(n, channels, h_out, w_out)",
                "    return windows.amax(dim=2).reshape(n, channels, h_out, w_out)",
            ),
        ],
        kind="edge point (ties)",
        why="amax is the 'modern' reduction; its gradient is split evenly between equal maxima instead of going to the first",
    ),
    Mistake(
        "hand-written max-pool backward sends the gradient to every tied maximum (mask x == max)",
        replace=[
            (
                "def max_pool2d(x: torch.Tensor,",
                'class _WindowMax(torch.autograd.Function):\n    """The max over dim 2 of (N, C, kH·kW, L) windows, with the backward pass written out."""\n\n    @staticmethod\n    def forward(ctx, windows):\n        values, index = windows.max(dim=2, keepdim=True)\n        ctx.save_for_backward(windows, values, index)\n        return values.squeeze(2)\n\n    @staticmethod\n    def backward(ctx, grad_out):\n        windows, values, index = ctx.saved_tensors\n        return (windows == values).to(grad_out.dtype) * grad_out.unsqueeze(2)\n\n\ndef max_pool2d(x: torch.Tensor,',
            ),
            (
                "    return windows.max(dim=2).values.reshape(n, channels, h_out, w_out)",
                "    return _WindowMax.apply(windows).reshape(n, channels, h_out, w_out)",
            ),
        ],
        kind="hand-written backward: edge point (ties)",
        why="the CS231n naive backward builds the mask (x == max), which marks all equal maxima",
    ),
    Mistake(
        "hand-written max-pool backward ignores the upstream gradient",
        replace=[
            (
                "def max_pool2d(x: torch.Tensor,",
                'class _WindowMax(torch.autograd.Function):\n    """The max over dim 2 of (N, C, kH·kW, L) windows, with the backward pass written out."""\n\n    @staticmethod\n    def forward(ctx, windows):\n        values, index = windows.max(dim=2, keepdim=True)\n        ctx.save_for_backward(windows, values, index)\n        return values.squeeze(2)\n\n    @staticmethod\n    def backward(ctx, grad_out):\n        windows, values, index = ctx.saved_tensors\n        return torch.zeros_like(windows).scatter_(2, index, 1.0)\n\n\ndef max_pool2d(x: torch.Tensor,',
            ),
            (
                "    return windows.max(dim=2).values.reshape(n, channels, h_out, w_out)",
                "    return _WindowMax.apply(windows).reshape(n, channels, h_out, w_out)",
            ),
        ],
        kind="hand-written backward: ignores upstream gradient",
        why="returned the 0/1 routing mask itself, which is only right for loss = out.sum()",
    ),
    Mistake(
        "max_pool2d: H_out taken as H // kH (assumes stride = kernel size)",
        replace=[
            (
                "    h_out = conv_output_size(height, kernel_h, stride_h)\n    w_out = conv_output_size(width, kernel_w, stride_w)\n    windows",
                "    h_out = height // kernel_h\n    w_out = width // kernel_w\n    windows",
            ),
        ],
        kind="argument dropped",
        why="with 2x2/2 pooling 'halve the size' is right; with 3x3/2 or 2x2/1 it is not",
    ),
    Mistake(
        "max_pool2d keeps the partial last window (ceil mode, padding with -inf)",
        replace=[
            (
                "    h_out = conv_output_size(height, kernel_h, stride_h)\n    w_out = conv_output_size(width, kernel_w, stride_w)\n",
                '    h_out = -(-(height - kernel_h) // stride_h) + 1\n    w_out = -(-(width - kernel_w) // stride_w) + 1\n    x = F.pad(x, (0, (w_out - 1) * stride_w + kernel_w - width,\n                  0, (h_out - 1) * stride_h + kernel_h - height), value=float("-inf"))\n',
            ),
        ],
        kind="off-by-one",
        why="did not want to 'lose' the last row of an odd-sized map; F.max_pool2d's default drops it",
    ),
    Mistake(
        "Conv2d.forward drops self.padding",
        replace=[
            (
                "        return conv2d(x, self.weight, self.bias, self.stride, self.padding)",
                "        return conv2d(x, self.weight, self.bias, self.stride)",
            ),
        ],
        kind="argument dropped",
        why="passed the arguments conv2d 'needs' and forgot the optional ones",
    ),
    Mistake(
        "MaxPool2d.forward drops self.stride",
        replace=[
            (
                "        return max_pool2d(x, self.kernel_size, self.stride)",
                "        return max_pool2d(x, self.kernel_size)",
            ),
        ],
        kind="argument dropped",
        why="stride defaults to the kernel size anyway, so passing it seemed redundant (MaxPool2d(3, stride=1) breaks)",
    ),
    Mistake(
        "Conv2d.forward calls torch's own convolution (super().forward)",
        replace=[
            (
                "        return conv2d(x, self.weight, self.bias, self.stride, self.padding)",
                "        return super().forward(x)",
            ),
        ],
        kind="which class is used for a layer",
        why="'keep torch's parameters and settings' read as 'keep torch's forward too'",
    ),
    Mistake(
        "BatchNorm2d running averages use the notes' momentum convention (momentum*running + (1-momentum)*batch)",
        replace=[
            (
                "self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)",
                "self.running_mean.mul_(self.momentum).add_((1 - self.momentum) * mean)",
            ),
            (
                "self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * m / (m - 1))",
                "self.running_var.mul_(self.momentum).add_((1 - self.momentum) * var * m / (m - 1))",
            ),
        ],
        kind="hyper-parameter convention",
        why="the lecture slide writes running_mean = momentum*running_mean + (1-momentum)*sample_mean (Keras' convention)",
    ),
    Mistake(
        "BatchNorm2d running_var tracks the biased variance",
        replace=[
            ("self.momentum * var * m / (m - 1))", "self.momentum * var)"),
        ],
        kind="missing factor",
        why="used the same σ² for normalising and for the running estimate; m/(m-1) forgotten",
    ),
    Mistake(
        "BatchNorm2d normalises with the unbiased variance (Tensor.var's default)",
        replace=[
            ("            var = x.var(dim=(0, 2, 3), unbiased=False)", "            var = x.var(dim=(0, 2, 3))"),
            ("self.momentum * var * m / (m - 1))", "self.momentum * var)"),
        ],
        kind="wrong reduction",
        why="x.var() is unbiased by default; the student then fed it to the running estimate unchanged, normalising by m-1",
    ),
    Mistake(
        "BatchNorm2d: m taken as the batch size N instead of N*H*W",
        replace=[
            ("            m = x.numel() // x.shape[1]", "            m = x.shape[0]"),
        ],
        kind="wrong reduction",
        why="the notes' m is 'the mini-batch size' (BatchNorm1d); for images each channel has N*H*W values",
    ),
    Mistake(
        "BatchNorm2d still normalises with batch statistics in eval mode",
        replace=[
            (
                "        if self.training:\n            mean = x.mean(dim=(0, 2, 3))\n            var = x.var(dim=(0, 2, 3), unbiased=False)\n",
                "        mean = x.mean(dim=(0, 2, 3))\n        var = x.var(dim=(0, 2, 3), unbiased=False)\n        if self.training:\n",
            ),
            ("        else:\n            mean, var = self.running_mean, self.running_var\n", ""),
        ],
        kind="train vs eval",
        why="updated the running buffers in training but never used them: the else branch was left out",
    ),
    Mistake(
        "BatchNorm2d updates the running statistics in eval mode too",
        replace=[
            (
                "        if self.training:\n            mean = x.mean(dim=(0, 2, 3))\n            var = x.var(dim=(0, 2, 3), unbiased=False)\n            m = x.numel() // x.shape[1]\n            with torch.no_grad():\n                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)\n                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * m / (m - 1))\n                self.num_batches_tracked += 1\n        else:\n            mean, var = self.running_mean, self.running_var\n        x_hat = (x - mean.reshape(1, -1, 1, 1)) / torch.sqrt(var.reshape(1, -1, 1, 1) + self.eps)\n        return self.weight.reshape(1, -1, 1, 1) * x_hat + self.bias.reshape(1, -1, 1, 1)\n",
                "        mean = x.mean(dim=(0, 2, 3))\n        var = x.var(dim=(0, 2, 3), unbiased=False)\n        m = x.numel() // x.shape[1]\n        with torch.no_grad():\n            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)\n            self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * m / (m - 1))\n            self.num_batches_tracked += 1\n        if not self.training:\n            mean, var = self.running_mean, self.running_var\n        x_hat = (x - mean.reshape(1, -1, 1, 1)) / torch.sqrt(var.reshape(1, -1, 1, 1) + self.eps)\n        return self.weight.reshape(1, -1, 1, 1) * x_hat + self.bias.reshape(1, -1, 1, 1)\n",
            ),
        ],
        kind="train vs eval",
        why="put the running-average update before the mode test, so validation and test batches move the buffers",
    ),
    Mistake(
        "BatchNorm2d never increments num_batches_tracked",
        replace=[
            ("                self.num_batches_tracked += 1\n", ""),
        ],
        kind="documented buffer ignored",
        why="thought the counter only matters with momentum=None, so registered it and left it at 0",
    ),
    Mistake(
        "BatchNorm2d registers num_batches_tracked with shape (1,)",
        replace=[
            (
                'self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))',
                'self.register_buffer("num_batches_tracked", torch.zeros(1, dtype=torch.long))',
            ),
        ],
        kind="wrong shape",
        why="torch.zeros(1, dtype=torch.long) looked like 'a scalar'; torch's buffer is 0-dimensional, so strict loading fails",
    ),
    Mistake(
        "BatchNorm2d initialises running_var to 0",
        replace=[
            (
                'self.register_buffer("running_var", torch.ones(num_features))',
                'self.register_buffer("running_var", torch.zeros(num_features))',
            ),
        ],
        kind="initialisation rule",
        why="copy-pasted the running_mean line; an untrained layer in eval mode then divides by sqrt(eps)",
    ),
    Mistake(
        "BatchNorm2d names its parameters gamma and beta, as in the notes",
        replace=[
            (
                "        self.weight = torch.nn.Parameter(torch.ones(num_features))\n        self.bias = torch.nn.Parameter(torch.zeros(num_features))",
                "        self.gamma = torch.nn.Parameter(torch.ones(num_features))\n        self.beta = torch.nn.Parameter(torch.zeros(num_features))",
            ),
            (
                "        return self.weight.reshape(1, -1, 1, 1) * x_hat + self.bias.reshape(1, -1, 1, 1)",
                "        return self.gamma.reshape(1, -1, 1, 1) * x_hat + self.beta.reshape(1, -1, 1, 1)",
            ),
        ],
        kind="state_dict names",
        why="followed the notes' γ, β; the state_dict then has gamma/beta instead of torch's weight/bias",
    ),
    Mistake(
        "BatchNorm2d keeps the running statistics as plain tensor attributes, not buffers",
        replace=[
            (
                '        self.register_buffer("running_mean", torch.zeros(num_features))\n        self.register_buffer("running_var", torch.ones(num_features))\n        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))',
                "        self.running_mean = torch.zeros(num_features)\n        self.running_var = torch.ones(num_features)\n        self.num_batches_tracked = torch.tensor(0, dtype=torch.long)",
            ),
        ],
        kind="where tensors live",
        why="did not see why register_buffer is needed; the tensors stay out of state_dict and are not moved by .to(device)/.double()",
    ),
    Mistake(
        "BatchNorm2d updates the running buffers with autograd on",
        replace=[
            (
                "            with torch.no_grad():\n                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)\n                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * m / (m - 1))\n                self.num_batches_tracked += 1\n",
                "            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)\n            self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * m / (m - 1))\n            self.num_batches_tracked += 1\n",
            ),
        ],
        kind="in-place op that breaks autograd",
        why="left out torch.no_grad(): the buffers join the graph, and the second batch's backward fails",
    ),
    Mistake(
        "BatchNorm2d computes the batch statistics under torch.no_grad (treated as constants)",
        replace=[
            (
                "            mean = x.mean(dim=(0, 2, 3))\n            var = x.var(dim=(0, 2, 3), unbiased=False)\n            m = x.numel() // x.shape[1]\n            with torch.no_grad():\n",
                "            m = x.numel() // x.shape[1]\n            with torch.no_grad():\n                mean = x.mean(dim=(0, 2, 3))\n                var = x.var(dim=(0, 2, 3), unbiased=False)\n",
            ),
        ],
        kind="backward missing terms",
        why="read 'without recording gradients' as covering the mean and variance too; the gradient through μ and σ² is lost",
    ),
    Mistake(
        "BatchNorm2d adds eps to the standard deviation instead of the variance",
        replace=[
            (
                "/ torch.sqrt(var.reshape(1, -1, 1, 1) + self.eps)",
                "/ (torch.sqrt(var.reshape(1, -1, 1, 1)) + self.eps)",
            ),
        ],
        kind="numerical stability / wrong formula",
        why="the notes first write (z - μ)/σ and the student made it safe as σ + ε",
    ),
    Mistake(
        "BatchNorm2d without eps (division by zero for a constant channel)",
        replace=[
            ("/ torch.sqrt(var.reshape(1, -1, 1, 1) + self.eps)", "/ torch.sqrt(var.reshape(1, -1, 1, 1))"),
        ],
        kind="numerical stability: division by zero",
        why="wrote the vanilla formula (x - E[x])/sqrt(Var[x]); a channel that is constant over the batch gives 0/0",
    ),
    Mistake(
        "BatchNorm2d variance as E[x²] - E[x]² (the notes' 'recall')",
        replace=[
            (
                "            var = x.var(dim=(0, 2, 3), unbiased=False)",
                "            var = (x * x).mean(dim=(0, 2, 3)) - mean * mean",
            ),
        ],
        kind="numerical stability",
        why="the slide recalls var(x) = E(x²) - E²(x); in float32 it cancels catastrophically when |mean| >> std",
    ),
    Mistake(
        "BatchNorm2d broadcasts γ and β along the last axis (BatchNorm1d habit)",
        replace=[
            (
                "        return self.weight.reshape(1, -1, 1, 1) * x_hat + self.bias.reshape(1, -1, 1, 1)",
                "        return self.weight * x_hat + self.bias",
            ),
        ],
        kind="wrong shape",
        why="self.weight * x_hat works for (N, C) inputs; for (N, C, H, W) it scales columns (runs silently when W == C)",
    ),
    Mistake(
        "BatchNorm2d with Keras' defaults (momentum 0.99, eps 1e-3)",
        replace=[
            (
                "    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):",
                "    def __init__(self, num_features: int, eps: float = 1e-3, momentum: float = 0.99):",
            ),
        ],
        kind="default changed",
        why="took the defaults from a Keras tutorial; in torch's convention momentum 0.99 nearly replaces the running stats each batch",
    ),
    Mistake(
        "BatchNorm2d subtracts the mean from the input in place",
        replace=[
            (
                "        x_hat = (x - mean.reshape(1, -1, 1, 1)) / torch.sqrt(var.reshape(1, -1, 1, 1) + self.eps)",
                "        x_hat = x.sub_(mean.reshape(1, -1, 1, 1)).div_(torch.sqrt(var.reshape(1, -1, 1, 1) + self.eps))",
            ),
        ],
        kind="mutation of inputs / in-place op",
        why="x.sub_() 'saves memory'; the caller's tensor is overwritten (and a leaf that requires grad raises)",
    ),
    Mistake(
        "hand-written batch-norm backward drops the term through the variance",
        replace=[
            (
                "class BatchNorm2d(torch.nn.Module):",
                'class _BatchNormTrain(torch.autograd.Function):\n    """Training-mode batch norm with the backward pass from the notes\' chain rule."""\n\n    @staticmethod\n    def forward(ctx, x, weight, bias, eps):\n        mean = x.mean(dim=(0, 2, 3), keepdim=True)\n        var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)\n        inv_std = 1 / torch.sqrt(var + eps)\n        x_hat = (x - mean) * inv_std\n        ctx.save_for_backward(x_hat, inv_std, weight)\n        return weight.reshape(1, -1, 1, 1) * x_hat + bias.reshape(1, -1, 1, 1)\n\n    @staticmethod\n    def backward(ctx, grad_out):\n        x_hat, inv_std, weight = ctx.saved_tensors\n        grad_weight = (grad_out * x_hat).sum(dim=(0, 2, 3))\n        grad_bias = grad_out.sum(dim=(0, 2, 3))\n        g = grad_out * weight.reshape(1, -1, 1, 1)\n        grad_x = inv_std * (g - g.mean(dim=(0, 2, 3), keepdim=True))\n        return grad_x, grad_weight, grad_bias, None\n\n\nclass BatchNorm2d(torch.nn.Module):',
            ),
            (
                "                self.num_batches_tracked += 1\n        else:",
                "                self.num_batches_tracked += 1\n            return _BatchNormTrain.apply(x, self.weight, self.bias, self.eps)\n        else:",
            ),
        ],
        kind="hand-written backward: missing term",
        why="finished the notes' 'ungraded HW' chain rule with the μ term only: dx = (g - mean(g))/σ",
    ),
    Mistake(
        "train_transforms adds a random horizontal flip",
        replace=[
            (
                '        v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge"),\n',
                '        v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge"),\n        v2.RandomHorizontalFlip(),\n',
            ),
        ],
        kind="augmentation distribution",
        why="copied the CIFAR-10 recipe (RandomCrop + RandomHorizontalFlip); a mirrored digit is not a digit",
    ),
    Mistake(
        "train_transforms pads with zeros (RandomCrop's default padding_mode)",
        replace=[
            (
                'v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge")',
                "v2.RandomCrop(image_size, padding=max_shift)",
            ),
        ],
        kind="padding mode",
        why="left out padding_mode; on normalised MNIST 0 is brighter than the background, so the shift adds a grey stripe",
    ),
    Mistake(
        "train_transforms pads by reflection",
        replace=[
            (
                'v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge")',
                'v2.RandomCrop(image_size, padding=max_shift, padding_mode="reflect")',
            ),
        ],
        kind="padding mode",
        why="'reflect' is what many CIFAR tutorials use; it mirrors stroke pixels into the border instead of the background",
    ),
    Mistake(
        "train_transforms crops without padding (a same-size crop never moves)",
        replace=[
            ('v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge")', "v2.RandomCrop(image_size)"),
        ],
        kind="augmentation missing",
        why="thought RandomCrop(image_size) alone picks a random position; for a 28x28 image there is only one",
    ),
    Mistake(
        "train_transforms ignores max_shift (padding hard-coded to 2)",
        replace=[
            (
                'v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge")',
                'v2.RandomCrop(image_size, padding=2, padding_mode="edge")',
            ),
        ],
        kind="argument dropped",
        why="the handout says 'a pixel or two', so 2 was written in",
    ),
    Mistake(
        "train_transforms ignores image_size (crop hard-coded to 28)",
        replace=[
            (
                'v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge")',
                'v2.RandomCrop(28, padding=max_shift, padding_mode="edge")',
            ),
        ],
        kind="argument dropped",
        why="MNIST is 28x28; the 32x32 CIFAR case was never tried",
    ),
    Mistake(
        "train_transforms shifts with torch.roll (pixels wrap around)",
        replace=[
            (
                "def train_transforms(image_size=28, max_shift: int = 2) -> v2.Transform:",
                "def _random_roll(image, max_shift):\n    dy, dx = torch.randint(-max_shift, max_shift + 1, (2,)).tolist()\n    return torch.roll(image, shifts=(dy, dx), dims=(-2, -1))\n\n\ndef train_transforms(image_size=28, max_shift: int = 2) -> v2.Transform:",
            ),
            (
                '    return v2.Compose([\n        v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge"),\n        v2.ToDtype(torch.float32),\n    ])\n',
                "    return v2.Compose([\n        v2.Lambda(lambda image: _random_roll(image, max_shift), torch.Tensor),\n        v2.ToDtype(torch.float32),\n    ])\n",
            ),
        ],
        kind="padding mode / augmentation distribution",
        why="a roll is the 'obvious' tensor shift; the rows pushed out on one side reappear on the other instead of the background",
    ),
    Mistake(
        "train_transforms draws its shifts from Python's random module",
        replace=[
            (
                "def train_transforms(image_size=28, max_shift: int = 2) -> v2.Transform:",
                'def _random_shift(image, max_shift):\n    import random\n    padded = F.pad(image.unsqueeze(0), [max_shift] * 4, mode="replicate").squeeze(0)\n    top, left = random.randint(0, 2 * max_shift), random.randint(0, 2 * max_shift)\n    return padded[..., top:top + image.shape[-2], left:left + image.shape[-1]]\n\n\ndef train_transforms(image_size=28, max_shift: int = 2) -> v2.Transform:',
            ),
            (
                '    return v2.Compose([\n        v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge"),\n        v2.ToDtype(torch.float32),\n    ])\n',
                "    return v2.Compose([\n        v2.Lambda(lambda image: _random_shift(image, max_shift), torch.Tensor),\n        v2.ToDtype(torch.float32),\n    ])\n",
            ),
        ],
        kind="seeding",
        why="wrote the edge-pad-and-crop by hand with random.randint; torch.manual_seed does not repeat those draws",
    ),
    Mistake(
        "eval_transforms is the training pipeline (random shifts at test time)",
        replace=[
            (
                "    return v2.Compose([v2.CenterCrop(image_size), v2.ToDtype(torch.float32)])\n",
                "    return train_transforms(image_size)\n",
            ),
        ],
        kind="train vs eval",
        why="'use the same preprocessing for train and test' taken to include the augmentation",
    ),
    Mistake(
        "eval_transforms resizes instead of centre-cropping",
        replace=[
            ("v2.CenterCrop(image_size), v2.ToDtype", "v2.Resize(image_size), v2.ToDtype"),
        ],
        kind="eval pipeline",
        why="ImageNet-style eval (Resize then crop) shortened to Resize; a 32x32 image is rescaled, not cropped",
    ),
    Mistake(
        "both pipelines re-normalise with MNIST's mean and std",
        replace=[
            (
                "        v2.ToDtype(torch.float32),\n    ])",
                "        v2.ToDtype(torch.float32),\n        v2.Normalize((0.1307,), (0.3081,)),\n    ])",
            ),
            (
                "v2.CenterCrop(image_size), v2.ToDtype(torch.float32)])",
                "v2.CenterCrop(image_size), v2.ToDtype(torch.float32),\n                       v2.Normalize((0.1307,), (0.3081,))])",
            ),
        ],
        kind="eval pipeline / preprocessing",
        why="the PyTorch MNIST example has Normalize((0.1307,), (0.3081,)); the images here are already normalised",
    ),
    Mistake(
        "LeNet5 uses torch.nn.Conv2d instead of the lab's Conv2d",
        replace=[
            ("            layers = [Conv2d(c_in, c_out, 5,", "            layers = [torch.nn.Conv2d(c_in, c_out, 5,"),
        ],
        kind="which class is used for a layer",
        why="the stub comment says 'torch.nn.BatchNorm2d', so the student prefixed every layer with torch.nn",
    ),
    Mistake(
        "LeNet5 uses torch.nn.MaxPool2d instead of the lab's MaxPool2d",
        replace=[
            ("torch.nn.ReLU(), MaxPool2d(2)]", "torch.nn.ReLU(), torch.nn.MaxPool2d(2)]"),
        ],
        kind="which class is used for a layer",
        why="same habit as above, for the pooling",
    ),
    Mistake(
        "LeNet5 uses the lab's BatchNorm2d instead of torch's",
        replace=[
            (
                "                layers.append(torch.nn.BatchNorm2d(c_out))",
                "                layers.append(BatchNorm2d(c_out))",
            ),
        ],
        kind="which class is used for a layer",
        why="'build it from your own pieces'; sync_batchnorm then cannot convert the layers to SyncBatchNorm",
    ),
    Mistake(
        "LeNet5 convolutions keep their bias with batch norm",
        replace=[
            ("Conv2d(c_in, c_out, 5, padding=padding, bias=not batch_norm)", "Conv2d(c_in, c_out, 5, padding=padding)"),
        ],
        kind="architecture",
        why="Conv2d's default bias=True was kept; 61,750 parameters instead of 61,728",
    ),
    Mistake(
        "LeNet5 convolutions have no bias even without batch norm",
        replace=[
            (
                "Conv2d(c_in, c_out, 5, padding=padding, bias=not batch_norm)",
                "Conv2d(c_in, c_out, 5, padding=padding, bias=False)",
            ),
        ],
        kind="architecture / documented flag ignored",
        why="read 'the convolutions have no bias' without the 'with batch norm'; 61,684 parameters instead of 61,706",
    ),
    Mistake(
        "LeNet5 applies ReLU before batch norm (Conv -> ReLU -> BN)",
        replace=[
            (
                "        def block(c_in, c_out, padding):\n            layers = [Conv2d(c_in, c_out, 5, padding=padding, bias=not batch_norm)]\n            if batch_norm:\n                layers.append(torch.nn.BatchNorm2d(c_out))\n            return [*layers, torch.nn.ReLU(), MaxPool2d(2)]\n",
                "        def block(c_in, c_out, padding):\n            layers = [Conv2d(c_in, c_out, 5, padding=padding, bias=not batch_norm), torch.nn.ReLU()]\n            if batch_norm:\n                layers.append(torch.nn.BatchNorm2d(c_out))\n            return [*layers, MaxPool2d(2)]\n",
            ),
        ],
        kind="architecture",
        why="a forum thread argued BN after the activation works better; the handout fixes Conv -> BN -> ReLU",
    ),
    Mistake(
        "LeNet5 feature blocks without ReLU",
        replace=[
            (
                "            return [*layers, torch.nn.ReLU(), MaxPool2d(2)]",
                "            return [*layers, MaxPool2d(2)]",
            ),
        ],
        kind="missing non-linearity",
        why="thought the max-pooling is already the non-linearity of a conv block",
    ),
    Mistake(
        "LeNet5's first convolution without padding (the notes' 32x32 LeNet)",
        replace=[
            ("*block(channels, 6, 2), *block(6, 16, 0))", "*block(channels, 6, 0), *block(6, 16, 0))"),
            ("        for padding in (2, 0):", "        for padding in (0, 0):"),
        ],
        kind="architecture",
        why="the original LeNet-5 pads nothing; for 28x28 inputs the classifier then gets 16*4*4 numbers",
    ),
    Mistake(
        "LeNet5 pads both convolutions ('same' everywhere)",
        replace=[
            ("*block(channels, 6, 2), *block(6, 16, 0))", "*block(channels, 6, 2), *block(6, 16, 2))"),
            ("        for padding in (2, 0):", "        for padding in (2, 2):"),
        ],
        kind="architecture",
        why="generalised 'padding 2 keeps the size' to the second convolution too (16*7*7 features)",
    ),
    Mistake(
        "LeNet5 hard-codes the flattened size 16*5*5",
        replace=[
            (
                "            torch.nn.Linear(16 * h * w, 120), torch.nn.ReLU(),",
                "            torch.nn.Linear(16 * 5 * 5, 120), torch.nn.ReLU(),",
            ),
        ],
        kind="architecture / argument dropped (input_shape)",
        why="the table says Linear(400, 120); 32x32 CIFAR inputs then fail",
    ),
    Mistake(
        "LeNet5 size computation forgets the pooling stride",
        replace=[
            (
                "            h = conv_output_size(conv_output_size(h, 5, padding=padding), 2, 2)\n            w = conv_output_size(conv_output_size(w, 5, padding=padding), 2, 2)\n",
                "            h = conv_output_size(conv_output_size(h, 5, padding=padding), 2)\n            w = conv_output_size(conv_output_size(w, 5, padding=padding), 2)\n",
            ),
        ],
        kind="argument dropped",
        why="conv_output_size(h, 2) with the default stride 1 shrinks by one instead of halving",
    ),
    Mistake(
        "LeNet5's output layer hard-coded to 10 classes",
        replace=[
            ("            torch.nn.Linear(84, num_classes),", "            torch.nn.Linear(84, 10),"),
        ],
        kind="argument dropped",
        why="MNIST has 10 digits; num_classes was never used",
    ),
    Mistake(
        "LeNet5 classifier without ReLU between the linear layers",
        replace=[
            (
                "            torch.nn.Linear(16 * h * w, 120), torch.nn.ReLU(),\n            torch.nn.Linear(120, 84), torch.nn.ReLU(),\n            torch.nn.Linear(84, num_classes),\n",
                "            torch.nn.Linear(16 * h * w, 120),\n            torch.nn.Linear(120, 84),\n            torch.nn.Linear(84, num_classes),\n",
            ),
        ],
        kind="missing non-linearity",
        why="thought the 'classifier' part is a stack of linear maps; it collapses into one linear map",
    ),
    Mistake(
        "LeNet5 applies ReLU after the output layer",
        replace=[
            (
                "            torch.nn.Linear(84, num_classes),\n",
                "            torch.nn.Linear(84, num_classes), torch.nn.ReLU(),\n",
            ),
        ],
        kind="architecture",
        why="'every Linear is followed by ReLU'; negative logits are clipped to 0",
    ),
    Mistake(
        "LeNet5.forward returns softmax probabilities instead of logits",
        replace=[
            (
                "        return self.classifier(self.features(x))",
                "        return self.classifier(self.features(x)).softmax(dim=1)",
            ),
        ],
        kind="wrong output / loss on probabilities",
        why="'the network should output probabilities'; F.cross_entropy then applies a second softmax",
    ),
    Mistake(
        "LeNet5's first convolution hard-coded to one input channel",
        replace=[
            ("*block(channels, 6, 2)", "*block(1, 6, 2)"),
        ],
        kind="argument dropped (input_shape)",
        why="MNIST is grey; CIFAR-10's three channels then fail",
    ),
    Mistake(
        "LeNet5 with tanh (the notes' LeNet-5) instead of ReLU",
        replace=[
            (
                "            return [*layers, torch.nn.ReLU(), MaxPool2d(2)]",
                "            return [*layers, torch.nn.Tanh(), MaxPool2d(2)]",
            ),
            (
                "            torch.nn.Linear(16 * h * w, 120), torch.nn.ReLU(),\n            torch.nn.Linear(120, 84), torch.nn.ReLU(),\n            torch.nn.Linear(84, num_classes),\n",
                "            torch.nn.Linear(16 * h * w, 120), torch.nn.Tanh(),\n            torch.nn.Linear(120, 84), torch.nn.Tanh(),\n            torch.nn.Linear(84, num_classes),\n",
            ),
        ],
        kind="architecture",
        why="followed the lecture's original LeNet-5; the handout switches to ReLU",
    ),
    Mistake(
        "LeNet5 with average pooling (LeNet's 'subsampling')",
        replace=[
            ("torch.nn.ReLU(), MaxPool2d(2)]", "torch.nn.ReLU(), torch.nn.AvgPool2d(2)]"),
        ],
        kind="architecture / missing max pooling",
        why="the 1998 LeNet averages 2x2 windows; the handout uses the lab's MaxPool2d",
    ),
    Mistake(
        "LeNet5 adds Dropout(0.5) to the classifier",
        replace=[
            (
                "            torch.nn.Linear(16 * h * w, 120), torch.nn.ReLU(),\n",
                "            torch.nn.Linear(16 * h * w, 120), torch.nn.ReLU(), torch.nn.Dropout(0.5),\n",
            ),
        ],
        kind="architecture / train vs eval",
        why="'regularise the fully connected part' from the notes' dropout slides; the handout fixes the layers",
    ),
    Mistake(
        "on_after_batch_transfer augments validation and test batches too",
        replace=[
            (
                "transform = self.train_transform if self.training and self.hparams.augment else self.eval_transform",
                "transform = self.train_transform if self.hparams.augment else self.eval_transform",
            ),
        ],
        kind="train vs eval",
        why="checked only the augment flag; evaluation is no longer deterministic",
    ),
    Mistake(
        "on_after_batch_transfer ignores augment=False",
        replace=[
            (
                "transform = self.train_transform if self.training and self.hparams.augment else self.eval_transform",
                "transform = self.train_transform if self.training else self.eval_transform",
            ),
        ],
        kind="documented flag ignored",
        why="checked only self.training; --set augment=False still shifts every training image",
    ),
    Mistake(
        "on_after_batch_transfer transforms the whole batch at once (one shift for all images)",
        replace=[
            ("        return torch.stack([transform(image) for image in x]), y", "        return transform(x), y"),
        ],
        kind="augmentation distribution",
        why="v2 transforms accept batches, so the loop looked unnecessary; RandomCrop draws one crop for the batch",
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
        kind="wrong logging names / stages mixed",
        why="overrode ClassifierHooks' validation_step with a copy of training_step; val_loss/val_acc stay empty "
            "and train_acc mixes in validation batches",
    ),
    Mistake(
        "test_step updates the validation metrics",
        replace=[
            (
                "        self.metrics.update(stage, loss, logits, y)\n        return loss\n",
                "        self.metrics.update(stage, loss, logits, y)\n        return loss\n\n"
                '    def test_step(self, batch, batch_idx):\n        self._shared_step(batch, "val")\n',
            ),
        ],
        kind="wrong logging names / stages mixed",
        why="overrode ClassifierHooks' test_step with a copy of validation_step; test_acc is never computed",
    ),
    Mistake(
        "training_step does not return the loss",
        replace=[
            (
                "        self.metrics.update(stage, loss, logits, y)\n        return loss\n",
                "        self.metrics.update(stage, loss, logits, y)\n        return loss\n\n"
                '    def training_step(self, batch, batch_idx):\n        self._shared_step(batch, "fit")\n',
            ),
        ],
        kind="Lightning contract",
        why="overrode ClassifierHooks' training_step, written like validation_step; Lightning skips the "
            "optimisation step when training_step returns None",
    ),
    Mistake(
        "loss computed on softmax probabilities",
        replace=[
            ("        loss = F.cross_entropy(logits, y)", "        loss = F.cross_entropy(logits.softmax(dim=1), y)"),
        ],
        kind="wrong loss",
        why="'cross-entropy compares probabilities', so the logits were softmaxed first (double softmax)",
    ),
    Mistake(
        "loss is nll_loss of the raw logits",
        replace=[
            ("        loss = F.cross_entropy(logits, y)", "        loss = F.nll_loss(logits, y)"),
        ],
        kind="wrong loss",
        why="the PyTorch MNIST example uses F.nll_loss, but its network ends in log_softmax",
    ),
    Mistake(
        "Adam instead of SGD with Nesterov momentum",
        replace=[
            (
                "        optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9, nesterov=True,\n                                    weight_decay=5e-4)\n",
                "        optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=5e-4)\n",
            ),
        ],
        kind="optimizer other than the handout's",
        why="'Adam always works'; the handout fixes SGD, Nesterov 0.9, weight decay 5e-4",
    ),
    Mistake(
        "SGD without Nesterov",
        replace=[
            ("momentum=0.9, nesterov=True,", "momentum=0.9,"),
        ],
        kind="hyper-parameter not the documented one",
        why="classical momentum seemed enough; the handout says Nesterov",
    ),
    Mistake(
        "SGD without weight decay",
        replace=[
            (
                "        optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9, nesterov=True,\n                                    weight_decay=5e-4)\n",
                "        optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9, nesterov=True)\n",
            ),
        ],
        kind="hyper-parameter not the documented one",
        why="'batch norm regularises already', so weight_decay was left out",
    ),
    Mistake(
        "learning rate hard-coded to 0.1 (hparams.lr ignored)",
        replace=[
            ("lr=self.hparams.lr, momentum=0.9", "lr=0.1, momentum=0.9"),
            ("max_lr=self.hparams.lr,", "max_lr=0.1,"),
        ],
        kind="argument dropped (lr)",
        why="0.1 is the default, so it was typed in; --set lr=... has no effect",
    ),
    Mistake(
        "one-cycle schedule stepped once per epoch",
        replace=[
            ('"lr_scheduler": {"scheduler": schedule, "interval": "step"}}', '"lr_scheduler": schedule}'),
        ],
        kind="scheduler interval",
        why="returned the scheduler without 'interval'; Lightning's default steps it per epoch, so the lr barely leaves its start",
    ),
    Mistake(
        "one-cycle total_steps set to the number of epochs",
        replace=[
            ("total_steps=self.trainer.estimated_stepping_batches)", "total_steps=self.trainer.max_epochs)"),
        ],
        kind="off-by-one in epochs/steps",
        why="mixed up epochs and optimisation steps; the schedule ends after max_epochs steps and then raises",
    ),
]

ALTERNATIVES = [
    Alternative(
        "conv_output_size through the effective kernel span and math.floor of a true division",
        replace=[
            (
                "    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1",
                "    import math\n    span = dilation * (kernel_size - 1) + 1  # input positions the kernel covers\n    return math.floor((size + 2 * padding - span) / stride) + 1",
            ),
        ],
    ),
    Alternative(
        "conv_parameter_count with math.prod over the weight shape and bool arithmetic",
        replace=[
            (
                "    return out_channels * in_channels * kernel_h * kernel_w + (out_channels if bias else 0)",
                "    import math\n    return math.prod((out_channels, in_channels, kernel_h, kernel_w)) + int(bias) * out_channels",
            ),
        ],
    ),
    Alternative(
        "conv2d with einsum over the unfolded columns",
        replace=[
            (
                "    out = weight.reshape(c_out, -1) @ columns  # (N, C_out, H_out·W_out)",
                '    out = torch.einsum("ok,nkl->nol", weight.flatten(1), columns)',
            ),
        ],
    ),
    Alternative(
        "conv2d in the CS231n layout: patches as rows times the transposed filter matrix",
        replace=[
            (
                "    h_out = conv_output_size(height, kernel_h, stride_h, pad_h)\n    w_out = conv_output_size(width, kernel_w, stride_w, pad_w)\n    columns = F.unfold(x, (kernel_h, kernel_w), padding=(pad_h, pad_w), stride=(stride_h, stride_w))\n    out = weight.reshape(c_out, -1) @ columns  # (N, C_out, H_out·W_out)\n    if bias is not None:\n        out = out + bias.reshape(1, c_out, 1)\n    return out.reshape(n, c_out, h_out, w_out)\n",
                "    h_out = conv_output_size(height, kernel_h, stride_h, pad_h)\n    w_out = conv_output_size(width, kernel_w, stride_w, pad_w)\n    rows = F.unfold(x, (kernel_h, kernel_w), padding=(pad_h, pad_w), stride=(stride_h, stride_w)).transpose(1, 2)\n    out = rows @ weight.reshape(c_out, -1).t()  # (N, H_out·W_out, C_out)\n    if bias is not None:\n        out = out + bias\n    return out.transpose(1, 2).reshape(n, c_out, h_out, w_out)\n",
            ),
        ],
    ),
    Alternative(
        "conv2d adds the bias in place after reshaping, with None-indexing",
        replace=[
            (
                "    if bias is not None:\n        out = out + bias.reshape(1, c_out, 1)\n    return out.reshape(n, c_out, h_out, w_out)",
                "    out = out.view(n, c_out, h_out, w_out)\n    if bias is not None:\n        out += bias[None, :, None, None]\n    return out",
            ),
        ],
    ),
    Alternative(
        "max_pool2d with Tensor.unfold sliding windows (N, C, H_out, W_out, kH, kW)",
        replace=[
            (
                "    windows = F.unfold(x, (kernel_h, kernel_w), stride=(stride_h, stride_w))\n    windows = windows.reshape(n, channels, kernel_h * kernel_w, h_out * w_out)\n    return windows.max(dim=2).values.reshape(n, channels, h_out, w_out)\n",
                "    windows = x.unfold(2, kernel_h, stride_h).unfold(3, kernel_w, stride_w)\n    windows = windows.reshape(n, channels, h_out, w_out, kernel_h * kernel_w)\n    return windows.max(dim=-1).values\n",
            ),
        ],
    ),
    Alternative(
        "max_pool2d with argmax and gather (the gradient goes to the gathered element)",
        replace=[
            (
                "    return windows.max(dim=2).values.reshape(n, channels, h_out, w_out)",
                "    index = windows.argmax(dim=2, keepdim=True)  # the first maximum of each window\n    return windows.gather(2, index).reshape(n, channels, h_out, w_out)",
            ),
        ],
    ),
    Alternative(
        "BatchNorm2d with var_mean, lerp_ for the running averages and rsqrt",
        replace=[
            (
                "        if self.training:\n            mean = x.mean(dim=(0, 2, 3))\n            var = x.var(dim=(0, 2, 3), unbiased=False)\n            m = x.numel() // x.shape[1]\n            with torch.no_grad():\n                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)\n                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * m / (m - 1))\n                self.num_batches_tracked += 1\n        else:\n            mean, var = self.running_mean, self.running_var\n        x_hat = (x - mean.reshape(1, -1, 1, 1)) / torch.sqrt(var.reshape(1, -1, 1, 1) + self.eps)\n        return self.weight.reshape(1, -1, 1, 1) * x_hat + self.bias.reshape(1, -1, 1, 1)\n",
                "        if self.training:\n            var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)\n            m = x.numel() / x.size(1)\n            with torch.no_grad():\n                self.running_mean.lerp_(mean, self.momentum)\n                self.running_var.lerp_(var * (m / (m - 1)), self.momentum)\n                self.num_batches_tracked.add_(1)\n        else:\n            mean, var = self.running_mean, self.running_var\n        x_hat = (x - mean[None, :, None, None]) * torch.rsqrt(var[None, :, None, None] + self.eps)\n        return torch.addcmul(self.bias[None, :, None, None], self.weight[None, :, None, None], x_hat)\n",
            ),
        ],
    ),
    Alternative(
        "BatchNorm2d from explicit sums with keepdim, buffers reassigned out of place under no_grad",
        replace=[
            (
                "        if self.training:\n            mean = x.mean(dim=(0, 2, 3))\n            var = x.var(dim=(0, 2, 3), unbiased=False)\n            m = x.numel() // x.shape[1]\n            with torch.no_grad():\n                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)\n                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * m / (m - 1))\n                self.num_batches_tracked += 1\n        else:\n            mean, var = self.running_mean, self.running_var\n        x_hat = (x - mean.reshape(1, -1, 1, 1)) / torch.sqrt(var.reshape(1, -1, 1, 1) + self.eps)\n        return self.weight.reshape(1, -1, 1, 1) * x_hat + self.bias.reshape(1, -1, 1, 1)\n",
                "        c = x.shape[1]\n        if self.training:\n            m = x.numel() // c\n            mean = x.sum(dim=(0, 2, 3), keepdim=True) / m\n            var = ((x - mean) ** 2).sum(dim=(0, 2, 3), keepdim=True) / m\n            with torch.no_grad():\n                self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean.reshape(c)\n                self.running_var = ((1 - self.momentum) * self.running_var\n                                    + self.momentum * var.reshape(c) * m / (m - 1))\n                self.num_batches_tracked = self.num_batches_tracked + 1\n        else:\n            mean = self.running_mean.reshape(1, c, 1, 1)\n            var = self.running_var.reshape(1, c, 1, 1)\n        x_hat = (x - mean) / (var + self.eps).sqrt()\n        return x_hat * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)\n",
            ),
        ],
    ),
    Alternative(
        "train_transforms as an explicit edge Pad followed by a RandomCrop",
        replace=[
            (
                '    return v2.Compose([\n        v2.RandomCrop(image_size, padding=max_shift, padding_mode="edge"),\n        v2.ToDtype(torch.float32),\n    ])\n',
                '    return v2.Compose([\n        v2.Pad(max_shift, padding_mode="edge"),\n        v2.RandomCrop(image_size),\n        v2.ToDtype(torch.float32, scale=False),\n    ])\n',
            ),
        ],
    ),
    Alternative(
        "LeNet5 written out layer by layer, in-place ReLUs, sizes by explicit conv_output_size calls",
        replace=[
            (
                "        def block(c_in, c_out, padding):\n            layers = [Conv2d(c_in, c_out, 5, padding=padding, bias=not batch_norm)]\n            if batch_norm:\n                layers.append(torch.nn.BatchNorm2d(c_out))\n            return [*layers, torch.nn.ReLU(), MaxPool2d(2)]\n\n        self.features = torch.nn.Sequential(*block(channels, 6, 2), *block(6, 16, 0))\n        h, w = height, width\n        for padding in (2, 0):\n            h = conv_output_size(conv_output_size(h, 5, padding=padding), 2, 2)\n            w = conv_output_size(conv_output_size(w, 5, padding=padding), 2, 2)\n",
                "        def norm(c):\n            return [torch.nn.BatchNorm2d(c)] if batch_norm else []\n\n        self.features = torch.nn.Sequential(\n            Conv2d(channels, 6, kernel_size=5, padding=2, bias=not batch_norm), *norm(6),\n            torch.nn.ReLU(inplace=True), MaxPool2d(kernel_size=2),\n            Conv2d(6, 16, kernel_size=5, bias=not batch_norm), *norm(16),\n            torch.nn.ReLU(inplace=True), MaxPool2d(kernel_size=2),\n        )\n        h1 = conv_output_size(conv_output_size(height, 5, padding=2), 2, stride=2)\n        w1 = conv_output_size(conv_output_size(width, 5, padding=2), 2, stride=2)\n        h = conv_output_size(conv_output_size(h1, 5), 2, stride=2)\n        w = conv_output_size(conv_output_size(w1, 5), 2, stride=2)\n",
            ),
        ],
    ),
    Alternative(
        "configure_optimizers in Lightning's ([optimizers], [scheduler configs]) form",
        replace=[
            (
                '        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}',
                '        return [optimizer], [{"scheduler": schedule, "interval": "step", "frequency": 1}]',
            ),
        ],
    ),
]
