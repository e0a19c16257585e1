"""Runs one meta-training step of MAML and saves the resulting meta-gradient (used by test_ddp.py).

Usage: python ddp_meta_gradient.py OUT_FILE DEVICES. With DEVICES=2 Lightning launches two CPU
processes (gloo); each rank takes half of the meta-batch and the strategy averages gradients.
"""

import sys

import lightning as L
import torch

from lightning_meta.data import EpisodicDataModule
from lightning_meta.learners import MAML
from lightning_meta.nets import Conv4


class SaveGradients(L.Callback):
    def __init__(self, path: str) -> None:
        self.path = path

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.global_rank == 0:
            grads = {n: p.grad.detach().clone() for n, p in pl_module.named_parameters()}
            torch.save({"world_size": trainer.world_size, "tasks_per_rank": trainer.train_dataloader.batch_size,
                        "grads": grads}, self.path)


def main(out: str, devices: int) -> None:
    torch.manual_seed(0)
    datamodule = EpisodicDataModule(train={"ways": 5, "shots": 1, "queries": 3}, meta_batch_size=4,
                                    train_episodes=4, val_episodes=2, test_episodes=2, dataset_kwargs={"image_size": 14})
    model = MAML(Conv4(1, 5, hidden=8, image_size=14), inner_lr=0.4, inner_steps=2)
    trainer = L.Trainer(accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto", max_steps=1,
                        limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        inference_mode=False, callbacks=[SaveGradients(out)])
    trainer.fit(model, datamodule=datamodule)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
