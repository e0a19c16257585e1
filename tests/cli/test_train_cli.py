"""``train.py`` end to end at a tiny size: every learner trains and tests; bad input stops before training."""

import math
import os
import subprocess
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import open_dict

from lightning_meta.cli.main import main as console_main
from lightning_meta.cli.main import selectable_groups
from lightning_meta.cli.train import run
from lightning_meta.errors import ConfigError, DataError
from lightning_meta.preflight import check_top_level_keys
from tests.conftest import REPO

CONF = REPO / "conf"
TINY = ["data.train_episodes=4", "data.meta_batch_size=2", "data.val_episodes=2", "data.test_episodes=6",
        "data.eval_batch_size=3", "trainer.max_epochs=1", "image.hidden=8", "logger=csv"]


def _cfg(tmp_path, *overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.root_dir = str(tmp_path)
    return cfg


@pytest.mark.parametrize("model", ["maml", "fomaml", "reptile", "protonet"])
def test_each_learner_meta_trains_and_reports_test_accuracy_with_ci(tmp_path, model, capsys):
    extra = ["model.inner_steps_eval=2"] if model != "protonet" else []
    metrics = run(_cfg(tmp_path, f"model={model}", *TINY, *extra))
    assert 0.0 <= metrics["test_acc"] <= 1.0 and metrics["test_acc_ci95"] > 0 and metrics["test_episodes"] == 6
    assert "Test accuracy:" in capsys.readouterr().out
    assert list(tmp_path.glob("checkpoints/*.ckpt")) and list(tmp_path.glob("csv/*/metrics.csv"))


@pytest.mark.parametrize("model", ["maml", "protonet"])
def test_bf16_mixed_precision_trains_and_evaluates(tmp_path, model):
    # Lightning's autocast must cover MAML's second-order inner loop (gradients in validation and test too)
    extra = ["model.inner_steps_eval=2"] if model != "protonet" else []
    metrics = run(_cfg(tmp_path, f"model={model}", "trainer.precision=bf16-mixed", *TINY, *extra))
    assert 0.0 <= metrics["test_acc"] <= 1.0 and metrics["test_episodes"] == 6
    assert math.isfinite(metrics["test_acc_ci95"])
    ckpt = next(tmp_path.glob("checkpoints/*.ckpt"))
    state = torch.load(ckpt, weights_only=False)["state_dict"]
    assert all(v.dtype == torch.float32 and v.isfinite().all() for v in state.values() if v.is_floating_point())


def test_train_py_prints_accuracy_and_ci(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "train.py"), *TINY, f"paths.root_dir={tmp_path}", "callbacks=none"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Test accuracy:" in done.stdout and "(95% CI)" in done.stdout and "BatchNorm: running" in done.stdout
    assert "LeafSpec" not in done.stderr  # a third-party deprecation the command line filters (cli/quiet.py)


def test_miniimagenet_without_files_stops_at_once_saying_where_and_how(tmp_path):
    with pytest.raises(DataError) as err:
        run(_cfg(tmp_path, "model=maml", "data=miniimagenet"))
    text = str(err.value)
    assert str(tmp_path / "data" / "miniimagenet") in text and "images" in text and ".pkl" in text


def test_backbone_that_cannot_take_the_image_size_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot take inputs of shape \(1, 56, 56\)"):
        run(_cfg(tmp_path, "model=maml", "image.downsample=pool", "data.dataset_kwargs.image_size=56", *TINY))


def test_head_narrower_than_the_test_ways_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"head has 5 outputs but the (val|test) episodes are 20-way"):
        run(_cfg(tmp_path, "model=maml", "data.test.ways=20", *TINY))


def test_misspelled_config_key_is_refused_by_hydra(tmp_path):
    with pytest.raises(ConfigCompositionException, match="inner_lrr"):
        _cfg(tmp_path, "model=maml", "model.inner_lrr=0.1")


def test_console_help_lists_the_config_groups(capsys):
    console_main(["--help"])
    out = capsys.readouterr().out
    for line in ("model", "maml, protonet, reptile", "miniimagenet", "ddp", "tensorboard"):
        assert line in out or line.replace(", ", ", fomaml, ", 1) in out


def test_every_option_the_help_lists_composes_into_a_config_train_py_accepts(tmp_path):
    # a group that holds configs included by other configs (the collect command's search space) is not listed
    groups = selectable_groups()
    assert "space" not in groups and "hydra" not in groups and groups["hpo"] == ["mapping"]
    for group, options in groups.items():
        for option in options:
            override = f"+experiment={option}" if group == "experiment" else f"{group}={option}"
            extra = ["data.root=some/folder"] if override == "data=folder" else []
            check_top_level_keys(_cfg(tmp_path, override, *extra))


def test_trainer_max_steps_is_a_key_of_the_config_and_stops_the_run(tmp_path):
    # the trainer configs list Lightning's arguments, so they are set without Hydra's `+`
    cfg = _cfg(tmp_path, *TINY, "data.train_episodes=20", "trainer.max_steps=3", "test=false", "callbacks=none")
    assert cfg.trainer.max_steps == 3
    run(cfg)
    ckpt = torch.load(next(tmp_path.rglob("*.ckpt")), map_location="cpu", weights_only=False)  # Lightning's default
    assert ckpt["global_step"] == 3 and ckpt["epoch"] == 0  # 10 meta-batches in the epoch, stopped after 3


def test_console_rejects_unknown_command():
    with pytest.raises(SystemExit, match="unknown command 'collect'"):  # the pool's harness is not in the package
        console_main(["collect"])


def _train_py(tmp_path, *overrides):
    return subprocess.run([sys.executable, str(REPO / "train.py"), *TINY, f"paths.root_dir={tmp_path}", "callbacks=none",
                           *overrides], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"})


def test_a_diverged_run_exits_non_zero_and_reports_no_accuracy(tmp_path):
    done = _train_py(tmp_path, "model=maml", "model.inner_lr=1e30")  # the first inner step overflows
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("Error: Meta-training diverged")
    assert "Traceback" not in done.stderr and "Test accuracy" not in done.stdout


def test_a_project_error_is_one_line_and_exit_status_1(tmp_path):
    done = _train_py(tmp_path, "model=maml", "model.lr_schedule=exponential")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "InstantiationException" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: MAML got lr_schedule='exponential', but lr_schedule must be one of 'step', 'cosine', 'linear' (input "
        "should be 'step', 'cosine' or 'linear'). Fix: set lr_schedule to one of 'step', 'cosine', 'linear', e.g. its "
        "default 'step'.")
