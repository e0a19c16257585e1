"""The zero-config callback on real fits: it keeps the user's values unless tasks like this one say a change pays,
says why in one line, searches when a task is fitted again, and checks the monitor's direction and presence."""

from __future__ import annotations

import logging
import math
import warnings

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.callback import HyperparameterMapping
from lightning_meta.hpo.features import task_features
from lightning_meta.hpo.mappings import ConditionalBestOnAverage
from lightning_meta.hpo.pool import ExperiencePool
from lightning_meta.hpo.space import SearchSpace

SPACE = SearchSpace.from_dict({"lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
                               "weight_decay": {"type": "float", "low": 1e-6, "high": 0.1, "log": True}})
BEST_LR = 1e-2


class Linear(pl.LightningModule):
    """A user's classifier: Adam at ``lr``; logs ``monitor`` (``val_acc`` or ``val_loss``) unless told not to."""

    def __init__(self, lr: float = 1e-4, monitor: str | None = "val_acc") -> None:
        super().__init__()
        self.lr, self.weight_decay, self.monitor = lr, 0.0, monitor
        self.net = nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        if self.monitor == "val_acc":
            self.log("val_acc", (logits.argmax(-1) == y).float().mean())
        elif self.monitor == "val_loss":
            self.log("val_loss", nn.functional.cross_entropy(logits, y))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


