"""Reptile (Nichol et al. 2018): move the meta-weights towards the weights each task trains to.

The inner loop is plain training (Adam or SGD on mini-batches of the support set) on detached
copies of the weights. The meta-update ``theta += eps * mean(phi_i - theta)`` is expressed as the
gradient ``theta - mean(phi_i)`` of a quadratic surrogate, so Lightning's optimizer step, gradient
clipping and DDP gradient averaging apply unchanged; the outer SGD rate ``eps`` is annealed
linearly to 0 over training (``lr_schedule=linear``), as in the paper.

Inner mini-batches are drawn in a new order for every task (seeded by the step and the task's place in
the meta-batch, so a resumed run repeats them), and by default Adam's second moment carries over from
task to task and into evaluation, as in the reference code (``inner_state``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_meta.checks import PositiveFloat, PositiveInt
from lightning_meta.learners.base import Batch, BnMode, MetaLearner, accuracy
from lightning_meta.learners.inner_loop import Params, forward
from lightning_meta.learners.schedules import Schedule
from lightning_meta.learners.task_optimizer import CarriedMoments, TaskOptimizer
from lightning_meta.learners.task_threads import map_tasks


class Reptile(MetaLearner):
    """Reptile with transductive (whole query set per forward) or non-transductive evaluation."""

    fixed_ways = True
    trains_on_queries = False  # the meta-update comes from the support set; queries only measure accuracy
    # a mapping's ``lr`` is the rate of an optimizer training a network on a task; Reptile's ``lr`` is the outer
    # step size (1.0, annealed): 800 meta-iterations with the shipped mapping's 0.049 there tested at 52.7 %
    # against 77.3 % (5-way 1-shot Omniglot; docs/hyperparameter_mapping.md), so the zero-config callback skips it
    hpo_declines = {
        "lr": "Reptile's lr is its outer step size (default 1.0), not a task optimizer's rate; to tune it or "
              "inner_lr, pass space= naming it",
    }

    def __init__(
        self,
        backbone: nn.Module | Mapping | None = None,
        lr: PositiveFloat = 1.0,
        inner_lr: PositiveFloat = 1e-3,
        inner_steps: PositiveInt = 5,
        inner_steps_eval: PositiveInt = 50,
        inner_batch_size: PositiveInt | None = None,
        inner_optimizer: Literal["adam", "sgd"] = "adam",
        inner_state: Literal["carried", "fresh"] = "carried",
        transductive: bool = True,
        bn_mode: BnMode = "transductive",
        channels_last: bool = False,
        task_threads: PositiveInt = 1,
        lr_schedule: Schedule = "linear",
    ) -> None:
        super().__init__(backbone, lr, bn_mode=bn_mode, channels_last=channels_last, task_threads=task_threads,
                         lr_schedule=lr_schedule)
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.inner_steps_eval = inner_steps_eval
        carried = inner_optimizer == "adam" and inner_state == "carried"
        self.inner_moments = CarriedMoments(dict(self.backbone.named_parameters())) if carried else None

    def _task_optimizer(self, tensors: list[Tensor]) -> TaskOptimizer:
        if self.inner_moments is None:
            return TaskOptimizer(self.hparams.inner_optimizer, tensors, self.inner_lr)
        return TaskOptimizer("adam", tensors, self.inner_lr, moments=self.inner_moments.moments(),
                             steps=int(self.inner_moments.steps))

    def train_task(self, support_x: Tensor, support_y: Tensor, steps: int, seed: int | None = None,
                   ways: int | None = None) -> tuple[Params, TaskOptimizer]:
        """Trains copies of the weights on one task's support set; returns them (no graph) and the optimizer.

        ``seed`` orders the inner mini-batches; without one (evaluation) the order is a function of the task.
        With ``ways``, the head's width is checked on the first logits, before the loss could index past them.
        """
        params = {n: p.detach().clone().requires_grad_() for n, p in self.backbone.named_parameters()}
        tensors = list(params.values())
        optimizer = self._task_optimizer(tensors)
        n = len(support_x)
        size = self.hparams.inner_batch_size or n
        if seed is None:
            seed = int(support_y.sum()) + n + steps
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        with torch.enable_grad():
            for step in range(steps):
                idx = order[(torch.arange(size) + step * size) % n]
                logits = forward(self.backbone, params, support_x[idx])
                if ways is not None and step == 0:
                    self.check_head(logits.shape[-1], ways)
                loss = F.cross_entropy(logits, support_y[idx])
                optimizer.step(torch.autograd.grad(loss, tensors))
        return {k: v.detach() for k, v in params.items()}, optimizer

    def meta_loss(self, batch: Batch) -> tuple[Tensor, Tensor]:
        sx, sy, qx, qy = batch
        tasks = sx.shape[0]

        first_seed = (self.global_rank * 1_000_003 + self.global_step) * tasks

        def run(chunk: range) -> tuple[dict[str, Tensor], list[Tensor], list[Tensor]]:
            phi_sum: dict[str, Tensor] = {}
            moment_sum: list[Tensor] = []
            accs = []
            for i in chunk:
                phi, optimizer = self.train_task(sx[i], sy[i], self.inner_steps, seed=first_seed + i)
                for k, v in phi.items():
                    phi_sum[k] = phi_sum.get(k, 0) + v / tasks
                if self.inner_moments is not None:
                    moments = [m / tasks for m in optimizer.second_moment]
                    moment_sum = moments if not moment_sum else [a + b for a, b in zip(moment_sum, moments)]
                x, y = (qx[i], qy[i]) if qx.shape[1] else (sx[i], sy[i])
                with torch.no_grad():
                    accs.append(accuracy(forward(self.backbone, phi, x), y))
            return phi_sum, moment_sum, accs

        parts = map_tasks(run, tasks, self.task_threads)
        mean_phi, mean_moments = parts[0][0], parts[0][1]
        for other, moments, _ in parts[1:]:
            mean_phi = {k: v + other[k] for k, v in mean_phi.items()}
            mean_moments = [a + b for a, b in zip(mean_moments, moments)]
        if self.inner_moments is not None:
            self.inner_moments.update(mean_moments, self.inner_steps)
        # d/dtheta of 0.5 * ||theta - mean_phi||^2 is theta - mean_phi: the Reptile direction.
        loss = sum(0.5 * (p - mean_phi[n]).pow(2).sum() for n, p in self.backbone.named_parameters())
        return loss, torch.stack([a for *_, accs in parts for a in accs]).mean()

    def adapt_and_predict(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        ways = self.check_task(support_x, support_y, query_x)
        phi, _ = self.train_task(support_x, support_y, self.inner_steps_eval, ways=ways)
        with torch.no_grad():
            if self.hparams.transductive:
                return forward(self.backbone, phi, query_x)
            # Non-transductive: each query is normalised together with the support set only.
            return torch.stack([forward(self.backbone, phi, torch.cat([support_x, q[None]]))[-1] for q in query_x])

    def configure_optimizers(self) -> Any:
        """SGD on the Reptile direction, its rate annealed as ``lr_schedule`` says (linear to 0 by default), with the
        ``weight_decay`` every learner's hparams carry (0 unless a tuner such as ``HyperparameterMapping`` sets it)."""
        return self._with_schedule(
            torch.optim.SGD(self.parameters(), lr=self.lr, weight_decay=self.hparams.weight_decay))
