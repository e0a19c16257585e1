"""Leave-one-task-out regret of the hyperparameter mappings on the public HPO meta-datasets.

For every task of HPOBench MLP, LCBench (YAHPO surrogate sample) and FCNet, each mapping is fit
on the other tasks and proposes configurations for the held-out one; the outcome of a proposal
is looked up in the task's full table (a configuration off the table is snapped to the nearest
table configuration in the encoded space). Normalized regret after n trials is
``(best of table - best found) / (best of table - worst of table)``; for FCNet the table also gives
the percentile, the fraction of the table that beats the best found (its objective is -log10 MSE,
whose divergent runs still stretch the min-max range).

Methods: random search and Optuna TPE (averaged over seeds); best-on-average, nearest-task,
GBM and the meta-surrogate ranking the table zero-shot (deterministic given the fit); and two of
them driving a search that adapts on the trials run so far and proposes the next: best-on-average
with the kernel correction every mapping adds from the task's own trials
(``lightning_meta/hpo/mappings/observed_residual.py``), and the meta-surrogate, which adapts its weights.

    python benchmarks/hpo/regret.py --jobs 2   # full (26 minutes with 2 processes on a shared 2-core machine)
    python benchmarks/hpo/regret.py --quick    # fewer seeds/trials/meta-steps
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
from scipy.spatial import cKDTree

from attainable import report as attainable_report
import metadatasets
from lightning_meta.hpo.mappings import BestOnAverage, GBMSurrogate, MetaSurrogate, NearestTask
from lightning_meta.hpo.mappings.base import Mapping, encode_frame

RESULTS = Path(__file__).resolve().parents[1] / "results"
REPORT_AT = (1, 3, 10, 30, 100)


class Table:
    """The held-out task's full table and the lookup of any proposal in it."""

    def __init__(self, dataset: metadatasets.MetaDataset, task: str) -> None:
        self.rows = dataset.table(task)
        self.x = encode_frame(self.rows, dataset.space)
        self.y = self.rows["objective"].to_numpy(dtype=float)
        self.tree = cKDTree(self.x)
        self.sorted_y = np.sort(self.y)

    def snap(self, x: np.ndarray) -> np.ndarray:
        return self.tree.query(np.atleast_2d(x))[1]

    def snap_unused(self, x: np.ndarray, used: np.ndarray) -> int:
        """The nearest table configuration to one encoded proposal that has not been run yet.

        A repeat would spend a trial on a known outcome, so a searcher that proposes off the table
        (or proposes the same point twice) is not charged for the grid's coarseness.
        """
        k = 8
        while True:
            rows = np.atleast_1d(self.tree.query(np.atleast_2d(x)[0], k=min(k, len(self.y)))[1])
            fresh = rows[~used[rows]]
            if len(fresh) or k >= len(self.y):
                return int(fresh[0])
            k *= 8

    def regret(self, best: np.ndarray) -> np.ndarray:
        return (self.y.max() - best) / (self.y.max() - self.y.min())

    def percentile(self, best: np.ndarray) -> np.ndarray:
        share = 1.0 - np.searchsorted(self.sorted_y, best, side="right") / len(self.y)
        return np.where(np.isnan(best), np.nan, share)

    def curve(self, rows: np.ndarray, trials: int) -> np.ndarray:
        """Best objective found after 1..trials proposals (NaN after the method's last trial)."""
        best = np.maximum.accumulate(self.y[np.asarray(rows, dtype=int)])
        return np.concatenate([best, np.full(max(trials - len(best), 0), np.nan)])[:trials]


