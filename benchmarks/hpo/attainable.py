"""What a single trial can reach on a benchmark whose tasks share one grid of configurations.

Two reference points for the 1-trial regret targets, both computed with hindsight:

- the best *task-blind* choice: the one configuration with the lowest mean regret over all
  tasks, held-out task included. No mapping that ignores task features can do better on average.
- a portfolio oracle: a greedy portfolio of ``K`` configurations built on the training tasks
  (each added configuration maximizes the training tasks' mean best-of-portfolio score), then the
  portfolio member that is best on the held-out task. A task-aware mapping that always picks
  the right member of such a portfolio reaches this regret with one trial.

    python benchmarks/hpo/attainable.py
"""

from __future__ import annotations

import numpy as np

import metadatasets
from lightning_meta.hpo.mappings.base import encode_frame


def score_matrix(dataset: metadatasets.MetaDataset) -> np.ndarray | None:
    """``[tasks, configs]`` min-max normalized objectives, or None if the tasks' grids differ."""
    tables = [dataset.table(t) for t in dataset.tasks]
    grid = encode_frame(tables[0], dataset.space)
    if any(len(t) != len(grid) or not np.allclose(encode_frame(t, dataset.space), grid) for t in tables[1:]):
        return None
    y = np.stack([t["objective"].to_numpy(dtype=float) for t in tables])
    low, high = y.min(axis=1, keepdims=True), y.max(axis=1, keepdims=True)
    return (y - low) / (high - low)


def greedy_portfolio(scores: np.ndarray, size: int) -> list[int]:
    """Configurations added one by one, each maximizing the mean best-of-portfolio score."""
    chosen: list[int] = []
    best = np.full(len(scores), -np.inf)
    for _ in range(size):
        gain = np.maximum(scores, best[:, None]).mean(axis=0)
        chosen.append(int(np.argmax(gain)))
        best = np.maximum(best, scores[:, chosen[-1]])
    return chosen


def attainable(scores: np.ndarray, sizes: tuple[int, ...] = (1, 2, 3, 5)) -> dict[str, float]:
    """Mean 1-trial regret of the best task-blind choice and of the portfolio oracles."""
    result = {"best task-blind configuration (hindsight, all tasks)": float(1.0 - scores.mean(axis=0).max())}
    for size in sizes:
        regrets = []
        for task in range(len(scores)):
            train = np.delete(scores, task, axis=0)
            regrets.append(1.0 - scores[task, greedy_portfolio(train, size)].max())
        result[f"oracle pick from a {size}-configuration portfolio (leave-one-task-out)"] = float(np.mean(regrets))
    return result


def report(names: list[str], root: str | None = None) -> str:
    """Markdown section: one table per benchmark whose tasks share a grid."""
    lines = ["## What one trial can reach (hindsight references, not methods)", ""]
    for name in names:
        scores = score_matrix(metadatasets.load(name, root))
        if scores is None:
            continue
        lines += [f"{name}:", "", "| reference | regret@1 |", "|---|---|"]
        lines += [f"| {label} | {value:.4f} |" for label, value in attainable(scores).items()]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(["hpobench_mlp", "lcbench", "fcnet"]))