class Recurrent(Linear):
    """A user's GRU classifier, AdamW at 3e-4: a kind of network the recorded tasks below never had."""

    def __init__(self) -> None:
        super().__init__(lr=3e-4)
        self.weight_decay = 0.01
        self.gru, self.net = nn.GRU(4, 16, batch_first=True), nn.Linear(16, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(self.gru(x[:, None])[1][-1]), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self.net(self.gru(x[:, None])[1][-1]).argmax(-1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


class Data(pl.LightningDataModule):
    def __init__(self) -> None:
        super().__init__()
        self.batch_size = 8
        generator = torch.Generator().manual_seed(0)
        self.train_dataset = TensorDataset(torch.randn(64, 4, generator=generator),
                                           torch.randint(0, 2, (64,), generator=generator))

    def train_dataloader(self):
        return DataLoader(self.train_dataset, batch_size=self.batch_size)

    def val_dataloader(self):
        return DataLoader(self.train_dataset, batch_size=32)


def _trainer(callback, **kwargs) -> pl.Trainer:
    options = dict(max_epochs=1, limit_val_batches=1, accelerator="cpu", devices=1, logger=False,
                   enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                   num_sanity_val_steps=0)
    return pl.Trainer(callbacks=[callback], **{**options, **kwargs})


@pytest.fixture(scope="module")
def mapping() -> ConditionalBestOnAverage:
    """Fit on four recorded tasks with the features of ``Linear`` on ``Data``, best at ``BEST_LR``."""
    features = task_features(Linear(), Data(), _trainer(None), "val_acc", "max")
    rng = np.random.default_rng(0)
    rows = []
    for t in range(4):
        for lr, wd in zip(10 ** rng.uniform(-4, 0, 24), 10 ** rng.uniform(-6, -1, 24)):
            rows.append({"task": f"recorded{t}", "objective": -abs(math.log10(lr / BEST_LR)), "status": "complete",
                         "hp_lr": lr, "hp_weight_decay": wd,
                         **{f"f_{k}": v + 0.05 * t * (k == "log_n_samples") for k, v in features.items()}})
    return ConditionalBestOnAverage().fit(pd.DataFrame(rows), SPACE)


def _fit(callback, module, **kwargs) -> pl.Trainer:
    trainer = _trainer(callback, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, datamodule=Data())
    return trainer


def test_a_poor_default_on_a_task_like_the_recorded_ones_is_changed(mapping, caplog):
    callback = HyperparameterMapping(mapping=mapping)
    with caplog.at_level(logging.INFO, logger="lightning_meta.hpo.callback"):
        trainer = _fit(callback, Linear(lr=1e-4))
    decision = callback.decision
    assert decision.defaults == {"lr": 1e-4, "weight_decay": 0.0}
    assert decision.evidence.changed and abs(math.log10(callback.config["lr"] / BEST_LR)) < 0.75
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(callback.config["lr"])
    assert decision.evidence.gain - decision.evidence.gain_std >= callback.margin
    assert "(yours: 0.0001) on Linear: 4 similar recorded tasks of 4 families (nearest: recorded" in caplog.text


def test_a_task_unlike_every_recorded_one_keeps_the_modules_values_and_says_so(mapping, caplog, tmp_path):
    pool = f"sqlite:///{tmp_path / 'pool.db'}"
    callback = HyperparameterMapping(mapping=mapping, pool=pool)
    with caplog.at_level(logging.INFO, logger="lightning_meta.hpo.callback"):
        trainer = _fit(callback, Recurrent())
    assert callback.config == {} and not callback.decision.evidence.changed
    assert callback.decision.evidence.distance > callback.max_distance
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(3e-4)
    line = [r.getMessage() for r in caplog.records if "keeps" in r.getMessage()]
    assert len(line) == 1 and line[0].startswith("HyperparameterMapping keeps lr=0.0003, weight_decay=0.01 on Recurrent: "
                                                 "no recorded task resembles this one (nearest: recorded")
    runs = ExperiencePool(pool).frame()  # recorded with the values it trained with, so the pool learns
    assert runs["hp_lr"].tolist() == [pytest.approx(3e-4)] and runs["f_default_lr"].tolist() == [pytest.approx(3e-4)]
    assert runs["f_share_recurrent"].iloc[0] > 0.5


def test_without_a_pool_the_kept_line_says_how_to_learn_from_your_runs(mapping, caplog):
    with caplog.at_level(logging.INFO, logger="lightning_meta.hpo.callback"):
        _fit(HyperparameterMapping(mapping=mapping), Recurrent())
    assert "; pass pool=... to learn from your own runs" in caplog.text


def test_repeated_fits_search_the_task_starting_with_the_users_values(mapping, tmp_path):
    pool = f"sqlite:///{tmp_path / 'pool.db'}"
    used = []
    for _ in range(4):
        callback = HyperparameterMapping(mapping=mapping, pool=pool, task="mine")
        _fit(callback, Linear(lr=1e-4))
        used.append(callback.decision.used)
    assert used[0]["lr"] != 1e-4 and used[1] == {"lr": 1e-4, "weight_decay": 0.0}  # yours come second
    keys = {(round(u["lr"], 12), round(u["weight_decay"], 12)) for u in used}
    assert len(keys) == 4  # no configuration is run twice
    assert "search on this task (3 earlier runs)" in callback.decision.evidence.reason


def test_a_loss_monitor_is_minimised_without_being_told(mapping, tmp_path):
    pool = f"sqlite:///{tmp_path / 'pool.db'}"
    callback = HyperparameterMapping(mapping=mapping, pool=pool, monitor="val_loss")
    trainer = _fit(callback, Linear(monitor="val_loss"))
    assert callback.mode == "min" and callback.features["objective_min"] == 1.0
    runs = ExperiencePool(pool).frame()
    assert runs["objective"].iloc[0] == pytest.approx(-float(trainer.callback_metrics["val_loss"]))


def test_a_monitor_of_unknown_direction_is_refused_before_training(mapping):
    with pytest.raises(ConfigError, match="cannot tell whether monitor='val_quality' is better high or low"):
        HyperparameterMapping(mapping=mapping, monitor="val_quality")


def test_a_monitor_never_logged_warns_at_the_end_of_fit_without_a_pool(mapping):
    trainer = _trainer(HyperparameterMapping(mapping=mapping))
    with pytest.warns(UserWarning, match="'val_acc' was never logged in 1 validations: log it with self.log"):
        trainer.fit(Linear(monitor=None), datamodule=Data())


def test_a_fit_whose_validation_never_ran_says_so_with_the_fix(mapping):
    trainer = _trainer(HyperparameterMapping(mapping=mapping), max_steps=3)
    with pytest.warns(UserWarning, match="validation never ran.*stopped after 3 steps.*val_check_interval"):
        trainer.fit(Linear(), datamodule=Data())


def test_missing_features_are_reported_once_in_one_line(mapping, caplog):
    with caplog.at_level(logging.INFO, logger="lightning_meta.hpo.callback"):
        _fit(HyperparameterMapping(mapping=mapping), Linear(monitor="val_acc"), max_epochs=1, gradient_clip_val=None)
    assert not [r for r in caplog.records if "unknown for this task" in r.getMessage()]  # all known here
    caplog.clear()

    class Bare(Linear):  # no datamodule facts: data set size and batch size are unknown
        pass

    trainer = _trainer(HyperparameterMapping(mapping=mapping))
    with caplog.at_level(logging.INFO, logger="lightning_meta.hpo.callback"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = Data()
        trainer.fit(Bare(), train_dataloaders=data.train_dataloader(), val_dataloaders=data.val_dataloader())
    lines = [r.getMessage() for r in caplog.records if "unknown for this task" in r.getMessage()]
    assert len(lines) == 1 and "batch_size" in lines[0] and "n_samples" in lines[0]


class PretrainedTransformerRegressor(pl.LightningModule):
    """Fine-tuning a pretrained Transformer on a regression: a task the shipped pool has nothing like."""

    def __init__(self) -> None:
        super().__init__()
        self.lr, self.weight_decay = 1e-5, 0.01
        layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
        self.encoder, self.head = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False), nn.Linear(16, 1)
        self.proj = nn.Linear(4, 16)
        with torch.no_grad():  # as loaded from a checkpoint: the norm layers left their start
            for module in self.encoder.modules():
                if isinstance(module, nn.LayerNorm):
                    module.weight.mul_(1.3)

    def _predict(self, x):
        return self.head(self.encoder(self.proj(x)[:, None])[:, 0]).squeeze(-1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self._predict(x), y.float())

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_mse", nn.functional.mse_loss(self._predict(x), y.float()))

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def test_the_shipped_mapping_keeps_the_values_of_a_task_unlike_its_pool(caplog):
    callback = HyperparameterMapping(monitor="val_mse")
    with caplog.at_level(logging.INFO, logger="lightning_meta.hpo.callback"):
        trainer = _fit(callback, PretrainedTransformerRegressor())
    assert callback.features["pretrained"] == 1.0 and callback.features["share_attention"] > 0.3
    assert callback.features["objective_min"] == 1.0
    assert callback.config == {} and trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-5)
    # the shipped pool's only pretrained tasks are one family's (fine-tuned CNNs): one model's runs cannot say
    # whether their best values carry over to this one
    assert ("keeps lr=1e-05, weight_decay=0.01 on PretrainedTransformerRegressor: the 4 similar recorded tasks "
            "(nearest: finetune_cnn/") in caplog.text
    assert "are all runs of one other family, 'finetune_cnn'" in caplog.text and "pass pool=..." in caplog.text
