"""Syne Tune's transfer-HPO searchers beside our mappings, leave one task out on the same tables.

The peers (``pip install -r benchmarks/hpo/requirements-peers.txt``):

- ZeroShotTransfer (Wistuba et al. 2015): greedily picks the configurations of minimal average
  rank over the training tasks; deterministic.
- BoundingBox (Perrone et al. 2019): the box spanned by each training task's best configuration,
  searched by random search.
- Quantile-based surrogate searcher (Salinas et al. 2020, the Thompson-sampling part of CTS as
  Syne Tune ships it): XGBoost on rank-gaussianized objectives of the training tasks, a sample from
  its predictive distribution over 100,000 random candidates, argmin.

Each peer gets the same config space (the ranges of ``metadatasets``), the training tasks' full
tables as ``transfer_learning_evaluations`` and is asked and told through its own API in a loop
over the held-out task's table. A proposal is snapped to the nearest table configuration in the
encoded space that has not been run yet (``regret.Table.snap_unused``). Our mappings run as in
``regret.py`` (``regret.mapping_curves``); regret is the same normalized regret.

    python benchmarks/hpo/peers.py             # full: 10 seeds, 100 trials, 3 meta-datasets
    python benchmarks/hpo/peers.py --quick     # one small table, few seeds: a smoke run
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

import metadatasets
import regret
from lightning_meta.hpo.space import SearchSpace

RESULTS = Path(__file__).resolve().parents[1] / "results"
REPORT_AT = (1, 10, 50, 100)
TARGET_AT = (1, 10, 50)
METRIC = "loss"  # the peers minimize, so they are told -objective
OURS = ("best-on-average", "nearest-task", "GBM", "meta-surrogate (zero-shot)", "best-on-average search", "meta-surrogate search")
# What the shipped default mapping is on these tables: ConditionalBestOnAverage groups by the optimizer kind, which no
# table records, so it is best-on-average, and repeated trials add the kernel correction from the observed runs.
DEFAULT = "best-on-average search"
ERRORS: set[str] = set()
PEERS = ("ZeroShotTransfer", "BoundingBox (random search)", "quantile-based (CTS)")


def syne_config_space(space: SearchSpace) -> dict[str, Any]:
    """Our search space as a Syne Tune config space with the same ranges and scales."""
    from syne_tune.config_space import choice, lograndint, loguniform, randint, uniform

    domains: dict[str, Any] = {}
    for p in space.params:
        if p.type == "categorical":
            domains[p.name] = choice(list(p.choices))
        elif p.type == "int":
            domains[p.name] = (lograndint if p.log else randint)(int(p.low), int(p.high))
        else:
            domains[p.name] = (loguniform if p.log else uniform)(float(p.low), float(p.high))
    return domains


def transfer_evaluations(dataset: metadatasets.MetaDataset, task: str, config_space: dict) -> dict:
    """Every task but ``task`` as Syne Tune's offline evaluations (one seed, one fidelity, -objective)."""
    return {other: table_evaluation(config_space, dataset.table(other), dataset.space.names, "objective")
            for other in dataset.tasks if other != task}


def table_evaluation(config_space: dict, rows: Any, names: list[str], column: str) -> Any:
    """One task's runs (``hp_<name>`` columns and ``column``, higher is better) as Syne Tune's offline evaluation."""
    return offline_evaluation(config_space, rows[[f"hp_{n}" for n in names]].set_axis(names, axis=1),
                              rows[column].to_numpy(dtype=float))


def offline_evaluation(config_space: dict, hyperparameters: Any, scores: np.ndarray) -> Any:
    """Syne Tune's ``TransferLearningTaskEvaluations`` of one task: one seed, one fidelity, the loss ``-scores``."""
    from syne_tune.optimizer.schedulers.transfer_learning.transfer_learning_task_evaluation import (
        TransferLearningTaskEvaluations,
    )

    return TransferLearningTaskEvaluations(config_space, hyperparameters, [METRIC], -scores.reshape(-1, 1, 1, 1))


