"""ConditionalBestOnAverage and SimilarTasksAverage: the best-on-average of the training tasks that step like the new task."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lightning_meta.hpo.mappings import BestOnAverage, ConditionalBestOnAverage, Mapping, SimilarTasksAverage
from lightning_meta.hpo.space import SearchSpace

SPACE = SearchSpace.from_dict({"lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}})
BEST = {0.0: 1e-3, 1.0: 1e-1}  # opt_sgd -> best rate: SGD wants a 100x larger step here


def frame(seed: int = 0, sgd_tasks: int = 3, adam_tasks: int = 9) -> pd.DataFrame:
    """Random runs of tasks of both kinds; more Adam tasks, so the task-blind average follows Adam."""
    rng = np.random.default_rng(seed)
    rows = []
    for index, sgd in enumerate([1.0] * sgd_tasks + [0.0] * adam_tasks):
        for lr in 10 ** rng.uniform(-4, 0, size=25):
            rows.append({"task": f"t{index}", "objective": -abs(np.log10(lr / BEST[sgd])) + rng.normal(0, 0.05),
                         "hp_lr": lr, "f_opt_sgd": sgd, "f_opt_adaptive": 1.0 - sgd, "f_n_samples": rng.uniform(1, 9)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("sgd", [0.0, 1.0])
def test_proposals_follow_the_optimizer_kind(sgd) -> None:
    mapping = ConditionalBestOnAverage().fit(frame(), SPACE)
    lr = mapping.suggest({"opt_sgd": sgd, "opt_adaptive": 1.0 - sgd}, k=1)[0]["lr"]
    assert abs(np.log10(lr / BEST[sgd])) < 0.5


def test_a_task_blind_average_would_miss_the_minority_kind() -> None:
    lr = BestOnAverage().fit(frame(), SPACE).suggest({}, k=1)[0]["lr"]
    assert abs(np.log10(lr / BEST[1.0])) > 1.0


def test_an_unknown_or_missing_kind_falls_back_to_all_tasks() -> None:
    mapping = ConditionalBestOnAverage().fit(frame(), SPACE)
    overall = BestOnAverage().fit(frame(), SPACE).suggest({}, k=1)
    assert mapping.suggest({}, k=1) == overall
    assert mapping.suggest({"opt_sgd": 0.0, "opt_adaptive": 0.0}, k=1) == overall
    without = ConditionalBestOnAverage().fit(frame().drop(columns=["f_opt_sgd", "f_opt_adaptive"]), SPACE)
    assert without.groups == {} and without.suggest({"opt_sgd": 1.0, "opt_adaptive": 0.0}, k=1) == overall


def test_it_round_trips_through_a_mapping_file(tmp_path) -> None:
    mapping = ConditionalBestOnAverage(by=["opt_sgd"]).fit(frame(), SPACE)
    loaded = Mapping.load(mapping.save(tmp_path / "c.mapping"))
    configs = SPACE.sample(30, seed=1)
    for sgd in (0.0, 1.0):
        for before, after in zip(mapping.predict({"opt_sgd": sgd}, configs), loaded.predict({"opt_sgd": sgd}, configs)):
            np.testing.assert_array_equal(after, before)
    assert loaded.by == ["opt_sgd"]


def test_similar_tasks_lean_towards_the_nearest_tasks_of_the_same_kind() -> None:
    """Two Adam 'families' with different optima: once tasks like the new one are in the pool, it follows them."""
    rng = np.random.default_rng(1)
    rows = []
    for index, (size, best) in enumerate([(1.0, 1e-3)] * 6 + [(9.0, 3e-2)] * 2):
        for lr in 10 ** rng.uniform(-4, 0, size=25):
            rows.append({"task": f"t{index}", "objective": -abs(np.log10(lr / best)), "hp_lr": lr,
                         "f_opt_sgd": 0.0, "f_opt_adaptive": 1.0, "f_size": size + rng.normal(0, 0.01)})
    table = pd.DataFrame(rows)
    new = {"opt_sgd": 0.0, "opt_adaptive": 1.0, "size": 9.0}
    blind = ConditionalBestOnAverage().fit(table, SPACE).suggest(new, k=1)[0]["lr"]
    similar = SimilarTasksAverage().fit(table, SPACE).suggest(new, k=1)[0]["lr"]
    assert abs(np.log10(similar / 3e-2)) < 0.5 < abs(np.log10(blind / 3e-2))
