"""Leave-one-family-out evaluation of the hyperparameter mappings on real trainings.

For every task family of the experience pool (``python -m pool.collect``), each mapping is fit on
the runs of the OTHER families only; then every task of the held-out family is trained once more
for real, with the configuration the ``HyperparameterMapping`` callback proposes (features and
probes computed by the callback at ``setup``, exactly as in a user's fit). Baselines, trained the
same way on the same tasks and seeds:

* ``defaults``        the module's own defaults (Adam/AdamW lr 1e-3, SGD lr 0.01);
* ``lr_finder``       Lightning's ``Tuner.lr_find`` (``update_attr=True``, as its docs apply it), then fit;
* ``optuna_tpe@5``    Optuna TPE with 5 trainings, the best by validation accuracy;
* ``<mapping>@5``     (``--searches``) the callback fit 5 times on the task with a pool: each fit records its
                      run and the next proposal adapts to the earlier ones (the ``observed`` trials); the best
                      of the 5 by validation accuracy, as a user repeating ``fit`` gets; with
                      ``--search-ablation`` also ``<mapping>@5[no correction]``, the same with the kernel
                      correction from the observed runs off (only configurations already run are skipped);
* ``best_of_30_rerun`` the configuration of the task's best pool run, trained again with the evaluation
                      seed: what the reference itself scores on a new training, so the ratio's ceiling
                      under seed noise (the pool's best is a maximum over 30 noisy runs);
* ``random@1``        one random configuration: the mean of the task's 30 random runs in the pool;
* ``best_of_30``      the best of the task's 30 random runs in the pool (the reference).

Score: final validation accuracy (the metric every run is selected on; no test split is touched);
``ratio`` = score / best_of_30 per task. With ``--repeats N`` every method trains each task with N
evaluation seeds and its score is their mean. Run after collecting the pool:

    python benchmarks/hpo/families_lofo.py --pool sqlite:///lightning_meta/assets/mapping/families.db --workers 2
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import platform
import shlex
import sys
import tempfile
import time
import warnings
import zlib
from pathlib import Path

import pandas as pd

from lightning_meta.hpo.mappings import MAPPINGS
from lightning_meta.hpo.mappings.base import Mapping
from lightning_meta.hpo.pool import ExperiencePool
from lightning_meta.hpo.space import SearchSpace

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # pool/ (the task families) is maintainer code beside the package, not installed
from pool.families import FAMILIES, task_by_key  # noqa: E402
RESULTS = ROOT / "benchmarks" / "results"
SPACE = SearchSpace.from_yaml(ROOT / "conf" / "space" / "default.yaml")
EVAL_SEED = 10_000  # evaluation trainings use seeds no pool run used
TPE_TRIALS = 5


def _quiet() -> None:
    import torch

    torch.set_num_threads(1)
    for name in ("lightning.pytorch", "lightning.fabric", "lightning_meta.hpo.callback"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def _trainer(epochs: int, callbacks=()):
    import lightning.pytorch as pl

    return pl.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_model_summary=False, enable_progress_bar=False, num_sanity_val_steps=0, callbacks=list(callbacks),
    )


def _seed(task: str, repeat: int = 0, index: int = 0) -> int:
    """The seed of a method's ``index``-th training on ``task`` in evaluation ``repeat`` (repeat 0: the first runs)."""
    return (zlib.crc32(task.encode()) + EVAL_SEED + 1000 * repeat + index) % (2**31)


def train(task_key: str, config: dict | None, seed: int, callbacks=()) -> tuple[float, dict]:
    """The task's final monitor in its direction (a loss negated) and the (lr, weight_decay) the optimizer really used."""
    import lightning.pytorch as pl

    task = task_by_key(task_key)
    pl.seed_everything(seed, verbose=False)
    config = config or {}
    model, datamodule = task.build(seed, lr=config.get("lr"), weight_decay=config.get("weight_decay"))
    trainer = _trainer(task.epochs, callbacks)
    trainer.fit(model, datamodule=datamodule)
    used = {"lr": float(model.hparams.lr), "weight_decay": float(model.hparams.weight_decay)}
    value = float(trainer.callback_metrics[task.monitor])
    return (-value if task.mode == "min" else value), used


