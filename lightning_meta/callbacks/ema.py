"""``EMAWeights``: an exponential moving average of the weights that is safe at any run length.

Lightning's ``EMAWeightAveraging`` has two faults that a short run exposes (a 25-minute cap that ended a 20,000-episode
plan after 1,852 episodes tested 35.7 % where the live weights scored 78.5 %):

- the average starts from the initial weights and decays at a fixed rate, so after ``n`` updates a share
  ``decay ** n`` of it is still the random initialisation (16 % after 1,852 updates at 0.999);
- BatchNorm's running statistics are averaged like weights, but they describe the activations of the live weights,
  not of the average.

Here the decay warms up with the number of updates, ``min(decay, (1 + n) / (10 + n))``, and whenever the averaged
weights go into the model (each validation, the end of fit) BatchNorm's statistics are recomputed for them on
training episodes, as ``torch.optim.swa_utils.update_bn`` does. At the end of fit, where validation exists, the
averaged and the live weights are compared on the validation episodes and the better one is kept (and written to
``last.ckpt``); the run says which it keeps and why. Checkpoints written at a validation hold the averaged weights
with the statistics recomputed for them, so the best one on validation (what ``train.py`` tests) is consistent too.
"""

from __future__ import annotations

import itertools
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from lightning_meta.checks import PositiveInt, checked
from lightning_meta.errors import ConfigError


def warmed_decay(decay: float, updates: int) -> float:
    """The decay of the ``updates``-th update: small at first, so the initial weights leave the average quickly."""
    return min(decay, (1 + updates) / (10 + updates))


class EMAWeights(WeightAveraging):
    """EMA of the weights with a warmed-up decay and BatchNorm statistics of its own (see the module docstring).

    ``bn_episodes`` training batches recompute BatchNorm's running statistics for the averaged weights; ``select``
    compares averaged and live weights on validation at the end of fit (up to ``select_batches`` batches).
    """

    @checked
    def __init__(self, decay: float = 0.999, bn_episodes: PositiveInt = 50, select: bool = True,
                 select_batches: PositiveInt = 50) -> None:
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"EMAWeights got decay={decay}: it must be in (0, 1), e.g. 0.999.")
        super().__init__(use_buffers=True, multi_avg_fn=self._average)
        self.decay = decay
        self.bn_episodes = bn_episodes
        self.select = select
        self.select_batches = select_batches
        #: What the end of fit decided, in words (also printed): which weights the model holds and why.
        self.decision: str | None = None

    def _average(self, averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor | int) -> None:
        if not torch.is_floating_point(averaged[0]):  # counters (BatchNorm's num_batches_tracked): the live value
            torch._foreach_copy_(averaged, current)
            return
        torch._foreach_lerp_(averaged, current, 1.0 - warmed_decay(self.decay, int(num_averaged)))

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return step_idx is not None

    # --- the averaged weights get their own BatchNorm statistics whenever they are used ----------------------
    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_epoch_start(trainer, pl_module)  # the average is in the model now
        if self._average_model is not None and not trainer.sanity_checking:
            recompute_batchnorm(pl_module, trainer, self.bn_episodes)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        live = [t.detach().clone() for t in _state(pl_module)]
        updates = int(self._average_model.n_averaged)
        super().on_train_end(trainer, pl_module)  # the average is in the model now
        recompute_batchnorm(pl_module, trainer, self.bn_episodes)
        loader = _validation_loader(trainer) if self.select else None
        if loader is None:
            self.decision = (f"keeps the averaged weights ({updates} updates, decay warmed up to "
                             f"{warmed_decay(self.decay, updates):.4f}, BatchNorm statistics recomputed on "
                             f"{self.bn_episodes} training batches): no validation to compare them with the live ones")
        else:
            averaged_acc = episode_accuracy(pl_module, loader, self.select_batches)
            averaged = [t.detach().clone() for t in _state(pl_module)]
            _load(pl_module, live)
            live_acc = episode_accuracy(pl_module, loader, self.select_batches)
            keep_average = averaged_acc >= live_acc
            if keep_average:
                _load(pl_module, averaged)
            which = "averaged" if keep_average else "live"
            self.decision = (f"keeps the {which} weights: validation accuracy {100 * averaged_acc:.2f} % averaged "
                             f"({updates} updates, BatchNorm recomputed) against {100 * live_acc:.2f} % live")
        # Any checkpoint written from now on holds what the model holds, in state_dict and current_model_state.
        _load(self._average_model.module, [t.detach().clone() for t in _state(pl_module)])
        _resave_last(trainer)
        rank_zero_info(f"EMAWeights {self.decision}.")


def _state(module: nn.Module) -> list[Tensor]:
    return list(itertools.chain(module.parameters(), module.buffers()))


def _load(module: nn.Module, values: list[Tensor]) -> None:
    for target, value in zip(_state(module), values):
        target.data.copy_(value)


def _batch_norms(module: nn.Module) -> list[_BatchNorm]:
    return [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recompute_batchnorm(pl_module: L.LightningModule, trainer: L.Trainer, batches: int) -> None:
    """BatchNorm's running statistics recomputed for the weights the model holds, as the mean over ``batches``
    training batches (support and query inputs of every task). Nothing to do when it keeps none (transductive BN)."""
    norms = _batch_norms(pl_module)
    if not norms:
        return
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative mean over the batches
    was_training = pl_module.training
    pl_module.train()
    backbone = getattr(pl_module, "backbone", pl_module)
    for batch in itertools.islice(trainer.datamodule.train_dataloader(), batches):
        support_x, _, query_x, _ = batch
        inputs = torch.cat([support_x.flatten(0, 1), query_x.flatten(0, 1)]).to(pl_module.device)
        backbone(inputs)
    for bn, momentum in zip(norms, momenta):
        bn.momentum = momentum
    pl_module.train(was_training)


def _validation_loader(trainer: L.Trainer) -> Any | None:
    """The validation episodes, when the run validates (a ``val_dataloader`` and ``limit_val_batches`` above 0)."""
    datamodule = trainer.datamodule
    if datamodule is None or not trainer.limit_val_batches or not hasattr(datamodule, "val_dataloader"):
        return None
    if getattr(datamodule, "trainval", False):  # validation classes were trained on: not a fair judge
        return None
    return datamodule.val_dataloader()


def episode_accuracy(pl_module: L.LightningModule, loader: Any, batches: int) -> float:
    """Mean query accuracy of the learner's ``adapt_and_predict`` over up to ``batches`` batches of tasks."""
    was_training = pl_module.training
    pl_module.eval()
    correct, total = 0, 0
    with torch.enable_grad():  # MAML and Reptile adapt with gradients
        for batch in itertools.islice(loader, batches):
            support_x, support_y, query_x, query_y = (t.to(pl_module.device) for t in batch)
            for i in range(len(support_x)):
                logits = pl_module.adapt_and_predict(support_x[i], support_y[i], query_x[i])
                correct += int((logits.argmax(-1) == query_y[i]).sum())
                total += len(query_y[i])
    pl_module.train(was_training)
    return correct / max(total, 1)


def _resave_last(trainer: L.Trainer) -> None:
    """``last.ckpt`` again, with the weights the model holds now (it was written before this choice)."""
    callback = trainer.checkpoint_callback
    last = getattr(callback, "last_model_path", "") if callback is not None else ""
    if last:
        trainer.save_checkpoint(last)
