"""The training tasks of a mapping, kept so that a new task can be compared with them one by one.

A mapping's prediction says what is good on average; whether it applies to the task at hand depends on how
like the recorded tasks that task is. The index keeps, per training task, its kind (``KIND_SCALES``: layer
kinds, pretrained weights, regression, optimizer, sizes and planned length) and its runs, so that the callback
can (1) measure the distance from a new task to each recorded one and (2) read, on the nearest ones, how a
configuration scored against the user's own values (``score_at``). It is stored in every mapping file (the
runs, not the fitted surfaces, which are refit on first use).

Distance: the total variation between the layer-kind shares plus, per other feature, the absolute difference
divided by its scale in ``KIND_SCALES`` (fixed, not the pool's range, so a threshold means the same on any
pool). A feature the new task has but a recorded task lacks counts as a difference of 1: an unknown is not a
likeness. A feature the new task lacks is left out (the callback reports it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

SHARES = ("share_attention", "share_recurrent", "share_conv", "share_linear", "share_embedding", "share_norm")
KIND_SCALES: dict[str, float] = {
    "pretrained": 1.0,
    "objective_regression": 1.0,
    "opt_sgd": 1.0,
    "opt_adaptive": 1.0,
    "log_n_params": 2.0,  # decades
    "log_n_samples": 2.0,
    "log_planned_steps": 2.0,
}
KIND_FEATURES = SHARES + tuple(KIND_SCALES)


class TaskIndex:
    """Per training task: its kind vector, and its runs (encoded configurations and normalized scores)."""

    def __init__(self, names: list[str], kinds: np.ndarray, x: np.ndarray, scores: np.ndarray, task_of: np.ndarray) -> None:
        self.names, self.kinds = list(names), np.asarray(kinds, dtype=float)
        self.x, self.scores = np.asarray(x, dtype=float), np.asarray(scores, dtype=float)
        self.task_of = np.asarray(task_of, dtype=np.int64)
        self._surfaces: dict[int, Any] = {}

    @classmethod
    def build(cls, frame: pd.DataFrame, x: np.ndarray, scores: np.ndarray) -> TaskIndex:
        """From a checked pool frame, its encoded configurations and task-normalized scores."""
        names, first, task_of = np.unique(frame["task"].to_numpy(), return_index=True, return_inverse=True)
        columns = [frame[f"f_{n}"].to_numpy(dtype=float)[first] if f"f_{n}" in frame else np.full(len(first), np.nan)
                   for n in KIND_FEATURES]
        return cls([str(n) for n in names], np.stack(columns, axis=1), x, scores, task_of.reshape(-1))

    def distances(self, features: dict[str, Any]) -> np.ndarray:
        """Distance from a task's features to every recorded task (module docstring)."""
        target = np.array([_number(features.get(n)) for n in KIND_FEATURES])
        diff = np.abs(self.kinds - target)
        unknown = np.isnan(self.kinds) & ~np.isnan(target)
        diff = np.where(unknown, np.nan, diff)
        share = len(SHARES)
        scales = np.array(list(KIND_SCALES.values()))
        shares = 0.5 * np.nansum(diff[:, :share], axis=1) + unknown[:, :share].sum(axis=1)
        others = np.nansum(diff[:, share:] / scales, axis=1) + unknown[:, share:].sum(axis=1)
        return shares + others

    def nearest(self, features: dict[str, Any], k: int) -> list[tuple[int, float]]:
        """The ``k`` nearest recorded tasks as ``(index, distance)``, nearest first."""
        distance = self.distances(features)
        order = np.argsort(distance, kind="stable")[:k]
        return [(int(i), float(distance[i])) for i in order]

    def family(self, task: int) -> str:
        """The recorded task's family (``family_of`` its name)."""
        return family_of(self.names[task])

    def score_at(self, task: int, x: np.ndarray) -> np.ndarray:
        """Task ``task``'s normalized score at each encoded configuration, read from its runs by a Gaussian process
        with one length scale per hyperparameter (so a hyperparameter that does not matter on the task is
        learnt to be flat, and changing it predicts no gain) and a noise term for the seed noise of a run."""
        if task not in self._surfaces:
            self._surfaces[task] = _surface(self.x[self.task_of == task], self.scores[self.task_of == task])
        return self._surfaces[task].predict(x)

    def state(self) -> dict[str, Any]:
        return {"names": self.names, "kinds": self.kinds, "x": self.x, "scores": self.scores, "task_of": self.task_of}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TaskIndex:
        return cls(list(state["names"]), state["kinds"], state["x"], state["scores"], state["task_of"])


def family_of(task: str) -> str:
    """A task's family: its name up to the first ``/`` (the callback names a task ``ModuleClass/DataModuleClass``,
    the pool ``family/task``); the whole name where there is none."""
    return task.split("/", 1)[0]


def _surface(x: np.ndarray, y: np.ndarray) -> Any:
    """A GP fit on one task's runs (deterministic: no random restarts)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    kernel = ConstantKernel(0.1, (1e-3, 10.0)) * RBF(np.full(x.shape[1], 0.3), (0.05, 20.0)) + WhiteKernel(0.01, (1e-4, 0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianProcessRegressor(kernel, normalize_y=True, random_state=0).fit(x, y)


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return np.nan
    return number if np.isfinite(number) else np.nan
