"""The interface every hyperparameter mapping implements, and the plumbing they share.

A mapping is fit on a pool frame (``task``, ``objective``, ``hp_<name>``, ``f_<name>`` columns,
several tasks) and predicts, for the features of a new task, how good each configuration is.
Objectives of different tasks live on different scales, so every mapping learns the
*task-normalized score*: per task ``(objective - q10) / (max - q10)``, clipped to ``[-0.5, 1]``
(1 = the task's best run, 0 = its 10th percentile). ``predict`` returns that score.
"""

from __future__ import annotations

import importlib
import pickle
import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lightning_meta.errors import ConfigError, DataError
from lightning_meta.hpo.space import SearchSpace

_FORMAT = "lightning_meta.hpo.mapping"
_VERSION = 1


class Mapping(ABC):
    """Task features x hyperparameters -> predicted task-normalized score, and proposals from it.

    Subclasses implement ``_fit`` and ``predict_encoded``; ``suggest`` scores candidate configurations
    (random draws from the space plus every configuration seen in training) by
    ``mean + exploration * std`` and returns the best ones not yet in ``observed``.
    """

    exploration: float = 0.0

    def fit(self, frame: pd.DataFrame, space: SearchSpace) -> Mapping:
        """Learns from the complete runs of ``frame`` (failed/diverged rows are dropped)."""
        frame = check_frame(frame, space)
        self.space = space
        self.feature_names = sorted(c[2:] for c in frame.columns if c.startswith("f_"))
        self.seen = unique_rows(encode_frame(frame, space))
        self.scaler = FeatureScaler().fit(task_features(frame, self.feature_names))
        self._fit(frame, normalized_scores(frame))
        return self

    @abstractmethod
    def _fit(self, frame: pd.DataFrame, scores: np.ndarray) -> None:
        """Fits on ``frame`` (checked, complete rows only) and its task-normalized ``scores``."""

    def predict(
        self, features: dict[str, float], configs: list[dict], observed: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the task-normalized score of each configuration."""
        self._check_fitted()
        return self.predict_encoded(features, self.space.encode(configs), observed)

    @abstractmethod
    def predict_encoded(
        self, features: dict[str, float], x: np.ndarray, observed: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``predict`` for configurations already encoded by ``space.encode`` (``[n, dim]``)."""

    def suggest(
        self,
        features: dict[str, float],
        k: int = 1,
        observed: pd.DataFrame | None = None,
        candidates: int = 2000,
        seed: int = 0,
    ) -> list[dict]:
        """The ``k`` configurations with the best predicted score that are not in ``observed``."""
        self._check_fitted()
        x = drop_observed(self.candidates(candidates, seed), observed, self.space)
        if len(x) == 0:
            raise ConfigError("Every candidate configuration is already observed: raise `candidates`.")
        mean, std = self.predict_encoded(features, x, observed)
        order = np.argsort(-(mean + self.exploration * std), kind="stable")[:k]
        return [self.space.validate(c) for c in self.space.decode(x[order])]

    def candidates(self, n: int, seed: int) -> np.ndarray:
        """Encoded candidates: every configuration seen in training plus ``n`` random draws."""
        return unique_rows(np.concatenate([self.seen, self.space.encode(self.space.sample(n, seed))]))

    def scaled_features(self, features: dict[str, float]) -> np.ndarray:
        """The task's features min-max scaled like the training tasks'; missing ones imputed."""
        missing = [n for n in self.feature_names if n not in features]
        if missing:
            warnings.warn(
                f"Task features {missing} were present in training but not given; they are imputed "
                "with the training mean. Compute features the same way as for the pool's runs.",
                stacklevel=3,
            )
        raw = np.array([float(features.get(n, np.nan)) for n in self.feature_names], dtype=float)
        return self.scaler.transform(raw[None, :])[0]

    def save(self, path: str | Path) -> Path:
        """Writes the fitted mapping to one file (read back by ``Mapping.load``)."""
        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cls = type(self)
        payload = {"format": _FORMAT, "version": _VERSION, "class": f"{cls.__module__}:{cls.__qualname__}",
                   "space": self.space.to_dict(), "state": self._state()}
        with path.open("wb") as handle:
            pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    @staticmethod
    def load(path: str | Path) -> Mapping:
        """Reads a file written by ``save``; a missing or corrupted file raises ConfigError."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"Mapping file {path} does not exist: fit a mapping and save() it, or fix the path.")
        try:
            with path.open("rb") as handle:
                payload = pickle.load(handle)
            valid = isinstance(payload, dict) and payload.get("format") == _FORMAT
        except Exception as err:  # any unpickling failure means the same thing: not a mapping file
            raise ConfigError(f"Mapping file {path} is corrupted ({type(err).__name__}): re-create it with save().") from None
        if not valid or payload.get("version") != _VERSION:
            raise ConfigError(f"{path} is not a lightning_meta mapping file (version {_VERSION}): re-create it with save().")
        module, _, name = payload["class"].partition(":")
        if not module.startswith("lightning_meta.hpo.mappings."):
            raise ConfigError(f"Mapping file {path} names the class {payload['class']!r}, which is not a mapping.")
        cls = getattr(importlib.import_module(module), name)
        mapping = cls.__new__(cls)
        mapping.space = SearchSpace.from_dict(payload["space"])
        mapping._set_state(payload["state"])
        return mapping

    def _state(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "space"}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _check_fitted(self) -> None:
        if not hasattr(self, "space"):
            raise ConfigError(f"{type(self).__name__} is not fitted: call fit(frame, space) or Mapping.load(path) first.")


def check_frame(frame: pd.DataFrame, space: SearchSpace) -> pd.DataFrame:
    """The complete, finite rows of a pool frame; DataError when columns are missing."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"A mapping is fit on a pandas DataFrame (ExperiencePool.frame()), got {type(frame).__name__}.")
    needed = ["task", "objective"] + [f"hp_{n}" for n in space.names]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"The frame lacks columns {missing}: build it with ExperiencePool.frame() for this search space.")
    if "status" in frame.columns:
        frame = frame[frame["status"] == "complete"]
    frame = frame[np.isfinite(frame["objective"].to_numpy(dtype=float))]
    if frame.empty:
        raise DataError("The frame has no complete run with a finite objective: record runs in the pool first.")
    return frame.reset_index(drop=True)


