"""Before timing anything: is our second-order MAML meta-gradient the true one?

The reference is written independently of the library: Conv4's forward by hand from
``torch.nn.functional`` on a float64 CPU copy of the weights, inner SGD steps with
``torch.autograd.grad(create_graph=True)``, query losses averaged over the meta-batch. A fast but
wrong meta-gradient would make every speed figure meaningless, so ``run.py`` stops when they differ.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks.speed.workload import Episodes, Workload
from lightning_meta.learners import MAML
from lightning_meta.learners.task_batching import batched_maml_loss
from lightning_meta.nets import Conv4

MetaGradient = Callable[[nn.Module, Episodes], list[Tensor]]
"""``(network, episodes) -> d(mean query loss after adaptation) / d(network.parameters())``."""

TOLERANCE = {torch.float64: 1e-4, torch.float32: 1e-3}


def _reference_forward(net: Conv4, params: list[Tensor], x: Tensor) -> Tensor:
    """Conv4 from ``params`` (in ``net.parameters()`` order), BatchNorm on batch statistics."""
    it = iter(params)
    h = x
    for block in net.features:
        conv, bn = block[0], block[1]
        h = F.conv2d(h, next(it), next(it), stride=conv.stride, padding=conv.padding)
        h = F.batch_norm(h, None, None, next(it), next(it), training=True, eps=bn.eps)
        h = F.relu(h)
        if len(block) > 3:
            h = F.max_pool2d(h, 2)
    z = h.mean(dim=(2, 3)) if net.embedding == "mean" else h.flatten(1)
    return F.linear(z, next(it), next(it))


def reference_meta_gradient(net: Conv4, episodes: Episodes, inner_lr: float, inner_steps: int) -> list[Tensor]:
    """Second-order MAML meta-gradient in float64 on the CPU, by hand."""
    net = copy.deepcopy(net).to("cpu", torch.float64)
    meta = [p.detach().clone().requires_grad_() for p in net.parameters()]
    e = episodes.to("cpu", torch.float64)
    losses = []
    for i in range(e.support_x.shape[0]):
        sx, sy, qx, qy = e.task(i)
        fast = meta
        for _ in range(inner_steps):
            grads = torch.autograd.grad(F.cross_entropy(_reference_forward(net, fast, sx), sy), fast, create_graph=True)
            fast = [p - inner_lr * g for p, g in zip(fast, grads)]
        losses.append(F.cross_entropy(_reference_forward(net, fast, qx), qy))
    return list(torch.autograd.grad(torch.stack(losses).mean(), meta))


def our_meta_gradient(workload: Workload, device: torch.device, dtype: torch.dtype) -> MetaGradient:
    """``MAML.meta_loss`` then backward, on ``device`` in ``dtype``."""

    def meta_gradient(net: nn.Module, episodes: Episodes) -> list[Tensor]:
        learner = MAML(copy.deepcopy(net), inner_lr=workload.inner_lr, inner_steps=workload.inner_steps).to(device, dtype)
        e = episodes.to(device, dtype)
        loss, _ = learner.meta_loss((e.support_x, e.support_y, e.query_x, e.query_y))
        loss.backward()
        return [p.grad for p in learner.backbone.parameters()]

    return meta_gradient


def batched_meta_gradient(workload: Workload, device: torch.device, dtype: torch.dtype) -> MetaGradient:
    """``task_batching.batched_maml_loss`` then backward, on ``device`` in ``dtype``."""

    def meta_gradient(net: nn.Module, episodes: Episodes) -> list[Tensor]:
        net = copy.deepcopy(net).to(device, dtype)
        e = episodes.to(device, dtype)
        loss, _ = batched_maml_loss(net, e.support_x, e.support_y, e.query_x, e.query_y, workload.inner_lr, workload.inner_steps)
        loss.backward()
        return [p.grad for p in net.parameters()]

    return meta_gradient


def max_relative_error(got: list[Tensor], want: list[Tensor]) -> float:
    """Worst over parameter tensors of max|got - want| / max|want|.

    A conv bias followed by BatchNorm has a true gradient of zero (the reference gives ~1e-17), so
    where a reference tensor is below 1e-6 of the largest entry its error is measured against that
    largest entry: rounding noise on a zero must not read as a 100% error.
    """
    got = [g.detach().to("cpu", torch.float64) for g in got]
    want = [w.detach().to("cpu", torch.float64) for w in want]
    scale = max(float(w.abs().max()) for w in want)
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        worst = max(worst, float((g - w).abs().max()) / _denominator(float(w.abs().max()), scale))
    return worst


def _denominator(largest: float, scale: float) -> float:
    return largest if largest > 1e-6 * scale else scale


@dataclass
class Check:
    """One implementation's meta-gradient compared with the reference."""

    name: str
    dtype: str
    device: str
    max_relative_error: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_relative_error <= self.tolerance


def check(name: str, meta_gradient: MetaGradient, net: Conv4, episodes: Episodes, reference: list[Tensor],
          device: torch.device, dtype: torch.dtype) -> Check:
    return Check(name, str(dtype).removeprefix("torch."), str(device),
                 max_relative_error(meta_gradient(net, episodes), reference), TOLERANCE[dtype])
