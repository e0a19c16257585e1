"""Two-rank MAML run in which only rank 1 meets a NaN loss, at its second step (used by test_ddp.py).

Usage: python ddp_divergence.py OUT_DIR. Each rank writes ``rank<R>.json`` with what it saw when fit ended.
"""

import json
import sys
from pathlib import Path

import lightning as L
import torch

from lightning_meta.data import EpisodicDataModule
from lightning_meta.learners import MAML
from lightning_meta.nets import Conv4


class NaNOnRankOne(MAML):
    def meta_loss(self, batch):
        loss, acc = super().meta_loss(batch)
        if self.global_rank == 1 and self.global_step == 1:
            loss = loss * float("nan")
        return loss, acc


class WeightsAfterFirstStep(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.checksum = _checksum(pl_module)


def _checksum(model) -> float:
    return float(sum(p.detach().double().sum() for p in model.parameters()))


def main(out: Path) -> None:
    torch.manual_seed(0)
    datamodule = EpisodicDataModule(train={"ways": 5, "shots": 1, "queries": 3}, meta_batch_size=4,
                                    train_episodes=16, val_episodes=2, test_episodes=2, dataset_kwargs={"image_size": 14})
    model = NaNOnRankOne(Conv4(1, 5, hidden=8, image_size=14), inner_lr=0.4, inner_steps=1)
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_steps=4, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, inference_mode=False, callbacks=[first := WeightsAfterFirstStep()])
    trainer.fit(model, datamodule=datamodule)
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(
        {"diverged": model.diverged, "batches": trainer.fit_loop.epoch_loop.batch_progress.total.ready,
         "after_first_step": first.checksum, "final": _checksum(model)}))
    if torch.distributed.is_initialized():  # gloo's threads joined before the interpreter exits (else it may abort)
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
