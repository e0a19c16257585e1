"""The across-task prior of a configuration: its mean task-normalized score on other tasks.

The meta-surrogate predicts this prior plus a learned, task-dependent correction, so with no
trial observed it starts from best-on-average instead of from an MLP's extrapolation. The
prior of ``x`` averages the scores of the nearest distinct configurations (in the encoded
space) until ``k`` runs are covered: on a benchmark grid where every task ran the same
configurations that is exactly the configuration's best-on-average score, and on a pool of
random runs it is a k-nearest-neighbour average.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import cKDTree


class ConfigPrior:
    """Mean score of the nearest configurations covering ``k`` runs; see the module docstring."""

    def __init__(self, keys: np.ndarray, sums: np.ndarray, counts: np.ndarray, k: int) -> None:
        keep = counts > 0
        self.keys, self.mean, self.counts = keys[keep], sums[keep] / counts[keep], counts[keep]
        self.k = max(int(k), 1)
        self.tree = cKDTree(self.keys)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(x)
        neighbours = min(self.k, len(self.keys))
        index = self.tree.query(x, k=neighbours)[1].reshape(len(x), neighbours)
        counts = self.counts[index]
        covered_before = np.cumsum(counts, axis=1) - counts
        weights = np.where(covered_before < self.k, counts, 0.0)
        return (weights * self.mean[index]).sum(axis=1) / weights.sum(axis=1)

    def state(self) -> dict[str, Any]:
        """The arrays a mapping file stores; the tree is rebuilt from them."""
        return {"keys": self.keys, "mean": self.mean, "counts": self.counts, "k": self.k}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ConfigPrior:
        prior = cls.__new__(cls)
        prior.keys, prior.mean, prior.counts = (np.asarray(state[n], dtype=float) for n in ("keys", "mean", "counts"))
        prior.k = int(state["k"])
        prior.tree = cKDTree(prior.keys)
        return prior


def group_by_config(encoded: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct configurations (rounded), each row's index among them, and their score sums and run counts."""
    keys, inverse = np.unique(np.round(encoded, 9), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    sums = np.bincount(inverse, weights=scores, minlength=len(keys))
    return keys, inverse, sums, np.bincount(inverse, minlength=len(keys)).astype(float)


def priors(encoded: np.ndarray, scores: np.ndarray, task_ids: np.ndarray) -> tuple[ConfigPrior, np.ndarray]:
    """The prior over all tasks, and each row's prior computed without its own task.

    The held-out version is what the surrogate trains on: a new task's own runs are never in
    its prior, so the correction must be learned against priors that exclude the task too.
    """
    keys, inverse, sums, counts = group_by_config(encoded, scores)
    tasks = np.unique(task_ids)
    full = ConfigPrior(keys, sums, counts, k=len(tasks))
    if len(tasks) == 1:  # nothing to hold out: the single task's prior is its own mean
        return full, full(encoded)
    held_out = np.empty(len(scores))
    for task in tasks:
        rows = task_ids == task
        own_sums = np.bincount(inverse[rows], weights=scores[rows], minlength=len(keys))
        own_counts = np.bincount(inverse[rows], minlength=len(keys))
        others = ConfigPrior(keys, sums - own_sums, counts - own_counts, k=len(tasks) - 1)
        held_out[rows] = others(encoded[rows])
    return full, held_out
