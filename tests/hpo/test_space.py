"""The search space: every malformed declaration or configuration is refused, and encoding is lossless."""

import math
from collections import Counter

import numpy as np
import optuna
import pytest

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.space import Param, SearchSpace

SPEC = {
    "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
    "batch_size": {"type": "int", "low": 16, "high": 256, "log": True, "target": "datamodule.batch_size"},
    "layers": {"type": "int", "low": 1, "high": 4},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
    "optimizer": {"type": "categorical", "choices": ["sgd", "adam", "adamw"]},
}


@pytest.fixture
def space() -> SearchSpace:
    return SearchSpace.from_dict(SPEC)


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ({"x": {"type": "double", "low": 0, "high": 1}}, "type 'double'"),
        ({"x": {"low": 0, "high": 1}}, "no `type`"),
        ({"x": {"type": "float", "low": 0}}, "needs both `low` and `high`"),
        ({"x": {"type": "float", "low": 1, "high": 1}}, "low=1.0 >= high=1.0"),
        ({"x": {"type": "float", "low": 0, "high": 1, "log": True}}, "log scale"),
        ({"x": {"type": "int", "low": 0.5, "high": 4}}, "give an integer"),
        ({"x": {"type": "float", "low": "abc", "high": 1}}, "give a number"),
        ({"x": {"type": "float", "low": 0, "high": float("inf")}}, "finite"),
        ({"x": {"type": "categorical", "choices": []}}, "non-empty list"),
        ({"x": {"type": "categorical", "choices": ["a", "a"]}}, "twice"),
        ({"x": {"type": "categorical", "choices": [[1, 2]]}}, "unsupported type"),
        ({"x": {"type": "categorical", "choices": ["a"], "low": 0}}, "only `choices`"),
        ({"x": {"type": "float", "low": 0, "high": 1, "choices": [1]}}, "drop `choices`"),
        ({"x": {"type": "float", "low": 0, "high": 1, "step": 0.1}}, "unknown keys ['step']"),
        ({"x": 3}, "must map to"),
        ({}, "empty"),
    ],
)
def test_bad_declarations_are_refused(spec, fragment):
    with pytest.raises(ConfigError) as info:
        SearchSpace.from_dict(spec)
    assert fragment in str(info.value)


def test_duplicate_names_are_refused():
    with pytest.raises(ConfigError, match="more than once"):
        SearchSpace([Param("x", "float", 0, 1), Param("x", "int", 0, 3)])


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"momentum": 0.9}, "unknown hyperparameters ['momentum']"),
        ({"lr": 2.0}, "outside [0.0001, 1.0]"),
        ({"lr": "fast"}, "wrong type"),
        ({"lr": True}, "wrong type"),
        ({"layers": 2.5}, "not an integer"),
        ({"layers": 9}, "outside [1, 4]"),
        ({"optimizer": "rmsprop"}, "not one of"),
        ({"dropout": float("nan")}, "outside"),
    ],
)
def test_bad_configurations_are_refused(space, change, fragment):
    config = {"lr": 0.01, "batch_size": 32, "layers": 2, "dropout": 0.1, "optimizer": "adam", **change}
    with pytest.raises(ConfigError) as info:
        space.validate(config)
    assert fragment in str(info.value)


def test_missing_hyperparameter_is_refused(space):
    with pytest.raises(ConfigError, match=r"lacks hyperparameters \['optimizer'\]"):
        space.validate({"lr": 0.01, "batch_size": 32, "layers": 2, "dropout": 0.1})


def test_validate_casts_and_orders(space):
    config = space.validate({"optimizer": "sgd", "dropout": 0, "layers": 3.0, "batch_size": np.int64(64), "lr": 0.1})
    assert list(config) == space.names
    assert type(config["layers"]) is int and type(config["batch_size"]) is int
    assert type(config["dropout"]) is float


def test_categorical_numbers_map_to_the_listed_choice():
    space = SearchSpace.from_dict({"width": {"type": "categorical", "choices": [32, 64]}})
    assert space.validate({"width": 64.0}) == {"width": 64}


def test_target_defaults_to_name(space):
    targets = {p.name: p.target for p in space.params}
    assert targets["lr"] == "lr" and targets["batch_size"] == "datamodule.batch_size"


def test_encode_decode_round_trip(space):
    configs = space.sample(200, seed=3)
    x = space.encode(configs)
    assert x.shape == (200, space.dim) and space.dim == 7
    assert np.all((x >= 0) & (x <= 1))
    assert np.allclose(x[:, 4:].sum(axis=1), 1.0)
    decoded = space.decode(x)
    for original, back in zip(configs, decoded):
        assert back.keys() == original.keys()
        for name in ("batch_size", "layers", "optimizer"):
            assert back[name] == original[name]
        assert math.isclose(back["lr"], original["lr"], rel_tol=1e-9)
        assert math.isclose(back["dropout"], original["dropout"], rel_tol=1e-9, abs_tol=1e-12)


