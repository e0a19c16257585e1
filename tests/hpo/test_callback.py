"""HyperparameterMapping on plain user LightningModules: what it sets, logs, records and enqueues."""

from __future__ import annotations

import json
import math
import os
import warnings

import lightning.pytorch as pl
import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from lightning.pytorch.loggers.logger import Logger
from torch.utils.data import DataLoader, TensorDataset

from lightning_meta.errors import ConfigError, PoolError
from lightning_meta.hpo import callback as callback_module
from lightning_meta.hpo.callback import HyperparameterMapping
from lightning_meta.hpo.mappings import BestOnAverage
from lightning_meta.hpo.mappings.base import Mapping
from lightning_meta.hpo.pool import ExperiencePool
from lightning_meta.hpo.space import SearchSpace

SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
    "batch_size": {"type": "int", "low": 2, "high": 64, "log": True, "target": "datamodule.batch_size"},
}
BEST = {"lr": 0.0123, "batch_size": 8}


def _frame() -> pd.DataFrame:
    """Two tasks on which BEST is the best configuration; the others are spread around it."""
    rng = np.random.default_rng(0)
    rows = []
    for task in ("a", "b"):
        configs = [BEST] + [{"lr": float(10 ** rng.uniform(-4, 0)), "batch_size": int(rng.integers(2, 65))} for _ in range(20)]
        for config in configs:
            score = -abs(math.log10(config["lr"] / BEST["lr"])) - abs(math.log2(config["batch_size"] / BEST["batch_size"]))
            rows.append({"task": task, "objective": score, "status": "complete", "hp_lr": config["lr"],
                         "hp_batch_size": config["batch_size"]})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def mapping() -> BestOnAverage:
    return BestOnAverage().fit(_frame(), SearchSpace.from_dict(SPACE))


class AttributeModule(pl.LightningModule):
    """A user's module: the learning rate is a plain attribute read by configure_optimizers."""

    def __init__(self, fail: bool = False, nan: bool = False) -> None:
        super().__init__()
        self.lr = 1e-3
        self.fail, self.nan = fail, nan
        self.net = torch.nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        if self.fail:
            raise RuntimeError("boom")
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        acc = (self.net(x).argmax(-1) == y).float().mean()
        self.log("val_acc", torch.tensor(float("nan")) if self.nan else acc)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


class HparamsModule(AttributeModule):
    """A user's module that keeps the learning rate only in ``self.hparams``."""

    def __init__(self, lr: float = 1e-3) -> None:
        super().__init__()
        del self.lr
        self.save_hyperparameters()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class RandomData(pl.LightningDataModule):
    def __init__(self) -> None:
        super().__init__()
        self.batch_size = 4
        generator = torch.Generator().manual_seed(0)
        self.data = TensorDataset(torch.randn(64, 4, generator=generator), torch.randint(0, 2, (64,), generator=generator))

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=self.batch_size)

    def val_dataloader(self):
        return DataLoader(self.data, batch_size=16)


class CaptureLogger(Logger):
    def __init__(self) -> None:
        super().__init__()
        self.hparams: dict = {}
        self.metrics: dict = {}

    @property
    def name(self) -> str:
        return "capture"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        self.hparams.update(params)

    def log_metrics(self, metrics, step=None) -> None:
        self.metrics.update(metrics)


def _trainer(callback, logger=False, **kwargs) -> pl.Trainer:
    options = dict(max_epochs=1, limit_train_batches=2, limit_val_batches=1, accelerator="cpu", devices=1, logger=logger,
                   enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                   num_sanity_val_steps=0)
    options.update(kwargs)
    return pl.Trainer(callbacks=[callback], **options)


def test_optimizer_and_dataloader_use_the_proposal(mapping):
    callback = HyperparameterMapping(keep_defaults=False, mapping=mapping)
    trainer = _trainer(callback)
    trainer.fit(AttributeModule(), datamodule=RandomData())
    assert callback.config == pytest.approx(BEST)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(BEST["lr"])
    assert trainer.train_dataloader.batch_size == BEST["batch_size"]


def test_hparams_learning_rate_is_set_before_the_optimizer_exists(mapping):
    trainer = _trainer(HyperparameterMapping(keep_defaults=False, mapping=mapping))
    module = HparamsModule()
    trainer.fit(module, datamodule=RandomData())
    assert module.hparams.lr == pytest.approx(BEST["lr"])
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(BEST["lr"])


