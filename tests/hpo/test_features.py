"""Task meta-features: cheap facts read without touching the data, and probes that are
deterministic and leave the model as it was."""

import math

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.features import probe_features, task_features
from lightning_meta.learners.maml import MAML
from lightning_meta.nets.conv4 import Conv4


class TinyRegressor(L.LightningModule):
    def __init__(self, dropout: float = 0.2) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(dropout), nn.Linear(8, 1))
        self.frozen = nn.Linear(2, 2).requires_grad_(False)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x).squeeze(-1), y)
        self.log("train_loss", loss)
        return loss


class TinyData(L.LightningDataModule):
    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.input_shape = (1, 12, 10)
        self.train_dataset = TensorDataset(torch.zeros(37, 1, 12, 10))

    def train_dataloader(self):
        raise AssertionError("task_features must not build dataloaders")


def batches(n: int = 3, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = torch.randn(16, 4, generator=generator)
        out.append((x, x.sum(dim=1)))
    return out


def test_task_features_reads_model_and_datamodule():
    torch.manual_seed(0)
    model = TinyRegressor()
    features = task_features(model, TinyData())
    trainable = 4 * 8 + 8 + 8 + 1  # the frozen layer does not count
    assert features["log_n_params"] == pytest.approx(math.log10(trainable))
    assert features["n_layers"] == 2
    assert (features["channels"], features["height"], features["width"]) == (1, 12, 10)
    assert features["n_samples"] == 37 and features["n_classes"] == 3
    assert all(isinstance(v, float) for v in features.values())
    assert task_features(model, TinyData()) == features


def test_meta_features_protocol_overrides():
    class Declared(TinyData):
        def meta_features(self):
            return {"n_samples": 1000, "ways": 5, "shots": torch.tensor(1)}

    features = task_features(TinyRegressor(), Declared())
    assert (features["n_samples"], features["ways"], features["shots"]) == (1000, 5, 1)
    assert features["n_classes"] == 3


def test_meta_features_must_be_numbers():
    class Wrong(TinyData):
        def meta_features(self):
            return {"domain": "medical"}

    with pytest.raises(ConfigError, match="domain='medical'"):
        task_features(TinyRegressor(), Wrong())


def test_task_features_without_datamodule():
    assert set(task_features(nn.Linear(3, 2))) == {"log_n_params", "n_layers", "pretrained"} | {
        f"share_{kind}" for kind in ("attention", "recurrent", "conv", "linear", "embedding", "norm")}


def test_probe_is_finite_deterministic_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = TinyRegressor()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(123)
    first = probe_features(model, batches(), lrs=(1e-3, 1e-2, 1e-1), seed=0)
    after_probe_draw = torch.rand(3)
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    second = probe_features(model, batches(), lrs=(1e-3, 1e-2, 1e-1), seed=0)
    assert first == second
    assert torch.equal(after_probe_draw, expected_draw)  # the run's random stream is not shifted
    assert set(first) == {"probe_loss", "probe_log_grad_norm", "probe_drop_lr0.001", "probe_drop_lr0.01", "probe_drop_lr0.1"}
    assert all(math.isfinite(v) for v in first.values())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert model.net[0].weight.grad is None
    assert 0 < first["probe_drop_lr0.001"] < first["probe_drop_lr0.01"]  # small steps go downhill
    assert probe_features(model, batches(), seed=1) != first  # the seed drives dropout


def test_probe_reports_divergence_finitely():
    model = TinyRegressor(dropout=0.0)
    features = probe_features(model, batches(), lrs=(1e-3, 1e6))
    assert features["probe_drop_lr1e+06"] < 0 and math.isfinite(features["probe_drop_lr1e+06"])


def test_probe_with_a_loss_callable():
    model = nn.Sequential(nn.Linear(4, 1))
    loss_fn = lambda m, batch: nn.functional.mse_loss(m(batch[0]).squeeze(-1), batch[1])  # noqa: E731
    features = probe_features(model, batches(), loss_fn=loss_fn, lrs=(1e-2,))
    expected = torch.stack([loss_fn(model, b) for b in batches()]).mean().item()
    assert features["probe_loss"] == pytest.approx(expected)


def test_probe_on_maml():
    """The probe works through MAML's own training_step (which adapts with gradients inside)."""
    torch.manual_seed(0)
    model = MAML(Conv4(in_channels=1, out_features=3, hidden=8, image_size=16), inner_lr=0.4, inner_steps=1)
    x = torch.rand(2, 3, 1, 16, 16)
    batch = (x, torch.arange(3).repeat(2, 1), x, torch.arange(3).repeat(2, 1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    features = probe_features(model, [batch], lrs=(1e-2,))
    assert all(math.isfinite(v) for v in features.values())
    assert features["probe_loss"] == pytest.approx(math.log(3), rel=0.5)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_probe_bad_input():
    with pytest.raises(ConfigError, match="no batches"):
        probe_features(TinyRegressor(), [])
    with pytest.raises(ConfigError, match="positive"):
        probe_features(TinyRegressor(), batches(), lrs=(0.0,))
    with pytest.raises(ConfigError, match="scalar loss"):
        probe_features(nn.Linear(4, 1), batches(), loss_fn=lambda m, b: m(b[0]))


class Built(L.LightningModule):
    """A module whose ``configure_optimizers`` returns ``shape(optimizer)``."""

    def __init__(self, optimizer, shape=lambda opt: opt) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 2)
        self.make, self.shape = optimizer, shape

    def configure_optimizers(self):
        return self.shape(self.make(self.parameters()))


@pytest.mark.parametrize(("make", "expected"), [
    (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), {"opt_sgd": 1.0, "opt_adaptive": 0.0, "opt_momentum": 0.9}),
    (lambda p: torch.optim.Adam(p), {"opt_sgd": 0.0, "opt_adaptive": 1.0, "opt_decoupled_wd": 0.0}),
    (lambda p: torch.optim.AdamW(p), {"opt_adaptive": 1.0, "opt_decoupled_wd": 1.0}),
    (lambda p: torch.optim.RMSprop(p), {"opt_sgd": 0.0, "opt_adaptive": 1.0, "opt_momentum": 0.0}),
])
def test_task_features_name_the_optimizer_kind_without_a_step(make, expected) -> None:
    model = Built(make)
    before = [p.detach().clone() for p in model.parameters()]
    features = task_features(model)
    assert {k: features[k] for k in expected} == pytest.approx(expected)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("shape", [
    lambda opt: [opt], lambda opt: ([opt], []), lambda opt: {"optimizer": opt, "lr_scheduler": None},
])
def test_optimizer_kind_is_found_in_every_return_shape(shape) -> None:
    assert task_features(Built(lambda p: torch.optim.SGD(p, lr=0.1), shape))["opt_sgd"] == 1.0


def test_a_module_that_needs_the_trainer_to_build_its_optimizer_gets_no_optimizer_features() -> None:
    class NeedsTrainer(Built):
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=1.0 / self.trainer.estimated_stepping_batches)

    assert not any(k.startswith("opt_") for k in task_features(NeedsTrainer(None)))


def test_batch_size_and_log_sample_count_are_read_from_the_datamodule() -> None:
    data = TinyData()
    data.batch_size = 8
    features = task_features(nn.Linear(2, 2), data)
    assert features["batch_size"] == 8.0 and features["log_n_samples"] == pytest.approx(math.log10(37))
