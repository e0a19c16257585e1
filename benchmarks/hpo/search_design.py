"""Simulated five-fit searches on the pool's recorded tasks: how the search's constants were chosen.

Real trainings are the final measure (``do_no_harm.py``), but they are too slow and too noisy to compare designs of
the search. Here every task of the shipped pool is a simulated objective: the Gaussian process of its own recorded
runs (``TaskIndex.score_at``, task-normalized score) plus Gaussian noise at that process's fitted noise level.
Leave-one-family-out, as the real benchmark: the mapping is fit on the other families. Each search runs what the
callback runs (the rule's decision, the user's values, then ``search.next_config``) for 5 fits. Reported per family:
the true score of the run the search would pick (its best observed), averaged over tasks and repeats.

    python benchmarks/hpo/search_design.py --weights 0 0.25 1
    python benchmarks/hpo/search_design.py --weights 0.25 --lengthscale-scales 1 2 --repeats 5 --out hpo_search_lengthscale
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_meta.hpo import search
from lightning_meta.hpo.evidence import weigh
from lightning_meta.hpo.mappings import MAPPINGS
from lightning_meta.hpo.space import SearchSpace

from families_lofo import family_frame  # it puts pool/ on the path

ROOT = Path(__file__).resolve().parents[2]
SPACE = SearchSpace.from_yaml(ROOT / "conf" / "space" / "default.yaml")
FITS = 5


class SimulatedTask:
    """One recorded task as an objective: its runs' GP plus noise at the GP's fitted level."""

    def __init__(self, index, task: str, frame: pd.DataFrame) -> None:
        self.index, self.id, self.name = index, index.names.index(task), task
        index.score_at(self.id, np.zeros((1, SPACE.dim)))  # fits the surface
        surface, scores = index._surfaces[self.id], index.scores[index.task_of == self.id]
        self.noise = float(np.sqrt(surface.kernel_.k2.noise_level) * scores.std())
        row = frame[frame["task"] == task].iloc[0]
        self.features = {c[2:]: row[c] for c in frame.columns if c.startswith("f_") and pd.notna(row[c])}
        self.defaults = {"lr": self.features["default_lr"], "weight_decay": self.features.get("default_weight_decay", 0.0)}

    def run(self, config: dict, rng: np.random.Generator, runs: list[dict]) -> float:
        """Records one noisy fit of ``config`` in ``runs`` (pool-frame rows plus ``truth``); returns its observation."""
        truth = float(self.index.score_at(self.id, SPACE.encode([config]))[0])
        observed = truth + rng.normal(0.0, self.noise)
        runs.append({"task": self.name, "status": "complete", **{f"hp_{k}": v for k, v in config.items()},
                     "objective": observed, "truth": truth})
        return observed

    def callback_runs(self, mapping, rng: np.random.Generator, fits: int = FITS) -> list[dict]:
        """The fits the callback makes: the rule's decision, the user's values, then the search's proposals."""
        runs: list[dict] = []
        base = self.user_values()
        change, _ = weigh(mapping, self.features, self.defaults, mapping.suggest(self.features, k=5), list(base))
        self.run({**base, **(change or {})}, rng, runs)
        if change:
            self.run(base, rng, runs)
        while len(runs) < fits:
            self.run(search.next_config(mapping, self.features, pd.DataFrame(runs), seed=len(runs)), rng, runs)
        return runs[:fits]

    def user_values(self) -> dict:
        return {p.name: p.clip(self.defaults[p.name]) for p in SPACE.params}

    def search(self, mapping, rng: np.random.Generator) -> float:
        return picked(self.callback_runs(mapping, rng))


def picked(runs: list[dict]) -> float:
    """The true score of the run a user keeps: the best observed one."""
    return max(runs, key=lambda r: r["objective"])["truth"]


def _scaled(learnt, scale: float):
    """``search.pool_kernel`` with its length scales multiplied by ``scale``."""
    def kernel(mapping):
        lengthscales, noise = learnt(mapping)
        return lengthscales * scale, noise
    return kernel


def _label(design: tuple[float, float], args) -> str:
    weight, scale = design
    return f"PRIOR_WEIGHT {weight:g}" + (f", length scales x{scale:g}" if args.lengthscale_scales != [1.0] else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", default=f"sqlite:///{ROOT / 'lightning_meta/assets/mapping/families.db'}")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 1.0], help="PRIOR_WEIGHT values")
    parser.add_argument("--lengthscale-scales", type=float, nargs="+", default=[1.0],
                        help="multiples of the length scales learnt from the pool (a bolder search: > 1)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="hpo_search_design")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    frame = family_frame(args.pool)
    index = MAPPINGS["conditional_best_on_average"]().fit(frame, SPACE).index
    families = sorted(frame["family"].unique())
    table = {}
    learnt = search.pool_kernel
    designs = [(w, scale) for w in args.weights for scale in args.lengthscale_scales]
    for family in families:
        mapping = MAPPINGS["conditional_best_on_average"]().fit(frame[frame["family"] != family], SPACE)
        tasks = [SimulatedTask(index, t, frame) for t in sorted(frame.loc[frame["family"] == family, "task"].unique())]
        for design in designs:
            search.PRIOR_WEIGHT, search.pool_kernel = design[0], _scaled(learnt, design[1])
            table[(family, design)] = np.mean([t.search(mapping, np.random.default_rng(r))
                                               for t in tasks for r in range(args.repeats)])
        print(family, {_label(d, args): round(table[(family, d)], 3) for d in designs}, flush=True)
    search.pool_kernel = learnt
    lines = ["# The search's constants, on simulated searches over the pool's recorded tasks", "",
             f"Command: `{shlex.join(['python', 'benchmarks/hpo/search_design.py', *sys.argv[1:]])}`; "
             f"{time.perf_counter() - started:.0f} s on {platform.machine()}. Leave-one-family-out; {FITS} fits as the "
             f"callback runs them; {args.repeats} noise seeds per task. Cell: the true task-normalized score of the "
             "run the search picks (1 = the best of the task's recorded runs).", "",
             "| held-out family | " + " | ".join(_label(d, args) for d in designs) + " |",
             "|---|" + "---:|" * len(designs)]
    for family in families:
        lines.append(f"| {family} | " + " | ".join(f"{table[(family, d)]:.3f}" for d in designs) + " |")
    lines.append("| **mean** | " + " | ".join(
        f"**{np.mean([table[(f, d)] for f in families]):.3f}**" for d in designs) + " |")
    text = "\n".join(lines) + "\n"
    (ROOT / "benchmarks" / "results" / f"{args.out}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
