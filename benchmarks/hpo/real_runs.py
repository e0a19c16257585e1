"""Real Lightning runs on held-out Omniglot alphabets: the mapping's one proposal vs searching.

For each held-out evaluation alphabet (never seen by the mapping: the pool holds only background
alphabets), SmallCNN is trained for the same few epochs with:

* ``proposal``   the HyperparameterMapping callback with the shipped default mapping (1 training),
* ``alt``        the same callback with the other mapping kind fit on the same pool (1 training),
* ``best_of_30`` the best of 30 random configurations from the same space (30 trainings),
* ``lr_finder``  Lightning's ``Tuner.lr_find`` on the default model, then training with its lr,
* ``defaults``   SmallCNN's defaults (lr 1e-3, no weight decay, batch size 32).

Every training uses the same seed (initialization and shuffling), one CPU thread. The callback's
own cost is the time spent in its ``setup`` + ``on_fit_end`` over the wall time of ``fit``.
Before that, the mapping kinds are compared on the pool itself (5 folds of background alphabets:
fit on 24, rank the 10 recorded runs of each of the other 6), which is how the default was chosen.

    python benchmarks/hpo/real_runs.py                 # 5 alphabets, about 15 minutes on one core
    python benchmarks/hpo/real_runs.py --alphabets 2 --random 4 --epochs 1   # smoke run
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.tuner import Tuner

from lightning_meta.hpo.callback import HyperparameterMapping
from lightning_meta.hpo.collect import DEFAULT_MAPPING
from lightning_meta.hpo.mappings import MAPPINGS
from lightning_meta.hpo.mappings.base import Mapping, normalized_scores
from lightning_meta.hpo.pool import ExperiencePool
from lightning_meta.hpo.space import SearchSpace
from lightning_meta.hpo.tasks import AlphabetDataModule, SmallCNN, alphabets

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
SHIPPED_POOL = ROOT / "lightning_meta" / "assets" / "mapping" / "omniglot_alphabets.db"
DEFAULTS = {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 32}


class TimedMapping(HyperparameterMapping):
    """The callback, with the wall time of its own hooks added up in ``spent``."""

    spent = 0.0

    def setup(self, trainer, pl_module, stage):
        started = time.perf_counter()
        super().setup(trainer, pl_module, stage)
        self.spent += time.perf_counter() - started

    def on_fit_end(self, trainer, pl_module):
        started = time.perf_counter()
        super().on_fit_end(trainer, pl_module)
        self.spent += time.perf_counter() - started


def _trainer(epochs: int, callbacks=()) -> pl.Trainer:
    return pl.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_model_summary=False, enable_progress_bar=False, num_sanity_val_steps=0, callbacks=list(callbacks),
    )


def train(alphabet: str, config: dict | None, epochs: int, seed: int, callbacks=()) -> tuple[float, float]:
    """Final val_acc and wall seconds of ``fit``; ``config`` None leaves the values to callbacks/defaults."""
    config = {**DEFAULTS, **(config or {})}
    pl.seed_everything(seed, verbose=False)
    dm = AlphabetDataModule(alphabet, batch_size=config["batch_size"], seed=seed)
    model = SmallCNN(dm.num_classes, lr=config["lr"], weight_decay=config["weight_decay"])
    trainer = _trainer(epochs, callbacks)
    started = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    return float(trainer.callback_metrics["val_acc"]), time.perf_counter() - started


def lr_finder(alphabet: str, epochs: int, seed: int) -> tuple[float, float, float]:
    """Lightning's LR range test on the default model, then a training with its suggestion."""
    pl.seed_everything(seed, verbose=False)
    dm = AlphabetDataModule(alphabet, batch_size=DEFAULTS["batch_size"], seed=seed)
    model = SmallCNN(dm.num_classes)
    started = time.perf_counter()
    # max_epochs is set high because the range test must reach num_training steps on small alphabets
    finder = Tuner(_trainer(1000)).lr_find(model, datamodule=dm, min_lr=1e-5, max_lr=1.0, num_training=100)
    suggestion = finder.suggestion() if finder is not None else None
    lr = float(suggestion) if suggestion else DEFAULTS["lr"]
    search = time.perf_counter() - started
    acc, seconds = train(alphabet, {"lr": lr}, epochs, seed)
    return acc, lr, search + seconds


