"""The configuration that is best on average over the training tasks (a task-blind baseline)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from lightning_meta.hpo.mappings.base import Mapping, encode_frame, nearest_rows
from lightning_meta.hpo.mappings.prior import group_by_config


class BestOnAverage(Mapping):
    """Scores each configuration seen in training by its mean task-normalized score.

    It ignores the task's features; an unseen configuration gets the score of the nearest seen
    one (in the encoded space). Proposals come only from the seen configurations.
    """

    def _fit(self, frame: pd.DataFrame, scores: np.ndarray) -> None:
        self.keys, inverse, sums, counts = group_by_config(encode_frame(frame, self.space), scores)
        self.mean = sums / counts
        second = np.bincount(inverse, weights=scores**2) / counts
        self.std = np.sqrt(np.maximum(second - self.mean**2, 0.0))

    def predict_encoded(self, features, x, observed=None):
        index = nearest_rows(self.keys, x)
        return self.mean[index], self.std[index]

    def candidates(self, n: int, seed: int) -> np.ndarray:
        return self.keys
