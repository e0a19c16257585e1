"""The pool collection (``python -m pool.collect``, maintainer code), ``lightning-meta fit`` and ``suggest`` end to end
on real (tiny) trainings of one task family."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_meta.cli.main import main as cli_main
from lightning_meta.errors import ConfigError
from lightning_meta.hpo.mappings import GBMSurrogate
from lightning_meta.hpo.mappings.base import Mapping
from lightning_meta.hpo.pool import ExperiencePool
from lightning_meta.hpo.space import SearchSpace
from pool.collect import QUIET_LOGGERS, _compose, job_config, parse_shard, plan, resolve_families, trial_config
from pool.collect import main as collect_main
from pool.families import FAMILIES, all_tasks

SPACE = SearchSpace.from_yaml(Path(__file__).resolve().parents[2] / "conf/space/default.yaml")
FAMILY = "small_tables_mlp_adam"
LINE = re.compile(r"^(\d+)\s+(.*?)\s+predicted=(-?[\d.]+) ± ([\d.]+)$")


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> tuple[str, Path]:
    """One family x 1 trial collected through the harness's command line into a fresh pool."""
    root = tmp_path_factory.mktemp("collect")
    url = f"sqlite:///{root / 'pool.db'}"
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    collect_main([f"families=[{FAMILY}]", "trials=1", "seed=3", "progress_bar=false", f"pool={url}"])
    assert {name: logging.getLogger(name).level for name in QUIET_LOGGERS} == levels, "collect left loggers muted"
    return url, root


def test_families_differ_in_data_model_and_optimizer() -> None:
    tasks = all_tasks()
    assert len(FAMILIES) >= 6 and len(tasks) >= 60
    assert {t.optimizer for t in tasks} == {"sgd", "adam", "adamw"}
    assert {t.regression for t in tasks} == {True, False} and {t.mode for t in tasks} == {"max", "min"}
    sizes, params = [], []
    for family in FAMILIES:
        for task in (FAMILIES[family][0], FAMILIES[family][-1]):
            model, datamodule = task.build(0)
            sizes.append(len(datamodule.train_dataset))
            params.append(sum(p.numel() for p in model.parameters()))
            x, y = next(iter(datamodule.train_dataloader()))
            assert model.training_step((x, y), 0).isfinite()
    assert max(sizes) / min(sizes) >= 100 and max(params) / min(params) >= 30


def test_collect_records_one_complete_run_per_task_and_trial_with_features(collected) -> None:
    url, _ = collected
    with ExperiencePool(url) as pool:
        frame = pool.frame(status=None)
    tasks = [t.key for t in FAMILIES[FAMILY]]
    assert sorted(frame["task"]) == sorted(tasks) and set(frame["status"]) == {"complete"}
    for task in tasks:
        row = frame[frame["task"] == task].iloc[0]
        assert SPACE.validate({n: row[f"hp_{n}"] for n in SPACE.names}) == job_config(SPACE, task, 0, seed=3)
    assert (frame["f_opt_adaptive"] == 1.0).all() and (frame["f_opt_sgd"] == 0.0).all() and (frame["f_batch_size"] > 0).all()
    assert frame["f_probe_drop_lr0.1"].notna().all()
    assert frame["objective"].between(0.0, 1.0).all()


def test_collect_resumes_and_only_runs_what_the_pool_lacks(collected) -> None:
    url, _ = collected
    cfg = _compose([f"families=[{FAMILY}]", "trials=2", "seed=3", f"pool={url}"])
    assert sorted(plan(cfg)) == sorted((t.key, 1) for t in FAMILIES[FAMILY])
    halves = [plan(_compose([f"families=[{FAMILY}]", "trials=2", "seed=3", f"pool={url}", f"shard={i}/2"]))
              for i in range(2)]
    assert sorted(halves[0] + halves[1]) == sorted(plan(cfg)) and not set(halves[0]) & set(halves[1])


def test_trial_configs_are_reproducible_and_differ_between_tasks() -> None:
    assert trial_config(SPACE, "a/x", 4, seed=0) == trial_config(SPACE, "a/x", 4, seed=0)
    assert trial_config(SPACE, "a/x", 0, seed=0) != trial_config(SPACE, "a/y", 0, seed=0)
    assert trial_config(SPACE, "a/x", 0, seed=0) != trial_config(SPACE, "a/x", 0, seed=1)


