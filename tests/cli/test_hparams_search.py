"""``python train.py -m hparams_search=optuna_mapping``: a real Optuna sweep of tiny runs, warm-started by the mapping."""

import csv
import math
import subprocess
import sys

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lightning_meta.cli import train
from lightning_meta.errors import ConfigError
from lightning_meta.hpo.callback import DEFAULT_MAPPING_DIR
from lightning_meta.hpo.mappings import Mapping
from tests.cli.test_train_cli import CONF, TINY
from tests.conftest import REPO

SEARCH = ["hparams_search=optuna_mapping", "model=maml", "model.inner_steps_eval=2", "callbacks=none"]
WD = "++model.weight_decay"


def _sweep(tmp_path, *overrides):
    done = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", *SEARCH, *TINY, f"paths.root_dir={tmp_path}",
         f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    return done, tmp_path / "sweep"


def _job(sweep, number):
    overrides = yaml.safe_load((sweep / str(number) / ".hydra" / "overrides.yaml").read_text())
    config = OmegaConf.load(sweep / str(number) / ".hydra" / "config.yaml")
    return dict(o.split("=", 1) for o in overrides), config


def _first_proposal():
    """What the shipped mapping proposes for the task features the search config declares."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=SEARCH, return_hydra_config=True)
    features = OmegaConf.to_container(cfg.hydra.sweeper.warm_start.features, resolve=True)
    assert features["opt_adaptive"] == 1.0  # the meta-learners' outer optimizer is Adam
    return Mapping.load(DEFAULT_MAPPING_DIR / "default.mapping").suggest(features, k=1)[0]


def test_sweep_runs_n_trials_first_one_from_the_mapping_and_writes_best_params(tmp_path):
    done, sweep = _sweep(tmp_path, "hydra.sweeper.n_trials=3", "hydra.sweeper.warm_start.k=1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1", "2"]

    proposal = _first_proposal()
    assert 1e-4 <= proposal["lr"] <= 1e-2 and 1e-6 <= proposal["weight_decay"] <= 1e-2  # inside the sweep: no clipping
    overrides, config = _job(sweep, 0)
    assert math.isclose(float(overrides["model.lr"]), proposal["lr"], rel_tol=1e-9)
    assert math.isclose(float(overrides[WD]), proposal["weight_decay"], rel_tol=1e-9)
    assert math.isclose(config.model.lr, proposal["lr"], rel_tol=1e-9)  # the job really trained with it
    assert math.isclose(config.model.weight_decay, proposal["weight_decay"], rel_tol=1e-9)

    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    trials = results["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2] and all(t["state"] == "COMPLETE" for t in trials)
    assert [t["warm_start"] for t in trials] == [True, False, False]  # one queued, then TPE samples
    assert trials[1]["params"] != trials[0]["params"]
    best = max(trials, key=lambda t: t["value"])
    assert results["best_value"] == best["value"] and results["best_params"] == best["params"]
    assert set(results["best_params"]) == {"model.lr", WD}
    for trial in trials:  # the value told to Optuna is the last validation accuracy each job logged; no job tested
        (metrics,) = (sweep / str(trial["number"]) / "csv").glob("*/metrics.csv")
        rows = list(csv.DictReader(metrics.open()))
        assert "test_acc" not in rows[0]
        val_acc = [float(row["val_acc"]) for row in rows if row.get("val_acc")]
        assert math.isclose(trial["value"], val_acc[-1], rel_tol=1e-6)


def test_without_mapping_every_trial_is_sampled_and_command_line_ranges_apply(tmp_path):
    done, sweep = _sweep(tmp_path, "hydra.sweeper.n_trials=2", "hydra.sweeper.warm_start.mapping=null",
                         "model.lr=tag(log,interval(2e-3,3e-3))")
    assert done.returncode == 0, done.stderr[-3000:]
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["warm_start"] == {"mapping": None, "enqueued": []}
    assert [t["warm_start"] for t in results["trials"]] == [False, False]
    assert all(2e-3 <= t["params"]["model.lr"] <= 3e-3 for t in results["trials"])


def test_warm_start_key_that_is_not_swept_stops_before_any_job(tmp_path):
    done, sweep = _sweep(tmp_path, "hydra.sweeper.warm_start.keys.lr=model.inner_lr")
    assert done.returncode != 0
    assert "model.inner_lr" in done.stderr and "not swept" in done.stderr
    assert not (sweep / "0").exists()


def test_the_sweep_objective_is_the_validation_metric_and_a_missing_one_is_an_error(monkeypatch):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=SEARCH)
    assert cfg.optimized_metric == "val_acc" and cfg.test is False
    monkeypatch.setattr(train, "_in_multirun", lambda: True)
    monkeypatch.setattr(train, "run", lambda cfg: {"val_acc": 0.25, "test_acc": 0.75, "val_loss": 1.5})
    assert train.objective(cfg) == 0.25
    cfg.optimized_metric = "val_loss"
    assert train.objective(cfg) == 1.5
    cfg.optimized_metric = "val_f1"
    with pytest.raises(ConfigError, match=r"optimized_metric='val_f1' was not logged by this job \(logged: test_acc, "):
        train.objective(cfg)
