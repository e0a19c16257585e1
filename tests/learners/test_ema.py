"""``EMAWeights``: the averaged weights a short run tests are no worse than its live weights, where Lightning's
``EMAWeightAveraging`` (same decay) loses most of the accuracy; with validation the better of the two is kept."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging, ModelCheckpoint

from lightning_meta.callbacks import EMAWeights
from lightning_meta.callbacks.ema import warmed_decay
from lightning_meta.data import EpisodicDataModule
from lightning_meta.errors import ConfigError
from lightning_meta.learners import ProtoNet
from lightning_meta.learners.checkpoint import CHECKPOINT_KEY
from lightning_meta.nets import Conv4

STEPS = 120


def short_run(callback, tmp_path=None, validate: bool = False) -> tuple[float, float, ProtoNet]:
    """A ProtoNet trained for STEPS episodes (far fewer than a 0.999 average spans); its test accuracy and CI."""
    torch.manual_seed(0)
    data = EpisodicDataModule(dataset="omniglot", train={"ways": 20, "shots": 1, "queries": 5},
                              test={"ways": 5, "shots": 1, "queries": 5}, meta_batch_size=1, train_episodes=STEPS,
                              val_episodes=40, test_episodes=200, eval_batch_size=50)
    learner = ProtoNet(Conv4(1, None, 16, "pool", 28), lr=3e-3, bn_mode="running")
    callbacks = [c for c in (callback,) if c is not None]
    if tmp_path is not None:
        callbacks.append(ModelCheckpoint(dirpath=tmp_path, save_last=True))
    trainer = L.Trainer(max_steps=STEPS, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=tmp_path is not None, callbacks=callbacks, num_sanity_val_steps=0,
                        limit_val_batches=1.0 if validate else 0)
    trainer.fit(learner, datamodule=data)
    result = trainer.test(learner, datamodule=data, verbose=False)[0]
    return result["test_acc"], result["test_acc_ci95"], learner


def test_the_decay_warms_up_with_the_number_of_updates():
    assert warmed_decay(0.999, 0) == pytest.approx(0.1)
    assert warmed_decay(0.999, 90) == pytest.approx(0.91)
    assert warmed_decay(0.999, 10**6) == 0.999
    with pytest.raises(ConfigError, match="decay=1.0: it must be in"):
        EMAWeights(decay=1.0)


def test_a_short_run_tests_averaged_weights_no_worse_than_its_live_ones():
    live, ci, _ = short_run(None)
    lightnings, _, _ = short_run(EMAWeightAveraging(decay=0.999))
    ours_callback = EMAWeights(decay=0.999, bn_episodes=20)
    ours, _, _ = short_run(ours_callback)
    assert lightnings < live - 0.15  # the failure this callback exists for (start-heavy average, stale BN statistics)
    assert ours >= live - 2 * ci
    assert "keeps the averaged weights" in ours_callback.decision and "no validation" in ours_callback.decision


def test_with_validation_the_better_weights_are_kept_and_written_to_last_ckpt(tmp_path):
    callback = EMAWeights(decay=0.999, bn_episodes=20, select_batches=1)
    _, _, learner = short_run(callback, tmp_path, validate=True)
    assert "validation accuracy" in callback.decision
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)
    held = learner.state_dict()
    assert saved[CHECKPOINT_KEY]["learner"] == "ProtoNet"
    assert all(torch.equal(saved["state_dict"][k], held[k]) for k in held)
