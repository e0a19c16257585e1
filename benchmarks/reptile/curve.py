"""Reptile's validation accuracy against meta-iterations: ours beside learn2learn 0.2.0 as an independent reference.

Both learn from the same training episodes of the ``+experiment=reptile_omniglot_5w1s`` preset (5-way,
10 shots, meta-batch 5, 5 inner Adam steps of 10 images, outer rate 1.0 annealed linearly to 0 over the
run) from the same initial weights, and are scored every ``--every`` meta-iterations on the same fixed
validation episodes (5-way 1-shot, 15 queries, 50 inner Adam steps on the whole support set, BatchNorm on
the current batch). The reference is learn2learn's Reptile example loop (``examples/vision/
reptile_miniimagenet.py``: a deep-copied learner per task, ``torch.optim.Adam(betas=(0, 0.999))`` whose
state is handed from task to task and to evaluation, mini-batches drawn with replacement) on its own
``OmniglotCNN`` (the mean of the last feature map, so its run uses ``model.backbone.embedding=mean`` for the
shared initial weights), with the paper's anneal (the example's anneal formula leaves the rate constant).

    python -m benchmarks.reptile.curve --iterations 2000 --every 500          # about 20 min on 2 cores
    python -m benchmarks.reptile.curve --who ours --label "ours, mean head" --override model.backbone.embedding=mean
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from benchmarks.reptile.ablation import compose_preset
from benchmarks.speed.baseline_l2l import _learn2learn, copy_weights
from lightning_meta.learners import Reptile

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


class ValCurve(L.Callback):
    """Keeps (meta-iterations, val_acc) after every validation run of a fit."""

    def __init__(self) -> None:
        self.points: list[tuple[int, float]] = []

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and "val_acc" in trainer.callback_metrics:
            self.points.append((trainer.global_step, float(trainer.callback_metrics["val_acc"])))


def ours(cfg, iterations: int, every: int) -> tuple[list[tuple[int, float]], float]:
    L.seed_everything(cfg.seed, workers=True)
    data = instantiate(cfg.data)
    model = instantiate(cfg.model)
    curve = ValCurve()
    trainer = L.Trainer(accelerator="cpu", max_steps=iterations, max_epochs=-1, val_check_interval=every,
                        check_val_every_n_epoch=None, num_sanity_val_steps=0, inference_mode=False, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[curve])
    started = time.perf_counter()
    trainer.fit(model, datamodule=data)
    return curve.points, time.perf_counter() - started


def _adapt(learner, optimizer, x, y, steps: int, batch: int | None) -> None:
    for _ in range(steps):
        idx = torch.randint(len(x), (batch,)) if batch else torch.arange(len(x))
        optimizer.zero_grad()
        F.cross_entropy(learner(x[idx]), y[idx]).backward()
        optimizer.step()


def reference(cfg, iterations: int, every: int) -> tuple[list[tuple[int, float]], float]:
    """learn2learn's Reptile example loop on the preset's episodes and initial weights."""
    L.seed_everything(cfg.seed, workers=True)
    data = instantiate(cfg.data)
    data.setup("fit")
    ours_net = instantiate(cfg.model).backbone
    net = copy_weights(ours_net, _learn2learn().vision.models.OmniglotCNN(output_size=cfg.data.train.ways, hidden_size=64))
    meta_opt = torch.optim.SGD(net.parameters(), lr=cfg.model.lr)
    state = torch.optim.Adam(net.parameters(), lr=cfg.model.inner_lr, betas=(0.0, 0.999)).state_dict()

    def new_adam(learner):
        opt = torch.optim.Adam(learner.parameters(), lr=cfg.model.inner_lr, betas=(0.0, 0.999))
        opt.load_state_dict(state)
        return opt

    def validate() -> float:
        accs = []
        for sx, sy, qx, qy in data.val_dataloader():
            for i in range(len(sx)):
                learner = copy.deepcopy(net)
                _adapt(learner, new_adam(learner), sx[i], sy[i], cfg.model.inner_steps_eval, None)
                with torch.no_grad():
                    accs.append((learner(qx[i]).argmax(-1) == qy[i]).float().mean().item())
        return sum(accs) / len(accs)

    points, step, started, spent_validating = [], 0, time.perf_counter(), 0.0
    epoch = 0
    while step < iterations:
        data._epoch = epoch
        for sx, sy, _, _ in data.train_dataloader():
            for g in meta_opt.param_groups:
                g["lr"] = cfg.model.lr * (1 - step / iterations)
            for p in net.parameters():
                p.grad = torch.zeros_like(p)
            for i in range(len(sx)):
                learner = copy.deepcopy(net)
                opt = new_adam(learner)
                _adapt(learner, opt, sx[i], sy[i], cfg.model.inner_steps, cfg.model.inner_batch_size)
                state = opt.state_dict()
                for p, q in zip(net.parameters(), learner.parameters()):
                    p.grad.add_(p.detach() - q.detach(), alpha=1.0 / len(sx))
            meta_opt.step()
            step += 1
            if step % every == 0 or step == iterations:
                t = time.perf_counter()
                points.append((step, validate()))
                spent_validating += time.perf_counter() - t
                print(json.dumps({"reference_step": step, "val_acc": points[-1][1]}), flush=True)
            if step >= iterations:
                break
        epoch += 1
    return points, time.perf_counter() - started - spent_validating


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for row in rows:
        steps, accs = zip(*row["curve"])
        ax.plot(steps, [100 * a for a in accs], marker="o", label=f"{row['label']} (seed {row['seed']})")
    ax.axhline(97.68, color="grey", linestyle="--", label="paper, 100k iterations")
    ax.set_xlabel("meta-iterations")
    ax.set_ylabel("validation accuracy, 5-way 1-shot (%)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-episodes", type=int, default=100)
    parser.add_argument("--task-threads", type=int, default=2)
    parser.add_argument("--who", nargs="+", choices=["ours", "learn2learn"], default=["ours", "learn2learn"])
    parser.add_argument("--override", nargs="*", default=[], help="Hydra overrides of our run, e.g. model.lr=0.5")
    parser.add_argument("--label", default=None, help="the curve's name in the plot (default: who runs it)")
    parser.add_argument("--out", type=Path, default=RESULTS / "reptile_curve.json")
    args = parser.parse_args()
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    for who in args.who:
        cfg = compose_preset(args.seed, args.val_episodes, args.task_threads if who == "ours" else 1,
                             args.override if who == "ours" else ["model.backbone.embedding=mean"])
        label = args.label if who == "ours" and args.label else who
        run = ours if who == "ours" else reference
        points, train_s = run(cfg, args.iterations, args.every)
        row = {"who": who, "label": label, "overrides": args.override if who == "ours" else [], "seed": args.seed, "iterations": args.iterations, "val_episodes": args.val_episodes,
               "curve": points, "train_seconds_without_validation" if who != "ours" else "wall_seconds": round(train_s, 1),
               "machine": platform.machine(), "threads": torch.get_num_threads()}
        print(json.dumps(row), flush=True)
        rows = [r for r in rows if (r["label"], r["seed"]) != (label, args.seed)] + [row]
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    plot(rows, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
