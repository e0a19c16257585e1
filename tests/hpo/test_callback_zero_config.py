"""HyperparameterMapping() with no arguments on modules that expose part of the space, and the optimizer check."""

from __future__ import annotations

import logging
import warnings

import lightning.pytorch as pl
import pytest
import torch

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.callback import HyperparameterMapping
from lightning_meta.hpo.pool import ExperiencePool
from lightning_meta.hpo.verify import check_optimizers, optimizer_key
from tests.hpo.test_callback import CaptureLogger, RandomData, _Constant, _trainer

SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
    "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
    "momentum": {"type": "float", "low": 0.0, "high": 0.99},
    "batch_size": {"type": "int", "low": 2, "high": 64, "log": True, "target": "datamodule.batch_size"},
}
PROPOSAL = {"lr": 0.0046, "weight_decay": 1e-4, "momentum": 0.5, "batch_size": 8}


def _mapping() -> _Constant:
    return _Constant(PROPOSAL, SPACE)


class OnlyLr(pl.LightningModule):
    """A user's module with a learning rate and nothing else of the space."""

    def __init__(self) -> None:
        super().__init__()
        self.lr = 1e-3
        self.net = torch.nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_acc", (self.net(x).argmax(-1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class LearningRate(OnlyLr):
    """Calls its rate ``learning_rate``, as Lightning's LR finder allows."""

    def __init__(self) -> None:
        super().__init__()
        del self.lr
        self.learning_rate = 1e-3

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.learning_rate)


class HardCoded(OnlyLr):
    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


