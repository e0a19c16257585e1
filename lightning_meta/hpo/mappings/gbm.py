"""A global gradient-boosted surrogate over (task features, hyperparameters)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import HistGradientBoostingRegressor

from lightning_meta.hpo.mappings.base import Mapping, encode_frame

_PROBE_ROWS = 64


class GBMSurrogate(Mapping):
    """``members`` HistGradientBoosting regressors, each on a bootstrap of the training tasks.

    The spread of the members is the uncertainty (what changes when other tasks had been seen).
    At most ``rows_per_task`` runs of each task are used, so large tables fit in seconds.

    A mapping file holds no code, and scikit-learn's trees can only be stored by pickling them, so
    the file stores what rebuilds them instead: the training inputs and targets, each member's
    rows and the seeds. Loading refits the members (a second or two); the fit is deterministic, and
    predictions on the first training rows, saved with them, confirm it (a warning when a
    different scikit-learn version fits differently).
    """

    def __init__(self, members: int = 5, rows_per_task: int = 3000, max_iter: int = 200, seed: int = 0) -> None:
        self.members = members
        self.rows_per_task = rows_per_task
        self.max_iter = max_iter
        self.seed = seed

    def _fit(self, frame: pd.DataFrame, scores: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        task_of = frame["task"].to_numpy()
        used = [rng.permutation(np.flatnonzero(task_of == t))[: self.rows_per_task] for t in frame["task"].unique()]
        inputs = np.concatenate([self.encoder.frame(frame), encode_frame(frame, self.space)], axis=1)
        self.inputs, self.targets = inputs[np.concatenate(used)], scores[np.concatenate(used)]
        starts = np.cumsum([0] + [len(rows) for rows in used])
        local = [np.arange(starts[i], starts[i + 1]) for i in range(len(used))]
        self.member_rows = []
        for _ in range(self.members):
            picked = rng.choice(len(local), size=len(local), replace=True) if self.members > 1 else range(len(local))
            self.member_rows.append(np.concatenate([local[i] for i in picked]))
        self._train()
        self.probe = self._predict_inputs(self.inputs[:_PROBE_ROWS])

    def _train(self) -> None:
        self.models = [
            HistGradientBoostingRegressor(max_iter=self.max_iter, learning_rate=0.1, random_state=self.seed + member)
            .fit(self.inputs[rows], self.targets[rows])
            for member, rows in enumerate(self.member_rows)
        ]

    def _predict_inputs(self, inputs: np.ndarray) -> np.ndarray:
        return np.stack([m.predict(inputs) for m in self.models])

    def predict_encoded(self, features, x, observed=None):
        predictions = self._predict_inputs(np.concatenate([np.tile(self.scaled_features(features), (len(x), 1)), x], axis=1))
        return predictions.mean(axis=0), predictions.std(axis=0)

    def _fitted_state(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "targets": self.targets, "member_rows": self.member_rows,
                "probe": self.probe, "sklearn": sklearn.__version__}

    def _set_fitted_state(self, state: dict[str, Any]) -> None:
        self.inputs, self.targets = np.asarray(state["inputs"], dtype=float), np.asarray(state["targets"], dtype=float)
        self.member_rows = [np.asarray(rows, dtype=np.int64) for rows in state["member_rows"]]
        self._train()
        self.probe = np.asarray(state["probe"], dtype=float)
        if not np.allclose(self._predict_inputs(self.inputs[:_PROBE_ROWS]), self.probe, rtol=0, atol=1e-9):
            warnings.warn(
                f"This GBMSurrogate was saved with scikit-learn {state['sklearn']} and refits differently with "
                f"{sklearn.__version__}: its predictions differ from the saved ones. Re-fit it and save it again.",
                stacklevel=4,
            )
