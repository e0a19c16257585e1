"""Messy inputs: pools of several search spaces, missing or round-off values, text-valued task features."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from lightning_meta.errors import ConfigError, DataError
from lightning_meta.hpo.mappings import MAPPINGS, BestOnAverage, ConditionalBestOnAverage, GBMSurrogate, Mapping, MetaSurrogate, NearestTask, SimilarTasksAverage
from lightning_meta.hpo.pool import ExperiencePool
from lightning_meta.hpo.space import SearchSpace
from tests.hpo.test_mappings import SPACE, bowl, meta_frame

QUICK = {"best_on_average": BestOnAverage, "conditional_best_on_average": lambda: ConditionalBestOnAverage(by=["size"]),
         "nearest_task": NearestTask, "similar_tasks": lambda: SimilarTasksAverage(by=["size"]),
         "gbm": lambda: GBMSurrogate(members=2, max_iter=30),
         "meta_surrogate": lambda: MetaSurrogate(members=2, meta_steps=40, hidden=16)}


def fit_warnings(mapping: Mapping, frame: pd.DataFrame, space: SearchSpace) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mapping.fit(frame, space)
    return [str(w.message) for w in caught if "search space" in str(w.message)]


def mixed_pool(tmp_path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A pool of runs of SPACE, of another space (lr only), of SPACE plus lr, one run lacking x2 and one outside SPACE.

    Returns the pool's frame and the frame of the runs that fit SPACE.
    """
    clean = meta_frame()
    pool = ExperiencePool(f"sqlite:///{tmp_path / 'mixed.db'}")
    pool.import_frame(clean, "task", ["hp_x1", "hp_x2"], "objective", "maximize", ["f_u"])
    other = pd.DataFrame({"task": "u=0.05", "objective": [5.0, 6.0, 7.0], "hp_lr": [0.1, 0.01, 0.001], "f_u": 0.05})
    pool.import_frame(other, "task", ["hp_lr"], "objective", "maximize", ["f_u"])
    superset = pd.DataFrame({"task": "u=0.15", "objective": [9.0], "hp_x1": [0.9], "hp_x2": [0.1], "hp_lr": [0.1], "f_u": 0.15})
    pool.import_frame(superset, "task", ["hp_x1", "hp_x2", "hp_lr"], "objective", "maximize", ["f_u"])
    odd = pd.DataFrame({"task": "u=0.25", "objective": [8.0, 8.5], "hp_x1": [0.9, 1.3], "hp_x2": [np.nan, 0.2], "f_u": 0.25})
    pool.import_frame(odd, "task", ["hp_x1", "hp_x2"], "objective", "maximize", ["f_u"])
    return pool.frame(), clean


@pytest.mark.parametrize("name", sorted(QUICK))
def test_a_pool_of_several_spaces_fits_on_the_runs_of_its_own_space_with_one_warning(tmp_path, name):
    frame, clean = mixed_pool(tmp_path)
    assert frame["hp_x2"].isna().sum() == 4 and "hp_lr" in frame.columns
    mixed = QUICK[name]()
    messages = fit_warnings(mixed, frame, SPACE)
    assert len(messages) == 1
    assert messages[0].startswith(f"6 of {len(clean) + 6} runs do not fit the search space ['x1', 'x2']")
    assert "4 lack a value of ['x1', 'x2']" in messages[0] and "1 have a value outside it (e.g. x1=1.3)" in messages[0]
    assert "1 set hyperparameters it does not declare (['lr']" in messages[0]
    configs = SPACE.sample(30, seed=5)
    expected = QUICK[name]().fit(clean, SPACE)
    np.testing.assert_allclose(mixed.predict({"u": 0.4}, configs)[0], expected.predict({"u": 0.4}, configs)[0])


def test_a_frame_without_a_usable_run_is_a_one_line_data_error(tmp_path):
    frame, _ = mixed_pool(tmp_path)
    other_space = SearchSpace.from_dict({"lr": {"type": "float", "low": 0.5, "high": 1.0}})
    with pytest.raises(DataError) as info:
        BestOnAverage().fit(frame, other_space)
    assert "No run of the frame fits the search space ['lr']" in str(info.value)
    assert "have a value outside it (e.g. lr=0.1)" in str(info.value) and "\n" not in str(info.value)


DROPOUT = SearchSpace.from_dict({"dropout": {"type": "float", "low": 0.0, "high": 0.5},
                                 "width": {"type": "int", "low": 16, "high": 256, "log": True}})