class UnreadWeightDecay(OnlyLr):
    """Keeps ``weight_decay`` in its hparams but builds the optimizer without it."""

    def __init__(self, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters()


class Nothing(OnlyLr):
    def __init__(self) -> None:
        super().__init__()
        del self.lr

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


class WarmUp(OnlyLr):
    """A LambdaLR warm-up has already scaled the group's rate when the optimizer is checked."""

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 10))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class TwoGroups(OnlyLr):
    """A smaller rate for one layer: the applied rate is carried by the other group."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(2, 2)

    def configure_optimizers(self):
        return torch.optim.Adam([{"params": self.net.parameters(), "lr": self.lr / 10},
                                 {"params": self.head.parameters(), "lr": self.lr}])


class NoBatchSize(RandomData):
    def __init__(self) -> None:
        super().__init__()
        del self.batch_size

    def train_dataloader(self):
        return torch.utils.data.DataLoader(self.data, batch_size=4)


def _pool(tmp_path) -> ExperiencePool:
    return ExperiencePool(f"sqlite:///{tmp_path / 'pool.db'}")


def test_a_module_with_only_lr_gets_lr_and_the_rest_is_skipped_with_reasons(tmp_path, caplog):
    pool = _pool(tmp_path)
    callback = HyperparameterMapping(keep_defaults=False, mapping=_mapping(), pool=pool)
    trainer = _trainer(callback)
    with caplog.at_level(logging.INFO, logger="lightning_meta.hpo.callback"):
        trainer.fit(OnlyLr(), datamodule=NoBatchSize())
    assert callback.config == {"lr": pytest.approx(0.0046)}
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0046)
    assert set(callback.skipped) == {"weight_decay", "momentum", "batch_size"}
    assert "'weight_decay'" in callback.skipped["weight_decay"] and "batch_size" in callback.skipped["batch_size"]
    logged = caplog.text
    assert "sets lr=0.0046 (yours: 0.001) on OnlyLr" in logged
    assert all(f"skips {name}: {why}" in logged for name, why in callback.skipped.items())
    runs = pool.frame()
    assert len(runs) == 1 and runs["hp_lr"].iloc[0] == pytest.approx(0.0046)
    assert "hp_weight_decay" not in runs.columns  # never recorded as if it had been used


def test_no_arguments_on_a_module_with_only_lr_uses_the_shipped_mapping():
    callback = HyperparameterMapping()
    trainer = _trainer(callback)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(OnlyLr(), datamodule=NoBatchSize())
    assert set(callback.targets) == {"lr"} and set(callback.skipped) == {"weight_decay"}
    assert callback.decision.defaults == {"lr": 1e-3} and callback.features["opt_adaptive"] == 1.0
    evidence = callback.decision.evidence
    assert all(distance <= callback.max_distance for _, distance in evidence.neighbours)
    used = trainer.optimizers[0].param_groups[0]["lr"]
    if evidence.changed:  # the shipped pool's similar tasks say a change pays: it is the one trained with
        assert used == pytest.approx(callback.config["lr"]) != pytest.approx(1e-3)
    else:
        assert callback.config == {} and used == pytest.approx(1e-3)


def test_the_datamodule_batch_size_is_applied_when_it_exists():
    callback = HyperparameterMapping(keep_defaults=False, mapping=_mapping())
    trainer = _trainer(callback)
    trainer.fit(OnlyLr(), datamodule=RandomData())
    assert callback.config == {"lr": pytest.approx(0.0046), "batch_size": 8}
    assert trainer.train_dataloader.batch_size == 8


def test_learning_rate_stands_for_lr():
    callback = HyperparameterMapping(keep_defaults=False, mapping=_mapping())
    module = LearningRate()
    trainer = _trainer(callback)
    trainer.fit(module, datamodule=NoBatchSize())
    assert callback.targets == {"lr": "learning_rate"}
    assert module.learning_rate == pytest.approx(0.0046) and not hasattr(module, "lr")
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0046)


def test_an_optimizer_that_ignores_the_applied_lr_fails_and_nothing_is_recorded(tmp_path):
    pool, logger = _pool(tmp_path), CaptureLogger()
    with pytest.raises(ConfigError) as error:
        _trainer(HyperparameterMapping(keep_defaults=False, mapping=_mapping(), pool=pool), logger=logger).fit(
            HardCoded(), datamodule=NoBatchSize())
    assert str(error.value) == (
        "HyperparameterMapping set lr=0.0046 on HardCoded but its optimizer's param group 0 has lr=0.001: "
        "make configure_optimizers read self.lr."
    )
    assert pool.count() == 0 and not any(key.startswith("hpo/") for key in {**logger.hparams, **logger.metrics})


def test_an_unread_hparams_key_is_named_in_the_error(tmp_path):
    pool = _pool(tmp_path)
    with pytest.raises(ConfigError, match=r"weight_decay=0\.0001 .* has weight_decay=0: make configure_optimizers "
                                          r"read self\.hparams\.weight_decay\.$"):
        _trainer(HyperparameterMapping(keep_defaults=False, mapping=_mapping(), pool=pool)).fit(UnreadWeightDecay(), datamodule=NoBatchSize())
    assert pool.count() == 0


def test_a_module_exposing_nothing_of_the_space_gets_one_line_naming_the_fix():
    with pytest.raises(ConfigError) as error:
        _trainer(HyperparameterMapping(keep_defaults=False, mapping=_mapping())).fit(Nothing(), datamodule=NoBatchSize())
    text = str(error.value)
    assert "\n" not in text and text.startswith("HyperparameterMapping can set none of ['lr', 'weight_decay'")
    assert "Fix: expose one (e.g. self.lr = lr in __init__" in text


def test_a_scheduler_that_already_scaled_the_rate_passes_on_initial_lr(tmp_path):
    pool = _pool(tmp_path)
    callback = HyperparameterMapping(keep_defaults=False, mapping=_mapping(), pool=pool)
    trainer = _trainer(callback)
    trainer.fit(WarmUp(), datamodule=NoBatchSize())
    group = trainer.optimizers[0].param_groups[0]
    assert group["initial_lr"] == pytest.approx(0.0046) and group["lr"] != pytest.approx(0.0046)
    assert pool.count() == 1


def test_one_group_carrying_the_rate_is_enough():
    trainer = _trainer(HyperparameterMapping(keep_defaults=False, mapping=_mapping()))
    trainer.fit(TwoGroups(), datamodule=NoBatchSize())
    assert [g["lr"] for g in trainer.optimizers[0].param_groups] == [pytest.approx(0.00046), pytest.approx(0.0046)]


def test_an_explicit_space_is_applied_in_full_or_not_at_all():
    space = {name: SPACE[name] for name in ("lr", "weight_decay")}
    with pytest.raises(ConfigError, match="'weight_decay' cannot be set: OnlyLr and its datamodule have no attribute"):
        _trainer(HyperparameterMapping(keep_defaults=False, mapping=_mapping(), space=space)).fit(OnlyLr(), datamodule=NoBatchSize())


def test_resuming_restores_the_checkpoints_rate_so_the_new_one_is_refused(tmp_path):
    first = pl.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, accelerator="cpu", logger=False,
                       enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    first.fit(OnlyLr(), datamodule=NoBatchSize())
    first.save_checkpoint(tmp_path / "one.ckpt")
    pool = _pool(tmp_path)
    resumed = _trainer(HyperparameterMapping(keep_defaults=False, mapping=_mapping(), pool=pool), max_epochs=2)
    with pytest.raises(ConfigError, match=r"has lr=0\.001: resuming from .*one\.ckpt restored the optimizer's own lr"):
        resumed.fit(OnlyLr(), datamodule=NoBatchSize(), ckpt_path=tmp_path / "one.ckpt")
    assert pool.count() == 0


@pytest.mark.parametrize("make", [
    lambda params, v: torch.optim.SGD(params, lr=0.1, momentum=v),
    lambda params, v: torch.optim.Adam(params, betas=(v, 0.999)),
])
def test_momentum_is_read_from_sgd_momentum_or_adam_betas(make):
    params = [torch.nn.Parameter(torch.zeros(1))]
    check_optimizers([make(params, 0.5)], {"momentum": ("momentum", 0.5)}, "M", {"momentum": "self.momentum"})
    with pytest.raises(ConfigError, match=r"has momentum=0\.9: make configure_optimizers read self\.momentum\.$"):
        check_optimizers([make(params, 0.9)], {"momentum": ("momentum", 0.5)}, "M", {"momentum": "self.momentum"})


def test_a_tensor_learning_rate_is_read():
    params = [torch.nn.Parameter(torch.zeros(1))]
    check_optimizers([torch.optim.Adam(params, lr=torch.tensor(0.01))], {"lr": ("lr", 0.01)}, "M", {"lr": "self.lr"})
    with pytest.raises(ConfigError, match=r"has lr=0\.02: make configure_optimizers read self\.lr\.$"):
        check_optimizers([torch.optim.Adam(params, lr=torch.tensor(0.02))], {"lr": ("lr", 0.01)}, "M", {"lr": "self.lr"})


def test_several_optimizers_are_named_and_one_carrying_the_value_is_enough():
    a, b = [torch.nn.Parameter(torch.zeros(1))], [torch.nn.Parameter(torch.zeros(1))]
    check_optimizers([torch.optim.Adam(a, lr=0.1), torch.optim.Adam(b, lr=0.2)], {"lr": ("lr", 0.2)}, "GAN",
                     {"lr": "self.lr"})
    with pytest.raises(ConfigError, match=r"but its optimizer 0's param group 0 has lr=0\.1"):
        check_optimizers([torch.optim.Adam(a, lr=0.1), torch.optim.Adam(b, lr=0.2)], {"lr": ("lr", 0.3)}, "GAN",
                         {"lr": "self.lr"})


def test_only_optimizer_settings_are_checked():
    assert [optimizer_key(t) for t in ("lr", "learning_rate", "model.head.lr", "weight_decay", "momentum")] == [
        "lr", "lr", "lr", "weight_decay", "momentum"]
    assert optimizer_key("datamodule.batch_size") is None and optimizer_key("inner_lr") is None


class DeclinesLr(OnlyLr):
    """A module whose ``lr`` means something else than a mapping's runs learned (as Reptile's outer step)."""

    hpo_declines = {"lr": "lr is an outer step size here"}

    def __init__(self) -> None:
        super().__init__()
        self.weight_decay = 0.0

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def test_a_declined_target_is_skipped_unless_the_users_space_names_it(caplog):
    zero_config, module = HyperparameterMapping(keep_defaults=False, mapping=_mapping()), DeclinesLr()
    with caplog.at_level(logging.INFO, logger="lightning_meta.hpo.callback"):
        _trainer(zero_config).fit(module, datamodule=NoBatchSize())
    assert set(zero_config.config) == {"weight_decay"} and module.lr == 1e-3
    assert "skips lr: lr is an outer step size here" in caplog.text
    named, module = HyperparameterMapping(keep_defaults=False, mapping=_mapping(), space={"lr": SPACE["lr"]}), DeclinesLr()
    _trainer(named).fit(module, datamodule=NoBatchSize())
    assert module.lr == pytest.approx(PROPOSAL["lr"])
