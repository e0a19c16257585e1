"""The search over repeated fits on one task: the mapping is its prior, the task's own runs move it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lightning_meta.hpo.mappings import BestOnAverage
from lightning_meta.hpo.search import MIN_SEPARATION, next_config, pool_kernel
from lightning_meta.hpo.space import SearchSpace

SPACE = SearchSpace.from_dict({"lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}})


def _mapping() -> BestOnAverage:
    """Recorded tasks that all did best at lr = 1e-2."""
    rng = np.random.default_rng(0)
    rows = [{"task": f"t{t}", "objective": -abs(math.log10(lr) + 2), "hp_lr": lr}
            for t in range(3) for lr in 10 ** rng.uniform(-4, 0, 20)]
    return BestOnAverage().fit(pd.DataFrame(rows), SPACE)


def _runs(results: dict[float, float]) -> pd.DataFrame:
    return pd.DataFrame({"task": "new", "status": "complete", "hp_lr": list(results), "objective": list(results.values())})


def test_with_no_run_it_proposes_the_mappings_best():
    assert abs(math.log10(next_config(_mapping(), {}, _runs({}))["lr"]) + 2) < 0.3


def test_a_bad_run_where_the_mapping_points_moves_the_next_proposal_towards_the_good_one():
    runs = _runs({1e-2: 0.10, 1e-4: 0.12, 0.3: 0.80})  # this task disagrees with the recorded ones
    proposal = next_config(_mapping(), {}, runs)["lr"]
    assert abs(math.log10(proposal / 0.3)) < abs(math.log10(proposal / 1e-2))


def test_it_never_proposes_a_run_again_or_one_right_beside_it():
    runs = _runs({1e-2: 0.9, 0.0105: 0.91})
    encoded = SPACE.encode([next_config(_mapping(), {}, runs)])[0, 0]
    assert all(abs(encoded - SPACE.encode([{"lr": lr}])[0, 0]) > MIN_SEPARATION for lr in runs["hp_lr"])


def _two_parameter_mapping() -> BestOnAverage:
    """Recorded tasks whose score depends on lr alone: weight decay does not matter on any of them."""
    space = SearchSpace.from_dict({"lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
                                   "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-1, "log": True}})
    rng = np.random.default_rng(1)
    rows = [{"task": f"t{t}", "objective": -abs(math.log10(lr) + 2) + 0.01 * rng.normal(), "hp_lr": lr, "hp_weight_decay": wd}
            for t in range(6) for lr, wd in zip(10 ** rng.uniform(-4, 0, 24), 10 ** rng.uniform(-6, -1, 24))]
    return BestOnAverage().fit(pd.DataFrame(rows), space)


def test_the_kernel_learnt_from_the_pool_is_long_where_the_recorded_tasks_are_flat():
    lengthscales, noise = pool_kernel(_two_parameter_mapping())
    assert lengthscales[1] >= 4 * lengthscales[0]  # weight decay: flat on every recorded task
    assert noise <= 0.1  # the recorded scores are almost noiseless