def with_mapping(task_key: str, mapping_path: str, seed: int) -> tuple[float, dict]:
    """The callback's single proposal, decided from the task's own features and probes at setup."""
    from lightning_meta.hpo.callback import HyperparameterMapping

    task = task_by_key(task_key)
    callback = HyperparameterMapping(mapping=mapping_path, task=task_key, probe=True, monitor=task.monitor, mode=task.mode)
    return train(task_key, None, seed, [callback])


def with_mapping_search(task_key: str, mapping_path: str, repeat: int) -> tuple[float, dict]:
    """``TPE_TRIALS`` fits with the callback recording into one pool, so each fit sees the task's earlier runs."""
    from lightning_meta.hpo.callback import HyperparameterMapping

    task = task_by_key(task_key)
    with tempfile.TemporaryDirectory() as folder:
        pool = f"sqlite:///{Path(folder) / 'search.db'}"
        runs = [train(task_key, None, _seed(task_key, repeat, index),
                      [HyperparameterMapping(mapping=mapping_path, pool=pool, task=task_key, probe=True,
                                             monitor=task.monitor, mode=task.mode)])
                for index in range(TPE_TRIALS)]
    return max(runs, key=lambda run: run[0])


def with_lr_finder(task_key: str, seed: int) -> tuple[float, dict]:
    """Lightning's LR range test on the default module, its suggestion applied, then a training."""
    import lightning.pytorch as pl
    from lightning.pytorch.tuner import Tuner

    task = task_by_key(task_key)
    pl.seed_everything(seed, verbose=False)
    model, datamodule = task.build(seed)
    # max_epochs high: the range test must reach its 100 steps on the smallest data sets
    Tuner(_trainer(1000)).lr_find(model, datamodule=datamodule, min_lr=1e-5, max_lr=1.0, num_training=100,
                                  update_attr=True)
    return train(task_key, {"lr": float(model.hparams.lr)}, seed)


