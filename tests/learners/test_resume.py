"""Resuming meta-training from a checkpoint reproduces the uninterrupted run (same episodes, same weights)."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_meta.data import EpisodicDataModule
from lightning_meta.learners import MAML, Reptile
from lightning_meta.nets import Conv4

# the resumed run writes into the folder of the interrupted one, as a resumed run does
pytestmark = pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")


class StopAfter(L.Callback):
    """Interrupts a run planned for more epochs (what a crash or a time limit does)."""

    def __init__(self, epochs: int | None) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.epochs is not None and trainer.current_epoch + 1 >= self.epochs:
            trainer.should_stop = True


def _fit(learner_cls, root, stop_after=None, ckpt_path=None, **kwargs):
    L.seed_everything(0)
    dm = EpisodicDataModule(train={"ways": 5, "shots": 1, "queries": 2}, meta_batch_size=2, train_episodes=6,
                            val_episodes=2, test_episodes=2, dataset_kwargs={"image_size": 14}, seed=3)
    model = learner_cls(Conv4(1, 5, hidden=8, image_size=14), **kwargs)
    trainer = L.Trainer(accelerator="cpu", max_epochs=3, deterministic=True, inference_mode=False, logger=False,
                        enable_progress_bar=False, default_root_dir=root, limit_val_batches=1,
                        callbacks=[StopAfter(stop_after), ModelCheckpoint(dirpath=root, save_last=True, save_top_k=-1, every_n_epochs=1)])
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _check(learner_cls, tmp_path, **kwargs):
    full = _fit(learner_cls, tmp_path / "full", **kwargs)
    _fit(learner_cls, tmp_path / "cut", stop_after=1, **kwargs)
    resumed = _fit(learner_cls, tmp_path / "cut", ckpt_path=str(tmp_path / "cut" / "last.ckpt"), **kwargs)
    one_epoch = torch.load(tmp_path / "full" / "epoch=0-step=3.ckpt", weights_only=True)["state_dict"]
    assert any(not torch.equal(one_epoch[k], full[k]) for k in full)  # training did move the weights after epoch 0
    for k in full:
        assert torch.equal(full[k], resumed[k]), k


def test_maml_resume_reproduces_uninterrupted_run(tmp_path):
    _check(MAML, tmp_path, inner_steps=1)


def test_reptile_resume_keeps_its_annealed_outer_rate(tmp_path):
    _check(Reptile, tmp_path, inner_steps=2)
