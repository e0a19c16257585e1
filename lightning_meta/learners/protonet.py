"""Prototypical Networks (Snell et al. 2017): classify queries by distance to class-mean embeddings.

No inner loop: a task is "learned" by averaging the support embeddings of each class, so train
ways can exceed test ways (the paper trains 60-way on Omniglot) and evaluation needs no gradients.
With ``test_shift``, evaluation (validation, test, ``predict_task``) embeds each image as the mean over it and
its copies shifted by that many pixels (``shifted_views.py``); training never sees the views.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_meta.checks import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from lightning_meta.learners.base import Batch, BnMode, MetaLearner, accuracy, per_task_backward
from lightning_meta.learners.schedules import Schedule
from lightning_meta.learners.shifted_views import mean_over_views, shifted_views


class ProtoNet(MetaLearner):
    """Euclidean (squared distance, as in the paper) or cosine (scaled) prototype classifier."""

    needs_grad_in_eval = False

    def __init__(
        self,
        backbone: nn.Module | Mapping | None = None,
        lr: PositiveFloat = 1e-3,
        distance: Literal["euclidean", "cosine"] = "euclidean",
        cosine_scale: PositiveFloat = 10.0,
        weight_decay: NonNegativeFloat = 0.0,
        lr_step_size: PositiveInt | None = None,
        lr_gamma: PositiveFloat = 0.5,
        bn_mode: BnMode = "running",
        channels_last: bool = False,
        task_threads: PositiveInt = 1,
        lr_schedule: Schedule = "step",
        test_shift: NonNegativeInt = 0,
    ) -> None:
        super().__init__(
            backbone, lr, weight_decay, lr_step_size, lr_gamma, bn_mode, channels_last, task_threads, lr_schedule
        )

    def logits(self, support: Tensor, support_y: Tensor, query: Tensor, ways: int | None = None) -> Tensor:
        """Query logits from embeddings: negative distance to each class prototype (``ways`` saves a host sync)."""
        ways = ways or int(support_y.max()) + 1
        prototypes = torch.zeros(ways, support.shape[-1], dtype=support.dtype, device=support.device)
        prototypes.index_add_(0, support_y, support)
        prototypes = prototypes / torch.bincount(support_y, minlength=ways).unsqueeze(1).to(support.dtype)
        if self.hparams.distance == "cosine":
            return self.hparams.cosine_scale * F.normalize(query, dim=-1) @ F.normalize(prototypes, dim=-1).T
        return -torch.cdist(query, prototypes).pow(2)

    def meta_loss(self, batch: Batch) -> tuple[Tensor, Tensor]:
        def task(i: int) -> tuple[Tensor, Tensor]:  # one forward per episode: BatchNorm statistics stay per episode
            logits = self.adapt_and_predict(batch[0][i], batch[1][i], batch[2][i])
            return F.cross_entropy(logits, batch[3][i]), accuracy(logits.detach(), batch[3][i])

        return per_task_backward(self, task, batch[0].shape[0], self.task_threads)

    def adapt_and_predict(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        ways = self.check_task(support_x, support_y, query_x)
        x = torch.cat([support_x, query_x])
        if self.hparams.test_shift and not self.training:
            z = mean_over_views(self.backbone(shifted_views(x, self.hparams.test_shift)), len(x))
        else:
            z = self.backbone(x)
        return self.logits(z[: len(support_x)], support_y, z[len(support_x) :], ways)
