"""Faults: a SIGKILLed run resumes to the same weights, NaN losses stop cleanly, broken checkpoints are named."""

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from lightning_meta.cli.train import run
from lightning_meta.data import EpisodicDataModule
from lightning_meta.errors import ConfigError
from lightning_meta.learners import MAML
from lightning_meta.nets import Conv4
from tests.cli.test_train_cli import TINY, _cfg
from tests.conftest import REPO

SCRIPT = Path(__file__).with_name("killable_run.py")


def _run(root: Path, kill_at: int, resume: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, str(SCRIPT), str(root), str(kill_at)] + ([str(resume)] if resume else [])
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)


def test_sigkilled_run_resumes_from_its_last_checkpoint_to_the_same_weights(tmp_path):
    full = _run(tmp_path / "full", -1)
    assert full.returncode == 0, full.stderr[-2000:]
    kill_at = random.Random(os.getpid()).randint(5, 14)  # 4 steps per epoch: somewhere in epochs 2-4
    killed = _run(tmp_path / "cut", kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (tmp_path / "cut" / "final.pt").exists()
    resumed = _run(tmp_path / "cut", -1, resume=tmp_path / "cut" / "last.ckpt")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = torch.load(tmp_path / "full" / "final.pt"), torch.load(tmp_path / "cut" / "final.pt")
    assert all(torch.equal(a[k], b[k]) for k in a), f"weights differ after a kill at step {kill_at}"


class NaNLossMAML(MAML):
    """MAML whose meta-loss is NaN (a NaN rate itself is refused when the learner is built)."""

    def meta_loss(self, batch):
        loss, acc = super().meta_loss(batch)
        return loss * float("nan"), acc


def test_nan_loss_stops_training_cleanly_and_leaves_weights_finite():
    dm = EpisodicDataModule(train={"ways": 5, "shots": 1, "queries": 2}, meta_batch_size=2, train_episodes=8,
                            dataset_kwargs={"image_size": 14})
    model = NaNLossMAML(Conv4(1, 5, hidden=8, image_size=14))
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = L.Trainer(accelerator="cpu", max_epochs=3, inference_mode=False, logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, limit_val_batches=0)
    with pytest.warns(UserWarning, match="stopping \\(diverged\\)"):
        trainer.fit(model, datamodule=dm)
    assert model.diverged and trainer.fit_loop.epoch_loop.batch_progress.total.ready == 1  # 1 of 12 batches ran
    assert all(torch.equal(initial[k], v) for k, v in model.state_dict().items())  # no NaN update was applied


@pytest.mark.parametrize("content", [b"not a checkpoint at all", b"PK\x03\x04truncated"])
def test_corrupted_checkpoint_is_named_before_anything_runs(tmp_path, content):
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes(content)
    with pytest.raises(ConfigError, match=r"Checkpoint .*broken.ckpt is corrupted"):
        run(_cfg(tmp_path, "train=false", f"ckpt_path={bad}", *TINY))


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nowhere.ckpt does not exist"):
        run(_cfg(tmp_path, f"ckpt_path={tmp_path / 'nowhere.ckpt'}", *TINY))


def test_misplaced_top_level_key_is_refused_with_where_it_belongs(tmp_path):
    # The slip an experiment file can make: callbacks.model_checkpoint written at the top level, which Hydra
    # accepts and nothing reads. It must fail before training, naming the key and its home.
    with pytest.raises(ConfigError, match=r"'model_checkpoint' \(did you mean callbacks.model_checkpoint\?\)"):
        run(_cfg(tmp_path, "+model_checkpoint.monitor=null", *TINY))
    assert not list(tmp_path.glob("checkpoints/*"))


class WeightProbe(L.Callback):
    """Records the sum of the weights the test stage evaluates."""

    tested: list[float] = []

    def on_test_start(self, trainer, pl_module):
        WeightProbe.tested.append(float(sum(p.double().sum() for p in pl_module.parameters())))


def test_weight_averaging_run_tests_the_averaged_weights_of_its_checkpoint(tmp_path):
    # Lightning's WeightAveraging swaps the live weights back in when trainer.test loads a checkpoint after fit;
    # train.py must still test the average (the checkpoint's state_dict), as a fresh train=false run would.
    WeightProbe.tested.clear()
    run(_cfg(tmp_path, *TINY, "data.train_episodes=8", "trainer.limit_val_batches=0",
             "callbacks.model_checkpoint.monitor=null", "callbacks.model_checkpoint.filename=final",
             "+callbacks.ema._target_=lightning.pytorch.callbacks.EMAWeightAveraging", "+callbacks.ema.decay=0.5",
             "+callbacks.probe._target_=tests.reliability.test_faults.WeightProbe"))
    ckpt = torch.load(tmp_path / "checkpoints" / "final.ckpt", map_location="cpu", weights_only=False)
    total = lambda state: float(sum(v.double().sum() for k, v in state.items() if v.is_floating_point()  # noqa: E731
                                    and "running" not in k))
    averaged, live = total(ckpt["state_dict"]), total(ckpt["current_model_state"])
    assert abs(averaged - live) > 1e-3  # the average really differs from the live weights after 4 steps
    assert WeightProbe.tested == [pytest.approx(averaged, abs=1e-6)]


def test_same_seed_gives_the_same_final_accuracy_and_weights(tmp_path):
    overrides = ("model=fomaml", *TINY, "model.inner_steps_eval=2", "trainer.deterministic=true", "callbacks=none")
    first = run(_cfg(tmp_path / "a", *overrides))
    second = run(_cfg(tmp_path / "b", *overrides))
    assert first["test_acc"] == second["test_acc"] and first["train_loss"] == second["train_loss"]
