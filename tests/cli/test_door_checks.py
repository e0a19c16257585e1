"""What is handed to a library is checked at the door: pool URLs, accelerators, keys of ``_target_`` nodes, checkpoint
files (on every loading path), ``train=false`` and ``ckpt_path=last/best``, ``suggest`` features, one-class support sets.
Each is one line naming the problem and the fix, before anything is built."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from lightning_meta.cli.train import run
from lightning_meta.checks import check_target_keys
from lightning_meta.errors import ConfigError, DataError, PoolError
from lightning_meta.hpo.mappings import BestOnAverage, GBMSurrogate
from lightning_meta.hpo.pool import ExperiencePool
from lightning_meta.hpo.suggest import check_features, main as suggest_main
from lightning_meta.launch import check_devices
from lightning_meta.learners import MAML, ProtoNet
from lightning_meta.learners.prediction import load_learner
from tests.cli.test_follow_the_fix import ONE_STEP
from tests.cli.test_train_cli import _cfg
from tests.conftest import REPO
from tests.hpo.test_mappings import SPACE, meta_frame


class Payload:
    """A class torch.load(weights_only=True) refuses to unpickle."""


@pytest.mark.parametrize(("url", "fix"), [
    ("sqlite://relative.db", "'sqlite:///relative.db'"), ("sqlite:/x.db", "'sqlite:///x.db'"),
    ("postgres://me@host/db", "'postgresql://me@host/db'"), ("experience.db", "'sqlite:///experience.db'"),
])
def test_a_pool_url_with_a_common_typo_names_the_url_and_the_fix(url, fix, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PoolError, match=rf"^Experience pool URL '{url}' is not a database URL SQLAlchemy takes\. "
                                        rf"Fix: {fix}"):
        ExperiencePool(url)
    assert not list(tmp_path.iterdir())  # nothing was created


def test_a_pool_url_that_does_not_parse_is_a_pool_error_without_the_password():
    with pytest.raises(PoolError, match=r"'postgresql://me:\*\*\*@host:abc/db' is not a database URL") as err:
        ExperiencePool("postgresql://me:secret@host:abc/db")
    assert "secret" not in str(err.value)
    with pytest.raises(PoolError, match=r"'postgresql://me:\*\*\*@host/db'"):
        ExperiencePool("postgres://me:secret@host/db")


def test_gpus_the_machine_lacks_are_refused_before_anything_is_built(monkeypatch, tmp_path):
    monkeypatch.setattr("lightning_meta.launch.available_devices", lambda kind: 0)
    with pytest.raises(ConfigError, match=r"^trainer\.accelerator=gpu asks for a CUDA device but this machine has none\. "
                                          r"Fix: trainer=cpu"):
        run(_cfg(tmp_path, "trainer=gpu", "data=miniimagenet"))  # no data read: the DataError would come later
    with pytest.raises(ConfigError, match=r"trainer\.accelerator=cuda asks for a CUDA device"):
        check_devices({"accelerator": "cuda", "devices": 4})


def test_a_key_a_target_does_not_take_names_the_nearest_it_does(tmp_path):
    with pytest.raises(ConfigError, match=r"^trainer\.max_epoch=1 is not an argument of lightning\.pytorch\.Trainer: "
                                          r"did you mean trainer\.max_epochs\? Fix: trainer\.max_epochs=1\.$"):
        run(_cfg(tmp_path, "+trainer.max_epoch=1", "data=miniimagenet"))
    with pytest.raises(ConfigError, match=r"callbacks\.model_checkpoint\.monitr='val_acc' .* did you mean "
                                          r"callbacks\.model_checkpoint\.monitor\?"):
        run(_cfg(tmp_path, "+callbacks.model_checkpoint.monitr=val_acc", "data=miniimagenet"))
    with pytest.raises(ConfigError, match=r"model\.backbone\.hiden=8 .* did you mean model\.backbone\.hidden\?"):
        run(_cfg(tmp_path, "+model.backbone.hiden=8", "data=miniimagenet"))
    with pytest.raises(ConfigError, match=r"data\.meta_batch=2 .* did you mean data\.meta_batch_size\?"):
        check_target_keys({"_target_": "lightning_meta.data.EpisodicDataModule", "meta_batch": 2}, "data")
    with pytest.raises(ConfigError, match=r"^Trainer got trainer\.max_epochs='abc', but max_epochs must be an integer"):
        check_target_keys({"_target_": "lightning.pytorch.Trainer", "max_epochs": "abc"}, "trainer")
    check_target_keys({"_target_": "lightning.pytorch.loggers.TensorBoardLogger", "anything": 1}, "logger")  # **kwargs


@pytest.mark.parametrize(("argv", "line"), [
    (["trainer.max_epoch=1"], "Error: trainer.max_epoch is not a key of the config: did you mean trainer.max_epochs? "
                              "Fix: trainer.max_epochs=1"),
    (["model=maml", "model.inner_lrr=0.1"], "Error: model.inner_lrr is not a key of the config: did you mean "
                                            "model.inner_lr? Fix: model.inner_lr=0.1"),
])
def test_hydras_refusal_of_a_misspelt_key_is_one_line_with_the_nearest_key(argv, line, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    done = subprocess.run([sys.executable, str(REPO / "train.py"), *argv], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env={**env, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 1 and done.stderr.strip() == line, done.stderr[-2000:]


def test_testing_needs_a_trained_network_unless_asked_for_an_untrained_one(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"^train=false without ckpt_path would test an untrained network\. Fix: .*"
                                          r"ckpt_path=.* or set test_untrained=true"):
        run(_cfg(tmp_path, "train=false"))
    metrics = run(_cfg(tmp_path, "train=false", "test_untrained=true", *ONE_STEP))
    assert 0 <= metrics["test_acc"] <= 1
    out = capsys.readouterr().out
    assert "Testing an untrained network" in out and "Test accuracy of the untrained network:" in out


@pytest.mark.parametrize("which", ["last", "best"])
def test_last_or_best_without_such_a_checkpoint_names_the_folder(which, tmp_path):
    with pytest.raises(ConfigError, match=rf"^ckpt_path={which}: no {which} checkpoint in "
                                          rf"{tmp_path / 'checkpoints'}, the checkpoint folder of this run"):
        run(_cfg(tmp_path, "train=false", f"ckpt_path={which}"))


def test_last_and_best_are_found_in_the_runs_checkpoint_folder(tmp_path, capsys):
    steps = [o for o in ONE_STEP if o != "callbacks=none"]
    run(_cfg(tmp_path, *steps, "test=false"))
    for which in ("last", "best"):
        metrics = run(_cfg(tmp_path, *steps, "train=false", f"ckpt_path={which}"), overrides=[])
        assert 0 <= metrics["test_acc"] <= 1
        found = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"ckpt_path={which} is ")]
        assert found and found[0].endswith(".ckpt") and (which == "best") != found[0].endswith("last.ckpt")


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    path = tmp_path_factory.mktemp("crafted") / "crafted.ckpt"
    torch.save({"state_dict": {}, "payload": Payload()}, path)
    return path


REFUSED = (r"^Checkpoint .*crafted\.ckpt holds a Python object of tests\.cli\.test_door_checks\.Payload, which "
           r"lightning_meta does not unpickle .* Fix: re-save it with plain tensors .*"
           r"torch\.serialization\.add_safe_globals\(\[tests\.cli\.test_door_checks\.Payload\]\)")


@pytest.mark.parametrize("path", ["ProtoNet.load_from_checkpoint", "MAML.load_from_checkpoint", "load_learner",
                                  "train.py ckpt_path="])
def test_a_crafted_checkpoint_names_the_refused_global_and_the_safe_way_on_every_path(path, crafted, tmp_path):
    load = {"ProtoNet.load_from_checkpoint": lambda: ProtoNet.load_from_checkpoint(crafted),
            "MAML.load_from_checkpoint": lambda: MAML.load_from_checkpoint(crafted, weights_only=True),
            "load_learner": lambda: load_learner(crafted),
            "train.py ckpt_path=": lambda: run(_cfg(tmp_path, "train=false", f"ckpt_path={crafted}"))}[path]
    with pytest.raises(ConfigError, match=REFUSED) as err:
        load()
    assert "\n" not in str(err.value)


def test_a_corrupted_file_through_load_from_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ConfigError, match=r"is corrupted or not a PyTorch checkpoint"):
        ProtoNet.load_from_checkpoint(bad)


@pytest.fixture(scope="module")
def mappings():
    return {"gbm": GBMSurrogate(members=2, max_iter=30).fit(meta_frame(), SPACE),
            "average": BestOnAverage().fit(meta_frame(), SPACE)}


def test_suggest_names_features_it_does_not_read_and_values_outside_the_recorded_range(mappings):
    gbm, average = mappings["gbm"], mappings["average"]
    names = gbm.feature_names
    assert average.used_features() == [] and gbm.used_features() == names == ["u"]
    said = check_features(average, {"u": 1e308})  # not read: no range warning, the one that matters is this
    assert said == ["BestOnAverage does not read feature(s) u (it reads none): they do not change the proposals."]
    said = check_features(gbm, {names[0]: 1e308})
    assert said and f"Feature {names[0]}=1e+308 is outside the range" in said[0]
    with pytest.raises(ConfigError, match=r"is not a finite number"):
        check_features(gbm, {names[0]: float("nan")})
    with pytest.raises(ConfigError, match=r"^Feature 'nope' is unknown to the mapping"):
        check_features(gbm, {"nope": 1.0})


def test_suggest_header_lists_only_the_features_the_mapping_reads(capsys):
    suggest_main(["--features", "n_classes=1e308", "shots=-5", "--k", "1"])
    captured = capsys.readouterr()
    header = captured.out.splitlines()[0]
    assert header.endswith("features used: opt_sgd, opt_adaptive")
    assert "does not read feature(s) n_classes, shots" in captured.err and "Traceback" not in captured.err


def test_a_support_set_of_one_class_is_refused(tmp_path):
    from lightning_meta.data.preprocessing import describe

    learner = ProtoNet(backbone={"_target_": "lightning_meta.nets.Conv4", "hidden": 4})
    learner.preprocessing = describe(28, 1, "ink")
    image = np.zeros((28, 28), dtype=np.uint8)
    with pytest.raises(DataError, match=r"^A support set needs at least 2 classes, got 1 \('cat'\)"):
        learner.predict_task([image, image], ["cat", "cat"], [image])