def test_fit_saves_a_mapping_that_loads_and_suggest_prints_configs_in_the_space(collected, capsys) -> None:
    url, root = collected
    out = root / "fitted.mapping"
    cli_main(["fit", str(out), f"pool={url}", "mapping=gbm"])
    mapping = Mapping.load(out)
    assert isinstance(mapping, GBMSurrogate) and mapping.space == SPACE and "opt_adaptive" in mapping.feature_names
    capsys.readouterr()

    cli_main(["suggest", "--mapping", str(out), "--features", "n_classes=3", "opt_adaptive=1", "--k", "3"])
    lines = [LINE.match(line) for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    assert len(lines) == 3 and all(lines)
    for match in lines:
        SPACE.validate({n: float(v) for n, v in (pair.split("=") for pair in match.group(2).split())})

    narrow = root / "narrow.yaml"
    narrow.write_text("lr: {type: float, low: 1.0e-3, high: 2.0e-3, log: true}\n"
                      "weight_decay: {type: float, low: 1.0e-6, high: 1.0e-2, log: true}\n")
    cli_main(["suggest", "--mapping", str(out), "--features", "n_classes=3", "--k", "2", "--space", str(narrow)])
    for line in capsys.readouterr().out.splitlines()[1:]:
        config = dict(pair.split("=") for pair in LINE.match(line).group(2).split())
        assert 1e-3 <= float(config["lr"]) <= 2e-3


def test_suggest_and_collect_reject_bad_input_with_the_fix(collected, capsys) -> None:
    url, root = collected
    mapping = root / "fitted.mapping"
    if not mapping.exists():
        cli_main(["fit", str(mapping), f"pool={url}", "mapping=best_on_average"])
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        cli_main(["suggest", "--mapping", str(mapping), "--features", "n_classes"])
    with pytest.raises(SystemExit, match="unknown to the mapping"):
        cli_main(["suggest", "--mapping", str(mapping), "--features", "n_clases=3"])
    with pytest.raises(SystemExit, match="does not exist"):
        cli_main(["suggest", "--mapping", str(root / "missing.mapping")])
    with pytest.raises(ConfigError, match="unknown"):
        resolve_families(["imagenet_vit"])
    with pytest.raises(ConfigError, match="I/N"):
        parse_shard("2/2")
    with pytest.raises(SystemExit) as stop:
        cli_main(["fit", str(root / "x.mapping"), f"pool={url}", "mapping=oracle"])
    assert stop.value.code == 1 and "lightning-meta fit: mapping='oracle' is unknown" in capsys.readouterr().err


@pytest.mark.postgres
def test_two_sharded_collect_processes_fill_one_postgresql_pool(postgres_url) -> None:
    """Two machines' worth of ``collect`` (shard 0/2 and 1/2, 2 workers each) writing one PostgreSQL pool at once."""
    command = [sys.executable, "-m", "pool.collect", f"families=[{FAMILY}]", "trials=2",
               "seed=3", "workers=2", "probe=false", "progress_bar=false", f"pool={postgres_url}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    shards = [subprocess.Popen([*command, f"shard={i}/2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, cwd=Path(__file__).resolve().parents[2]) for i in range(2)]
    outputs = [shard.communicate(timeout=300)[0] for shard in shards]
    assert [shard.returncode for shard in shards] == [0, 0], outputs
    with ExperiencePool(postgres_url) as pool:
        frame = pool.frame(status=None)
    expected = [(t.key, job_config(SPACE, t.key, trial, seed=3)) for t in FAMILIES[FAMILY] for trial in range(2)]
    recorded = [(r["task"], SPACE.validate({n: r[f"hp_{n}"] for n in SPACE.names})) for _, r in frame.iterrows()]
    assert len(frame) == len(expected) and set(frame["status"]) == {"complete"}
    assert sorted(map(repr, recorded)) == sorted(map(repr, expected))
    again = plan(_compose([f"families=[{FAMILY}]", "trials=2", "seed=3", f"pool={postgres_url}"]))
    assert again == []