class _Peer:
    """One ask/tell interface over the three peers, whose APIs differ in Syne Tune 0.16."""

    def __init__(self, kind: str, config_space: dict, evaluations: dict, seed: int) -> None:
        from syne_tune.optimizer.baselines import RandomSearch
        from syne_tune.optimizer.schedulers.transfer_learning.bounding_box import BoundingBox
        from syne_tune.optimizer.schedulers.transfer_learning.zero_shot import ZeroShotTransfer
        from syne_tune.optimizer.schedulers.transfer_learning.quantile_based.quantile_based_searcher import (
            QuantileBasedSurrogateSearcher,
        )

        self.kind = kind
        if kind == "ZeroShotTransfer":
            # the tables share one grid in one row order, so no sorting (which is unstable on tied rows)
            self.method = ZeroShotTransfer(
                config_space, METRIC, evaluations, do_minimize=True,
                sort_transfer_learning_evaluations=False, random_seed=seed,
            )
        elif kind == "BoundingBox (random search)":
            def random_search(box: dict, metric: str, do_minimize: bool, random_seed: int) -> RandomSearch:
                return RandomSearch(box, metrics=[metric], do_minimize=do_minimize, random_seed=random_seed)

            self.method = BoundingBox(random_search, config_space, METRIC, evaluations, do_minimize=True, random_seed=seed)
        elif kind == "quantile-based (CTS)":
            self.method = QuantileBasedSurrogateSearcher(config_space, evaluations, random_seed=seed)
        else:
            raise ValueError(kind)

    def ask(self) -> dict | None:
        if self.kind == "ZeroShotTransfer":
            # in 0.16 ZeroShotTransfer.suggest() goes to the scheduler's default random searcher;
            # the method itself is get_config()
            return self.method.get_config()
        if self.kind == "BoundingBox (random search)":
            suggestion = self.method.suggest()
            return None if suggestion is None else suggestion.config
        return self.method.suggest()

    def tell(self, trial_id: int, config: dict, loss: float) -> None:
        from syne_tune.backend.trial_status import Trial

        if self.kind == "quantile-based (CTS)":
            self.method.on_trial_complete(trial_id, config, loss)
        else:
            self.method.on_trial_complete(Trial(trial_id, config, datetime.now()), {METRIC: loss})


def peer_search(make: Callable[[], _Peer], table: regret.Table, space: SearchSpace, trials: int) -> np.ndarray:
    """Rows of ``table`` a peer runs, each snapped to the nearest configuration not run yet."""
    peer, used, rows = make(), np.zeros(len(table.y), dtype=bool), []
    for trial_id in range(trials):
        try:
            config = peer.ask()
        except Exception as err:  # a peer's own failure ends its run; the table reports it
            ERRORS.add(f"{peer.kind} after {trial_id} trials: {type(err).__name__}: {err}")
            break
        if config is None:
            break
        row = table.snap_unused(space.encode([_clipped(config, space)]), used)
        used[row] = True
        rows.append(row)
        peer.tell(trial_id, config, -float(table.y[row]))
    return np.array(rows, dtype=int)


def _clipped(config: dict, space: SearchSpace) -> dict:
    """The proposal inside our bounds: a log-uniform draw at a bound can land 1e-16 outside it (exp of log)."""
    values = {}
    for p in space.params:
        value = config[p.name]
        values[p.name] = value if p.type == "categorical" else min(max(value, p.low), p.high)
    return values


def evaluate_task(dataset: metadatasets.MetaDataset, task: str, args: argparse.Namespace) -> tuple[dict, dict]:
    """Best-so-far curves ``[seeds, trials]`` of every method on one held-out task, and seconds per method."""
    table = regret.Table(dataset, task)
    if args.peers:  # Syne Tune is imported only when a peer runs (it is a benchmark-only dependency)
        config_space = syne_config_space(dataset.space)
        evaluations = transfer_evaluations(dataset, task, config_space)
    curves, seconds = {}, {}
    started = time.time()
    curves["random search"] = [table.curve(regret.random_search(table, args.trials, s), args.trials) for s in range(args.seeds)]
    seconds["random search"] = time.time() - started
    for kind in args.peers:
        started = time.time()
        seeds = range(args.peer_seeds.get(kind, args.seeds))
        trials = args.peer_trials.get(kind, args.trials)
        if kind == "ZeroShotTransfer" and args.zs_trials and len(table.y) > 10_000:
            trials = min(trials, args.zs_trials)
        curves[kind] = [
            table.curve(peer_search(lambda: _Peer(kind, config_space, evaluations, s), table, dataset.space, trials), args.trials)
            for s in seeds
        ]
        seconds[kind] = time.time() - started
    if args.ours:
        started = time.time()
        curves.update(regret.mapping_curves(dataset, task, table, args))
        seconds["ours (all mappings)"] = time.time() - started
    print(f"{dataset.name} {task}: " + ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()), flush=True)
    return {method: np.array(c) for method, c in curves.items()}, seconds


