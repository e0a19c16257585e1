"""Training-time augmentation: a torchvision ``transforms.v2`` pipeline from config, per input and per episode,
reproducible from the episode's seed, never applied to evaluation or prediction, recorded as training only."""

from __future__ import annotations

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils.data import TensorDataset
from torchvision.transforms import v2

from lightning_meta.data import EpisodicDataModule
from lightning_meta.learners import ProtoNet
from lightning_meta.learners.checkpoint import CHECKPOINT_KEY
from lightning_meta.nets import Conv4
from tests.conftest import REPO

SPEC = {"ways": 3, "shots": 2, "queries": 2}


def images(n_classes: int = 8, per_class: int = 5) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n_classes * per_class, 1, 16, 16), generator=g, dtype=torch.uint8)
    return TensorDataset(x, torch.arange(n_classes).repeat_interleave(per_class))


def module(augmentation=None) -> EpisodicDataModule:
    ds = images()
    return EpisodicDataModule(dataset={"train": ds, "test": ds}, train=SPEC, augmentation=augmentation,
                              train_episodes=4, val_episodes=2, test_episodes=2, meta_batch_size=2, eval_batch_size=2)


AFFINE = v2.RandomAffine(degrees=20, translate=(0.2, 0.2))


def test_each_training_episode_is_augmented_the_same_way_every_time_it_is_drawn():
    plain, augmented = module().episode_dataset("train"), module(AFFINE).episode_dataset("train")
    torch.manual_seed(123)  # the global random state must not matter, nor be consumed
    first = augmented[5]
    state = torch.random.get_rng_state()
    torch.manual_seed(999)
    again = augmented[5]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    torch.manual_seed(123)
    augmented[5]
    assert torch.equal(torch.random.get_rng_state(), state)
    raw = plain[5]
    assert torch.equal(first[1], raw[1]) and torch.equal(first[3], raw[3])  # the same classes and labels
    assert not torch.equal(first[0], raw[0])
    # per input: two images of one episode are not moved by one shared draw
    shifts = [(first[0][i] - raw[0][i]).abs().sum() for i in range(len(raw[0]))]
    assert len({round(float(s), 3) for s in shifts}) > 1


def test_evaluation_episodes_are_never_augmented():
    for stage in ("val", "test"):
        a, b = module(AFFINE).episode_dataset(stage)[0], module().episode_dataset(stage)[0]
        assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_the_config_group_builds_a_v2_pipeline_and_the_checkpoint_records_it_as_training_only(tmp_path):
    with initialize_config_dir(str(REPO / "conf"), version_base=None):
        cfg = compose("config", overrides=["augmentation=affine"])
    pipeline = instantiate(cfg.data.augmentation)
    assert isinstance(pipeline, v2.Compose) and isinstance(pipeline.transforms[0], v2.RandomAffine)
    dm = module(pipeline)
    learner = ProtoNet(Conv4(1, out_features=None, hidden=4, downsample="pool", image_size=16))
    trainer = L.Trainer(max_steps=1, limit_val_batches=0, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(learner, datamodule=dm)
    trainer.save_checkpoint(tmp_path / "a.ckpt")
    record = torch.load(tmp_path / "a.ckpt", weights_only=True)[CHECKPOINT_KEY]
    assert record["training_augmentation"].startswith("Compose(") and "RandomAffine" in record["training_augmentation"]
    loaded = ProtoNet.load_from_checkpoint(tmp_path / "a.ckpt", weights_only=True)
    assert loaded.training_augmentation == record["training_augmentation"]
