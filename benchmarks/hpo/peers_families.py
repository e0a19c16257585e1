"""The callback's few fits against Syne Tune's transfer searchers, on task families held out of the pool.

``peers.py`` compares searchers on public tables whose held-out task always has close relatives. Here every family
of the shipped pool (``lightning_meta/assets/mapping/families.db``: Transformers, GRUs, regressions, fine-tuning,
...) is held out in turn, as in ``do_no_harm.py``, and every method gets the other families' runs only:

* ``defaults``: the module's own values, one fit;
* ``callback``: what ``HyperparameterMapping`` with a pool does over repeated fits (the do-no-harm rule's decision,
  the user's values, then ``hpo/search.py``), the mapping fit on the other families;
* Syne Tune's ZeroShotTransfer (on a shared grid whose scores each recorded task's runs impute: they ran
  different configurations),
  BoundingBox (random search in the box of the other tasks' best configurations) and the quantile-based
  surrogate searcher (CTS), each told the other families' task-normalized scores as transfer evaluations;
* random search over the space.

A held-out task is the simulated objective of ``search_design.py``: the Gaussian process of its own 24 recorded
runs plus noise at that process's fitted level, so that hundreds of searches cost no training. Cell: the true
task-normalized score of the run a user keeps (the best observed one) after 1 and after 5 fits, averaged over the
family's tasks and the noise seeds (1 = the best of the task's recorded runs). The peers do not read the user's
values: knowing them is part of what the callback brings. The real trainings of the callback's arms are in
``do_no_harm.py``.

    pip install -r benchmarks/hpo/requirements-peers.txt
    python benchmarks/hpo/peers_families.py --repeats 3
"""

from __future__ import annotations

import argparse
import logging
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_meta.hpo.mappings import MAPPINGS
from lightning_meta.hpo.mappings.base import normalized_scores

from families_lofo import family_frame  # it puts pool/ on the path
from peers import (PEERS, _clipped, _Peer, _syne_tune_version, offline_evaluation, syne_config_space,
                   table_evaluation)
from search_design import FITS, ROOT, SPACE, SimulatedTask, picked

MAPPING = "conditional_best_on_average"
METHODS = ("defaults", "callback", *PEERS, "random search")


def transfer_evaluations(frame: pd.DataFrame, config_space: dict) -> dict:
    """The tasks of ``frame`` as Syne Tune's offline evaluations: one seed, one fidelity, -normalized score."""
    frame = frame.assign(score=normalized_scores(frame))
    return {task: table_evaluation(config_space, rows.reset_index(drop=True), SPACE.names, "score")
            for task, rows in frame.groupby("task", sort=True)}


def grid_evaluations(tasks: list[str], index, config_space: dict, size: int = 256) -> dict:
    """The tasks on one shared grid of ``size`` random configurations, each task's score read from its runs' Gaussian
    process: ZeroShotTransfer ranks configurations that every task ran, and the pool's tasks ran different ones.
    (Syne Tune 0.16's own ``use_surrogates=True`` fails: it reads an attribute it never sets.)"""
    grid = SPACE.sample(size, 0)
    hyperparameters = pd.DataFrame(grid)[SPACE.names]
    encoded = SPACE.encode(grid)
    return {task: offline_evaluation(config_space, hyperparameters, index.score_at(index.names.index(task), encoded))
            for task in tasks}


def peer_fits(task: SimulatedTask, kind: str, config_space: dict, evaluations: tuple[dict, dict],
              seed: int) -> list[dict]:
    """``FITS`` fits of one peer on the simulated task, asked and told through its own API; ``evaluations`` are the
    recorded runs and, for ZeroShotTransfer, the same tasks on a shared grid."""
    rng = np.random.default_rng(seed)
    peer = _Peer(kind, config_space, evaluations[kind == "ZeroShotTransfer"], seed)
    runs: list[dict] = []
    for trial in range(FITS):
        config = peer.ask()
        if config is None:
            break
        observed = task.run(_clipped(config, SPACE), rng, runs)
        peer.tell(trial, config, -observed)
    return runs


def random_fits(task: SimulatedTask, seed: int) -> list[dict]:
    rng, runs = np.random.default_rng(seed), []
    for config in SPACE.sample(FITS, seed + 1000):
        task.run(config, rng, runs)
    return runs


def evaluate_family(family: str, frame: pd.DataFrame, index, repeats: int) -> pd.DataFrame:
    """One row per (task, method, seed): the kept run's true score after 1 and after ``FITS`` fits."""
    others = frame[frame["family"] != family]
    mapping = MAPPINGS[MAPPING]().fit(others, SPACE)
    config_space = syne_config_space(SPACE)
    evaluations = (transfer_evaluations(others, config_space),
                   grid_evaluations(sorted(others["task"].unique()), index, config_space))
    rows = []
    for name in sorted(frame.loc[frame["family"] == family, "task"].unique()):
        task = SimulatedTask(index, name, frame)
        for seed in range(repeats):
            fits = {"defaults": [], "callback": task.callback_runs(mapping, np.random.default_rng(seed)),
                    "random search": random_fits(task, seed)}
            task.run(task.user_values(), np.random.default_rng(seed), fits["defaults"])
            for kind in PEERS:
                fits[kind] = peer_fits(task, kind, config_space, evaluations, seed)
            for method, runs in fits.items():
                rows.append({"family": family, "task": name, "method": method, "seed": seed,
                             "at_1": picked(runs[:1]), f"at_{FITS}": picked(runs)})
    return pd.DataFrame(rows)