def targets(name: str, mean_regret: dict[str, np.ndarray]) -> list[str]:
    """Rows of the target table: the shipped default method (``DEFAULT``) at or below the best peer's regret at 1, 10
    and 50 trials. One method for every cell, as a user gets it: not the best of ours per cell."""
    lines = []
    for n in (n for n in TARGET_AT if n <= len(next(iter(mean_regret.values())))):
        peers = {m: mean_regret[m][n - 1] for m in PEERS if m in mean_regret and not np.isnan(mean_regret[m][n - 1])}
        if DEFAULT not in mean_regret or np.isnan(mean_regret[DEFAULT][n - 1]) or not peers:
            continue
        ours, best_peer = mean_regret[DEFAULT][n - 1], min(peers, key=peers.get)
        met = "yes" if ours <= peers[best_peer] else "no"
        lines.append(f"| {name} | {n} | {ours:.4f} | {best_peer} {peers[best_peer]:.4f} | {met} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="HPOBench MLP, 2 held-out tasks, 2 seeds, 20 trials")
    parser.add_argument("--data", default=None, help="folder of the meta-datasets (default ../shared/data/hpo)")
    parser.add_argument("--benchmarks", nargs="+", default=None)
    parser.add_argument("--tasks", type=int, default=None, help="only the first N held-out tasks of each benchmark")
    parser.add_argument("--no-peers", dest="with_peers", action="store_false", help="our side of the protocol only")
    parser.add_argument("--out", default=str(RESULTS / "hpo_peers"))
    parser.add_argument("--seed", type=int, default=0, help="seed of the meta-surrogate's meta-training")
    parser.add_argument("--meta-steps", type=int, default=None, help="meta-surrogate meta-training steps")
    parser.add_argument("--cts-seeds", type=int, default=None, help="seeds of the quantile-based peer (default --seeds)")
    parser.add_argument(
        "--zs-trials", type=int, default=None,
        help="trials of ZeroShotTransfer on tables of 30,000+ configurations (each of its steps re-ranks them all)",
    )
    args = parser.parse_args()
    # the meta-surrogate at regret.py --quick's size (2 members, 200 meta-steps): 46 folds of the full size
    # (3 members, 1000 steps) alone take about 50 minutes on 2 cores
    full = dict(seeds=10, trials=100, search_trials=100, members=2, meta_steps=200, gbm_members=1)
    quick = dict(seeds=2, trials=20, search_trials=20, members=1, meta_steps=20, gbm_members=1)
    settings = quick if args.quick else full
    if args.meta_steps is not None:
        settings["meta_steps"] = args.meta_steps
    vars(args).update(settings)
    args.benchmarks = args.benchmarks or (["hpobench_mlp"] if args.quick else ["hpobench_mlp", "fcnet", "lcbench"])
    args.tasks = args.tasks or (2 if args.quick else None)
    args.ours = True
    args.peers = PEERS if args.with_peers else ()
    # ZeroShotTransfer is deterministic (its seed only drives the surrogate option, unused here): one run
    args.peer_seeds = {"ZeroShotTransfer": 1, **({"quantile-based (CTS)": args.cts_seeds} if args.cts_seeds else {})}
    args.peer_trials = {}
    logging.getLogger("syne_tune").setLevel(logging.ERROR)
    version = _syne_tune_version() if args.with_peers else "not used"
    started = time.time()
    sections, all_curves, target_lines, timing = [], {}, [], {}
    for name in args.benchmarks:
        dataset = metadatasets.load(name, args.data)
        tasks = dataset.tasks[: args.tasks] if args.tasks else dataset.tasks
        results = [evaluate_task(dataset, task, args) for task in tasks]
        per_task = [r[0] for r in results]
        for _, secs in results:
            for k, v in secs.items():
                timing.setdefault(name, {}).setdefault(k, 0.0)
                timing[name][k] += v
        tables = [regret.Table(dataset, t) for t in tasks]
        text, all_curves[name] = regret.summarize(name, tables, per_task, args, report_at=REPORT_AT)
        mean_regret = {
            m: np.stack([t.regret(np.asarray(r[m])).mean(axis=0) for t, r in zip(tables, per_task)]).mean(axis=0)
            for m in per_task[0]
        }
        target_lines += targets(name, mean_regret)
        sections.append(f"## {name} ({len(tasks)} held-out tasks)\n\n{text}\n")
        _write(args, version, time.time() - started, sections, all_curves, target_lines, timing)


def _write(
    args: argparse.Namespace, version: str, wall: float, sections: list[str], all_curves: dict,
    target_lines: list[str], timing: dict,
) -> None:
    """The results file and plot so far (rewritten after each benchmark, so a cut-off run keeps its tables)."""
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    regret.plot(all_curves, out.with_suffix(".png"))
    shown = {k: v for k, v in vars(args).items() if k not in ("data", "out", "with_peers", "ours", "peers", "quick")}
    columns = list(next(iter(timing.values())))
    report = [
        "# Transfer-HPO peers (Syne Tune) beside our mappings, leave one task out",
        "",
        f"Command: `python benchmarks/hpo/peers.py {' '.join(sys.argv[1:])}`".rstrip() + f" ({json.dumps(shown, default=str)});"
        f" syne-tune {version}; {wall:.0f} s wall.",
        "",
        *sections,
        f"## Targets: the shipped default method ({DEFAULT}) at or below the best peer's regret",
        "",
        f"| benchmark | trials | {DEFAULT} | best peer | met? |",
        "|---|---|---|---|---|",
        *target_lines,
        "",
        "## Peer errors",
        "",
        *([f"- {e}" for e in sorted(ERRORS)] or ["none"]),
        "",
        "## Seconds per method (all held-out tasks and seeds)",
        "",
        "| benchmark | " + " | ".join(columns) + " |",
        "|---" * (1 + len(columns)) + "|",
        *[f"| {name} | " + " | ".join(f"{secs.get(c, 0):.0f}" for c in columns) + " |" for name, secs in timing.items()],
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(report))
    print("\n".join(report), flush=True)


def _syne_tune_version() -> str:
    from importlib.metadata import version

    return version("syne-tune")


if __name__ == "__main__":
    main()
