"""The configuration that is best on average over the training tasks (a task-blind baseline)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lightning_meta.hpo.mappings.base import Mapping, encode_frame
from lightning_meta.hpo.mappings.prior import ConfigPrior, group_by_config


class BestOnAverage(Mapping):
    """Scores a configuration by the mean task-normalized score of the training runs nearest to it.

    The runs averaged are those of the nearest distinct configurations (encoded space) until as
    many runs as there are training tasks are covered (``prior.ConfigPrior``). On a benchmark
    grid, where every task ran the same configurations, that is each configuration's mean over the
    tasks. On a pool of random runs, where no configuration repeats, the mean over one
    configuration would be a single run and the luckiest run would win; averaging its neighbours
    instead finds the region that is good across tasks. The std is the spread of the averaged runs.
    It ignores the task's features; proposals come only from the seen configurations.
    """

    def _fit(self, frame: pd.DataFrame, scores: np.ndarray) -> None:
        keys, inverse, sums, counts = group_by_config(encode_frame(frame, self.space), scores)
        tasks = frame["task"].nunique()
        self.mean = ConfigPrior(keys, sums, counts, k=tasks)
        self.second_moment = ConfigPrior(keys, np.bincount(inverse, weights=scores**2, minlength=len(keys)), counts, k=tasks)

    def used_features(self) -> list[str]:
        return []

    def predict_encoded(self, features, x, observed=None):
        mean = self.mean(x)
        return mean, np.sqrt(np.maximum(self.second_moment(x) - mean**2, 0.0))

    def candidates(self, n: int, seed: int) -> np.ndarray:
        return self.mean.keys

    def _fitted_state(self) -> dict[str, Any]:
        return {"mean": self.mean.state(), "second_moment": self.second_moment.state()}

    def _set_fitted_state(self, state: dict[str, Any]) -> None:
        self.mean = ConfigPrior.from_state(state["mean"])
        self.second_moment = ConfigPrior.from_state(state["second_moment"])