def pool_selection(pool_url: str, space: SearchSpace, folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """Each mapping kind, fit on 4/5 of the pool's alphabets, ranks the recorded runs of the rest.

    Per held-out alphabet: the normalized score (``objective / best recorded``) of the run it ranks
    first, and the Spearman correlation of its predictions with the recorded objectives.
    """
    with ExperiencePool(pool_url) as pool:
        frame = pool.frame()
    tasks = np.random.default_rng(seed).permutation(frame["task"].unique())
    rows, fit_s = [], {}
    for kind, cls in MAPPINGS.items():
        started = time.perf_counter()
        for fold in range(folds):
            held = set(tasks[fold::folds])
            mapping = cls().fit(frame[~frame["task"].isin(held)], space)
            for task in sorted(held):
                runs = frame[frame["task"] == task]
                configs = [{n: row[f"hp_{n}"] for n in space.names} for _, row in runs.iterrows()]
                features = {n: runs[f"f_{n}"].iloc[0] for n in mapping.feature_names}
                mean, _ = mapping.predict(features, configs)
                objective = runs["objective"].to_numpy()
                rows.append({"mapping": kind, "task": task, "top1": objective[int(np.argmax(mean))] / objective.max(),
                             "spearman": pd.Series(mean).corr(pd.Series(objective), method="spearman")})
        fit_s[kind] = (time.perf_counter() - started) / folds
    table = pd.DataFrame(rows).groupby("mapping")[["top1", "spearman"]].mean()
    return table.assign(fit_s=pd.Series(fit_s))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alphabets", type=int, default=5, help="held-out evaluation alphabets (spread over the 20)")
    parser.add_argument("--random", type=int, default=30, help="random configurations per alphabet")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mapping", default=str(DEFAULT_MAPPING), help="the mapping the callback uses")
    parser.add_argument("--alt", default="gbm", help="the other mapping kind, fit on --pool for comparison")
    parser.add_argument("--pool", default=f"sqlite:///{SHIPPED_POOL}", help="pool the mappings were fit on")
    parser.add_argument("--folds", type=int, default=5, help="folds of the pool comparison of mapping kinds (0: skip)")
    parser.add_argument("--out", default=str(RESULTS / "hpo_real_runs"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    mapping = Mapping.load(args.mapping)
    space = mapping.space
    with ExperiencePool(args.pool) as pool:
        pool_frame = pool.frame()
    started = time.perf_counter()
    alt = MAPPINGS[args.alt]().fit(pool_frame, space)
    alt_fit_s = time.perf_counter() - started
    selection = pool_selection(args.pool, space, args.folds) if args.folds else None
    if selection is not None:
        print(selection.round(3).to_string(), flush=True)

    held_out = alphabets("evaluation")
    held_out = held_out[:: max(1, len(held_out) // args.alphabets)][: args.alphabets]
    rows, curves = [], {}
    scratch = Path(tempfile.mkdtemp(prefix="real-runs-"))
    for alphabet in held_out:
        row: dict = {"alphabet": alphabet}
        callback = TimedMapping(mapping=args.mapping, pool=f"sqlite:///{scratch / 'runs.db'}", task=alphabet)
        row["proposal"], fit_s = train(alphabet, None, args.epochs, args.seed, [callback])
        row["proposal_config"] = callback.config
        row["callback_s"], row["fit_s"] = callback.spent, fit_s
        alt_callback = HyperparameterMapping(mapping=alt, task=alphabet)
        row["alt"], _ = train(alphabet, None, args.epochs, args.seed, [alt_callback])
        row["alt_config"] = alt_callback.config
        row["defaults"], _ = train(alphabet, DEFAULTS, args.epochs, args.seed)
        row["lr_finder"], row["lr_finder_lr"], row["lr_finder_s"] = lr_finder(alphabet, args.epochs, args.seed)
        configs = space.sample(args.random, seed=args.seed + 1000)
        accs = []
        random_started = time.perf_counter()
        for config in configs:
            accs.append(train(alphabet, config, args.epochs, args.seed)[0])
        row["random_s"] = time.perf_counter() - random_started
        curves[alphabet] = accs
        row["best_of_30"] = max(accs)
        row["best_config"] = configs[int(np.argmax(accs))]
        row["random_median"] = float(np.median(accs))
        row["proposal_rank"] = 1 + sum(a > row["proposal"] for a in accs)
        rows.append(row)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    results = pd.DataFrame(rows)
    write_report(results, curves, selection, mapping, alt, alt_fit_s, args)


def _fmt(config: dict) -> str:
    return f"lr {config['lr']:.2g}, wd {config['weight_decay']:.1g}, bs {config['batch_size']}"


def write_report(results, curves, selection, mapping, alt, alt_fit_s, args) -> None:
    out = Path(args.out)
    ratio = results["proposal"] / results["best_of_30"]
    overhead = results["callback_s"].sum() / results["fit_s"].sum()
    lines = [
        "# Real runs: the mapping's proposal on held-out Omniglot alphabets",
        "",
        f"Command: `python benchmarks/hpo/real_runs.py --alphabets {args.alphabets} --random {args.random} "
        f"--epochs {args.epochs}` (1 CPU thread, seed {args.seed} for every training).",
        f"Task: classify the characters of one held-out *evaluation* alphabet (drawings 0-13 train, 14-19 val), "
        f"SmallCNN (3 conv-BN-ReLU-pool blocks, width 24, Adam) for {args.epochs} epochs; final val_acc. "
        f"The pool ({args.pool.rsplit('/', 1)[-1]}) holds only *background* alphabets.",
        f"Proposal = `HyperparameterMapping()` with the shipped `{Path(args.mapping).name}` "
        f"({type(mapping).__name__}); alt = the same callback with {type(alt).__name__} fit on the same pool "
        f"({alt_fit_s:.1f} s). One seed per cell: differences of a few points are within run-to-run noise.",
        "",
        f"| alphabet | classes | proposal | alt | best of {args.random} | random median | LR finder | defaults | "
        f"proposal / best-of-{args.random} | rank of proposal among {args.random} | proposal config | "
        f"best-of-{args.random} config | LR finder lr |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in results.iterrows():
        classes = AlphabetDataModule(r["alphabet"]).num_classes
        lines.append(
            f"| {r['alphabet']} | {classes} | {r['proposal']:.3f} | {r['alt']:.3f} | {r['best_of_30']:.3f} | "
            f"{r['random_median']:.3f} | {r['lr_finder']:.3f} | {r['defaults']:.3f} | "
            f"{r['proposal'] / r['best_of_30']:.3f} | {r['proposal_rank']} | {_fmt(r['proposal_config'])} | "
            f"{_fmt(r['best_config'])} | {r['lr_finder_lr']:.2g} |"
        )
    means = results[["proposal", "alt", "best_of_30", "random_median", "lr_finder", "defaults"]].mean()
    lines += [
        f"| **mean** | | **{means['proposal']:.3f}** | {means['alt']:.3f} | {means['best_of_30']:.3f} | "
        f"{means['random_median']:.3f} | {means['lr_finder']:.3f} | {means['defaults']:.3f} | "
        f"**{ratio.mean():.3f}** | | | | |",
        "",
        "## Targets",
        "",
        f"* proposal / best-of-{args.random} (1 training vs {args.random}): mean **{ratio.mean():.3f}**, min {ratio.min():.3f} "
        f"(target >= 0.95: **{'met' if ratio.mean() >= 0.95 else 'not met'}** on the mean; "
        f"{int((ratio >= 0.95).sum())}/{len(ratio)} alphabets individually).",
        f"* beats Lightning's LR finder on {int((results['proposal'] > results['lr_finder']).sum())}/{len(results)} "
        f"alphabets (mean {means['proposal']:.3f} vs {means['lr_finder']:.3f}); beats the defaults on "
        f"{int((results['proposal'] > results['defaults']).sum())}/{len(results)} (mean {means['defaults']:.3f}).",
        f"* callback overhead: {results['callback_s'].sum():.2f} s in `setup` + `on_fit_end` over "
        f"{results['fit_s'].sum():.1f} s of `fit` = **{100 * overhead:.1f}%** (target <= 5%: "
        f"**{'met' if overhead <= 0.05 else 'not met'}**); per fit {results['callback_s'].mean():.2f} s "
        f"(features, proposal over 2000 candidates + seen configurations, pool start/finish).",
        f"* cost: proposal 1 training ({results['fit_s'].mean():.1f} s); best of {args.random}: {results['random_s'].mean():.0f} s; "
        f"LR finder: {results['lr_finder_s'].mean():.1f} s (range test + training).",
        "",
    ]
    if selection is not None:
        lines += _selection_lines(selection, args.folds)
    lines += ["", f"![val accuracy per method]({out.name}.png)", ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    plot(results, curves, out.with_suffix(".png"))
    print("\n".join(lines))


def _selection_lines(selection: pd.DataFrame, folds: int) -> list[str]:
    lines = [
        "## How the default mapping was chosen (on the pool only)",
        "",
        f"{folds} folds of the pool's background alphabets: each mapping is fit on the other folds and ranks "
        "the recorded runs of each held-out alphabet. top-1 = objective of the run it ranks first / best recorded run of that alphabet; "
        "Spearman = rank correlation of its predictions with the recorded objectives (mean over alphabets).",
        "",
        "| mapping | top-1 | Spearman | fit time (s) |",
        "|---|---|---|---|",
    ]
    for kind, r in selection.iterrows():
        lines.append(f"| {kind} | {r['top1']:.3f} | {r['spearman']:.3f} | {r['fit_s']:.1f} |")
    return lines


def plot(results: pd.DataFrame, curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [("proposal", "mapping proposal (1 run)"), ("best_of_30", "best of 30 random"),
               ("lr_finder", "LR finder"), ("defaults", "defaults"), ("alt", "alt mapping (1 run)")]
    x = np.arange(len(results))
    width = 0.16
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for i, (key, label) in enumerate(methods):
        ax.bar(x + (i - 2) * width, results[key], width, label=label)
    for j, alphabet in enumerate(results["alphabet"]):
        ax.scatter(np.full(len(curves[alphabet]), j + 0.45), curves[alphabet], s=6, color="gray", alpha=0.6,
                   label="30 random configs" if j == 0 else None)
    ax.set_xticks(x, [a.replace("_", " ") for a in results["alphabet"]], rotation=15)
    ax.set_ylabel("final val accuracy")
    ax.set_title("SmallCNN on held-out Omniglot alphabets")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
