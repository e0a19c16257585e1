"""Every mapping moves its prediction towards the trials already run on the task (``observed_residual.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lightning_meta.hpo.mappings import BestOnAverage, Mapping, MetaSurrogate, SimilarTasksAverage
from lightning_meta.hpo.mappings.observed_residual import affine, residual_correction
from tests.hpo.test_mappings import SPACE, bowl, distance, meta_frame


def observed_trials(u: float, seed: int, n: int = 10) -> pd.DataFrame:
    configs = np.random.default_rng(90 + seed).random((n, 2))
    return pd.DataFrame({"task": "new", "objective": bowl(u, configs, offset=3.0, scale=2.0), "status": "complete",
                         "hp_x1": configs[:, 0], "hp_x2": configs[:, 1]})


@pytest.fixture(scope="module")
def task_blind() -> BestOnAverage:
    return BestOnAverage().fit(meta_frame(features=False), SPACE)


def test_a_task_blind_mapping_moves_to_the_optimum_its_trials_point_at(task_blind):
    zero_shot, adapted = [], []
    for u in (0.12, 0.8):
        for seed in range(5):
            zero_shot.append(distance(task_blind.suggest({}, k=1)[0], u))
            adapted.append(distance(task_blind.suggest({}, k=1, observed=observed_trials(u, seed))[0], u))
    assert np.mean(adapted) < np.mean(zero_shot) - 0.1


def test_too_few_trials_or_the_correction_off_leave_the_prediction_unchanged(task_blind):
    configs = SPACE.sample(100, seed=4)
    zero_shot, _ = task_blind.predict({}, configs)
    two = observed_trials(0.12, 0, n=2)
    assert np.array_equal(task_blind.predict({}, configs, two)[0], zero_shot)
    assert not np.allclose(task_blind.predict({}, configs, observed_trials(0.12, 0))[0], zero_shot)
    off = BestOnAverage().fit(meta_frame(features=False), SPACE)
    off.adapt_lengthscale = None
    assert np.array_equal(off.predict({}, configs, observed_trials(0.12, 0))[0], zero_shot)


def test_suggest_returns_the_best_adapted_prediction_among_given_candidates():
    mapping = SimilarTasksAverage(by=()).fit(meta_frame(), SPACE)
    candidates = SPACE.sample(300, seed=8)
    observed = observed_trials(0.2, 1)
    mean, _ = mapping.predict({"u": 0.5}, candidates, observed)
    assert mapping.suggest({"u": 0.5}, observed=observed, candidates=candidates)[0] == candidates[int(np.argmax(mean))]


def test_the_meta_surrogate_adapts_itself_and_gets_no_second_correction():
    mapping = MetaSurrogate(members=1, meta_steps=5, hidden=8).fit(meta_frame(), SPACE)
    x = SPACE.encode(SPACE.sample(20, seed=2))
    observed = observed_trials(0.3, 0)
    assert mapping.adapt_lengthscale is None
    assert np.array_equal(mapping.predict_adapted({"u": 0.3}, x, observed)[0],
                          mapping.predict_encoded({"u": 0.3}, x, observed)[0])


def test_the_correction_is_the_residual_at_a_trial_and_vanishes_far_from_all():
    observed_x = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    predicted = np.array([0.2, 0.5, 0.4])
    y = np.array([10.0, 30.0, 40.0])  # the third trial is better than predicted
    slope, intercept = affine(y, predicted)
    residuals = slope * y + intercept - predicted
    assert slope > 0 and residuals[2] > 0
    at = residual_correction(observed_x, observed_x, y, predicted, lengthscale=0.05, shrink=0.5)
    assert at == pytest.approx(residuals / 1.5, abs=1e-6)  # kernel 1 at the trial, ~0 at the others
    far = residual_correction(np.array([[5.0, -5.0]]), observed_x, y, predicted, lengthscale=0.05)
    assert far == pytest.approx([0.0], abs=1e-9)


def test_the_correction_settings_survive_save_and_load(tmp_path):
    mapping = BestOnAverage().fit(meta_frame(features=False), SPACE)
    mapping.adapt_lengthscale, mapping.adapt_min = None, 5
    loaded = Mapping.load(mapping.save(tmp_path / "off.mapping"))
    assert loaded.adapt_lengthscale is None and loaded.adapt_min == 5
    observed = observed_trials(0.12, 0)
    assert loaded.suggest({}, observed=observed) == mapping.suggest({}, observed=observed)
