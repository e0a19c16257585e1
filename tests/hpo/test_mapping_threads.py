"""Fits and predictions of a mapping run with bounded thread pools, and the caller's counts come back."""

from __future__ import annotations

import pytest
import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime whose pool is bounded)
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.mappings import BestOnAverage, Mapping
from lightning_meta.hpo.mappings.threads import bounded_threads
from tests.hpo.test_mappings import SPACE, meta_frame


def counts() -> tuple[int, list[int]]:
    """torch's intra-op threads and the size of every OpenMP/BLAS pool threadpoolctl sees."""
    return torch.get_num_threads(), [pool["num_threads"] for pool in threadpool_info()]


@pytest.fixture
def three_threads():
    """The caller runs with 3 threads everywhere (more than the bound), whatever the environment set."""
    before = torch.get_num_threads()
    with threadpool_limits(limits=3):
        torch.set_num_threads(3)
        try:
            yield
        finally:
            torch.set_num_threads(before)


class Spy(BestOnAverage):
    """Records the thread counts its fit and prediction run with."""

    seen_counts: list

    def _fit(self, frame, scores):
        self.seen_counts = [counts()]
        super()._fit(frame, scores)

    def predict_encoded(self, features, x, observed=None):
        self.seen_counts.append(counts())
        return super().predict_encoded(features, x, observed)


def test_bounded_threads_bounds_every_pool_inside_and_restores_them_after(three_threads):
    assert threadpool_info() and counts() == (3, [3] * len(threadpool_info()))
    with bounded_threads(1):
        assert counts() == (1, [1] * len(threadpool_info()))
    assert counts() == (3, [3] * len(threadpool_info()))
    with pytest.raises(RuntimeError), bounded_threads(2):
        raise RuntimeError("a failing fit")
    assert counts() == (3, [3] * len(threadpool_info()))
    with pytest.raises(ConfigError, match="threads=0 is invalid"), bounded_threads(0):
        pass


def test_fit_predict_and_suggest_run_bounded_and_the_bound_is_saved(three_threads, tmp_path):
    mapping = Spy()
    mapping.threads = 2
    mapping.fit(meta_frame(), SPACE)
    mapping.predict({"u": 0.5}, SPACE.sample(3, seed=0))
    mapping.suggest({"u": 0.5})
    pools = len(threadpool_info())
    assert mapping.seen_counts == [(2, [2] * pools)] * 3
    assert counts() == (3, [3] * pools)
    assert Spy.threads == 1  # the default: small fits are fastest on one thread
    loaded = Mapping.load(BestOnAverage().fit(meta_frame(), SPACE).save(tmp_path / "boa.mapping"))
    assert loaded.threads == 1
    mapping_with_bound = BestOnAverage()
    mapping_with_bound.threads = 2
    assert Mapping.load(mapping_with_bound.fit(meta_frame(), SPACE).save(tmp_path / "two.mapping")).threads == 2
