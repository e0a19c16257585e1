"""Learning from every run: proposals on a stream of tasks from a family the mapping has never seen.

For each task family F in turn, the mapping starts fit on the pool without F. F's tasks then
arrive one at a time (a fixed shuffled order): the ``HyperparameterMapping`` callback proposes a
configuration for the task and the run is recorded; the user then searches the task (its 30
random runs from the collected pool are recorded too); the ``RefitPolicy`` the callback uses
(``refit_every=1``) fits the mapping again on the base pool plus everything recorded so far,
before the next task arrives. The proposal for task ``i`` never saw task ``i``'s own runs.
Reported: ratio = proposal's val_acc / the task's best of 30 random runs, against the number of
F's tasks already recorded.

    python benchmarks/hpo/refit_stream.py --kind nearest_task
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from families_lofo import RESULTS, ROOT, SPACE, _quiet, _seed, train  # it puts pool/ on the path
from lightning_meta.hpo.callback import HyperparameterMapping
from lightning_meta.hpo.mappings import MAPPINGS
from lightning_meta.hpo.pool import ExperiencePool
from lightning_meta.hpo.refit import RefitPolicy
from pool.families import FAMILIES

log = logging.getLogger(__name__)


def _copy(pool: ExperiencePool, rows: pd.DataFrame) -> None:
    """Records the runs of ``rows`` (a pool frame) in ``pool``."""
    features = [c for c in rows.columns if c.startswith("f_")]
    params = [f"hp_{n}" for n in SPACE.names]
    for _, row in rows.iterrows():
        pool.record(row["task"], {c[2:]: row[c] for c in features if pd.notna(row[c])},
                    {c[3:]: row[c] for c in params}, objective=float(row["objective"]))


def stream(frame: pd.DataFrame, family: str, kind: str, folder: Path, seed: int) -> list[dict]:
    """The proposals' ratios for F's tasks, in arrival order, the mapping refit after each."""
    others, own = frame[frame["family"] != family], frame[frame["family"] == family]
    base = ExperiencePool(f"sqlite:///{folder / f'{family}-base.db'}")
    _copy(base, others.drop(columns="family"))
    recording = ExperiencePool(f"sqlite:///{folder / f'{family}-stream.db'}")
    path = folder / f"{family}.mapping"
    mapping = MAPPINGS[kind]().fit(others, SPACE)
    mapping.save(path)
    policy = RefitPolicy(every=1, base=[base.url], save_to=path)
    order = np.random.default_rng(seed).permutation([t.key for t in FAMILIES[family]])
    rows = []
    for index, task in enumerate(order):
        runs = own[own["task"] == task]
        callback = HyperparameterMapping(mapping=str(path), pool=recording, task=task, probe=True)
        value, config = train(task, None, _seed(task), [callback])
        rows.append({"family": family, "seen": index, "task": task, "val_acc": value, "lr": config["lr"],
                     "best_of_30": runs["objective"].max(), "ratio": value / runs["objective"].max()})
        print(f"{family} {index} {task} ratio {rows[-1]['ratio']:.3f} lr {config['lr']:.3g}", flush=True)
        _copy(recording, runs.drop(columns="family"))
        started = time.perf_counter()
        if policy.due(mapping, recording):
            policy.refit(mapping, recording)
        rows[-1]["refit_s"] = time.perf_counter() - started
    return rows


def _family(job: tuple) -> list[dict]:
    frame, family, kind, folder, seed = job
    _quiet()
    return stream(frame, family, kind, Path(folder), seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", default=f"sqlite:///{ROOT / 'lightning_meta/assets/mapping/families.db'}")
    parser.add_argument("--kind", default="nearest_task")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    _quiet()
    started = time.perf_counter()
    with ExperiencePool(args.pool) as pool:
        frame = pool.frame()
    frame = frame.assign(family=frame["task"].str.split("/").str[0])
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jobs = [(frame, family, args.kind, folder, args.seed) for family in FAMILIES]
        with multiprocessing.get_context("spawn").Pool(args.workers) as workers:
            rows = [row for part in workers.imap(_family, jobs) for row in part]
    results = pd.DataFrame(rows)
    seconds = time.perf_counter() - started
    out = RESULTS / f"hpo_refit_stream_{args.kind}"
    with out.with_suffix(".jsonl").open("w") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    curve = results.groupby("seen")["ratio"].agg(["mean", "min", "count"])
    lines = [
        "# Learning from every run: a new family's tasks arriving one at a time",
        "",
        f"Command: `python benchmarks/hpo/refit_stream.py --kind {args.kind} --workers {args.workers} --seed {args.seed}`; "
        f"{seconds:.0f} s on {platform.processor() or platform.machine()} ({multiprocessing.cpu_count()} cores, shared).",
        "",
        "Each family in turn is held out; the mapping starts fit on the other families' runs. The family's tasks "
        "arrive in a shuffled order; the callback proposes for each (one real training), the run and the task's "
        "30 random runs are recorded, and the mapping is fit again (`RefitPolicy(every=1)`) before the next task. "
        "Ratio = the proposal's val_acc / the task's best of 30 random runs.",
        "",
        "| tasks of the family already recorded | mean ratio | min ratio | tasks |",
        "|---:|---:|---:|---:|",
    ]
    lines += [f"| {seen} | {row['mean']:.3f} | {row['min']:.3f} | {int(row['count'])} |" for seen, row in curve.iterrows()]
    early, late = results[results["seen"] < 3]["ratio"].mean(), results[results["seen"] >= 3]["ratio"].mean()
    lines += ["", f"Mean ratio with fewer than 3 tasks of the family recorded: {early:.3f}; with 3 or more: {late:.3f}.",
              f"Mean refit time: {results['refit_s'].mean():.1f} s.", "",
              "Per family (ratio in arrival order):", ""]
    for family, part in results.groupby("family"):
        lines.append(f"- {family}: " + ", ".join(f"{r:.2f}" for r in part.sort_values("seen")["ratio"]))
    text = "\n".join(lines) + "\n"
    out.with_suffix(".md").write_text(text)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for family, part in results.groupby("family"):
        ax.plot(part["seen"], part["ratio"], alpha=0.35, marker=".", label=family)
    ax.plot(curve.index, curve["mean"], color="black", linewidth=2, label="mean")
    ax.set_xlabel("tasks of the held-out family already recorded")
    ax.set_ylabel("proposal val_acc / best of 30")
    ax.set_title(f"Refit after every task ({args.kind})")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)
    print(text)


if __name__ == "__main__":
    main()
