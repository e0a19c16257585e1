"""How close can five fits get to the best of a task's recorded runs? The seed-noise ceiling per family.

The do-no-harm benchmark scores a 5-fit search against the best of each task's 24 pool runs. That best is a maximum
over noisy trainings, so even the best recorded configuration, trained again with new seeds, falls short of it. This
re-trains each task's best pool configuration with 5 new seeds and reports, as ratios to the best of 24, the best of
the 5 (what a search that found the best configuration at once could report) and the mean single run.

    python benchmarks/hpo/noise_ceiling.py omniglot_resnet_sgd sequence_gru
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from do_no_harm import best_recorded_configs, reference
from families_lofo import _quiet, _seed, family_frame, train  # it puts pool/ on the path
from pool.families import FAMILIES

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("families", nargs="+", choices=list(FAMILIES))
    parser.add_argument("--pool", default=f"sqlite:///{ROOT / 'lightning_meta/assets/mapping/families.db'}")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    _quiet()
    frame = family_frame(args.pool)
    best, configs = reference(frame)["best"], best_recorded_configs(frame)
    print("| family | tasks | best of 5 re-runs / best of 24 | one re-run / best of 24 |\n|---|---:|---:|---:|")
    for family in args.families:
        best_of, single = [], []
        for task in FAMILIES[family]:
            if best[task.key] <= 0:
                continue  # a ratio needs a positive score (the language models' negated losses have none)
            scores = [train(task.key, configs[task.key], _seed(task.key, 0, k))[0] for k in range(args.seeds)]
            best_of.append(max(scores) / best[task.key])
            single.append(np.mean(scores) / best[task.key])
        print(f"| {family} | {len(best_of)} | {np.mean(best_of):.3f} | {np.mean(single):.3f} |", flush=True)


if __name__ == "__main__":
    main()