def random_search(table: Table, trials: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(len(table.y), size=trials, replace=False)


def tpe_search(table: Table, dataset: metadatasets.MetaDataset, trials: int, seed: int) -> np.ndarray:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    rows = []
    for _ in range(trials):
        trial = study.ask()
        row = int(table.snap(dataset.space.encode([dataset.space.to_optuna(trial)]))[0])
        rows.append(row)
        study.tell(trial, table.y[row])
    return np.array(rows)


def ranked(mapping: Mapping, table: Table, features: dict, trials: int) -> np.ndarray:
    """The table's configurations in the order of the mapping's zero-shot prediction."""
    if isinstance(mapping, NearestTask):
        proposals = mapping.suggest(features, k=trials)
        return table.snap(mapping.space.encode(proposals))
    mean, _ = mapping.predict_encoded(features, table.x)
    return np.argsort(-mean, kind="stable")[:trials]


def driven_search(mapping: Mapping, table: Table, features: dict, trials: int) -> np.ndarray:
    """Each step: the prediction adapted to the trials run so far; run the best not-yet-run table configuration.

    A mapping that adapts itself (``adapt_lengthscale is None``: the meta-surrogate) predicts anew from
    the trials; any other predicts the same zero-shot scores whatever is observed, so they are computed
    once and only ``observed_correction`` is recomputed, which is what ``predict_adapted`` returns.
    """
    rows: list[int] = []
    available = np.ones(len(table.y), dtype=bool)
    zero_shot, _ = mapping.predict_encoded(features, table.x)
    for _ in range(trials):
        observed = table.rows.iloc[rows] if rows else None
        if mapping.adapt_lengthscale is None:
            mean, _ = mapping.predict_encoded(features, table.x, observed)
        else:
            mean = zero_shot + mapping.observed_correction(features, table.x, observed)
        row = int(np.argmax(np.where(available, mean, -np.inf)))
        rows.append(row)
        available[row] = False
    return np.array(rows)


def evaluate_task(name: str, task: str, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Best-so-far curves ``[seeds, trials]`` of each method on one held-out task."""
    started = time.time()
    dataset = metadatasets.load(name, args.data)
    table = Table(dataset, task)
    curves = {
        "random search": [table.curve(random_search(table, args.trials, s), args.trials) for s in range(args.seeds)],
        "Optuna TPE": [table.curve(tpe_search(table, dataset, args.tpe_trials, s), args.trials) for s in range(args.tpe_seeds)],
    }
    curves.update(mapping_curves(dataset, task, table, args))
    print(f"{name} {task}: {time.time() - started:.1f}s", flush=True)
    return {method: np.array(c) for method, c in curves.items()}


def mapping_curves(
    dataset: metadatasets.MetaDataset, task: str, table: Table, args: argparse.Namespace
) -> dict[str, list[np.ndarray]]:
    """Our mappings fit on every task but ``task``, each as a best-so-far curve on ``table``.

    Shared with ``peers.py`` so that both benchmarks run the mappings the same way. ``args`` needs
    ``trials, search_trials, members, meta_steps, gbm_members, seed``.
    """
    train, features = dataset.without(task), dataset.features(task)
    mappings = {
        "best-on-average": BestOnAverage(),
        "nearest-task": NearestTask(),
        "GBM": GBMSurrogate(members=args.gbm_members, rows_per_task=1000, max_iter=100),
        "meta-surrogate (zero-shot)": MetaSurrogate(members=args.members, meta_steps=args.meta_steps, seed=args.seed),
    }
    curves = {}
    for label, mapping in mappings.items():
        mapping.fit(train, dataset.space)
        curves[label] = [table.curve(ranked(mapping, table, features, args.trials), args.trials)]
    for label in ("best-on-average", "meta-surrogate (zero-shot)"):
        search = label.replace(" (zero-shot)", "") + " search"
        curves[search] = [table.curve(driven_search(mappings[label], table, features, args.search_trials), args.trials)]
    return curves


def summarize(
    name: str,
    tables: list[Table],
    per_task: list[dict[str, np.ndarray]],
    args: argparse.Namespace,
    report_at: tuple[int, ...] = REPORT_AT,
) -> tuple[str, dict[str, np.ndarray]]:
    """Markdown table (mean over tasks and seeds at REPORT_AT) and the mean curves to plot.

    The plotted curves are regret, or for FCNet the percentile (rank-based, so free of the scale).
    """
    curves = {method: [result[method] for result in per_task] for method in per_task[0]}
    at = [n for n in report_at if n <= args.trials]
    mean_curves, lines = {}, []
    percentile = name == "fcnet"
    header = "| method | " + " | ".join(f"regret@{n}" for n in at)
    header += " | " + " | ".join(f"pct@{n}" for n in at) if percentile else ""
    lines += [header + " |", "|---" * (1 + len(at) * (2 if percentile else 1)) + "|"]
    for method, per_task in curves.items():
        regret = np.stack([t.regret(np.asarray(c)).mean(axis=0) for t, c in zip(tables, per_task)])
        mean_curves[method] = regret.mean(axis=0)
        cells = [_cell(mean_curves[method][n - 1], "{:.4f}") for n in at]
        if percentile:
            pct = np.stack([t.percentile(np.asarray(c)).mean(axis=0) for t, c in zip(tables, per_task)]).mean(axis=0)
            cells += [_cell(100 * pct[n - 1], "{:.3f}%") for n in at]
            mean_curves[method] = pct
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines), mean_curves


def _cell(value: float, fmt: str) -> str:
    return "–" if np.isnan(value) else fmt.format(value)


def plot(all_curves: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(all_curves), figsize=(5 * len(all_curves), 4), squeeze=False)
    for ax, (name, curves) in zip(axes[0], all_curves.items()):
        for method, curve in curves.items():
            ax.plot(np.arange(1, len(curve) + 1), np.maximum(curve, 1e-5), label=method)
        ylabel = "share of the table better than best found" if name == "fcnet" else "normalized regret"
        ax.set(xscale="log", yscale="log", xlabel="trials", ylabel=ylabel, title=name)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds, trials and meta-steps")
    parser.add_argument("--data", default=None, help="folder of the meta-datasets (default ../shared/data/hpo)")
    parser.add_argument("--benchmarks", nargs="+", default=["hpobench_mlp", "lcbench", "fcnet"])
    parser.add_argument("--out", default=str(RESULTS / "hpo_regret"))
    parser.add_argument("--seed", type=int, default=0, help="seed of the meta-surrogate's meta-training")
    parser.add_argument("--jobs", type=int, default=1, help="held-out tasks evaluated in parallel processes")
    args = parser.parse_args()
    full = dict(seeds=10, trials=100, tpe_seeds=3, tpe_trials=100, search_trials=20, members=3, meta_steps=1000, gbm_members=1)
    quick = dict(seeds=5, trials=100, tpe_seeds=1, tpe_trials=50, search_trials=10, members=2, meta_steps=200, gbm_members=1)
    vars(args).update(quick if args.quick else full)
    started = time.time()
    datasets = {name: metadatasets.load(name, args.data) for name in args.benchmarks}
    jobs = [(name, task, args) for name, dataset in datasets.items() for task in dataset.tasks]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        results = pool.starmap(evaluate_task, jobs)
    sections, all_curves = [], {}
    for name, dataset in datasets.items():
        per_task = [r for (n, _, _), r in zip(jobs, results) if n == name]
        table, all_curves[name] = summarize(name, [Table(dataset, t) for t in dataset.tasks], per_task, args)
        sections.append(f"## {name} ({len(dataset.tasks)} tasks)\n\n{table}\n")
    sections.append(attainable_report(args.benchmarks, args.data))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot(all_curves, out.with_suffix(".png"))
    settings = ", ".join(f"{k}={v}" for k, v in vars(args).items() if k not in ("data", "out", "benchmarks"))
    out.with_suffix(".md").write_text(
        f"# Leave-one-task-out regret of the hyperparameter mappings\n\nCommand: `python benchmarks/hpo/regret.py"
        f"{' --quick' if args.quick else ''}` ({settings}); {time.time() - started:.0f} s.\n\n" + "\n".join(sections)
    )
    print("\n".join(sections))


if __name__ == "__main__":
    main()
