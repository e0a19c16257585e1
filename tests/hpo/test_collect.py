"""``lightning-meta collect`` and ``suggest`` end to end on real (tiny) Omniglot alphabet trainings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lightning_meta.cli.main import main as cli_main
from lightning_meta.errors import ConfigError
from lightning_meta.hpo.collect import resolve_alphabets, trial_config
from lightning_meta.hpo.mappings import GBMSurrogate
from lightning_meta.hpo.mappings.base import Mapping
from lightning_meta.hpo.pool import ExperiencePool
from lightning_meta.hpo.space import SearchSpace
from lightning_meta.hpo.tasks import AlphabetDataModule, SmallCNN, alphabets

SPACE = SearchSpace.from_yaml(Path(__file__).resolve().parents[2] / "conf/space/default.yaml")
TASKS = ["Latin", "Japanese_(hiragana)"]
LINE = re.compile(r"^(\d+)\s+(.*?)\s+predicted=(-?[\d.]+) ± ([\d.]+)$")


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> tuple[str, Path]:
    """2 alphabets x 2 trials x 1 epoch collected through the console command into a fresh pool."""
    root = tmp_path_factory.mktemp("collect")
    url = f"sqlite:///{root / 'pool.db'}"
    cli_main(["collect", "alphabets=[Latin,'Japanese_(hiragana)']", "trials=2", "epochs=1", "seed=3",
              "progress_bar=false", f"pool={url}", f"hydra.sweep.dir={root / 'sweep'}"])
    return url, root


def test_task_distribution_splits_background_and_evaluation() -> None:
    background, evaluation = alphabets("background"), alphabets("evaluation")
    assert len(background) == 30 and len(evaluation) == 20 and not set(background) & set(evaluation)
    dm = AlphabetDataModule("Latin", batch_size=16)
    assert dm.num_classes == 26 and dm.input_shape == (1, 28, 28)
    assert len(dm.train_dataset) == 26 * 14 and len(dm.val_dataset) == 26 * 6
    assert dm.meta_features()["n_classes"] == 26.0
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 1, 28, 28) and SmallCNN(dm.num_classes)(x).shape == (16, 26)


def test_collect_records_one_complete_run_per_alphabet_and_trial(collected) -> None:
    url, _ = collected
    with ExperiencePool(url) as pool:
        frame = pool.frame(status=None)
    assert len(frame) == 4 and set(frame["status"]) == {"complete"}
    assert sorted(frame["task"]) == sorted(TASKS * 2)
    for task in TASKS:
        rows = frame[frame["task"] == task]
        recorded = [{n: row[f"hp_{n}"] for n in SPACE.names} for _, row in rows.iterrows()]
        expected = [trial_config(SPACE, task, t, seed=3) for t in range(2)]
        assert sorted(map(repr, map(SPACE.validate, recorded))) == sorted(map(repr, expected))
        assert rows["f_n_classes"].nunique() == 1
    assert frame["objective"].between(0.0, 1.0).all()
    assert frame.loc[frame["task"] == "Latin", "f_n_classes"].iloc[0] == 26.0


def test_trial_configs_are_reproducible_and_differ_between_tasks() -> None:
    assert trial_config(SPACE, "Latin", 4, seed=0) == trial_config(SPACE, "Latin", 4, seed=0)
    assert trial_config(SPACE, "Latin", 0, seed=0) != trial_config(SPACE, "Greek", 0, seed=0)
    assert trial_config(SPACE, "Latin", 0, seed=0) != trial_config(SPACE, "Latin", 0, seed=1)


def test_fit_saves_a_mapping_that_loads_and_suggest_prints_configs_in_the_space(collected, capsys) -> None:
    url, root = collected
    out = root / "fitted.mapping"
    cli_main(["collect", "--fit", str(out), f"pool={url}", "mapping=gbm"])
    mapping = Mapping.load(out)
    assert isinstance(mapping, GBMSurrogate) and mapping.space == SPACE and "n_classes" in mapping.feature_names
    capsys.readouterr()

    cli_main(["suggest", "--mapping", str(out), "--features", "n_classes=30", "shots=14", "--k", "3"])
    lines = [LINE.match(line) for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    assert len(lines) == 3 and all(lines)
    for match in lines:
        config = dict(pair.split("=") for pair in match.group(2).split())
        SPACE.validate({n: (int(v) if n == "batch_size" else float(v)) for n, v in config.items()})

    narrow = root / "narrow.yaml"
    narrow.write_text("lr: {type: float, low: 1.0e-3, high: 2.0e-3, log: true}\n"
                      "weight_decay: {type: float, low: 1.0e-6, high: 1.0e-2, log: true}\n"
                      "batch_size: {type: int, low: 16, high: 20, target: datamodule.batch_size}\n")
    cli_main(["suggest", "--mapping", str(out), "--features", "n_classes=30", "--k", "2", "--space", str(narrow)])
    for line in capsys.readouterr().out.splitlines()[1:]:
        config = dict(pair.split("=") for pair in LINE.match(line).group(2).split())
        assert 1e-3 <= float(config["lr"]) <= 2e-3 and 16 <= int(config["batch_size"]) <= 20


def test_suggest_and_collect_reject_bad_input_with_the_fix(collected, capsys) -> None:
    url, root = collected
    mapping = root / "fitted.mapping"
    if not mapping.exists():
        cli_main(["collect", "--fit", str(mapping), f"pool={url}", "mapping=best_on_average"])
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        cli_main(["suggest", "--mapping", str(mapping), "--features", "n_classes"])
    with pytest.raises(SystemExit, match="unknown to the mapping"):
        cli_main(["suggest", "--mapping", str(mapping), "--features", "n_clases=3"])
    with pytest.raises(SystemExit, match="does not exist"):
        cli_main(["suggest", "--mapping", str(root / "missing.mapping")])
    with pytest.raises(ConfigError, match="not Omniglot alphabets"):
        resolve_alphabets(["Klingon"])
    with pytest.raises(ConfigError, match="unknown"):
        cli_main(["collect", "--fit", str(root / "x.mapping"), f"pool={url}", "mapping=oracle"])
