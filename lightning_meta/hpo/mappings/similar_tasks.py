"""Best-on-average among the tasks that step like the new one, leaning towards the most similar tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from lightning_meta.hpo.mappings.base import Mapping, encode_frame
from lightning_meta.hpo.mappings.grouping import check_grouping, warn_ungrouped


class SimilarTasksAverage(Mapping):
    """The weighted mean, over training tasks with equal ``by`` features, of each task's score near a configuration.

    A task's score at ``x`` is the mean normalized score of its ``runs`` runs nearest to ``x``. Weights are
    ``1 + boost * exp(-d / bandwidth)``, with ``d`` the mean absolute difference of the scaled task features:
    far tasks count as in best-on-average, near ones (the same family, once a few of its tasks are in the
    pool) up to ``1 + boost`` times more. So with no similar task it proposes what
    ``ConditionalBestOnAverage`` proposes, and it learns from each similar task recorded.
    """

    def __init__(self, by: Sequence[str] = ("opt_sgd", "opt_adaptive"), boost: float = 10.0,
                 bandwidth: float = 0.05, runs: int = 3) -> None:
        self.by, self.boost, self.bandwidth, self.runs = list(by), float(boost), float(bandwidth), int(runs)

    def _fit(self, frame: pd.DataFrame, scores: np.ndarray) -> None:
        _, first, task_of = np.unique(frame["task"].to_numpy(), return_index=True, return_inverse=True)
        self.task_of = task_of.reshape(-1)
        self.x, self.scores = encode_frame(frame, self.space), np.asarray(scores, dtype=float)
        features = self.encoder.frame(frame)
        self.task_features = np.stack([features[self.task_of == t].mean(axis=0) for t in range(len(first))])
        by = [f"f_{name}" for name in self.by]
        known = check_grouping(self.by, frame, self.encoder, type(self).__name__)
        self.task_keys = frame[by].to_numpy(dtype=float)[first] if known else np.zeros((len(first), 0))
        self._trees()

    def _trees(self) -> None:
        self.trees = [cKDTree(self.x[self.task_of == t]) for t in range(len(self.task_features))]

    def _same_kind(self, features: dict[str, Any]) -> np.ndarray:
        """Training tasks whose ``by`` features equal the task's; all of them when none do or the task lacks them."""
        every = np.ones(len(self.trees), dtype=bool)
        try:
            key = np.array([float(features[name]) for name in self.by])
        except (KeyError, TypeError, ValueError):
            warn_ungrouped(self.by, features, type(self).__name__)
            return every
        matching = (self.task_keys == key).all(axis=1) if self.task_keys.shape[1] else ~every
        return matching if matching.any() else every

    def predict_encoded(self, features, x, observed=None):
        same = self._same_kind(features)
        distance = np.abs(self.task_features - self.scaled_features(features)).mean(axis=1)
        weights = np.where(same, 1.0 + self.boost * np.exp(-distance / self.bandwidth), 0.0)
        per_task = np.zeros((len(self.trees), len(x)))
        for t in np.flatnonzero(same):
            own = self.scores[self.task_of == t]
            k = min(self.runs, len(own))
            index = self.trees[t].query(x, k=k)[1].reshape(len(x), k)
            per_task[t] = own[index].mean(axis=1)
        mean = weights @ per_task / weights.sum()
        return mean, np.sqrt(weights @ (per_task - mean) ** 2 / weights.sum())

    def candidates(self, n: int, seed: int) -> np.ndarray:
        return self.seen

    def _fitted_state(self) -> dict[str, Any]:
        return {"x": self.x, "scores": self.scores, "task_of": self.task_of.astype(np.int64),
                "task_features": self.task_features, "task_keys": self.task_keys}

    def _set_fitted_state(self, state: dict[str, Any]) -> None:
        self.x, self.scores = np.asarray(state["x"], dtype=float), np.asarray(state["scores"], dtype=float)
        self.task_of = np.asarray(state["task_of"], dtype=np.int64)
        self.task_features = np.asarray(state["task_features"], dtype=float)
        self.task_keys = np.asarray(state["task_keys"], dtype=float)
        self._trees()