def with_tpe(task_key: str, repeat: int) -> tuple[float, dict]:
    """Optuna TPE, ``TPE_TRIALS`` trainings, the configuration with the best validation accuracy."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=_seed(task_key, repeat))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for index in range(TPE_TRIALS):
        trial = study.ask()
        config = SPACE.to_optuna(trial)
        value, _ = train(task_key, config, _seed(task_key, repeat, index))
        study.tell(trial, value)
    return study.best_value, dict(study.best_params)


def _job(job: tuple) -> dict:
    """One training of ``method`` on a task; ``argument`` is a mapping file or, for the re-run, the best config."""
    method, task_key, argument, repeat = job
    _quiet()
    started = time.perf_counter()
    seed = _seed(task_key, repeat)
    if method == "defaults":
        value, config = train(task_key, None, seed)
    elif method == "best_of_30_rerun":
        value, config = train(task_key, argument, seed)
    elif method == "lr_finder":
        value, config = with_lr_finder(task_key, seed)
    elif method == f"optuna_tpe@{TPE_TRIALS}":
        value, config = with_tpe(task_key, repeat)
    elif f"@{TPE_TRIALS}" in method:
        value, config = with_mapping_search(task_key, argument, repeat)
    else:
        value, config = with_mapping(task_key, argument, seed)
    return {"method": method, "task": task_key, "family": task_key.split("/")[0], "repeat": repeat, "val_acc": value,
            **{f"hp_{k}": v for k, v in config.items()}, "seconds": time.perf_counter() - started}


def run_jobs(job, jobs: list, workers: int, started: float, every: int, unit: str) -> list[dict]:
    """``job`` over ``jobs`` in ``workers`` spawned processes, in completion order, printing progress every ``every``."""
    rows = []
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for i, row in enumerate(pool.imap_unordered(job, jobs), 1):
            rows.append(row)
            if i % every == 0:
                print(f"{i}/{len(jobs)} {unit}, {time.perf_counter() - started:.0f} s", flush=True)
    return rows


def family_frame(url: str) -> pd.DataFrame:
    """The pool's complete runs with a ``family`` column (the prefix of the task's name)."""
    with ExperiencePool(url) as pool:
        frame = pool.frame()
    return frame.assign(family=frame["task"].str.split("/").str[0])


def fit_mappings(frame: pd.DataFrame, kinds: list[str], out: Path, feature_sets: dict[str, list[str] | None]) -> list[tuple]:
    """One saved mapping per (held-out family, kind, feature set); returns the jobs that use them."""
    jobs, fit_seconds = [], {}
    for family in FAMILIES:
        train_frame = frame[frame["family"] != family]
        for kind in kinds:
            for label, keep in feature_sets.items():
                columns = [c for c in train_frame.columns if not c.startswith("f_") or keep is None or c[2:] in keep]
                started = time.perf_counter()
                mapping = MAPPINGS[kind]().fit(train_frame[columns], SPACE)
                fit_seconds[(kind, label)] = fit_seconds.get((kind, label), 0.0) + time.perf_counter() - started
                name = kind if label == "all" else f"{kind}[{label}]"
                path = out / f"{family}-{name}.mapping"
                mapping.save(path)
                jobs += [(name, task.key, str(path)) for task in FAMILIES[family]]
    print("fit seconds (all folds):", {f"{k}[{l}]": round(v, 1) for (k, l), v in fit_seconds.items()}, flush=True)
    return jobs


def uncorrected(path: str) -> str:
    """A copy of the mapping file at ``path`` with the kernel correction from observed runs off."""
    mapping = Mapping.load(path)
    mapping.adapt_lengthscale = None
    return str(mapping.save(Path(path).with_suffix(".uncorrected.mapping")))


def reference(frame: pd.DataFrame) -> pd.DataFrame:
    """Per task: best_of_30 and random@1 from the pool's random runs, and the best run's configuration."""
    rows = []
    for task, runs in frame.groupby("task"):
        best = runs.loc[runs["objective"].idxmax()]
        rows.append({"task": task, "family": task.split("/")[0], "runs": len(runs), "best_of_30": runs["objective"].max(),
                     "random@1": runs["objective"].mean(), "best_lr": best["hp_lr"], "best_wd": best["hp_weight_decay"]})
    return pd.DataFrame(rows).set_index("task")


def per_task(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, task): val_acc averaged over the evaluation repeats, the median proposed config."""
    return rows.groupby(["method", "task"], sort=False).agg(
        family=("family", "first"), val_acc=("val_acc", "mean"), repeats=("repeat", "nunique"),
        hp_lr=("hp_lr", "median"), hp_weight_decay=("hp_weight_decay", "median"),
    ).reset_index()


def scored(rows: pd.DataFrame, ref: pd.DataFrame) -> pd.DataFrame:
    """``per_task`` with each task's ``best_of_30`` and the ``ratio`` of the score to it."""
    results = per_task(rows).join(ref[["best_of_30"]], on="task")
    return results.assign(ratio=results["val_acc"] / results["best_of_30"])


def family_cells(part: pd.DataFrame, column: str) -> list[str]:
    """``mean (min)`` of ``column`` per held-out family ("–" where it has no rows), then over all of ``part``."""
    cells = [f"{v.mean():.3f} ({v.min():.2f})" if len(v := part.loc[part["family"] == family, column]) else "–"
             for family in FAMILIES]
    return cells + [f"{part[column].mean():.3f} ({part[column].min():.2f})"]


