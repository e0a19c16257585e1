"""lightning_meta's side of the comparison: the learners' own ``meta_loss``, one backward, one Adam step.

This is exactly what ``training_step`` plus Lightning's optimizer step run, minus logging, so the
figures measure the library's algorithms and not the Trainer's bookkeeping.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from benchmarks.speed.timing import Step
from benchmarks.speed.workload import PROTONET_HIDDEN, Episodes, Workload
from lightning_meta.learners import MAML, MetaLearner, ProtoNet, Reptile
from lightning_meta.learners.task_batching import batched_maml_loss
from lightning_meta.nets import Conv4

REPTILE_INNER_LR = 1e-3
"""Reptile's inner Adam rate (Nichol et al. 2018); ``Workload.inner_lr`` is MAML's SGD rate."""


def our_network(workload: Workload, seed: int = 0) -> Conv4:
    """The Conv4 of the workload, seeded so that every library starts from the same weights."""
    torch.manual_seed(seed)
    s = workload.spec
    if workload.algo == "protonet":
        return Conv4(s.channels, None, PROTONET_HIDDEN, "pool", s.size)
    return Conv4(s.channels, workload.ways, s.hidden, s.downsample, s.size)


def our_learner(workload: Workload, net: nn.Module, task_threads: int = 1) -> MetaLearner:
    """The LightningModule a user would train on this workload (transductive BatchNorm throughout), with
    channels_last weights as the shipped model configs set them."""
    if workload.algo in ("maml", "fomaml"):
        return MAML(net, lr=workload.meta_lr, inner_lr=workload.inner_lr, inner_steps=workload.inner_steps,
                    first_order=workload.algo == "fomaml", channels_last=True, task_threads=task_threads)
    if workload.algo == "reptile":
        return Reptile(net, lr=workload.meta_lr, inner_lr=REPTILE_INNER_LR, inner_steps=workload.inner_steps,
                       channels_last=True, task_threads=task_threads)
    return ProtoNet(net, lr=workload.meta_lr, bn_mode="transductive", channels_last=True,
                    task_threads=task_threads)


def our_step(
    workload: Workload, episodes: Episodes, device: torch.device, dtype: torch.dtype = torch.float32,
    learner: MetaLearner | None = None, autocast: contextlib.AbstractContextManager | None = None,
    task_threads: int = 1,
) -> Step:
    """One meta-batch update of ``learner`` (default: ``our_learner``) on ``episodes``, ready to be timed.

    ``autocast`` wraps the forward pass as Lightning's mixed precision does. The step returns its loss.
    """
    learner = (learner or our_learner(workload, our_network(workload), task_threads)).to(device, dtype)
    optimizer_cls = torch.optim.SGD if workload.algo == "reptile" else torch.optim.Adam
    optimizer = optimizer_cls(learner.parameters(), lr=workload.meta_lr)
    e = episodes.to(device, dtype)
    batch = (e.support_x, e.support_y, e.query_x, e.query_y)
    autocast = autocast or contextlib.nullcontext()

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss, _ = learner.meta_loss(batch)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def batched_step(workload: Workload, episodes: Episodes, device: torch.device, dtype: torch.dtype = torch.float32) -> Step:
    """MAML with all tasks of the meta-batch in grouped convolutions (``task_batching``), same update."""
    if workload.algo not in ("maml", "fomaml"):
        raise ValueError(f"The batched path implements MAML and first-order MAML, not {workload.algo}.")
    net = our_network(workload).to(device, dtype)
    optimizer = torch.optim.Adam(net.parameters(), lr=workload.meta_lr)
    e = episodes.to(device, dtype)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss, _ = batched_maml_loss(net, e.support_x, e.support_y, e.query_x, e.query_y, workload.inner_lr,
                                    workload.inner_steps, first_order=workload.algo == "fomaml")
        loss.backward()
        optimizer.step()

    return step
