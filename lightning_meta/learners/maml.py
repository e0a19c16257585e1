"""MAML (Finn et al. 2017) on ``torch.func``, with first-order MAML, ANIL and the MAML++ options.

The inner loop (``inner_loop.adapt``) runs on a dict of parameter tensors through
``functional_call``, so the adapted weights stay in the autograd graph and the meta-gradient
is second order unless ``first_order`` is set. MAML++ (Antoniou et al. 2019):
``learn_inner_lr`` (LSLR: a learned rate per layer and step, i.e. Meta-SGD per layer),
``multi_step_loss`` (MSL: query loss after every inner step, weights annealed towards the last
step over ``msl_epochs``), ``derivative_order_annealing`` (first order for that many epochs,
then second order), ``per_step_bn`` (BatchNorm affine parameters learned separately per step).
``anil`` adapts only the head (Raghu et al. 2020). ``batch_tasks`` runs all tasks of a meta-batch
through a Conv4 backbone as grouped convolutions (``task_batching``): the same meta-gradient, far
fewer kernel launches, which pays off on GPUs. ``task_threads`` runs chunks of the meta-batch on that
many single-threaded CPU workers (``task_threads.py``), which pays off on multi-core CPUs.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_meta.checks import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from lightning_meta.errors import ConfigError
from lightning_meta.learners.base import Batch, BnMode, MetaLearner, accuracy, per_task_backward
from lightning_meta.learners.inner_loop import Params, adapt, forward
from lightning_meta.learners.schedules import Schedule
from lightning_meta.learners.task_batching import batched_maml_loss
from lightning_meta.nets import Conv4


def _key(name: str) -> str:
    return name.replace(".", "-")


class MAML(MetaLearner):
    """Model-Agnostic Meta-Learning over a meta-batch of tasks per optimizer step."""

    fixed_ways = True

    def __init__(
        self,
        backbone: nn.Module | Mapping | None = None,
        lr: PositiveFloat = 1e-3,
        inner_lr: PositiveFloat = 0.4,
        inner_steps: PositiveInt = 1,
        inner_steps_eval: PositiveInt | None = None,
        first_order: bool = False,
        learn_inner_lr: bool = False,
        multi_step_loss: bool = False,
        msl_epochs: NonNegativeInt = 10,
        derivative_order_annealing: NonNegativeInt = 0,
        per_step_bn: bool = False,
        anil: bool = False,
        batch_tasks: bool = False,
        weight_decay: NonNegativeFloat = 0.0,
        lr_step_size: PositiveInt | None = None,
        lr_gamma: PositiveFloat = 0.5,
        bn_mode: BnMode = "transductive",
        channels_last: bool = False,
        task_threads: PositiveInt = 1,
        lr_schedule: Schedule = "step",
    ) -> None:
        super().__init__(
            backbone, lr, weight_decay, lr_step_size, lr_gamma, bn_mode, channels_last, task_threads, lr_schedule
        )
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.inner_steps_eval = inner_steps_eval or inner_steps
        if batch_tasks and (not isinstance(self.backbone, Conv4) or anil or learn_inner_lr or per_step_bn or multi_step_loss):
            raise ConfigError(
                "batch_tasks=True supports a Conv4 backbone with plain MAML/FOMAML (no anil, learn_inner_lr, "
                "per_step_bn or multi_step_loss). Fix: set batch_tasks=false for this configuration."
            )
        if batch_tasks and task_threads > 1:
            raise ConfigError("batch_tasks=True runs all tasks in one pass, task_threads > 1 runs them on threads: "
                              "choose one (set task_threads=1 or batch_tasks=false).")
        if anil and not hasattr(self.backbone, "head"):
            raise ConfigError("anil=True needs a backbone with a `head` module (the layer ANIL adapts).")
        if anil and per_step_bn:
            raise ConfigError("anil=True adapts the head alone, so per_step_bn=True (per-step BatchNorm of the adapted "
                              "body) has nothing to act on. Fix: set per_step_bn=false, or anil=false.")
        named = dict(self.backbone.named_parameters())
        self.bn_names = {
            f"{m_name}.{p}" if m_name else p
            for m_name, m in self.backbone.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)
            for p, _ in m.named_parameters(recurse=False)
        }
        self.adapted_names = [n for n in named if (n.startswith("head.") if anil else not (per_step_bn and n in self.bn_names))]
        max_steps = max(self.inner_steps, self.inner_steps_eval)
        if learn_inner_lr:
            self.inner_lrs = nn.ParameterDict(
                {_key(n): nn.Parameter(torch.full((max_steps,), float(inner_lr))) for n in self.adapted_names}
            )
        if per_step_bn:
            self.step_bn = nn.ParameterDict(
                {_key(n): nn.Parameter(named[n].detach().clone().unsqueeze(0).repeat(max_steps + 1, *[1] * named[n].dim()))
                 for n in self.bn_names}
            )

    # --- the inner loop -----------------------------------------------------------------------
    def _bn_params(self, step: int) -> Params:
        if not self.hparams.per_step_bn:
            return {}
        last = next(iter(self.step_bn.values())).shape[0] - 1
        return {n: self.step_bn[_key(n)][min(step, last)] for n in self.bn_names}

    def _lrs(self):
        if self.hparams.learn_inner_lr:
            return {n: self.inner_lrs[_key(n)] for n in self.adapted_names}
        return float(self.inner_lr)

    def _features(self, x: Tensor) -> Tensor:
        return self.backbone.embed(x) if self.hparams.anil else x

    def _logits(self, params: Params, x: Tensor, step: int) -> Tensor:
        fixed = self._bn_params(step)
        module = self.backbone.head if self.hparams.anil else self.backbone
        if self.hparams.anil:
            params = {n[len("head."):]: p for n, p in params.items()}
        return forward(module, {**params, **fixed}, x)

    def _first_order_now(self) -> bool:
        return self.hparams.first_order or self.current_epoch < self.hparams.derivative_order_annealing

    def adapt(self, support_x: Tensor, support_y: Tensor, steps: int, first_order: bool, detach: bool = False,
              ways: int | None = None) -> list[Params]:
        """The adapted parameters after each of ``steps`` inner steps on the support set (the last is the result).

        First order: inner gradients are taken without a graph, so each adapted weight is its meta-weight
        minus a constant and the query gradient flows to the meta-weight unchanged (FOMAML). ``detach``
        starts from copies (evaluation), so no graph reaches the meta-parameters at all. With ``ways``, the
        head's width is checked on the first logits, before the loss could index past them.
        """
        start = {n: p for n, p in self.backbone.named_parameters() if n in self.adapted_names}
        if detach:
            start = {n: p.detach().requires_grad_() for n, p in start.items()}

        def loss_fn(params: Params, step: int) -> Tensor:
            logits = self._logits(params, support_x, step)
            if ways is not None and step == 0:
                self.check_head(logits.shape[-1], ways)
            return F.cross_entropy(logits, support_y)

        return adapt(start, loss_fn, steps, self._lrs(), first_order, keep_all=True)

    def _msl_weights(self, steps: int) -> Tensor:
        """MAML++ multi-step loss weights: uniform at first, moving to the last step over ``msl_epochs``."""
        frac = min(1.0, self.current_epoch / max(1, self.hparams.msl_epochs))
        w = torch.full((steps,), (1.0 - frac) / steps)
        w[-1] += frac
        return w

    def meta_loss(self, batch: Batch) -> tuple[Tensor, Tensor]:
        first_order = self._first_order_now()
        if self.hparams.batch_tasks:
            return batched_maml_loss(self.backbone, *batch, self.inner_lr, self.inner_steps, first_order)
        steps, msl = self.inner_steps, self.hparams.multi_step_loss
        weights = self._msl_weights(steps) if msl else None

        def task(i: int) -> tuple[Tensor, Tensor]:
            sx, sy, qx, qy = (t[i] for t in batch)
            fs, fq = self._features(sx), self._features(qx)
            trajectory = self.adapt(fs, sy, steps, first_order)
            logits = self._logits(trajectory[-1], fq, steps)
            loss = F.cross_entropy(logits, qy)
            if msl:
                per_step = [F.cross_entropy(self._logits(p, fq, k + 1), qy) for k, p in enumerate(trajectory[:-1])]
                loss = sum(w * l for w, l in zip(weights.tolist(), [*per_step, loss]))
            return loss, accuracy(logits.detach(), qy)

        return per_task_backward(self, task, batch[0].shape[0], self.task_threads)

    def adapt_and_predict(self, support_x: Tensor, support_y: Tensor, query_x: Tensor) -> Tensor:
        ways = self.check_task(support_x, support_y, query_x)
        steps = self.inner_steps_eval
        with torch.no_grad():
            fs, fq = self._features(support_x), self._features(query_x)
        params = self.adapt(fs, support_y, steps, first_order=True, detach=True, ways=ways)[-1]
        with torch.no_grad():
            return self._logits(params, fq, steps)