def report(results: pd.DataFrame, ref: pd.DataFrame, args, seconds: float) -> str:
    """The markdown page; ``results`` as ``scored`` returns them."""
    random = ref.reset_index().assign(method="random@1", val_acc=ref["random@1"].to_numpy())
    random["ratio"] = random["val_acc"] / random["best_of_30"]
    both = pd.concat([results, random[results.columns.intersection(random.columns)]], ignore_index=True)
    methods = list(dict.fromkeys(both["method"]))
    lines = [
        "# Leave-one-family-out: the callback's single proposal on real trainings",
        "",
        f"Command: `python benchmarks/hpo/families_lofo.py {shlex.join(args.argv)}`; "
        f"{seconds:.0f} s on {platform.processor() or platform.machine()} ({multiprocessing.cpu_count()} cores, shared).",
        "",
        "Each mapping is fit on the pool's runs of the other five families; every task of the held-out family is "
        "then trained once with the configuration the `HyperparameterMapping` callback proposes from the task's "
        "own features and probes. Score: final validation accuracy; ratio = score / best of the task's 30 random "
        "runs in the pool (`best_of_30`). `random@1` is the mean of those 30 runs (the expected score of one random "
        f"configuration). `optuna_tpe@{TPE_TRIALS}` spends {TPE_TRIALS} trainings per task.",
        "",
        "## Mean ratio per held-out family (min over its tasks in brackets)",
        "",
        "| method | " + " | ".join(FAMILIES) + " | all |",
        "|---|" + "---|" * (len(FAMILIES) + 1),
    ]
    for method in methods:
        lines.append(f"| {method} | " + " | ".join(family_cells(both[both["method"] == method], "ratio")) + " |")
    repeats = results.groupby("method")["repeats"].min()
    if (repeats > 1).any():
        lines += ["", "Evaluation seeds per task (each score is their mean): " + ", ".join(
            f"{method} {count}" for method, count in repeats.items()) + "."]
    lines += paired_with_rerun(results)
    lines += ["", "## Proposed learning rate per family (median over its tasks) against the best of 30", "",
              "| family | best_of_30 lr (median) | " + " | ".join(m for m in methods if m != "random@1") + " |",
              "|---|---|" + "---|" * (len(methods) - 1)]
    for family in FAMILIES:
        best = ref.loc[ref["family"] == family, "best_lr"].median()
        cells = []
        for method in methods:
            if method == "random@1":
                continue
            lrs = both.loc[(both["method"] == method) & (both["family"] == family), "hp_lr"]
            cells.append(f"{lrs.median():.2g}" if len(lrs) else "–")
        lines.append(f"| {family} | {best:.2g} | " + " | ".join(cells) + " |")
    lines += ["", "Raw rows: `benchmarks/results/hpo_families_lofo.jsonl`; plot: `hpo_families_lofo.png`."]
    return "\n".join(lines) + "\n"


def paired_with_rerun(results: pd.DataFrame) -> list[str]:
    """Each method's score over the best-of-30 configuration's own re-run score, with the same evaluation seeds."""
    rerun = results[results["method"] == "best_of_30_rerun"].set_index("task")["val_acc"]
    if rerun.empty:
        return []
    lines = ["", "## Against the best-of-30 configuration trained again with the same evaluation seeds", "",
             "Ratio = score / the re-run score of the task's best pool configuration, per task, then averaged over "
             "the family (min in brackets). Both sides are new trainings with the same seeds, so the pool "
             "maximum's selection bias is out of the comparison.", "",
             "| method | " + " | ".join(FAMILIES) + " | all |", "|---|" + "---|" * (len(FAMILIES) + 1)]
    for method, part in results[results["task"].isin(rerun.index)].groupby("method", sort=False):
        part = part.assign(paired=part["val_acc"].to_numpy() / rerun.loc[part["task"]].to_numpy())
        lines.append(f"| {method} | " + " | ".join(family_cells(part, "paired")) + " |")
    return lines


