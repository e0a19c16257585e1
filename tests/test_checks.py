"""Bad values are refused when an object is built, each with one line naming the value, what is allowed and the fix.

One example per entry of docs/bad_inputs.md; tests/test_checks_properties.py draws many more.
"""

import math

import lightning as L
import pytest
from hydra import compose, initialize_config_dir
from torch import nn

from lightning_meta.cli.train import run
from lightning_meta.data import EpisodeSpec, EpisodicDataModule
from lightning_meta.data.omniglot import load_omniglot
from lightning_meta.errors import ConfigError
from lightning_meta.launch import check_launch, ddp_processes
from lightning_meta.learners import MAML, MetaLearner, ProtoNet, Reptile
from lightning_meta.nets import Conv4, ResNet12
from tests.conftest import REPO


def _refused(build, match: str) -> str:
    with pytest.raises(ConfigError, match=match) as err:
        build()
    text = str(err.value)
    assert "\n" not in text and "Fix:" in text
    return text


def _cfg(tmp_path, *overrides):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=[f"paths.root_dir={tmp_path}", *overrides])


def test_learner_values_of_the_wrong_type_or_range_are_refused():
    net = nn.Linear(4, 3)
    _refused(lambda: MAML(net, inner_lr=-0.5), r"^MAML got inner_lr=-0\.5, but inner_lr must be a finite number > 0 "
             r"\(input should be greater than 0\)\. Fix: set inner_lr to a finite number > 0, e\.g\. its default 0\.4\.$")
    _refused(lambda: MAML(net, task_threads=2.5), r"task_threads=2\.5, but task_threads must be an integer >= 1")
    _refused(lambda: MAML(net, lr="fast"), r"lr='fast', but lr must be a finite number > 0")
    _refused(lambda: ProtoNet(net, lr=math.nan), r"lr=nan, but lr must be a finite number > 0 \(input should be a finite")
    _refused(lambda: Reptile(net, inner_optimizer="adamw"), r"inner_optimizer must be one of 'adam', 'sgd'")
    _refused(lambda: Reptile(net, inner_steps=0), r"^Reptile got inner_steps=0, .* e\.g\. its default 5\.$")
    _refused(lambda: MetaLearner(net, weight_decay=-1e-4), r"weight_decay must be a finite number >= 0")
    _refused(lambda: MAML(net, inner_steps_eval=True), r"inner_steps_eval=True, but inner_steps_eval must be an integer "
             r">= 1 or null")
    _refused(lambda: MAML(Conv4(1, 5, hidden=8, image_size=14), anil=True, per_step_bn=True),
             r"^anil=True adapts the head alone, so per_step_bn=True .* Fix: set per_step_bn=false, or anil=false\.$")


def test_training_without_queries_is_refused_for_the_learners_whose_loss_needs_them(tmp_path):
    for model in ("maml", "protonet"):
        with pytest.raises(ConfigError, match=r"meta-trains on the query images .* data\.train\.queries=0: its loss "
                                              r"would be NaN\. Fix: set data\.train\.queries >= 1"):
            run(_cfg(tmp_path, f"model={model}", "data.train.queries=0"))  # refused before anything is built
    check_launch(_cfg(tmp_path, "model=reptile", "data.train.queries=0"))  # Reptile trains on the support set
    check_launch(_cfg(tmp_path, "model=maml", "data.train.queries=0", "train=false"))  # nothing is trained
    # In Python, Trainer.fit refuses them when it sets up, before the first step.
    dm = EpisodicDataModule(train={"ways": 5, "shots": 1, "queries": 0}, test={"ways": 5, "shots": 1, "queries": 1},
                            dataset_kwargs={"image_size": 14})
    trainer = L.Trainer(accelerator="cpu", max_steps=1, logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False)
    with pytest.raises(ConfigError, match=r"^ProtoNet meta-trains on the query images"):
        trainer.fit(ProtoNet(Conv4(1, None, hidden=8, image_size=14)), datamodule=dm)
    assert trainer.global_step == 0


