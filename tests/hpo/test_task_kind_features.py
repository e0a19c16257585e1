"""The features that tell ordinary tasks apart, each read before any training step, on a module of its kind."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.features import task_features
from lightning_meta.hpo.model_kind import layer_shares, pretrained_share
from lightning_meta.hpo.run_facts import infer_mode, objective_features, trainer_features


def _transformer() -> nn.Module:
    layer = nn.TransformerEncoderLayer(32, 2, 64, batch_first=True)
    return nn.Sequential(nn.Embedding(50, 32), nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), nn.Linear(32, 3))


def _cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 5))


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 200) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def test_layer_shares_name_the_kind_of_network():
    transformer = layer_shares(_transformer())
    assert transformer["share_attention"] > 0.3 and transformer["share_embedding"] > 0.05
    assert transformer["share_recurrent"] == transformer["share_conv"] == 0.0
    assert layer_shares(nn.GRU(8, 32))["share_recurrent"] == 1.0
    cnn = layer_shares(_cnn())
    assert cnn["share_conv"] > 0 and cnn["share_norm"] > 0 and cnn["share_linear"] > cnn["share_conv"]
    assert layer_shares(nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)))["share_linear"] == 1.0
    assert sum(transformer.values()) == pytest.approx(1.0)


def test_fresh_networks_read_as_fresh():
    torch.manual_seed(3)
    for model in (_transformer(), nn.GRU(16, 64), _cnn(), nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))):
        assert pretrained_share(model) == 0.0, type(model).__name__


def test_a_network_with_norm_layers_reads_as_pretrained_once_loaded_from_a_trained_copy():
    torch.manual_seed(0)
    trained = _cnn()
    _train(trained, torch.randn(64, 1, 8, 8), torch.randint(0, 5, (64,)), steps=20)
    user = _cnn()
    assert pretrained_share(user) == 0.0
    user.load_state_dict(trained.state_dict())
    assert pretrained_share(user) == 1.0


def test_a_network_without_norm_layers_reads_as_pretrained_from_its_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 3))
    _train(model, torch.randn(256, 20), torch.randint(0, 3, (256,)), steps=300)
    assert pretrained_share(model) > 0.5


def test_run_facts_read_the_planned_length_clipping_and_precision():
    trainer = pl.Trainer(max_epochs=3, limit_train_batches=1.0, gradient_clip_val=0.5, precision="bf16-mixed",
                         max_time={"minutes": 90}, logger=False, enable_checkpointing=False, accelerator="cpu")
    facts = trainer_features(trainer, n_samples=1000, batch_size=50)
    assert facts["log_planned_steps"] == pytest.approx(math.log10(3 * 20))
    assert facts["grad_clip"] == 0.5 and facts["precision_bits"] == 16.0
    assert facts["planned_minutes"] == pytest.approx(90.0)
    steps = trainer_features(pl.Trainer(max_steps=40, logger=False, enable_checkpointing=False, accelerator="cpu"))
    assert steps["log_planned_steps"] == pytest.approx(math.log10(40)) and steps["grad_clip"] == 0.0
    assert steps["precision_bits"] == 32.0 and "planned_minutes" not in steps


class _Data:
    def __init__(self, targets: torch.Tensor) -> None:
        self.train_dataset = TensorDataset(torch.randn(len(targets), 3), targets)


def test_the_objective_kind_comes_from_the_targets_then_the_monitor():
    assert objective_features("val_loss", "min", _Data(torch.randn(10)))["objective_regression"] == 1.0
    assert objective_features("val_loss", "min", _Data(torch.arange(10)))["objective_regression"] == 0.0
    assert objective_features("val_r2", "max")["objective_regression"] == 1.0
    assert objective_features("val_acc", "max")["objective_regression"] == 0.0
    assert "objective_regression" not in objective_features("val_loss", "min")  # a loss says neither
    assert objective_features("val_loss", "min")["objective_min"] == 1.0


@pytest.mark.parametrize("monitor, mode", [
    ("val_loss", "min"), ("val/loss", "min"), ("train_error", "min"), ("val_mse", "min"), ("val_perplexity", "min"),
    ("val_acc", "max"), ("val/accuracy", "max"), ("val_auroc", "max"), ("val_r2", "max"), ("val_f1", "max"),
])
def test_mode_is_inferred_as_lightning_users_expect(monitor, mode):
    assert infer_mode(monitor, None) == mode


def test_a_monitor_of_unknown_direction_needs_mode():
    with pytest.raises(ConfigError, match="pass mode='max'"):
        infer_mode("val_metric", None)
    assert infer_mode("val_metric", "min") == "min"
    with pytest.raises(ConfigError, match="mode='up' is invalid"):
        infer_mode("val_acc", "up")


def test_task_features_gather_the_run_facts_with_a_trainer_and_monitor():
    trainer = pl.Trainer(max_steps=100, logger=False, enable_checkpointing=False, accelerator="cpu")
    features = task_features(_transformer(), _Data(torch.randn(8)), trainer, "val_loss", "min")
    assert features["objective_min"] == 1.0 and features["objective_regression"] == 1.0
    assert features["log_planned_steps"] == pytest.approx(2.0) and features["pretrained"] == 0.0
    assert features["share_attention"] > 0.3
