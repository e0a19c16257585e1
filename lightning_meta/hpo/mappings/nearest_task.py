"""Warm start from the most similar training tasks (auto-sklearn's meta-learning baseline)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lightning_meta.hpo.mappings.base import Mapping, encode_frame, nearest_rows, observed_keys


class NearestTask(Mapping):
    """Ranks training tasks by L1 distance of min-max-scaled meta-features to the new task.

    ``suggest`` proposes the best configuration of the nearest task, then of the second
    nearest, and so on (then each task's second best, ...); given explicit ``candidates`` it
    ranks them by ``predict`` instead. ``predict`` averages, over the
    ``neighbours`` nearest tasks weighted by ``1 / (distance + 0.05)``, each task's score of the
    closest configuration it ran; the spread over those tasks is the uncertainty.
    """

    def __init__(self, neighbours: int = 3) -> None:
        self.neighbours = neighbours

    def _fit(self, frame: pd.DataFrame, scores: np.ndarray) -> None:
        encoded = encode_frame(frame, self.space)
        features = self.encoder.frame(frame)
        self.tasks = []
        for task in frame["task"].unique():
            rows = np.flatnonzero(frame["task"].to_numpy() == task)
            order = rows[np.argsort(-scores[rows], kind="stable")]
            self.tasks.append({"features": features[rows[0]], "x": encoded[order], "scores": scores[order]})

    def _ranked(self, features: dict[str, float]) -> tuple[list[dict], np.ndarray]:
        target = self.scaled_features(features)
        distance = np.array([np.abs(t["features"] - target).sum() for t in self.tasks])
        order = np.argsort(distance, kind="stable")
        return [self.tasks[i] for i in order], distance[order]

    def predict_encoded(self, features, x, observed=None):
        tasks, distance = self._ranked(features)
        tasks, distance = tasks[: self.neighbours], distance[: self.neighbours]
        per_task = np.stack([t["scores"][nearest_rows(t["x"], x)] for t in tasks])
        weights = 1.0 / (distance + 0.05)
        mean = weights @ per_task / weights.sum()
        std = np.sqrt(weights @ (per_task - mean) ** 2 / weights.sum())
        return mean, std

    def _suggest_drawn(self, features, k, observed, n, seed):
        tasks, _ = self._ranked(features)
        taken = observed_keys(observed, self.space)
        proposals = []
        for rank in range(max(len(t["x"]) for t in tasks)):
            for task in tasks:
                if rank < len(task["x"]) and len(proposals) < k:
                    key = tuple(np.round(task["x"][rank], 9))
                    if key not in taken:
                        taken.add(key)
                        proposals.append(task["x"][rank])
            if len(proposals) >= k:
                break
        return [self.space.validate(c) for c in self.space.decode(np.array(proposals))] if proposals else []

    def _fitted_state(self) -> dict[str, Any]:
        return {"tasks": self.tasks}

    def _set_fitted_state(self, state: dict[str, Any]) -> None:
        self.tasks = [{name: np.asarray(values, dtype=float) for name, values in task.items()} for task in state["tasks"]]