def test_datamodule_values_of_the_wrong_type_or_range_are_refused():
    _refused(lambda: EpisodicDataModule(train={"ways": 5.5, "shots": 1}),
             r"^EpisodicDataModule got train\.ways=5\.5, but ways must be an integer >= 1 \(input should be a valid "
             r"integer\)\. Fix: set train\.ways to an integer >= 1\.$")
    _refused(lambda: EpisodicDataModule(seed=-1), r"seed=-1, but seed must be an integer >= 0 .* its default 42\.$")
    _refused(lambda: EpisodicDataModule(meta_batch_size=0), r"meta_batch_size=0, but meta_batch_size must be an integer")
    _refused(lambda: EpisodicDataModule(test={"ways": 5, "shots": 1, "querys": 15}),
             r"test\.querys=15, which EpisodeSpec does not take\. Did you mean test\.queries\? .* ways, shots, queries, "
             r"within_alphabet, drawers\.$")
    _refused(lambda: EpisodicDataModule(val={"ways": 5, "queries": 15}), r"val=.* without ways or shots")
    _refused(lambda: EpisodicDataModule(dataset="imagenet21k"), r"Unknown dataset 'imagenet21k'\. Fix: use one of")
    _refused(lambda: EpisodeSpec(5, 0, 15), r"^EpisodeSpec got shots=0, but shots must be an integer >= 1")


def test_evaluation_episodes_without_queries_are_refused():
    _refused(lambda: EpisodicDataModule(test={"ways": 5, "shots": 1, "queries": 0}),
             r"got test\.queries=0 .* evaluation measures accuracy on query images\. Fix: set test\.queries >= 1")
    _refused(lambda: EpisodicDataModule(train={"ways": 5, "shots": 10, "queries": 0}), r"test\.queries=0 \(.*test to train")
    EpisodicDataModule(train={"ways": 5, "shots": 10, "queries": 0}, test={"ways": 5, "shots": 1, "queries": 15})


def test_loader_arguments_are_checked_when_the_datamodule_is_built(tmp_path):
    _refused(lambda: EpisodicDataModule(dataset_kwargs={"imagesize": 32}),
             r"^EpisodicDataModule got dataset_kwargs\.imagesize=32, which load_omniglot does not take\. Did you mean dataset_kwargs\.image_size\? Fix: correct "
             r"or remove it; load_omniglot takes root, image_size, split, download, rotations, val_alphabets, split_seed\.$")
    _refused(lambda: EpisodicDataModule(dataset_kwargs={"image_size": 0}), r"dataset_kwargs\.image_size=0, but image_size")
    _refused(lambda: EpisodicDataModule(dataset="miniimagenet"), r"got root=null, but root must be a string or a path")
    _refused(lambda: load_omniglot(tmp_path, imagesize=32), r"^load_omniglot got imagesize=32, which load_omniglot")
    _refused(lambda: load_omniglot(split="random"), r"split='random', but split must be one of 'vinyals', 'lake'")


def test_backbone_values_are_checked_when_built():
    _refused(lambda: Conv4(hidden=0), r"^Conv4 got hidden=0, but hidden must be an integer >= 1")
    _refused(lambda: Conv4(1, 5, 8, "max"), r"downsample='max', but downsample must be one of 'stride', 'pool'")
    _refused(lambda: ResNet12(hidden=64), r"^ResNet12 got hidden=64, which ResNet12 does not take\. .* channels\.$")
    _refused(lambda: ResNet12(channels=[]), r"channels=\[\], but channels must be a non-empty list of integers >= 1")


def test_a_meta_batch_that_does_not_split_over_the_ddp_processes_is_refused_before_launch(tmp_path):
    _refused(lambda: run(_cfg(tmp_path, "trainer=ddp", "trainer.num_nodes=2", "data.meta_batch_size=30")),
             r"^data\.meta_batch_size=30 does not split over the 4 DDP processes \(trainer\.devices=2 x "
             r"trainer\.num_nodes=2\).* Fix: set data\.meta_batch_size to a multiple of 4 \(e\.g\. 32\)")
    check_launch(_cfg(tmp_path, "trainer=ddp", "data.meta_batch_size=30"))  # 2 processes take 15 tasks each
    assert ddp_processes({"strategy": "ddp", "devices": "0,1,2"}) == 3
    assert ddp_processes({"strategy": {"_target_": "lightning.pytorch.strategies.DDPStrategy"}, "devices": [0, 1],
                          "num_nodes": 3}) == 6
    assert ddp_processes({"strategy": "ddp", "devices": "auto"}) is None  # left to the hardware: train_dataloader checks
    assert ddp_processes({"strategy": "single_device", "devices": 1}) is None
