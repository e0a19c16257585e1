"""A small MAML meta-training run that can SIGKILL itself at a given global step (used by test_faults.py).

Usage: python killable_run.py ROOT KILL_AT_STEP [RESUME_CKPT]. KILL_AT_STEP < 0 never kills. The final
weights are saved to ROOT/final.pt when the run completes.
"""

import os
import signal
import sys

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_meta.data import EpisodicDataModule
from lightning_meta.learners import MAML
from lightning_meta.nets import Conv4


class KillAt(L.Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main(root: str, kill_at: int, resume: str | None) -> None:
    L.seed_everything(0)
    dm = EpisodicDataModule(train={"ways": 5, "shots": 1, "queries": 2}, meta_batch_size=2, train_episodes=8,
                            val_episodes=2, test_episodes=2, dataset_kwargs={"image_size": 14}, seed=5)
    model = MAML(Conv4(1, 5, hidden=8, image_size=14), inner_steps=1)
    trainer = L.Trainer(accelerator="cpu", max_epochs=4, deterministic=True, inference_mode=False, logger=False,
                        enable_progress_bar=False, default_root_dir=root, limit_val_batches=1,
                        callbacks=[KillAt(kill_at), ModelCheckpoint(dirpath=root, save_last=True)])
    trainer.fit(model, datamodule=dm, ckpt_path=resume)
    torch.save(model.state_dict(), os.path.join(root, "final.pt"))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
