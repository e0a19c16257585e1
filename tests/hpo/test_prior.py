"""The across-task prior the meta-surrogate starts from, checked against direct computations."""

from __future__ import annotations

import numpy as np

from lightning_meta.hpo.mappings.prior import ConfigPrior, priors


def test_on_a_shared_grid_the_prior_is_best_on_average_and_the_held_out_prior_leaves_the_task_out():
    grid = np.random.default_rng(0).random((20, 3))
    scores = np.random.default_rng(1).random((4, 20))  # 4 tasks, every task ran the whole grid
    encoded, task_ids = np.tile(grid, (4, 1)), np.repeat(np.arange(4), 20)
    full, held_out = priors(encoded, scores.reshape(-1), task_ids)
    np.testing.assert_allclose(full(grid), scores.mean(axis=0))
    for task in range(4):
        others = np.delete(scores, task, axis=0).mean(axis=0)
        np.testing.assert_allclose(held_out[task_ids == task], others)


def test_on_scattered_runs_the_prior_averages_the_k_nearest_runs():
    x = np.random.default_rng(2).random((50, 2))
    y = np.random.default_rng(3).random(50)
    prior = ConfigPrior(x, y, np.ones(50), k=5)
    query = np.array([[0.3, 0.6], [0.9, 0.1]])
    for q, value in zip(query, prior(query)):
        nearest = np.argsort(np.linalg.norm(x - q, axis=1))[:5]
        assert value == np.mean(y[nearest])


def test_a_configuration_run_on_every_task_covers_k_by_itself():
    keys = np.array([[0.0], [0.1]])
    prior = ConfigPrior(keys, sums=np.array([3.0, 100.0]), counts=np.array([3.0, 1.0]), k=3)
    assert prior(np.array([[0.0]]))[0] == 1.0  # its 3 runs cover k = 3; the neighbour is not mixed in
    assert prior(np.array([[0.1]]))[0] == (100.0 + 3.0) / 4  # 1 run, then the neighbour's 3


def test_the_stored_state_rebuilds_the_same_prior():
    x = np.random.default_rng(4).random((40, 2))
    prior = ConfigPrior(x, np.random.default_rng(5).random(40), np.ones(40), k=4)
    query = np.random.default_rng(6).random((25, 2))
    np.testing.assert_array_equal(ConfigPrior.from_state(prior.state())(query), prior(query))
