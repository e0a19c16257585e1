"""Every model x data combination composes and instantiates from the Hydra configs."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from hydra.utils import instantiate
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
