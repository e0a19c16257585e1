"""Testing or resuming a checkpoint rebuilds the learner it was trained with; contradictions are one-line errors."""

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from lightning_meta.cli.train import run
from lightning_meta.errors import ConfigError
from lightning_meta.learners import MAML, ProtoNet
from lightning_meta.learners.checkpoint import learner_for_checkpoint, read_checkpoint
from lightning_meta.nets import Conv4
from tests.cli.test_train_cli import TINY, _cfg, _train_py


@pytest.fixture(scope="module")
def strided_protonet(tmp_path_factory):
    """A ProtoNet trained on the strided Conv4 (the quickstart network), its checkpoint and its test accuracy."""
    out = tmp_path_factory.mktemp("protonet")
    metrics = run(_cfg(out, *TINY, "model.backbone.downsample=stride"))
    return out / "checkpoints" / "last.ckpt", metrics["test_acc"]


@pytest.fixture(scope="module")
def maml_ckpt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("maml")
    run(_cfg(out, "model=maml", *TINY, "model.inner_lr=0.3", "model.inner_steps_eval=2", "test=false"))
    return out / "checkpoints" / "last.ckpt"


def _test(tmp_path, ckpt, *overrides):
    """``train.py train=false ckpt_path=CKPT OVERRIDES`` in this process, with OVERRIDES as its command line."""
    command_line = [*TINY, "callbacks=none", "train=false", f"ckpt_path={ckpt}", *overrides]
    return run(_cfg(tmp_path, *command_line), overrides=command_line)


def test_testing_a_checkpoint_rebuilds_the_network_it_was_trained_with(strided_protonet, tmp_path, capsys):
    ckpt, trained_acc = strided_protonet
    # The trap: the config's default network (max-pool Conv4) takes the strided network's weights without complaint.
    default = instantiate(_cfg(tmp_path, *TINY).model)
    default.load_state_dict(torch.load(ckpt, weights_only=True)["state_dict"])
    assert default.backbone.downsample == "pool"
    capsys.readouterr()
    assert _test(tmp_path, ckpt)["test_acc"] == trained_acc  # the same weights in the same network
    assert "model.backbone.downsample=stride (the config says pool)" in capsys.readouterr().out


def test_unset_settings_come_from_the_checkpoint_and_run_settings_from_the_command_line(maml_ckpt, tmp_path):
    command_line = ["model=maml", "model.inner_steps_eval=5", "model.task_threads=2", "model.channels_last=false"]
    cfg = _cfg(tmp_path, *TINY, *command_line)
    learner, notes = learner_for_checkpoint(cfg.model, read_checkpoint(maml_ckpt), maml_ckpt, command_line)
    assert isinstance(learner, MAML) and learner.inner_lr == 0.3  # trained with 0.3, the config says 0.4
    assert "model.inner_lr=0.3 (the config says 0.4)" in notes
    assert (learner.inner_steps_eval, learner.task_threads, learner.hparams.channels_last) == (5, 2, False)


def test_test_shift_is_a_run_setting_even_for_a_checkpoint_recorded_before_it(strided_protonet, tmp_path):
    ckpt, _ = strided_protonet
    checkpoint = read_checkpoint(ckpt)
    checkpoint["hyper_parameters"].pop("test_shift", None)  # as written before the setting existed
    command_line = ["model.test_shift=1"]
    cfg = _cfg(tmp_path, *TINY, "model.backbone.downsample=stride", *command_line)
    learner, _ = learner_for_checkpoint(cfg.model, checkpoint, ckpt, command_line)
    assert isinstance(learner, ProtoNet) and learner.hparams.test_shift == 1


def test_a_checkpoint_of_another_learner_is_built_as_that_learner_unless_model_is_given(maml_ckpt, tmp_path, capsys):
    metrics = _test(tmp_path, maml_ckpt)  # the default config selects ProtoNet
    assert 0 <= metrics["test_acc"] <= 1
    assert "learner=MAML (the config says ProtoNet)" in capsys.readouterr().out
    with pytest.raises(ConfigError, match=r"holds a MAML learner, but model=protonet selects ProtoNet\. Fix: select the "
                                          r"checkpoint's learner \(model=maml\)"):
        _test(tmp_path, maml_ckpt, "model=protonet")


@pytest.mark.parametrize("override, message", [
    ("model.inner_lr=0.1", r"model\.inner_lr is 0\.3 in the checkpoint, 0\.1 on the command line\. Fix: drop the "
                           r"override"),
    ("image.downsample=pool", r"model\.backbone\.downsample is stride in the checkpoint, pool on the command line "
                              r"\(via image\.downsample\)"),
    ("model.backbone._target_=lightning_meta.nets.ResNet12",
     r"model\.backbone\._target_ is lightning_meta\.nets\.Conv4 in the checkpoint, lightning_meta\.nets\.ResNet12"),
    ("+model.distance=cosine", r"model\.distance is \(no such setting\) in the checkpoint, cosine"),
])
def test_a_setting_that_contradicts_the_checkpoint_is_refused_naming_both_values(maml_ckpt, tmp_path, override,
                                                                                 message):
    with pytest.raises(ConfigError, match=message):
        _test(tmp_path, maml_ckpt, "model=maml", override)


def test_the_command_line_error_is_one_line_and_exit_status_1(maml_ckpt, tmp_path):
    done = _train_py(tmp_path, "model=maml", "train=false", f"ckpt_path={maml_ckpt}", "model.inner_lr=0.1")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: Checkpoint {maml_ckpt} contradicts the command line: model.inner_lr is 0.3 in the "
                           "checkpoint, 0.1 on the command line. Fix: drop the override"), last


def test_load_from_checkpoint_of_another_learner_or_backbone_names_both(strided_protonet):
    ckpt, _ = strided_protonet
    with pytest.raises(ConfigError, match=r"This checkpoint holds a ProtoNet learner, not a MAML\. Fix: "
                                          r"ProtoNet\.load_from_checkpoint"):
        MAML.load_from_checkpoint(ckpt, weights_only=True)
    with pytest.raises(ConfigError, match=r"do not fit this ProtoNet: its backbone was Conv4\(.*hidden=64, "
                                          r"downsample=stride.*\), this one is Conv4\(.*hidden=16.*backbone\.features\.0\.0"
                                          r"\.weight is \[64, 1, 3, 3\] there, \[16, 1, 3, 3\] here"):
        ProtoNet.load_from_checkpoint(ckpt, weights_only=True, backbone=Conv4(1, None, hidden=16, downsample="stride"))


def test_data_of_another_image_shape_than_the_checkpoints_is_refused(strided_protonet, tmp_path):
    ckpt, _ = strided_protonet
    with pytest.raises(ConfigError, match=r"trained on 1x28x28 images \(C x H x W\) but data 'omniglot' gives 1x14x14"):
        _test(tmp_path, ckpt, "data.dataset_kwargs.image_size=14")


def test_a_checkpoint_holding_python_objects_is_not_unpickled(tmp_path):
    path = tmp_path / "objects.ckpt"
    torch.save({"state_dict": {}, "where": Path("somewhere")}, path)
    with pytest.raises(ConfigError, match=r"holds a Python object of pathlib\.\w*Path, which lightning_meta does not "
                                          r"unpickle .*add_safe_globals\(\[pathlib\.\w*Path\]\)"):
        read_checkpoint(path)