def dropout_frame(extra: dict[str, list]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    configs = pd.DataFrame(DROPOUT.sample(60, seed=1))
    frame = configs.add_prefix("hp_").assign(task=np.repeat(["a", "b", "c"], 20), objective=rng.random(60), f_n=1.0)
    return pd.concat([frame, pd.DataFrame({"task": "a", "objective": 2.0, "f_n": 1.0, **extra})], ignore_index=True)


def test_fit_and_predict_apply_one_rule_to_values_at_the_edge_of_the_space():
    # round-off is repaired by both: the run is kept (clipped, rounded) and predict takes the same values
    edge = {"hp_dropout": [0.5 + 1e-12], "hp_width": [104.99999999999997]}
    assert fit_warnings(BestOnAverage(), dropout_frame(edge), DROPOUT) == []
    mapping = BestOnAverage().fit(dropout_frame(edge), DROPOUT)
    assert {"dropout": 0.5, "width": 105} in DROPOUT.decode(mapping.mean.keys)
    assert DROPOUT.validate({"dropout": 0.5 + 1e-12, "width": 104.99999999999997}) == {"dropout": 0.5, "width": 105}
    mean, _ = mapping.predict({}, [{"dropout": 0.5 + 1e-12, "width": 104.99999999999997}])
    assert np.isfinite(mean).all()
    # a value past round-off is refused by both: fit drops the run, predict raises
    beyond = {"hp_dropout": [0.5011], "hp_width": [105]}
    assert fit_warnings(BestOnAverage(), dropout_frame(beyond), DROPOUT) == [
        "1 of 61 runs do not fit the search space ['dropout', 'width'] and are left out of the fit: 1 have a value "
        "outside it (e.g. dropout=0.5011). Fit one mapping per search space, or widen the space."
    ]
    with pytest.raises(ConfigError, match=r"'dropout'=0.5011 is outside \[0.0, 0.5\]"):
        mapping.predict({}, [{"dropout": 0.5011, "width": 105}])
    with pytest.raises(ConfigError, match=r"'width'=104.9 is not an integer"):
        mapping.suggest({}, candidates=[{"dropout": 0.1, "width": 104.9}])


def text_feature_frame() -> pd.DataFrame:
    """Tasks whose optimum is set by a text feature: freq '1D' -> u = 0.2, '1H' -> u = 0.8 (plus a numeric feature)."""
    frames = []
    for i, (freq, u) in enumerate([("1D", 0.2), ("1H", 0.8)] * 4):
        configs = np.random.default_rng(i).random((80, 2))
        frames.append(pd.DataFrame({"task": f"t{i}", "objective": bowl(u, configs), "status": "complete",
                                    "hp_x1": configs[:, 0], "hp_x2": configs[:, 1], "f_freq": freq, "f_size": float(i)}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("name", sorted(MAPPINGS))
def test_text_features_are_one_hot_encoded_through_fit_suggest_save_and_load(name, tmp_path):
    mapping = QUICK[name]().fit(text_feature_frame(), SPACE)
    assert mapping.feature_names == ["freq", "size"] and mapping.encoder.categories == {"freq": ["1D", "1H"]}
    np.testing.assert_array_equal(mapping.scaled_features({"freq": "1H", "size": 7.0}), [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(mapping.scaled_features({"freq": "1W", "size": 7.0}), [0.0, 0.0, 1.0])  # unseen
    loaded = Mapping.load(mapping.save(tmp_path / "text.mapping"))
    for freq in ("1D", "1H", "1W"):
        assert loaded.suggest({"freq": freq, "size": 3.0}, k=2) == mapping.suggest({"freq": freq, "size": 3.0}, k=2)


def test_a_text_feature_steers_the_proposal_and_text_for_a_numeric_feature_is_refused():
    mapping = NearestTask(neighbours=1).fit(text_feature_frame(), SPACE)
    for freq, u in (("1D", 0.2), ("1H", 0.8)):
        best = mapping.suggest({"freq": freq, "size": 3.5}, k=1)[0]
        assert np.hypot(best["x1"] - u, best["x2"] - (1 - u)) < 0.15
    with pytest.raises(ConfigError, match="Task feature 'size'='big' is not a number, but the mapping learnt"):
        mapping.suggest({"freq": "1D", "size": "big"})


def test_observed_trials_of_another_space_are_left_out_of_adaptation_and_not_fatal():
    mapping = MetaSurrogate(members=2, meta_steps=40, hidden=16, adapt_min=3).fit(meta_frame(), SPACE)
    other = pd.DataFrame({"task": "new", "objective": [1.0, 2.0, 3.0, 4.0], "status": "complete",
                          "hp_x1": np.nan, "hp_x2": [0.1, 0.2, 0.3, 0.4], "hp_lr": 0.1})
    assert mapping.suggest({"u": 0.3}, k=3, observed=other) == mapping.suggest({"u": 0.3}, k=3)
    own = other.assign(hp_x1=[0.2, 0.4, 0.6, 0.8], hp_lr=np.nan)
    assert mapping.suggest({"u": 0.3}, k=3, observed=own) != mapping.suggest({"u": 0.3}, k=3)  # these it adapts to
    with pytest.raises(DataError, match=r"observed trials lack columns \['hp_x1'\]"):
        mapping.suggest({"u": 0.3}, observed=other.drop(columns=["hp_x1"]))
