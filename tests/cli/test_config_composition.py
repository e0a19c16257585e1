"""Every model x data combination composes and instantiates from the Hydra configs."""

import inspect

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from hydra.utils import instantiate
from lightning.pytorch import Trainer
from omegaconf import open_dict

from lightning_meta.preflight import check_top_level_keys
from tests.conftest import REPO

MODELS = ["maml", "fomaml", "reptile", "protonet"]
DATA = ["omniglot", "miniimagenet", "cifarfs", "fc100", "folder"]
EXPERIMENTS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = "unused"
    return cfg


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("data", DATA)
def test_every_model_and_data_compose(model, data):
    overrides = [f"model={model}", f"data={data}"]
    if data == "folder":
        overrides.append("data.root=some/folder")
    cfg = _compose(*overrides)
    assert cfg.data.dataset == data
    net = instantiate(cfg.model.backbone)
    assert sum(p.numel() for p in net.parameters()) > 0


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_builds_its_learner(experiment):
    cfg = _compose(f"+experiment={experiment}")
    check_top_level_keys(cfg)  # every key of the preset lands where train.py reads it
    learner = instantiate(cfg.model)
    assert learner.hparams.lr == cfg.model.lr


@pytest.mark.parametrize("trainer", ["cpu", "gpu", "ddp"])
def test_trainer_configs_list_only_trainer_arguments(trainer):
    # every key is a Trainer argument, so `trainer.KEY=...` overrides work without `+` and nothing is misspelt
    cfg = _compose(f"trainer={trainer}")
    arguments = set(inspect.signature(Trainer.__init__).parameters) - {"self", "callbacks", "logger"}
    keys = set(cfg.trainer) - {"_target_"}
    assert keys <= arguments, keys - arguments
    for common in ("max_steps", "min_epochs", "min_steps", "max_time", "limit_train_batches", "limit_val_batches",
                   "limit_test_batches", "val_check_interval", "check_val_every_n_epoch", "precision",
                   "gradient_clip_val", "accumulate_grad_batches", "num_sanity_val_steps", "log_every_n_steps",
                   "enable_progress_bar", "deterministic", "benchmark"):
        assert common in keys
    overridden = _compose(f"trainer={trainer}", "trainer.max_steps=3", "trainer.max_time=00:00:01:00",
                          "trainer.precision=bf16-mixed", "trainer.limit_val_batches=0")
    assert overridden.trainer.max_steps == 3 and overridden.trainer.max_time == "00:00:01:00"


def test_trainval_presets_checkpoint_the_final_weights_without_validation():
    for experiment in ("protonet_omniglot_trainval", "protonet_omniglot_trainval_cosine"):
        cfg = _compose(f"+experiment={experiment}")
        assert cfg.trainer.limit_val_batches == 0 and cfg.callbacks.model_checkpoint.monitor is None


def test_unknown_model_group_names_the_valid_options():
    with pytest.raises(MissingConfigException) as err:
        _compose("model=mamll")
    text = str(err.value)
    assert "mamll" in text and "maml" in text and "protonet" in text


def test_unknown_data_group_names_the_valid_options():
    with pytest.raises(MissingConfigException) as err:
        _compose("data=imagenet21k")
    assert "imagenet21k" in str(err.value) and "miniimagenet" in str(err.value)