def plot(results: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = results.pivot_table(index="family", columns="method", values="ratio", aggfunc="mean").reindex(list(FAMILIES))
    ax = table.plot.bar(figsize=(11, 4.5), width=0.85)
    ax.axhline(0.97, color="black", linestyle="--", linewidth=1, label="target 0.97")
    ax.set_ylim(0.0, 1.05)
    ax.set_ylabel("val_acc / best of 30 random")
    ax.set_title("Leave-one-family-out: single proposal vs best of 30 random runs")
    ax.legend(fontsize=7, ncol=3)
    plt.xticks(rotation=20, ha="right", fontsize=8)
    plt.tight_layout()
    plt.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", default=f"sqlite:///{ROOT / 'lightning_meta/assets/mapping/families.db'}")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mappings", nargs="*", default=["best_on_average", "nearest_task", "gbm", "meta_surrogate"])
    parser.add_argument("--baselines", nargs="*", default=["defaults", "lr_finder", f"optuna_tpe@{TPE_TRIALS}"])
    parser.add_argument("--searches", nargs="*", default=["conditional_best_on_average"],
                        help=f"mappings (of --mappings) also run as a search of {TPE_TRIALS} fits with a pool")
    parser.add_argument("--search-ablation", action="store_true",
                        help="also run each search with the kernel correction from observed runs off")
    parser.add_argument("--ablation", default="gbm", help="mapping whose feature sets are compared ('' for none)")
    parser.add_argument("--out", default="hpo_families_lofo")
    parser.add_argument("--previous", nargs="*", default=[],
                        help="rows of earlier runs (jsonl) kept and not trained again; trainings are deterministic per task")
    parser.add_argument("--repeats", type=int, default=1, help="evaluation seeds per method and task (scores averaged)")
    args = parser.parse_args()
    args.argv = sys.argv[1:]
    _quiet()
    started = time.perf_counter()
    frame = family_frame(args.pool)
    ref = reference(frame)
    with tempfile.TemporaryDirectory() as folder:
        jobs = fit_mappings(frame, args.mappings, Path(folder), {"all": None})
        searches = [(f"{name}@{TPE_TRIALS}", task, path) for name, task, path in jobs if name in args.searches]
        if args.search_ablation:
            off = {path: uncorrected(path) for _, _, path in searches}
            searches += [(f"{name}[no correction]", task, off[path]) for name, task, path in searches]
        jobs += searches
        if args.ablation:
            basic = ["log_n_params", "n_layers", "n_samples", "log_n_samples", "n_classes", "samples_per_class",
                     "input_dim", "channels", "height", "width", "image_size", "shots", "label_noise", "noise"]
            sets = {"basic": basic, "basic+optimizer": basic + ["opt_sgd", "opt_adaptive", "opt_decoupled_wd",
                                                                 "opt_momentum", "batch_size"]}
            jobs += fit_mappings(frame, [args.ablation], Path(folder), sets)
        tasks = [t.key for tasks in FAMILIES.values() for t in tasks]
        best = {task: {"lr": float(r["best_lr"]), "weight_decay": float(r["best_wd"])} for task, r in ref.iterrows()}
        jobs += [(method, task, best.get(task) if method == "best_of_30_rerun" else None)
                 for method in args.baselines for task in tasks]
        previous = [row for path in args.previous for row in map(json.loads, Path(path).read_text().splitlines())]
        done = {(row["method"], row["task"], row.get("repeat", 0)) for row in previous}
        jobs = [(*job, r) for job in jobs for r in range(args.repeats) if (job[0], job[1], r) not in done]
        rows = run_jobs(_job, jobs, args.workers, started, every=25, unit="trainings")
    rows += [{"repeat": 0, **row} for row in previous]
    results = scored(pd.DataFrame(rows), ref)
    RESULTS.mkdir(exist_ok=True)
    with (RESULTS / f"{args.out}.jsonl").open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    text = report(results, ref, args, time.perf_counter() - started)
    (RESULTS / f"{args.out}.md").write_text(text)
    plot(results, RESULTS / f"{args.out}.png")
    print(text)


if __name__ == "__main__":
    main()