def test_chosen_values_and_prediction_are_logged(mapping):
    logger = CaptureLogger()
    callback = HyperparameterMapping(keep_defaults=False, mapping=mapping)
    _trainer(callback, logger=logger).fit(AttributeModule(), datamodule=RandomData())
    assert logger.hparams["hpo/lr"] == pytest.approx(BEST["lr"])
    assert logger.hparams["hpo/batch_size"] == BEST["batch_size"]
    assert logger.metrics["hpo/predicted_score"] == pytest.approx(callback.predicted[0])
    assert callback.predicted[0] == pytest.approx(1.0)  # BEST is the best run of every training task


def test_outcomes_are_recorded_in_the_pool(mapping, tmp_path):
    pool = ExperiencePool(f"sqlite:///{tmp_path / 'pool.db'}")
    complete = HyperparameterMapping(keep_defaults=False, mapping=mapping, pool=pool, task="t")
    trainer = _trainer(complete)
    trainer.fit(AttributeModule(), datamodule=RandomData())
    runs = pool.frame()
    assert len(runs) == 1 and runs["task"].iloc[0] == "t"
    assert runs["objective"].iloc[0] == pytest.approx(float(trainer.callback_metrics["val_acc"]))
    assert runs["hp_lr"].iloc[0] == pytest.approx(BEST["lr"])

    _trainer(HyperparameterMapping(keep_defaults=False, mapping=mapping, pool=pool, task="t")).fit(AttributeModule(nan=True), datamodule=RandomData())
    with pytest.raises(RuntimeError, match="boom"):
        _trainer(HyperparameterMapping(keep_defaults=False, mapping=mapping, pool=pool, task="t")).fit(AttributeModule(fail=True), datamodule=RandomData())
    statuses = pool.frame(status=None)["status"].tolist()
    assert statuses == ["complete", "diverged", "failed"]


def test_a_second_fit_on_the_same_task_tries_a_new_configuration(mapping, tmp_path):
    pool = ExperiencePool(f"sqlite:///{tmp_path / 'pool.db'}")
    configs = []
    for _ in range(2):
        callback = HyperparameterMapping(keep_defaults=False, mapping=mapping, pool=pool, task="t")
        _trainer(callback).fit(AttributeModule(), datamodule=RandomData())
        configs.append(callback.config)
    assert configs[0] == pytest.approx(BEST) and configs[1] != configs[0]


def test_the_next_fit_moves_towards_where_the_tasks_recorded_runs_did_well(mapping, tmp_path):
    """The task's runs say large rates win here, unlike on the training tasks; with the kernel correction
    off, the proposal stays by the training tasks' best."""
    pool = ExperiencePool(f"sqlite:///{tmp_path / 'pool.db'}")
    for lr, objective in ((0.0123, 0.2), (0.004, 0.1), (0.3, 0.9), (0.5, 0.8)):
        pool.record("t", {}, {"lr": lr, "batch_size": 8}, objective)
    proposed = {}
    for lengthscale in (0.2, None):
        adapted = BestOnAverage().fit(_frame(), SearchSpace.from_dict(SPACE))
        adapted.adapt_lengthscale = lengthscale
        callback = HyperparameterMapping(keep_defaults=False, mapping=adapted, pool=pool, task="t")
        _trainer(callback).fit(AttributeModule(), datamodule=RandomData())
        proposed[lengthscale] = callback.config["lr"]
    assert proposed[None] < 0.02 and proposed[0.2] > 0.05  # from by 0.0123 to the side of 0.3


