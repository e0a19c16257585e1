"""A global gradient-boosted surrogate over (task features, hyperparameters)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from lightning_meta.hpo.mappings.base import Mapping, encode_frame, task_features


class GBMSurrogate(Mapping):
    """``members`` HistGradientBoosting regressors, each on a bootstrap of the training tasks.

    The spread of the members is the uncertainty (what changes when other tasks had been seen).
    At most ``rows_per_task`` runs of each task are used, so large tables fit in seconds.
    """

    def __init__(self, members: int = 5, rows_per_task: int = 3000, max_iter: int = 200, seed: int = 0) -> None:
        self.members = members
        self.rows_per_task = rows_per_task
        self.max_iter = max_iter
        self.seed = seed

    def _fit(self, frame: pd.DataFrame, scores: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        inputs = np.concatenate(
            [self.scaler.transform(task_features(frame, self.feature_names)), encode_frame(frame, self.space)], axis=1
        )
        rows_of = {t: np.flatnonzero(frame["task"].to_numpy() == t) for t in frame["task"].unique()}
        rows_of = {t: rng.permutation(r)[: self.rows_per_task] for t, r in rows_of.items()}
        tasks = list(rows_of)
        self.models = []
        for member in range(self.members):
            picked = rng.choice(len(tasks), size=len(tasks), replace=True) if self.members > 1 else range(len(tasks))
            rows = np.concatenate([rows_of[tasks[i]] for i in picked])
            model = HistGradientBoostingRegressor(max_iter=self.max_iter, learning_rate=0.1, random_state=self.seed + member)
            self.models.append(model.fit(inputs[rows], scores[rows]))

    def predict_encoded(self, features, x, observed=None):
        inputs = np.concatenate([np.tile(self.scaled_features(features), (len(x), 1)), x], axis=1)
        predictions = np.stack([m.predict(inputs) for m in self.models])
        return predictions.mean(axis=0), predictions.std(axis=0)
