"""Reptile on Omniglot 5-way 1-shot: which of our choices explained the gap to the paper, one at a time.

Each variant meta-trains the shipped ``+experiment=reptile_omniglot_5w1s`` preset for the same number
of meta-iterations from the same seed, then adapts on the same fixed validation episodes (5-way 1-shot,
15 queries, 50 inner steps). The candidate causes, switched on or off alone:

* ``anneal``:  the outer rate is annealed to 0 over the iterations run (``planned``) or over ten times as
  many, so it ends at 0.9 (what a ``max_time`` cut did to the 30-minute rows before the budget schedule);
* ``order``:   inner mini-batches in a new order per task, or the order of the former code (a function of
  the support labels, so the same for every balanced episode);
* ``state``:   Adam's second moment carried from task to task and into evaluation (``carried``, as the
  reference code and learn2learn's example do) or reset for every task (``fresh``);
* ``head``:    the logits from the mean of the last 2x2x64 feature map (MAML's network, our Conv4's default for
  strided convs) or from the flattened map (the Reptile reference network), on top of all three fixes.

    python -m benchmarks.reptile.ablation --iterations 1500 --seeds 0 1          # about 45 min on 2 cores
    python -m benchmarks.reptile.ablation --iterations 20 --seeds 0 --val-episodes 10 --variants former fixed
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from lightning_meta.learners import Reptile

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"

# variant -> (anneal over the iterations run, new order per task, inner Adam state, config overrides)
MEAN, FLAT = ["model.backbone.embedding=mean"], ["model.backbone.embedding=flatten"]
VARIANTS = {
    "former": (False, False, "fresh", MEAN),
    "anneal": (True, False, "fresh", MEAN),
    "order": (False, True, "fresh", MEAN),
    "carried": (False, False, "carried", MEAN),
    "fixed": (True, True, "carried", MEAN),
    "flatten": (True, True, "carried", FLAT),
}


class FormerOrderReptile(Reptile):
    """Reptile with the inner mini-batch order of the former code: seeded by the task's labels, not its place."""

    def train_task(self, support_x, support_y, steps, seed=None, ways=None):
        return super().train_task(support_x, support_y, steps, None, ways)


class StopAt(L.Callback):
    """Stops after ``steps`` optimizer steps of a longer planned run (what ``max_time`` does)."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.steps:
            trainer.should_stop = True


def compose_preset(seed: int, val_episodes: int, task_threads: int, extra: list[str] | None = None):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=[
            "+experiment=reptile_omniglot_5w1s", f"seed={seed}", f"data.val_episodes={val_episodes}",
            f"model.task_threads={task_threads}", *(extra or [])])


def run_variant(name: str, iterations: int, seed: int, val_episodes: int, task_threads: int) -> dict:
    anneal, new_order, state, extra = VARIANTS[name]
    cfg = compose_preset(seed, val_episodes, task_threads, extra)
    L.seed_everything(seed, workers=True)
    data = instantiate(cfg.data)
    model_cfg = dict(instantiate(cfg.model, _partial_=True).keywords)
    model_cfg["inner_state"] = state
    model = (Reptile if new_order else FormerOrderReptile)(**model_cfg)
    planned = iterations if anneal else 10 * iterations
    trainer = L.Trainer(accelerator="cpu", max_steps=planned, max_epochs=-1, limit_val_batches=0,
                        inference_mode=False, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[StopAt(iterations)])
    started = time.perf_counter()
    trainer.fit(model, datamodule=data)
    train_s = time.perf_counter() - started
    steps = trainer.global_step
    final_rate = trainer.optimizers[0].param_groups[0]["lr"]
    trainer = L.Trainer(accelerator="cpu", inference_mode=False, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)
    val_acc = trainer.validate(model, datamodule=data, verbose=False)[0]["val_acc"]
    return {"variant": name, "seed": seed, "iterations": steps, "val_acc": val_acc,
            "final_outer_rate": final_rate, "train_seconds": round(train_s, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--val-episodes", type=int, default=200)
    parser.add_argument("--task-threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="append one JSON line per run to this file")
    args = parser.parse_args()
    for seed in args.seeds:
        for name in args.variants:
            row = run_variant(name, args.iterations, seed, args.val_episodes, args.task_threads)
            row.update(machine=platform.processor() or platform.machine(), threads=torch.get_num_threads())
            print(json.dumps(row), flush=True)
            if args.out:
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
