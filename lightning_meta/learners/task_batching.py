"""All tasks of a meta-batch through Conv4 at once: one grouped convolution per layer instead of one
small convolution per task, so a meta-batch costs a few dozen large kernels, not B times as many small ones.

Task ``b``'s weights are slice ``b`` of every stacked parameter ``[B, ...]``; channels of all tasks
sit side by side (``[N, B*C, H, W]``) and ``groups=B`` keeps them apart. BatchNorm over
``(N, H, W)`` per channel is then exactly per-task batch statistics (transductive BN). The support
losses are summed over tasks, so the gradient w.r.t. slice ``b`` is task ``b``'s own gradient and the
inner step is exact MAML, second order unless ``first_order``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_meta.errors import ConfigError
from lightning_meta.learners.inner_loop import Params
from lightning_meta.nets import Conv4


def stack_params(net: Conv4, tasks: int) -> Params:
    """The network's parameters expanded to ``[tasks, ...]`` (views: gradients sum back into them)."""
    if net.head is None:
        raise ConfigError("batched MAML needs a Conv4 with a head (out_features set), as MAML's backbone has.")
    return {n: p.unsqueeze(0).expand(tasks, *p.shape) for n, p in net.named_parameters()}


def batched_forward(net: Conv4, params: Params, x: Tensor) -> Tensor:
    """Logits ``[B, N, out]`` of B tasks' Conv4s (``params`` stacked ``[B, ...]``) on ``x`` ``[B, N, C, H, W]``."""
    b, n = x.shape[:2]
    h = x.transpose(0, 1).reshape(n, b * x.shape[2], *x.shape[3:])
    for i, block in enumerate(net.features):
        conv = block[0]
        w = params[f"features.{i}.0.weight"]
        h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), params[f"features.{i}.0.bias"].reshape(-1),
                     stride=conv.stride, padding=conv.padding, groups=b)
        h = F.batch_norm(h, None, None, params[f"features.{i}.1.weight"].reshape(-1),
                         params[f"features.{i}.1.bias"].reshape(-1), training=True, eps=block[1].eps)
        if net.downsample == "pool":
            h = F.max_pool2d(h, 2)  # before the ReLU, as in Conv4 (the two commute)
        h = F.relu(h)
    z = h.mean(dim=(2, 3)).view(n, b, -1) if net.embedding == "mean" else h.reshape(n, b, -1, *h.shape[2:]).flatten(2)
    return torch.einsum("nbe,boe->bno", z, params["head.weight"]) + params["head.bias"].unsqueeze(1)


def _task_losses(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy of each task, ``[B]``."""
    return F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape).mean(1)


def batched_maml_loss(
    net: Conv4, support_x: Tensor, support_y: Tensor, query_x: Tensor, query_y: Tensor,
    inner_lr: float, inner_steps: int = 1, first_order: bool = False,
) -> tuple[Tensor, Tensor]:
    """MAML's meta-loss (mean query loss after adaptation) and mean query accuracy over the meta-batch."""
    params = stack_params(net, support_x.shape[0])
    names = list(params)
    for _ in range(inner_steps):
        support_loss = _task_losses(batched_forward(net, params, support_x), support_y).sum()
        grads = torch.autograd.grad(support_loss, [params[k] for k in names], create_graph=not first_order)
        params = {k: params[k] - inner_lr * (g.detach() if first_order else g) for k, g in zip(names, grads)}
    logits = batched_forward(net, params, query_x)
    accuracy = (logits.detach().argmax(-1) == query_y).float().mean()
    return _task_losses(logits, query_y).mean(), accuracy