class BrokenPool:
    """A pool whose database is locked: every call fails like ExperiencePool does."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise PoolError("Experience pool sqlite:///x.db is locked: retry later.")

        return fail


def test_an_unreachable_pool_only_warns(mapping, tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    for pool in (BrokenPool(), f"sqlite:///{blocker / 'pool.db'}", "postgresql+psycopg://nobody@127.0.0.1:1/none"):
        callback = HyperparameterMapping(keep_defaults=False, mapping=mapping, pool=pool)
        trainer = _trainer(callback)
        with pytest.warns(UserWarning, match="pool"):
            trainer.fit(AttributeModule(), datamodule=RandomData())
        assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(BEST["lr"])


def test_default_mapping_is_the_shipped_file(mapping, tmp_path, monkeypatch):
    monkeypatch.setattr(callback_module, "DEFAULT_MAPPING_DIR", tmp_path)
    with pytest.raises(ConfigError, match="mapping="):
        HyperparameterMapping()
    mapping.save(tmp_path / "default.pkl")
    assert HyperparameterMapping().space == mapping.space


def test_bad_targets_and_arguments_raise_config_errors(mapping):
    with pytest.raises(ConfigError, match="mode"):
        HyperparameterMapping(keep_defaults=False, mapping=mapping, mode="up")
    space = {"momentum": {"type": "float", "low": 0.0, "high": 1.0}}
    callback = HyperparameterMapping(keep_defaults=False, mapping=_Constant({"momentum": 0.5}, space), space=space)
    with pytest.raises(ConfigError, match="momentum"):
        _trainer(callback).fit(AttributeModule(), datamodule=RandomData())


def test_an_error_while_proposing_stops_the_fit_before_training(mapping):
    class Failing(BestOnAverage):
        def suggest(self, *args, **kwargs):
            raise ConfigError("cannot propose: fix the mapping")

    failing = Failing().fit(_frame(), mapping.space)
    module = AttributeModule()
    with pytest.raises(ConfigError, match="cannot propose"):
        _trainer(HyperparameterMapping(keep_defaults=False, mapping=failing)).fit(module, datamodule=RandomData())
    assert module.lr == 1e-3


def test_enqueue_hands_the_top_proposals_to_optuna(mapping):
    callback = HyperparameterMapping(keep_defaults=False, mapping=mapping)
    study = optuna.create_study(direction="maximize")
    proposals = callback.enqueue(study, {}, k=3)
    assert len(proposals) == 3 and proposals[0] == pytest.approx(BEST)
    asked = [callback.space.to_optuna(study.ask()) for _ in range(3)]
    assert asked == [pytest.approx(p) for p in proposals]


class _Constant(Mapping):
    """Always predicts the same ranking: ``config`` first."""

    def __init__(self, config: dict, space: dict) -> None:
        self.space = SearchSpace.from_dict(space)
        self.feature_names = []
        self.seen = self.space.encode([config])

    def _fit(self, frame, scores):
        raise AssertionError("not fitted in tests")

    def predict_encoded(self, features, x, observed=None):
        return -np.abs(x - self.seen[0]).sum(axis=1), np.zeros(len(x))


class RankSkewed(Mapping):
    """A mapping that would pick a DIFFERENT lr on every rank if each rank asked it."""

    def __init__(self) -> None:
        self.space = SearchSpace.from_dict({"lr": SPACE["lr"]})
        self.feature_names = []
        self.seen = np.zeros((0, 1))

    def _fit(self, frame, scores):
        raise AssertionError("not fitted in tests")

    def predict_encoded(self, features, x, observed=None):
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        wanted = self.space.encode([{"lr": 0.01 * (rank + 1)}])[0, 0]
        return -np.abs(x[:, 0] - wanted), np.full(len(x), float(rank))


class ReportRank(pl.Callback):
    def __init__(self, folder: str) -> None:
        self.folder = folder

    def on_train_start(self, trainer, pl_module):
        chosen = next(c for c in trainer.callbacks if isinstance(c, HyperparameterMapping))
        report = {"config": chosen.config, "predicted": list(chosen.predicted),
                  "optimizer_lr": trainer.optimizers[0].param_groups[0]["lr"]}
        with open(os.path.join(self.folder, f"rank{trainer.global_rank}.json"), "w") as handle:
            json.dump(report, handle)


@pytest.mark.slow
def test_every_ddp_rank_applies_rank_zeros_choice(tmp_path):
    callback = HyperparameterMapping(keep_defaults=False, mapping=RankSkewed(), space={"lr": SPACE["lr"]})
    trainer = pl.Trainer(
        strategy="ddp_spawn", accelerator="cpu", devices=2, max_steps=1, limit_val_batches=0,
        callbacks=[callback, ReportRank(str(tmp_path))], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(AttributeModule(), datamodule=RandomData())
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert reports[0] == reports[1]
    assert reports[0]["config"]["lr"] == pytest.approx(0.01, rel=1e-3)
    assert reports[0]["optimizer_lr"] == pytest.approx(reports[0]["config"]["lr"])
    assert reports[0]["predicted"][1] == 0.0  # rank 0's prediction, broadcast to rank 1


def test_a_narrower_user_space_gets_a_restricted_clipped_proposal(mapping):
    wide = {"lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
            "momentum": {"type": "float", "low": 0.0, "high": 1.0}}
    narrow = {"lr": {"type": "float", "low": 1e-4, "high": 1e-3, "log": True}}
    callback = HyperparameterMapping(keep_defaults=False, mapping=_Constant({"lr": 0.5, "momentum": 0.9}, wide), space=narrow)
    module = AttributeModule()
    trainer = _trainer(callback)
    trainer.fit(module, datamodule=RandomData())
    assert callback.config == {"lr": 1e-3}  # momentum is not the user's to tune; 0.5 clipped into the user's range
    assert trainer.optimizers[0].param_groups[0]["lr"] == 1e-3
