"""Reptile (Nichol et al. 2018): move the meta-weights towards the weights each task trains to.

The inner loop is plain training (Adam or SGD on mini-batches of the support set) on detached
copies of the weights. The meta-update ``theta += eps * mean(phi_i - theta)`` is expressed as the
gradient ``theta - mean(phi_i)`` of a quadratic surrogate, so Lightning's optimizer step, gradient
clipping and DDP gradient averaging apply unchanged; the outer SGD rate ``eps`` is annealed
linearly to 0 over training, as in the paper.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_meta.errors import ConfigError
from lightning_meta.learners.base import Batch, MetaLearner, accuracy
from lightning_meta.learners.inner_loop import Params, forward
from lightning_meta.learners.task_optimizer import TaskOptimizer
from lightning_meta.learners.task_threads import map_tasks


class Reptile(MetaLearner):
    """Reptile with transductive (whole query set per forward) or non-transductive evaluation."""

    fixed_ways = True

    def __init__(
        self,
        backbone: nn.Module | Mapping,
        lr: float = 1.0,
        inner_lr: float = 1e-3,
        inner_steps: int = 5,
        inner_steps_eval: int = 50,
        inner_batch_size: int | None = None,
        inner_optimizer: str = "adam",
        transductive: bool = True,
        bn_mode: str = "transductive",
        channels_last: bool = False,
        task_threads: int = 1,
    ) -> None:
        if inner_optimizer not in ("adam", "sgd"):
            raise ConfigError(f"Reptile inner_optimizer must be 'adam' or 'sgd', got '{inner_optimizer}'.")
        super().__init__(backbone, lr, bn_mode=bn_mode, channels_last=channels_last, task_threads=task_threads)
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.inner_steps_eval = inner_steps_eval

    def train_task(self, support_x: Tensor, support_y: Tensor, steps: int) -> Params:
        """Trains copies of the weights on one task's support set; returns them (no graph)."""
        params = {n: p.detach().clone().requires_grad_() for n, p in self.backbone.named_parameters()}
        tensors = list(params.values())
        optimizer = TaskOptimizer(self.hparams.inner_optimizer, tensors, self.inner_lr)
        n = len(support_x)
        size = self.hparams.inner_batch_size or n
        generator = torch.Generator().manual_seed(int(support_y.sum()) + n + steps)
        order = torch.randperm(n, generator=generator)
        with torch.enable_grad():
            for step in range(steps):
                idx = order[(torch.arange(size) + step * size) % n]
                loss = F.cross_entropy(forward(self.backbone, params, support_x[idx]), support_y[idx])
                optimizer.step(torch.autograd.grad(loss, tensors))
        return {k: v.detach() for k, v in params.items()}

    def meta_loss(self, batch: Batch) -> tuple[Tensor, Tensor]:
        sx, sy, qx, qy = batch
        tasks = sx.shape[0]

        def run(chunk: range) -> tuple[dict[str, Tensor], list[Tensor]]:
            phi_sum: dict[str, Tensor] = {}
            accs = []
            for i in chunk:
                phi = self.train_task(sx[i], sy[i], self.inner_steps)
                for k, v in phi.items():
                    phi_sum[k] = phi_sum.get(k, 0) + v / tasks
                x, y = (qx[i], qy[i]) if qx.shape[1] else (sx[i], sy[i])
                with torch.no_grad():
                    accs.append(accuracy(forward(self.backbone, phi, x), y))
            return phi_sum, accs

        parts = map_tasks(run, tasks, self.task_threads)
        mean_phi = parts[0][0]
        for other, _ in parts[1:]:
            mean_phi = {k: v + other[k] for k, v in mean_phi.items()}
        # d/dtheta of 0.5 * ||theta - mean_phi||^2 is theta - mean_phi: the Reptile direction.
        loss = sum(0.5 * (p - mean_phi[n]).pow(2).sum() for n, p in self.backbone.named_parameters())
        return loss, torch.stack([a for _, accs in parts for a in accs]).mean()

    def adapt_and_predict(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        phi = self.train_task(support_x, support_y, self.inner_steps_eval)
        with torch.no_grad():
            if self.hparams.transductive:
                return forward(self.backbone, phi, query_x)
            # Non-transductive: each query is normalised together with the support set only.
            return torch.stack([forward(self.backbone, phi, torch.cat([support_x, q[None]]))[-1] for q in query_x])

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=self.lr)
        total = self.trainer.estimated_stepping_batches if self._trainer is not None else 1
        total = max(1, int(total)) if total != float("inf") else 1
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1.0 - step / total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
