"""The plain classifier every task family trains: a user's ordinary LightningModule.

The hyperparameter mapping must work on code it does not own, so this is written the way users
write it: the network is passed in, ``lr`` and ``weight_decay`` are hparams that
``configure_optimizers`` reads, and the optimizer family (SGD with momentum, Adam, AdamW) is a
constructor choice. Each optimizer keeps the default a user would start from.
"""

from __future__ import annotations

from typing import Literal

import lightning.pytorch as pl
import torch
from torch import Tensor, nn

Optimizer = Literal["sgd", "adam", "adamw"]
DEFAULT_LR: dict[str, float] = {"sgd": 0.01, "adam": 1e-3, "adamw": 1e-3}
DEFAULT_WEIGHT_DECAY: dict[str, float] = {"sgd": 0.0, "adam": 0.0, "adamw": 0.01}


class Classifier(pl.LightningModule):
    """Cross-entropy training of ``net``; logs ``val_acc`` and ``val_loss``.

    ``lr`` / ``weight_decay`` default to the optimizer's usual starting values
    (``DEFAULT_LR``, ``DEFAULT_WEIGHT_DECAY``); SGD uses momentum 0.9.
    """

    def __init__(
        self, net: nn.Module, optimizer: Optimizer = "adam", lr: float | None = None, weight_decay: float | None = None
    ) -> None:
        super().__init__()
        if optimizer not in DEFAULT_LR:
            raise ValueError(f"optimizer={optimizer!r}: use one of {sorted(DEFAULT_LR)}")
        self.save_hyperparameters(
            {"optimizer": optimizer, "lr": DEFAULT_LR[optimizer] if lr is None else float(lr),
             "weight_decay": DEFAULT_WEIGHT_DECAY[optimizer] if weight_decay is None else float(weight_decay)}
        )
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())  # dim 1: classes, also of [batch, vocab, length]

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return build_optimizer(self)


class Regressor(Classifier):
    """Mean-squared-error training of ``net`` (one output per sample); logs ``val_r2`` and ``val_loss``."""

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self(x).squeeze(-1), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        error = nn.functional.mse_loss(self(x).squeeze(-1), y)
        self.log("val_loss", error)
        self.log("val_r2", 1.0 - error / y.var(unbiased=False).clamp_min(1e-12))


def build_optimizer(module: pl.LightningModule) -> torch.optim.Optimizer:
    """The optimizer named in the module's hparams, with its ``lr`` and ``weight_decay`` (SGD: momentum 0.9)."""
    lr, weight_decay, kind = module.hparams.lr, module.hparams.weight_decay, module.hparams.optimizer
    if kind == "sgd":
        return torch.optim.SGD(module.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    if kind == "adamw":
        return torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    return torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay)
