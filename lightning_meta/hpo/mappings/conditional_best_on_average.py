"""Best-on-average among the training tasks that share the new task's optimizer kind (or other features)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from lightning_meta.hpo.mappings.base import Mapping
from lightning_meta.hpo.mappings.best_on_average import BestOnAverage
from lightning_meta.hpo.mappings.grouping import check_grouping, warn_ungrouped
from lightning_meta.hpo.space import SearchSpace


class ConditionalBestOnAverage(Mapping):
    """``BestOnAverage`` fit separately on each group of training tasks with equal ``by`` features.

    Measured on the task families (``benchmarks/results/hpo_families_lofo.md``), what moves the
    best learning rate most is the optimizer kind: SGD's best rates are several times Adam's. A
    regression over all features extrapolates poorly to a family it has not seen, while the
    average over the tasks that step the same way transfers. A task whose ``by`` values match no
    training group, or lack them, gets the best-on-average of all training tasks.
    """

    def __init__(self, by: Sequence[str] = ("opt_sgd", "opt_adaptive")) -> None:
        self.by = list(by)

    def _fit(self, frame: pd.DataFrame, scores: np.ndarray) -> None:
        self.overall = BestOnAverage().fit(frame, self.space)
        self.groups: dict[str, BestOnAverage] = {}
        if not check_grouping(self.by, frame, self.encoder, type(self).__name__):
            return
        columns = [f"f_{name}" for name in self.by]
        keys = frame[columns].to_numpy(dtype=float)
        for key in np.unique(keys[~np.isnan(keys).any(axis=1)], axis=0):
            rows = (keys == key).all(axis=1)
            self.groups[_key(key)] = BestOnAverage().fit(frame[rows], self.space)  # scores are per task: unchanged

    def _group(self, features: dict[str, Any]) -> BestOnAverage:
        try:
            key = _key(np.array([float(features[name]) for name in self.by]))
        except (KeyError, TypeError, ValueError):
            warn_ungrouped(self.by, features, type(self).__name__)
            return self.overall
        return self.groups.get(key, self.overall)

    def used_features(self) -> list[str]:
        return [name for name in self.by if name in self.feature_names]  # they pick the group; the rest is unread

    def predict_encoded(self, features, x, observed=None):
        return self._group(features).predict_encoded(features, x, observed)

    def candidates(self, n: int, seed: int) -> np.ndarray:
        return self.overall.candidates(n, seed)

    def _fitted_state(self) -> dict[str, Any]:
        return {"overall": self.overall._fitted_state(),
                "groups": {key: group._fitted_state() for key, group in self.groups.items()}}

    def _set_fitted_state(self, state: dict[str, Any]) -> None:
        self.overall = _restored(state["overall"], self.space)
        self.groups = {key: _restored(part, self.space) for key, part in state["groups"].items()}


def _key(values: np.ndarray) -> str:
    return ",".join(f"{v:.6g}" for v in values)


def _restored(state: dict[str, Any], space: SearchSpace) -> BestOnAverage:
    part = BestOnAverage.__new__(BestOnAverage)
    part.space = space
    part._set_fitted_state(state)
    return part
