"""Calibrates how far a recorded task may be and still count as like the new one (``max_distance``).

Leave-one-family-out on the pool's runs, with no new training: for each held-out family, the mapping and its task
index are fit on the other families; for each held-out task the do-no-harm rule is run with no distance limit
(``max_distance=inf``), so it picks a change from the nearest recorded tasks whatever their distance. The change
is then scored on the held-out task's OWN pool runs (a Gaussian process over its 24 runs, the same reading the rule
uses on its neighbours): the realized gain over the task's defaults in normalized score. Grouped by the distance to
the nearest recorded task, this shows up to which distance the neighbours' advice holds. The threshold chosen is
the largest distance at which the changes made to tasks within it gain on average and harm (realized gain below
minus the margin) at most one task in ten.

    python benchmarks/hpo/applicability.py
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_meta.hpo.evidence import MARGIN, weigh
from lightning_meta.hpo.mappings import MAPPINGS
from lightning_meta.hpo.mappings.base import encode_frame, normalized_scores
from lightning_meta.hpo.mappings.task_index import KIND_FEATURES, TaskIndex
from lightning_meta.hpo.space import SearchSpace

from families_lofo import family_frame  # the trainings' benchmarks read the pool so; it puts pool/ on the path
from pool.collect import job_config
from pool.families import FAMILIES, task_by_key

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
SPACE = SearchSpace.from_yaml(ROOT / "conf" / "space" / "default.yaml")
EDGES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, math.inf)


def held_out_rows(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """One row per task: nearest distance, the rule's predicted gain, and the gain realized on its own runs."""
    rows = []
    for family in FAMILIES:
        others = frame[frame["family"] != family]
        mapping = MAPPINGS[kind]().fit(others, SPACE)
        for task in FAMILIES[family]:
            runs = frame[frame["task"] == task.key]
            if runs.empty:
                continue
            own = TaskIndex.build(runs, encode_frame(runs, SPACE), normalized_scores(runs))
            features = {c[2:]: v for c, v in runs.iloc[0].items() if c.startswith("f_") and pd.notna(v)}
            defaults = task_by_key(task.key).defaults()
            proposals = mapping.suggest(features, k=3)
            chosen, evidence = weigh(mapping, features, defaults, proposals, list(defaults), max_distance=math.inf)
            at_default = job_config(SPACE, task.key, 0)
            change = {**at_default, **(chosen or {})}
            realized = float(own.score_at(0, SPACE.encode([change]))[0] - own.score_at(0, SPACE.encode([at_default]))[0])
            rows.append({"family": family, "task": task.key, "distance": evidence.distance, "changed": evidence.changed,
                         "predicted": evidence.gain, "realized": realized if evidence.changed else 0.0})
    return pd.DataFrame(rows)


def threshold(rows: pd.DataFrame, margin: float, grid: float = 0.25) -> float:
    """The largest nearest-task distance at which (a) no held-out family loses on average and (b) at most one
    held-out task in ten is harmed (realized gain below ``-margin``), rounded down to ``grid``: a threshold found at
    a task's distance sits at the edge of the next task, which may be the one that breaks it."""
    best = 0.0
    for edge in sorted(rows["distance"].unique()):
        gain = np.where(rows["changed"] & (rows["distance"] <= edge), rows["realized"], 0.0)
        per_family = pd.Series(gain).groupby(rows["family"].to_numpy()).mean()
        if per_family.min() >= 0 and (gain < -margin).mean() <= 0.1:
            best = float(edge)
    return math.floor(best / grid) * grid


def report(rows: pd.DataFrame, chosen: float, args) -> str:
    bins = pd.cut(rows["distance"], EDGES, right=False)
    lines = [
        "# Applicability: up to which distance do recorded tasks' results transfer?",
        "",
        f"Command: `{shlex.join(['python', 'benchmarks/hpo/applicability.py', *args.argv])}` (no training: pool runs only). "
        f"Mapping `{args.mapping}`, margin {MARGIN}. One row per held-out task: the rule run with no distance limit; "
        "`realized` = the change's gain over the task's defaults read from the task's own 24 pool runs "
        "(normalized score), 0 where the rule kept the defaults.",
        "",
        "| distance to the nearest recorded task | tasks | changed | predicted gain (mean) | realized gain (mean) | "
        "harmed (realized < -margin) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for interval, part in rows.groupby(bins, observed=True):
        changed = part[part["changed"]]
        lines.append(f"| {interval} | {len(part)} | {len(changed)} | "
                     f"{changed['predicted'].mean() if len(changed) else float('nan'):+.3f} | "
                     f"{changed['realized'].mean() if len(changed) else float('nan'):+.3f} | "
                     f"{int((changed['realized'] < -MARGIN).sum())} |")
    lines += ["", "Per held-out family (distance to the nearest task of the other families):", "",
              "| family | distance (median) | changed | realized gain of the changes (mean) |", "|---|---:|---:|---:|"]
    for family, part in rows.groupby("family", sort=False):
        changed = part[part["changed"]]
        lines.append(f"| {family} | {part['distance'].median():.2f} | {len(changed)}/{len(part)} | "
                     f"{changed['realized'].mean() if len(changed) else float('nan'):+.3f} |")
    lines += ["", "Changes allowed up to each distance (every held-out task; a kept task counts 0):", "",
              "| max_distance | changed | harmed | mean realized gain | worst family (mean) |", "|---:|---:|---:|---:|---|"]
    for edge in (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, math.inf):
        gain = np.where(rows["changed"] & (rows["distance"] <= edge), rows["realized"], 0.0)
        family = pd.Series(gain).groupby(rows["family"].to_numpy()).mean()
        lines.append(f"| {edge:g} | {int((rows['changed'] & (rows['distance'] <= edge)).sum())} | "
                     f"{int((gain < -MARGIN).sum())} | {gain.mean():+.3f} | {family.idxmin()} {family.min():+.3f} |")
    lines += ["", f"**Chosen `max_distance`: {chosen:.2f}**: the largest distance at which no held-out family loses on "
                  "average and at most one held-out task in ten is harmed, rounded down to a multiple of 0.25; shipped "
                  "as `lightning_meta.hpo.evidence.MAX_DISTANCE`.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", default=f"sqlite:///{ROOT / 'lightning_meta/assets/mapping/families.db'}")
    parser.add_argument("--mapping", default="conditional_best_on_average")
    parser.add_argument("--out", default="hpo_applicability")
    args = parser.parse_args()
    args.argv = sys.argv[1:]
    warnings.filterwarnings("ignore")
    frame = family_frame(args.pool)
    missing = [f"f_{n}" for n in KIND_FEATURES if f"f_{n}" not in frame]
    if missing:
        sys.exit(f"The pool lacks the task-kind features {missing}: collect it again with this version.")
    rows = held_out_rows(frame, args.mapping)
    chosen = threshold(rows, MARGIN)
    text = report(rows, chosen, args)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.md").write_text(text)
    rows.to_csv(RESULTS / f"{args.out}.csv", index=False)
    print(text)


if __name__ == "__main__":
    main()
