"""The learn2learn 0.2.0 baseline, written the way its own examples train.

MAML and first-order MAML use ``l2l.algorithms.MAML`` (``clone`` / ``adapt``, one backward per
task, gradients averaged, Adam) as in ``examples/vision/maml_omniglot.py``. learn2learn ships no
ProtoNet or Reptile module: its examples write them by hand on its Conv4 (``CNN4Backbone``), a
pairwise-distance head for ProtoNet and a deep-copied learner with an inner optimizer for
Reptile; the loops below do the same. The networks are learn2learn's own classes, loaded with our
Conv4's initial weights so that both libraries start from the same point.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import warnings
from contextlib import redirect_stderr, redirect_stdout

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmarks.speed.ours import REPTILE_INNER_LR, our_network
from benchmarks.speed.timing import Step
from benchmarks.speed.workload import PROTONET_HIDDEN, Episodes, Workload

NOT_INSTALLED = "not installed"


def l2l_version() -> str:
    """learn2learn's version, or ``NOT_INSTALLED`` when this interpreter cannot import it."""
    if importlib.util.find_spec("learn2learn") is None:
        return NOT_INSTALLED
    return _learn2learn().__version__


def _learn2learn():
    """Imports learn2learn without the deprecation banners its ``gym`` import prints."""
    with warnings.catch_warnings(), redirect_stderr(io.StringIO()), redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        import learn2learn

    return learn2learn


def l2l_network(workload: Workload) -> nn.Module:
    """learn2learn's network for the workload: OmniglotCNN (28 px), CNN4 with 32 filters (84 px), or
    for ProtoNet the 64-filter max-pool ``CNN4Backbone`` embedding its ProtoNet example uses."""
    models = _learn2learn().vision.models
    s = workload.spec
    if workload.algo == "protonet":
        return models.CNN4Backbone(hidden_size=PROTONET_HIDDEN, channels=s.channels, max_pool=True)
    if workload.image == "omniglot":
        return models.OmniglotCNN(output_size=workload.ways, hidden_size=s.hidden)
    return models.CNN4(output_size=workload.ways, hidden_size=s.hidden, channels=s.channels, max_pool=True)


def copy_weights(source: nn.Module, target: nn.Module) -> nn.Module:
    """Loads ``source``'s conv, BatchNorm and linear weights into ``target``'s layers of the same kind, in order."""
    for kind in (nn.Conv2d, nn.BatchNorm2d, nn.Linear):
        theirs = [m for m in target.modules() if isinstance(m, kind)]
        ours = [m for m in source.modules() if isinstance(m, kind)]
        if len(ours) != len(theirs):
            raise ValueError(f"{type(target).__name__} has {len(theirs)} {kind.__name__} layers, ours {len(ours)}.")
        for a, b in zip(ours, theirs):
            with torch.no_grad():
                b.weight.copy_(a.weight)
                b.bias.copy_(a.bias)
    return target


def l2l_step(workload: Workload, episodes: Episodes, device: torch.device, dtype: torch.dtype = torch.float32) -> Step:
    """One meta-batch update over ``episodes`` with learn2learn, ready to be timed."""
    net = copy_weights(our_network(workload), l2l_network(workload)).to(device, dtype)
    build = {"maml": _maml, "fomaml": _maml, "protonet": _protonet, "reptile": _reptile}[workload.algo]
    return build(workload, net, episodes.to(device, dtype))


def l2l_meta_gradient(workload: Workload, device: torch.device, dtype: torch.dtype):
    """learn2learn's MAML meta-gradient (clone, adapt, query loss) for the correctness check."""

    def meta_gradient(net: nn.Module, episodes: Episodes) -> list[Tensor]:
        theirs = copy_weights(net, l2l_network(workload)).to(device, dtype)
        maml = _learn2learn().algorithms.MAML(theirs, lr=workload.inner_lr)
        e = episodes.to(device, dtype)
        for i in range(workload.meta_batch):
            sx, sy, qx, qy = e.task(i)
            learner = maml.clone()
            for _ in range(workload.inner_steps):
                learner.adapt(F.cross_entropy(learner(sx), sy))
            (F.cross_entropy(learner(qx), qy) / workload.meta_batch).backward()
        by_kind = {kind: [m for m in theirs.modules() if isinstance(m, kind)] for kind in (nn.Conv2d, nn.BatchNorm2d, nn.Linear)}
        grads = []
        for conv, bn in zip(by_kind[nn.Conv2d], by_kind[nn.BatchNorm2d]):
            grads += [conv.weight.grad, conv.bias.grad, bn.weight.grad, bn.bias.grad]
        head = by_kind[nn.Linear][0]
        return grads + [head.weight.grad, head.bias.grad]  # our Conv4's parameter order

    return meta_gradient


def _maml(workload: Workload, net: nn.Module, episodes: Episodes) -> Step:
    l2l = _learn2learn()
    maml = l2l.algorithms.MAML(net, lr=workload.inner_lr, first_order=workload.algo == "fomaml")
    opt = torch.optim.Adam(maml.parameters(), lr=workload.meta_lr)

    def step() -> None:
        opt.zero_grad()
        for i in range(workload.meta_batch):
            sx, sy, qx, qy = episodes.task(i)
            learner = maml.clone()
            for _ in range(workload.inner_steps):
                learner.adapt(F.cross_entropy(learner(sx), sy))
            F.cross_entropy(learner(qx), qy).backward()
        for p in maml.parameters():
            p.grad.mul_(1.0 / workload.meta_batch)
        opt.step()

    return step


def _pairwise_distance_logits(query: Tensor, prototypes: Tensor) -> Tensor:
    n, m = query.shape[0], prototypes.shape[0]
    diff = query.unsqueeze(1).expand(n, m, -1) - prototypes.unsqueeze(0).expand(n, m, -1)
    return -(diff**2).sum(dim=2)


def _protonet(workload: Workload, net: nn.Module, episodes: Episodes) -> Step:
    opt = torch.optim.Adam(net.parameters(), lr=workload.meta_lr)
    n_support = workload.ways * workload.shots

    def step() -> None:
        opt.zero_grad()
        for i in range(workload.meta_batch):
            sx, _, qx, qy = episodes.task(i)
            embeddings = net(torch.cat([sx, qx]))
            prototypes = embeddings[:n_support].reshape(workload.ways, workload.shots, -1).mean(dim=1)
            logits = _pairwise_distance_logits(embeddings[n_support:], prototypes)
            (F.cross_entropy(logits, qy) / workload.meta_batch).backward()
        opt.step()

    return step


def _reptile(workload: Workload, net: nn.Module, episodes: Episodes) -> Step:
    """Reptile: train a copy on the support set with Adam, move the weights towards it, report query accuracy."""
    meta_opt = torch.optim.SGD(net.parameters(), lr=workload.meta_lr)
    params = list(net.parameters())

    def step() -> None:
        for p in params:
            p.grad = torch.zeros_like(p)
        for i in range(workload.meta_batch):
            sx, sy, qx, qy = episodes.task(i)
            learner = copy.deepcopy(net)
            inner_opt = torch.optim.Adam(learner.parameters(), lr=REPTILE_INNER_LR, betas=(0.0, 0.999))
            for _ in range(workload.inner_steps):
                inner_opt.zero_grad()
                F.cross_entropy(learner(sx), sy).backward()
                inner_opt.step()
            with torch.no_grad():
                (learner(qx).argmax(-1) == qy).float().mean()
            for p, adapted in zip(params, learner.parameters()):
                p.grad.add_(p.detach() - adapted.detach(), alpha=1.0 / workload.meta_batch)
        meta_opt.step()

    return step
