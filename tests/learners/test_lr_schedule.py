"""The outer learning-rate schedules: step decay, cosine and linear annealing over the planned steps or max_time."""

import math

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_meta.errors import ConfigError
from lightning_meta.learners import ProtoNet, Reptile


class RateLog(L.Callback):
    """Records the optimizer's learning rate before every training step."""

    def __init__(self) -> None:
        self.rates: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


def episodes(n: int) -> DataLoader:
    """``n`` 3-way 2-shot episodes of 4-d inputs (a batch of one episode each)."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(3).repeat_interleave(2)
    data = [(torch.randn(6, 4, generator=g), y, torch.randn(6, 4, generator=g), y) for _ in range(n)]
    return DataLoader(data, batch_size=1)


def fit_rates(learner, n: int = 10, **trainer_kwargs) -> list[float]:
    log = RateLog()
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[log], **trainer_kwargs)
    trainer.fit(learner, train_dataloaders=episodes(n))
    return log.rates


def test_cosine_anneals_from_the_rate_to_zero_over_the_planned_steps():
    rates = fit_rates(ProtoNet(nn.Linear(4, 4), lr=0.01, lr_schedule="cosine"), max_epochs=2)  # 20 planned steps
    assert len(rates) == 20
    expected = [0.005 * (1 + math.cos(math.pi * t / 20)) for t in range(20)]
    assert rates == pytest.approx(expected, rel=1e-6, abs=1e-12)
    assert rates[0] == pytest.approx(0.01) and rates[-1] < 1e-4  # the last step runs at 0.6% of the rate


def test_step_schedule_halves_every_step_size_and_is_constant_without_one():
    rates = fit_rates(ProtoNet(nn.Linear(4, 4), lr=0.01, lr_step_size=4, lr_gamma=0.5), max_epochs=1)
    assert rates == pytest.approx([0.01] * 4 + [0.005] * 4 + [0.0025] * 2)
    assert fit_rates(ProtoNet(nn.Linear(4, 4), lr=0.01), max_epochs=1) == pytest.approx([0.01] * 10)


def test_reptile_anneals_linearly_and_honours_lr_schedule():
    reptile = Reptile(nn.Sequential(nn.Linear(4, 3)), lr=1.0, inner_steps=1, inner_optimizer="sgd")
    assert fit_rates(reptile, max_epochs=1) == pytest.approx([1 - t / 10 for t in range(10)])
    cosine = Reptile(nn.Sequential(nn.Linear(4, 3)), lr=1.0, inner_steps=1, inner_optimizer="sgd", lr_schedule="cosine")
    assert fit_rates(cosine, max_epochs=1) == pytest.approx([0.5 * (1 + math.cos(math.pi * t / 10)) for t in range(10)])


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_a_time_capped_run_ends_annealed(schedule):
    """Planned for 20,000 steps, stopped by a 3-second max_time: the rate still falls to about 0 by the end."""
    rates = fit_rates(ProtoNet(nn.Linear(4, 4), lr=0.01, lr_schedule=schedule), n=200, max_epochs=100,
                      max_time={"seconds": 3})
    assert 10 < len(rates) < 20_000  # the time limit, not the planned steps, ended the run
    assert rates[-1] < 0.01 * 0.05  # under 5% of the rate at the last step
    assert all(a >= b for a, b in zip(rates, rates[1:]))  # and it fell all the way
    assert rates[len(rates) // 2] > 0.01 * 0.1  # not collapsed early either


def test_bad_schedules_are_refused_with_the_fix():
    with pytest.raises(ConfigError, match="lr_schedule must be one of 'step', 'cosine', 'linear'"):
        ProtoNet(nn.Linear(4, 4), lr_schedule="exponential")
    with pytest.raises(ConfigError, match="lr_step_size=null"):
        ProtoNet(nn.Linear(4, 4), lr_schedule="cosine", lr_step_size=100)
    with pytest.raises(ConfigError, match="max_time"):  # neither steps nor time plan the run's length
        fit_rates(ProtoNet(nn.Linear(4, 4), lr_schedule="cosine"), max_epochs=-1, max_steps=-1)