def normalized_scores(frame: pd.DataFrame) -> np.ndarray:
    """Per-task ``(objective - q10) / (max - q10)`` clipped to ``[-0.5, 1]``."""
    objective = frame["objective"].to_numpy(dtype=float)
    grouped = frame.groupby("task", sort=False)["objective"]
    low = grouped.transform(lambda y: np.quantile(y, 0.1)).to_numpy(dtype=float)
    high = grouped.transform("max").to_numpy(dtype=float)
    span = np.where(high - low > 1e-12, high - low, 1.0)
    return np.clip((objective - low) / span, -0.5, 1.0)


def encode_frame(frame: pd.DataFrame, space: SearchSpace) -> np.ndarray:
    """Encodes the ``hp_`` columns of a frame like ``space.encode``, vectorized (no per-row checks)."""
    columns = []
    for p in space.params:
        values = frame[f"hp_{p.name}"].to_numpy()
        if p.type == "categorical":
            onehot = np.zeros((len(values), p.width))
            for i, choice in enumerate(p.choices):
                onehot[:, i] = [v == choice for v in values] if values.dtype == object else values == choice
            columns.append(onehot)
        else:
            columns.append(p.encode(values.astype(float))[:, None])
    return np.concatenate(columns, axis=1) if columns else np.zeros((len(frame), 0))


def unique_rows(x: np.ndarray) -> np.ndarray:
    """The distinct rows of an encoded matrix, in order of first occurrence."""
    if len(x) == 0:
        return x
    _, first = np.unique(np.round(x, 9), axis=0, return_index=True)
    return x[np.sort(first)]


def drop_observed(x: np.ndarray, observed: pd.DataFrame | None, space: SearchSpace) -> np.ndarray:
    """Rows of ``x`` that are not configurations already run in ``observed``."""
    seen = observed_keys(observed, space)
    if not seen or len(x) == 0:
        return x
    keep = [tuple(row) not in seen for row in np.round(x, 9)]
    return x[np.asarray(keep, dtype=bool)]


def observed_keys(observed: pd.DataFrame | None, space: SearchSpace) -> set[tuple]:
    """The encoded configurations of ``observed`` (rounded) as hashable keys."""
    if observed is None or observed.empty:
        return set()
    return {tuple(row) for row in np.round(encode_frame(observed, space), 9)}


def observed_scores(observed: pd.DataFrame | None, space: SearchSpace) -> tuple[np.ndarray, np.ndarray]:
    """Encoded configurations and raw objectives of the complete, finite trials in ``observed``."""
    if observed is None or observed.empty:
        return np.zeros((0, space.dim)), np.zeros(0)
    observed = check_frame(observed.assign(task="observed"), space)
    return encode_frame(observed, space), observed["objective"].to_numpy(dtype=float)


class FeatureScaler:
    """Min-max scaling of task features fit on the training tasks; NaN -> the training mean."""

    def fit(self, x: np.ndarray) -> FeatureScaler:
        self.low = np.nanmin(x, axis=0) if len(x) else np.zeros(x.shape[1])
        self.span = np.where(np.nanmax(x, axis=0) - self.low > 1e-12, np.nanmax(x, axis=0) - self.low, 1.0)
        self.mean = np.nan_to_num((np.nanmean(x, axis=0) - self.low) / self.span, nan=0.5)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        scaled = (np.asarray(x, dtype=float) - self.low) / self.span
        return np.where(np.isnan(scaled), self.mean, scaled)


def task_features(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    """``[n_rows, n_features]`` array of the ``f_`` columns in ``names`` order."""
    if not names:
        return np.zeros((len(frame), 0))
    return frame[[f"f_{n}" for n in names]].to_numpy(dtype=float)


def nearest_rows(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index of the nearest row of ``keys`` (Euclidean, encoded space) for each query row."""
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=1).fit(keys).kneighbors(queries, return_distance=False)[:, 0]