def test_encode_is_monotone_and_log_scaled():
    space = SearchSpace.from_dict({"lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}})
    x = space.encode([{"lr": 1e-4}, {"lr": 1e-2}, {"lr": 1.0}])[:, 0]
    assert np.allclose(x, [0.0, 0.5, 1.0])


def test_decode_clips_any_real_vector(space):
    rng = np.random.default_rng(0)
    for config in space.decode(rng.normal(0, 3, size=(100, space.dim))):
        assert space.validate(config) == config


def test_decode_rejects_wrong_width(space):
    with pytest.raises(ConfigError, match=r"expected \[n, 7\]"):
        space.decode(np.zeros((2, 3)))


def test_sample_is_deterministic_and_covers_the_space(space):
    assert space.sample(50, seed=7) == space.sample(50, seed=7)
    assert space.sample(50, seed=7) != space.sample(50, seed=8)
    configs = space.sample(4000, seed=0)
    layers = Counter(c["layers"] for c in configs)
    assert set(layers) == {1, 2, 3, 4}
    assert min(layers.values()) > 0.8 * 1000  # integers equally likely, ends included
    assert Counter(c["optimizer"] for c in configs).keys() == {"sgd", "adam", "adamw"}
    lrs = np.log10([c["lr"] for c in configs])
    assert abs(np.mean(lrs < -2) - 0.5) < 0.05  # uniform on the log scale


def test_dict_and_yaml_round_trip(space, tmp_path):
    assert SearchSpace.from_dict(space.to_dict()) == space
    path = tmp_path / "space.yaml"
    path.write_text("lr:\n  type: float\n  low: 1e-5\n  high: 1e-1\n  log: true\nopt:\n  type: categorical\n  choices: [sgd, adam]\n")
    loaded = SearchSpace.from_yaml(path)
    assert loaded.names == ["lr", "opt"] and loaded.params[0].low == 1e-5


def test_from_yaml_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        SearchSpace.from_yaml(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("lr: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml is not valid YAML"):
        SearchSpace.from_yaml(broken)


def test_from_omegaconf(space):
    from omegaconf import OmegaConf

    assert SearchSpace.from_dict(OmegaConf.create(SPEC)) == space


def test_to_optuna_suggests_inside_the_space(space):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []

    def objective(trial):
        config = space.to_optuna(trial)
        seen.append(space.validate(config))
        return config["lr"]

    study.optimize(objective, n_trials=20)
    assert len(seen) == 20
    distribution = study.trials[0].distributions["batch_size"]
    assert (distribution.low, distribution.high, distribution.log) == (16, 256, True)


def test_round_off_is_repaired_and_anything_farther_refused(space):
    config = {"lr": 1.0 + 1e-12, "batch_size": 104.99999999999997, "layers": 4, "dropout": 0.5 + 1e-9, "optimizer": "adam"}
    assert space.validate(config) == {"lr": 1.0, "batch_size": 105, "layers": 4, "dropout": 0.5, "optimizer": "adam"}
    with pytest.raises(ConfigError, match=r"'dropout'=0.5011 is outside \[0.0, 0.5\]"):
        space.validate({**config, "dropout": 0.5011})
    with pytest.raises(ConfigError, match="'batch_size'=104.9 is not an integer"):
        space.validate({**config, "batch_size": 104.9})
    dropout = space.params[3]
    assert dropout.check(0.5011, tolerance=0.01) == 0.5  # the tolerance is a share of the range (0.0022 here)


def test_conform_applies_the_rule_of_check_to_a_column(space):
    params = {p.name: p for p in space.params}
    values, ok = params["dropout"].conform(np.array([0.1, 0.5 + 1e-9, 0.5011, np.nan, -1e-12]))
    assert ok.tolist() == [True, True, False, False, True] and values[ok].tolist() == [0.1, 0.5, 0.0]
    values, ok = params["batch_size"].conform(np.array([104.99999999999997, 104.9, 300.0, 16.0]))
    assert ok.tolist() == [True, False, False, True] and values[ok].tolist() == [105.0, 16.0]
    values, ok = params["lr"].conform(np.array([0.01, "0.01", True, None], dtype=object))
    assert ok.tolist() == [True, False, False, False]
    values, ok = params["optimizer"].conform(np.array(["adam", "rmsprop", None], dtype=object))
    assert ok.tolist() == [True, False, False] and values[0] == "adam"
    for name, column in [("dropout", [0.5 + 1e-9, 0.5011, -1e-3, 0.25]), ("batch_size", [255.9999999999, 256.4, 15.5])]:
        values, ok = params[name].conform(np.array(column))
        for value, canonical, accepted in zip(column, values, ok):  # one rule: check agrees with conform
            if accepted:
                assert params[name].check(value) == canonical
            else:
                with pytest.raises(ConfigError):
                    params[name].check(value)
