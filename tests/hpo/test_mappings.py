"""The mappings on a synthetic meta-dataset whose right answer is known.

Every task is a shifted, scaled quadratic bowl over two hyperparameters whose optimum sits at
``(u, 1 - u)``, where ``u`` is the task's one meta-feature; objectives have a task-specific
offset and scale, so only the per-task shape is shared.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lightning_meta.errors import ConfigError, DataError
from lightning_meta.hpo.mappings import BestOnAverage, GBMSurrogate, Mapping, MetaSurrogate, NearestTask
from lightning_meta.hpo.space import SearchSpace

SPACE = SearchSpace.from_dict({
    "x1": {"type": "float", "low": 0.0, "high": 1.0},
    "x2": {"type": "float", "low": 0.0, "high": 1.0},
})
TRAIN_U = np.linspace(0.05, 0.95, 10)


def bowl(u: float, configs: np.ndarray, offset: float = 0.0, scale: float = 1.0) -> np.ndarray:
    return offset - scale * ((configs[:, 0] - u) ** 2 + (configs[:, 1] - (1 - u)) ** 2)


def task_frame(u: float, n: int, seed: int, name: str | None = None, features: bool = True) -> pd.DataFrame:
    """``n`` runs of one task; the configurations are the same for every task (as in a tabular benchmark)."""
    configs = np.random.default_rng(0).random((n, 2))
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "task": name or f"u={u:.2f}", "objective": bowl(u, configs, rng.normal(), rng.uniform(0.5, 2.0)),
        "status": "complete", "hp_x1": configs[:, 0], "hp_x2": configs[:, 1],
    })
    if features:
        frame["f_u"] = u
    return frame


def meta_frame(features: bool = True) -> pd.DataFrame:
    return pd.concat([task_frame(u, 150, i, features=features) for i, u in enumerate(TRAIN_U)], ignore_index=True)


def distance(config: dict, u: float) -> float:
    return float(np.hypot(config["x1"] - u, config["x2"] - (1 - u)))


@pytest.fixture(scope="module")
def fitted() -> dict[str, Mapping]:
    frame = meta_frame()
    return {
        "best_on_average": BestOnAverage().fit(frame, SPACE),
        "nearest_task": NearestTask().fit(frame, SPACE),
        "gbm": GBMSurrogate(members=3).fit(frame, SPACE),
        # here the feature alone fixes the optimum, so the zero-shot correction of the prior is left wide
        "meta_surrogate": MetaSurrogate(members=3, meta_steps=800, hidden=32, outer_lr=5e-3, correction=1.0).fit(frame, SPACE),
    }


@pytest.mark.parametrize("name", ["gbm", "meta_surrogate"])
@pytest.mark.parametrize("u", [0.22, 0.78])
def test_surrogates_follow_the_task_feature_to_the_optimum(fitted, name, u):
    best = fitted[name].suggest({"u": u}, k=1)[0]
    assert distance(best, u) < 0.12
    assert distance(best, 1 - u) > 0.5  # not the optimum of the mirrored task


def test_nearest_task_proposes_the_best_runs_of_the_closest_tasks(fitted):
    frame = meta_frame()
    proposals = fitted["nearest_task"].suggest({"u": 0.27}, k=2)
    for proposal, u in zip(proposals, (0.25, 0.35)):  # the two closest training tasks, in order
        rows = frame[np.isclose(frame["f_u"], u)]
        best = rows.loc[rows["objective"].idxmax()]
        assert proposal == pytest.approx({"x1": best["hp_x1"], "x2": best["hp_x2"]})


def test_best_on_average_ignores_the_task(fitted):
    mapping = fitted["best_on_average"]
    assert mapping.suggest({"u": 0.1}, k=3) == mapping.suggest({"u": 0.9}, k=3)
    assert distance(mapping.suggest({"u": 0.5})[0], 0.5) < 0.15  # bowls centred on the line: middle wins


@pytest.mark.parametrize("name", ["best_on_average", "nearest_task", "gbm", "meta_surrogate"])
def test_predictions_and_proposals_are_well_formed(fitted, name):
    mapping = fitted[name]
    configs = SPACE.sample(50, seed=1)
    mean, std = mapping.predict({"u": 0.4}, configs)
    assert mean.shape == std.shape == (50,) and np.all(np.isfinite(mean)) and np.all(std >= 0)
    best = mapping.suggest({"u": 0.4}, k=5)
    assert len(best) == 5 and len({tuple(c.values()) for c in best}) == 5
    observed = pd.DataFrame({"task": "new", "objective": [0.0, 0.1], "status": "complete",
                             "hp_x1": [best[0]["x1"], best[1]["x1"]], "hp_x2": [best[0]["x2"], best[1]["x2"]]})
    assert best[0] not in mapping.suggest({"u": 0.4}, k=5, observed=observed)


def test_meta_surrogate_adapts_to_observed_trials_when_features_say_nothing():
    mapping = MetaSurrogate(members=3, meta_steps=500, hidden=32, outer_lr=5e-3).fit(meta_frame(features=False), SPACE)
    zero_shot, adapted = [], []
    for u in (0.12, 0.8):
        for seed in range(5):
            configs = np.random.default_rng(90 + seed).random((10, 2))
            observed = pd.DataFrame({"task": "new", "objective": bowl(u, configs, offset=3.0, scale=2.0),
                                     "status": "complete", "hp_x1": configs[:, 0], "hp_x2": configs[:, 1]})
            zero_shot.append(distance(mapping.suggest({}, k=1)[0], u))
            adapted.append(distance(mapping.suggest({}, k=1, observed=observed)[0], u))
    assert np.mean(adapted) < np.mean(zero_shot) - 0.1
    assert all(a <= z + 0.02 for a, z in zip(adapted, zero_shot))


def test_meta_surrogate_moves_from_the_prior_by_at_most_its_bound():
    mapping = MetaSurrogate(members=2, meta_steps=200, hidden=32, correction=0.02, growth=0.05).fit(meta_frame(), SPACE)
    configs = SPACE.sample(200, seed=3)
    encoded = SPACE.encode(configs)
    prior = mapping.prior(encoded)
    zero_shot, _ = mapping.predict({"u": 0.3}, configs)
    assert np.abs(zero_shot - prior).max() <= 0.02 + 1e-6
    assert np.abs(zero_shot - prior).max() > 1e-4  # the features do move it
    trials = np.random.default_rng(5).random((4, 2))
    observed = pd.DataFrame({"task": "new", "objective": bowl(0.3, trials), "status": "complete",
                             "hp_x1": trials[:, 0], "hp_x2": trials[:, 1]})
    adapted, _ = mapping.predict({"u": 0.3}, configs, observed)
    assert np.abs(adapted - prior).max() <= 0.02 + 4 * 0.05 + 1e-6
    with pytest.raises(ConfigError, match="correction > 0"):
        MetaSurrogate(correction=0.0)


def test_failed_and_diverged_runs_never_reach_a_mapping():
    frame = meta_frame()
    poison = pd.DataFrame({"task": "u=0.05", "objective": [1e9, np.nan], "status": ["failed", "complete"],
                           "hp_x1": [0.99, 0.98], "hp_x2": [0.01, 0.02], "f_u": 0.05})
    mapping = BestOnAverage().fit(pd.concat([frame, poison], ignore_index=True), SPACE)
    assert mapping.suggest({"u": 0.5}) == BestOnAverage().fit(frame, SPACE).suggest({"u": 0.5})


@pytest.mark.parametrize("name", ["best_on_average", "nearest_task", "gbm", "meta_surrogate"])
def test_a_loaded_mapping_predicts_and_proposes_exactly_like_the_saved_one(fitted, name, tmp_path):
    mapping = fitted[name]
    mapping.exploration = 0.3  # a setting changed after the fit travels with the file
    configs = SPACE.sample(40, seed=2)
    observed = task_frame(0.3, 6, seed=4, name="new")
    try:
        loaded = Mapping.load(mapping.save(tmp_path / f"{name}.mapping"))
        assert type(loaded) is type(mapping) and loaded.space == SPACE and loaded.exploration == 0.3
        for before, after in zip(mapping.predict({"u": 0.3}, configs, observed), loaded.predict({"u": 0.3}, configs, observed)):
            np.testing.assert_array_equal(after, before)
        assert loaded.suggest({"u": 0.3}, k=4, observed=observed) == mapping.suggest({"u": 0.3}, k=4, observed=observed)
    finally:
        mapping.exploration = 0.0
    assert (tmp_path / f"{name}.mapping").stat().st_size < 1_000_000


def test_bad_files_and_frames_raise_errors_that_say_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Mapping.load(tmp_path / "missing.mapping")
    for junk in (b"not a mapping at all", b"PK\x03\x04truncated zip"):
        (tmp_path / "junk.mapping").write_bytes(junk)
        with pytest.raises(ConfigError, match="corrupted"):
            Mapping.load(tmp_path / "junk.mapping")
    (tmp_path / "old.mapping").write_bytes(b"\x80\x04\x95old pickle")
    with pytest.raises(ConfigError, match="old pickle format.*re-fit the mapping and save"):
        Mapping.load(tmp_path / "old.mapping")
    with pytest.raises(DataError, match="hp_x2"):
        BestOnAverage().fit(meta_frame().drop(columns=["hp_x2"]), SPACE)
    with pytest.raises(ConfigError, match="not fitted"):
        GBMSurrogate().suggest({"u": 0.5})


def test_missing_features_are_imputed_with_a_warning(fitted):
    with pytest.warns(UserWarning, match="imputed"):
        fitted["gbm"].suggest({}, k=1)


@pytest.mark.parametrize("cls", [GBMSurrogate, MetaSurrogate])
def test_same_seed_gives_the_same_fitted_mapping_and_proposal(cls):
    frame = meta_frame()
    kwargs = {"members": 2} if cls is GBMSurrogate else {"members": 2, "meta_steps": 100, "hidden": 16}
    first, second = cls(**kwargs).fit(frame, SPACE), cls(**kwargs).fit(frame, SPACE)
    assert first.suggest({"u": 0.3}, k=3, seed=1) == second.suggest({"u": 0.3}, k=3, seed=1)


def scattered_table(seed: int) -> tuple[pd.DataFrame, SearchSpace, float]:
    """12 tasks x 30 random configurations, none repeated; score -(log lr - c)^2 plus task offset and run noise."""
    space = SearchSpace.from_dict({"lr": {"type": "float", "low": 1e-5, "high": 1.0, "log": True},
                                   "dropout": {"type": "float", "low": 0.0, "high": 0.5}})
    c = np.log(3e-3)
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(12):
        configs = pd.DataFrame(space.sample(30, seed=1000 * seed + t))
        objective = rng.normal(0, 5) - (np.log(configs["lr"]) - c) ** 2 + rng.normal(0, 2.0, 30)
        frames.append(configs.add_prefix("hp_").assign(task=f"t{t}", objective=objective, status="complete", f_n=t))
    return pd.concat(frames, ignore_index=True), space, c


@pytest.mark.parametrize("seed", range(4))
def test_best_on_average_averages_neighbouring_configurations_when_none_repeats(seed):
    frame, space, c = scattered_table(seed)
    assert not frame[["hp_lr", "hp_dropout"]].duplicated().any()
    best = BestOnAverage().fit(frame, space).suggest({}, k=1)[0]
    # every task's best run scores 1: picking one of them (the mean over one run) lands 0.85 to 1.7 away
    assert abs(np.log(best["lr"]) - c) < 0.75


@pytest.mark.parametrize("name", ["best_on_average", "nearest_task", "gbm", "meta_surrogate"])
def test_suggest_ranks_exactly_the_given_candidates(fitted, name):
    mapping = fitted[name]
    mine = SPACE.sample(25, seed=11)
    mean, _ = mapping.predict({"u": 0.3}, mine)
    ranked = mapping.suggest({"u": 0.3}, k=3, candidates=mine)
    assert ranked == [mine[i] for i in np.argsort(-mean, kind="stable")[:3]]
    as_pool_frame = pd.DataFrame(mine).add_prefix("hp_").assign(task="mine", objective=0.0)
    assert mapping.suggest({"u": 0.3}, k=3, candidates=as_pool_frame) == ranked
    assert mapping.suggest({"u": 0.3}, k=3, candidates=pd.DataFrame(mine)) == ranked
    observed = pd.DataFrame([ranked[0]]).add_prefix("hp_").assign(task="new", objective=0.0, status="complete")
    assert mapping.suggest({"u": 0.3}, k=2, candidates=mine, observed=observed) == ranked[1:3]
    assert len(mapping.suggest({"u": 0.3}, k=100, candidates=mine[:4])) == 4  # never more than given


@pytest.mark.parametrize("candidates, fragment", [
    ([{"x1": 0.5, "x2": 1.2}], r"'x2'=1.2 is outside \[0.0, 1.0\]"),
    ([{"x1": 0.5}], r"lacks hyperparameters \['x2'\]"),
    ([], "candidates is empty"),
    ("x1=0.5", "give a number of random draws, a list of configurations"),
    (pd.DataFrame({"a": [0.1]}), r"no column for each of \['x1', 'x2'\]"),
])
def test_bad_candidates_are_refused_with_the_fix(fitted, candidates, fragment):
    with pytest.raises(ConfigError, match=fragment):
        fitted["gbm"].suggest({"u": 0.3}, candidates=candidates)
    observed = pd.DataFrame({"task": "new", "objective": [0.0], "status": "complete", "hp_x1": [0.5], "hp_x2": [0.5]})
    with pytest.raises(ConfigError, match="already observed"):
        fitted["gbm"].suggest({"u": 0.3}, candidates=[{"x1": 0.5, "x2": 0.5}], observed=observed)
