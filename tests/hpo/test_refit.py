"""Learning from every run: the callback fits its mapping again once enough new runs are recorded."""

from __future__ import annotations

import numpy as np
import pytest

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.callback import HyperparameterMapping
from lightning_meta.hpo.mappings import BestOnAverage
from lightning_meta.hpo.mappings.base import Mapping
from lightning_meta.hpo.pool import ExperiencePool
from lightning_meta.hpo.refit import RefitPolicy, experience
from lightning_meta.hpo.space import SearchSpace
from tests.hpo.test_callback import RandomData, _trainer
from tests.hpo.test_callback_zero_config import OnlyLr

SPACE = SearchSpace.from_dict({"lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}})


@pytest.fixture
def pool(tmp_path) -> ExperiencePool:
    """Ten recorded runs of two tasks, best at lr 1e-2."""
    pool = ExperiencePool(f"sqlite:///{tmp_path / 'pool.db'}")
    for task in ("a", "b"):
        for lr in np.geomspace(1e-4, 1.0, 5):
            pool.record(task, {"n_samples": 64.0}, {"lr": float(lr)}, objective=-abs(np.log10(lr) + 2))
    return pool


def test_the_mapping_is_fit_again_after_every_n_new_runs_and_saved(pool, tmp_path) -> None:
    mapping = BestOnAverage().fit(pool.frame(), SPACE)
    assert mapping.fitted_runs == 10
    saved = tmp_path / "refit.mapping"
    for fit in (1, 2):
        callback = HyperparameterMapping(keep_defaults=False, mapping=mapping, pool=pool, task="user", refit_every=2, refit_base=None,
                                         refit_to=saved)
        _trainer(callback).fit(OnlyLr(), datamodule=RandomData())
        mapping = callback.mapping
        assert saved.exists() == (fit == 2)
    refit = Mapping.load(saved)
    assert refit.fitted_runs == 12 == pool.count("complete")
    assert mapping.fitted_runs == 12


def test_refit_learns_from_the_base_pool_and_the_recording_pool(pool, tmp_path) -> None:
    other = ExperiencePool(f"sqlite:///{tmp_path / 'other.db'}")
    other.record("c", {"n_samples": 8.0}, {"lr": 0.5}, objective=1.0)
    other.record("c", {"n_samples": 8.0}, {"lr": 0.001}, objective=0.0)
    policy = RefitPolicy(every=1, base=[other.url], save_to=None)
    mapping = BestOnAverage().fit(pool.frame(), SPACE)
    assert policy.due(mapping, pool)
    policy.refit(mapping, pool)
    assert mapping.fitted_runs == 12 and len(experience([other, pool])) == 12


def test_refit_arguments_are_checked_before_fit(pool) -> None:
    mapping = BestOnAverage().fit(pool.frame(), SPACE)
    with pytest.raises(ConfigError, match="refit_every=0"):
        HyperparameterMapping(mapping=mapping, pool=pool, refit_every=0)
    with pytest.raises(ConfigError, match="needs pool="):
        HyperparameterMapping(mapping=mapping, refit_every=5)


def test_the_shipped_pool_is_a_base_the_refit_reads_without_writing_to_it(pool) -> None:
    from lightning_meta.hpo.refit import SHIPPED_POOL

    before = SHIPPED_POOL.stat().st_mtime_ns
    shipped = len(experience(["shipped"]))
    assert shipped >= 60 * 24
    mapping = BestOnAverage().fit(pool.frame(), SPACE)  # fit on the 10 runs of ``pool`` alone
    assert RefitPolicy(every=shipped).due(mapping, pool) and not RefitPolicy(every=shipped + 1).due(mapping, pool)
    assert SHIPPED_POOL.stat().st_mtime_ns == before