def report(rows: pd.DataFrame, argv: list[str], seconds: float, version: str, out: str) -> str:
    per_family = rows.groupby(["family", "method"])[["at_1", f"at_{FITS}"]].mean()
    families = sorted(rows["family"].unique())
    lines = [
        "# The callback's fits against Syne Tune's transfer searchers, on families held out of the pool",
        "",
        f"Command: `{shlex.join(['python', 'benchmarks/hpo/peers_families.py', *argv])}`; {seconds:.0f} s on "
        f"{platform.machine()}; syne-tune {version}. Leave-one-family-out on the shipped pool; each held-out task "
        "is the Gaussian process of its 24 recorded runs plus its fitted seed noise. Cell: the true task-normalized "
        "score of the best observed run (1 = the best recorded run), mean over the family's tasks and "
        f"{rows['seed'].nunique()} noise seeds; after 1 fit / after {FITS} fits. Raw rows: `{Path(out).name}.csv`; "
        f"plot: `{Path(out).name}.png`.",
        "",
        "| held-out family | " + " | ".join(METHODS) + " |",
        "|---|" + "---:|" * len(METHODS),
    ]
    for family in families:
        cells = [f"{per_family.loc[(family, m), 'at_1']:.3f} / {per_family.loc[(family, m), f'at_{FITS}']:.3f}"
                 if m != "defaults" else f"{per_family.loc[(family, m), 'at_1']:.3f}" for m in METHODS]
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    means = per_family.groupby("method").mean()
    worst = per_family.groupby("method").min()
    lines.append("| **mean** | " + " | ".join(
        f"**{means.loc[m, 'at_1']:.3f}**" if m == "defaults" else f"**{means.loc[m, 'at_1']:.3f} / "
        f"{means.loc[m, f'at_{FITS}']:.3f}**" for m in METHODS) + " |")
    lines.append("| worst family | " + " | ".join(
        f"{worst.loc[m, 'at_1']:.3f}" if m == "defaults" else f"{worst.loc[m, 'at_1']:.3f} / "
        f"{worst.loc[m, f'at_{FITS}']:.3f}" for m in METHODS) + " |")
    paired = rows.pivot_table(index=["task", "seed"], columns="method", values=f"at_{FITS}")
    lines += ["", f"Paired over (task, seed), after {FITS} fits: the callback's kept run against each peer's "
                  "(share of pairs where the callback's is at least as good, mean difference).", ""]
    for method in [*PEERS, "random search"]:
        diff = paired["callback"] - paired[method]
        lines.append(f"- {method}: {np.mean(diff >= -1e-9):.0%} of {len(diff)} pairs, {diff.mean():+.3f}")
    return "\n".join(lines) + "\n"


def plot(rows: pd.DataFrame, path: Path) -> None:
    """Per held-out family, each method's kept run after ``FITS`` fits (the defaults: their one fit)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means = rows.groupby(["family", "method"])[f"at_{FITS}"].mean().unstack()
    families = list(means.index)
    width = 0.8 / len(METHODS)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for i, method in enumerate(METHODS):
        ax.bar(np.arange(len(families)) + i * width, means[method], width, label=method)
    ax.set_xticks(np.arange(len(families)) + width * (len(METHODS) - 1) / 2, families, rotation=20, ha="right",
                  fontsize=8)
    ax.set_ylabel(f"true normalized score of the kept run, {FITS} fits")
    ax.set_title("Held-out families: the callback's fits against Syne Tune's transfer searchers")
    ax.set_ylim(0.0, 1.25)
    ax.legend(fontsize=8, ncol=len(METHODS), loc="upper center")
    plt.tight_layout()
    plt.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", default=f"sqlite:///{ROOT / 'lightning_meta/assets/mapping/families.db'}")
    parser.add_argument("--repeats", type=int, default=3, help="noise seeds per task")
    parser.add_argument("--families", nargs="+", default=None, help="only these held-out families")
    parser.add_argument("--out", default="hpo_peers_families")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("syne_tune").setLevel(logging.ERROR)
    started = time.perf_counter()
    frame = family_frame(args.pool)
    index = MAPPINGS[MAPPING]().fit(frame, SPACE).index
    parts = []
    for family in args.families or sorted(frame["family"].unique()):
        parts.append(evaluate_family(family, frame, index, args.repeats))
        print(family, parts[-1].groupby("method")[f"at_{FITS}"].mean().round(3).to_dict(), flush=True)
    rows = pd.concat(parts)
    text = report(rows, sys.argv[1:], time.perf_counter() - started, _syne_tune_version(), args.out)
    (ROOT / "benchmarks" / "results" / f"{args.out}.md").write_text(text)
    rows.to_csv(ROOT / "benchmarks" / "results" / f"{args.out}.csv", index=False)
    plot(rows, ROOT / "benchmarks" / "results" / f"{args.out}.png")
    print(text)


if __name__ == "__main__":
    main()
