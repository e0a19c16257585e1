"""The interface every hyperparameter mapping implements, and the plumbing they share.

A mapping is fit on a pool frame (``task``, ``objective``, ``hp_<name>``, ``f_<name>`` columns,
several tasks) and predicts, for the features of a new task, how good each configuration is.
Objectives of different tasks live on different scales, so every mapping learns the
*task-normalized score*: per task ``(objective - q10) / (max - q10)``, clipped to ``[-0.5, 1]``
(1 = the task's best run, 0 = its 10th percentile). ``predict`` returns that score.
"""

from __future__ import annotations

import inspect
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping as Mapping_
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lightning_meta.errors import ConfigError, DataError, LightningMetaError
from lightning_meta.hpo.mappings import file_format
from lightning_meta.hpo.mappings.feature_encoder import FeatureEncoder
from lightning_meta.hpo.mappings.observed_residual import helps, residual_correction
from lightning_meta.hpo.mappings.task_index import TaskIndex
from lightning_meta.hpo.mappings.threads import bounded_threads
from lightning_meta.hpo.space import SearchSpace

Candidates = int | Sequence[dict] | pd.DataFrame
"""What ``suggest`` ranks: a number of random draws (plus the configurations seen in training), or exactly
the configurations given (a list of dicts, or a DataFrame with one column per hyperparameter)."""


class Mapping(ABC):
    """Task features x hyperparameters -> predicted task-normalized score, and proposals from it.

    Subclasses implement ``_fit``, ``predict_encoded`` and the ``_fitted_state`` pair that a mapping
    file stores; ``suggest`` scores candidate configurations by ``mean + exploration * std`` and
    returns the best ones not yet in ``observed``. Once ``adapt_min`` trials of the task are observed,
    ``predict`` and ``suggest`` add their kernel-smoothed residuals (``observed_residual.py``) over
    ``adapt_lengthscale`` of the encoded space, where that ranks the observed trials better than the zero-shot
    answer (leave-one-out); ``None`` turns the correction off (a mapping that adapts itself sets it).
    ``adapt = False`` is the one switch that turns any adaptation to observed trials off, for every kind. Fits
    and predictions run with at most ``threads`` threads (``threads.py`` says why); set ``mapping.threads`` to
    change it.
    """

    exploration: float = 0.0
    threads: int = 1
    adapt_lengthscale: float | None = 0.2
    adapt_min: int = 3
    adapt: bool = True
    index: TaskIndex | None = None

    def fit(self, frame: pd.DataFrame, space: SearchSpace, direction: str = "maximize") -> Mapping:
        """Learns from the complete runs of ``frame`` that fit ``space`` (the others are dropped, with a warning).

        ``direction`` says whether the frame's ``objective`` is maximised (``"maximize"``, as in every
        ``ExperiencePool.frame()``, which stores a minimised metric negated) or minimised (``"minimize"``: a loss).
        """
        frame = oriented(frame, direction)
        with bounded_threads(self.threads):
            complete = frame["status"] == "complete" if isinstance(frame, pd.DataFrame) and "status" in frame else None
            self.fitted_runs = int(len(frame) if complete is None else complete.sum())  # read by RefitPolicy
            frame = check_frame(frame, space)
            self.space = space
            self.encoder = FeatureEncoder().fit(frame)
            self.feature_names = self.encoder.names
            encoded, scores = encode_frame(frame, space), normalized_scores(frame)
            self.seen = unique_rows(encoded)
            self.index = TaskIndex.build(frame, encoded, scores)
            self._fit(frame, scores)
        return self

    @abstractmethod
    def _fit(self, frame: pd.DataFrame, scores: np.ndarray) -> None:
        """Fits on ``frame`` (checked, complete rows only) and its task-normalized ``scores``."""

    def predict(
        self, features: dict[str, Any], configs: Sequence[dict] | pd.DataFrame, observed: pd.DataFrame | None = None,
        direction: str = "maximize",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the task-normalized score (higher is better) of each configuration.

        ``configs`` takes the forms ``suggest``'s ``candidates`` takes: a list of dicts or a DataFrame (columns named
        like the hyperparameters or ``hp_<name>``). ``direction`` is that of ``observed``'s objective.
        """
        self._check_fitted()
        self._warn_unknown(features)
        with bounded_threads(self.threads):
            return self.predict_adapted(features, encode_candidates(configs, self.space), oriented(observed, direction))

    @abstractmethod
    def predict_encoded(
        self, features: dict[str, Any], x: np.ndarray, observed: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The mapping's own prediction for configurations encoded by ``space.encode`` (``[n, dim]``)."""

    def predict_adapted(
        self, features: dict[str, Any], x: np.ndarray, observed: pd.DataFrame | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``predict`` for encoded configurations: ``predict_encoded`` plus ``observed_correction``; with
        ``adapt = False`` the observed trials are not used at all (zero-shot, for every kind of mapping)."""
        if not self.adapt:
            observed = None
        mean, std = self.predict_encoded(features, x, observed)
        return mean + self.observed_correction(features, x, observed), std

    def observed_correction(self, features: dict[str, Any], x: np.ndarray, observed: pd.DataFrame | None) -> np.ndarray:
        """What the task's own observed trials add to the prediction at ``x`` (zeros while too few are known)."""
        if self.adapt_lengthscale is None:
            return np.zeros(len(x))
        observed_x, observed_y = observed_scores(observed, self.space)
        if len(observed_y) < max(self.adapt_min, 1):
            return np.zeros(len(x))
        predicted, _ = self.predict_encoded(features, observed_x, observed)
        if not helps(observed_x, observed_y, predicted, self.adapt_lengthscale):
            return np.zeros(len(x))
        return residual_correction(x, observed_x, observed_y, predicted, self.adapt_lengthscale)

    def suggest(
        self,
        features: dict[str, Any],
        k: int = 1,
        observed: pd.DataFrame | None = None,
        candidates: Candidates = 2000,
        seed: int = 0,
        direction: str = "maximize",
    ) -> list[dict]:
        """The ``k`` best configurations not in ``observed``, among ``candidates`` (see ``Candidates``).

        With explicit candidates, ``rank`` says which of them these are (their indices). ``direction`` is that of
        ``observed``'s objective.
        """
        self._check_fitted()
        self._warn_unknown(features)
        observed = oriented(observed, direction)
        with bounded_threads(self.threads):
            if isinstance(candidates, (int, np.integer)) and not isinstance(candidates, bool):
                return self._suggest_drawn(features, k, observed, int(candidates), seed)
            frame = candidate_frame(candidates, self.space)
            picked = self._rank_free(features, encode_candidates(frame, self.space), k, observed)
            return [self.space.validate(row) for row in frame.iloc[picked].to_dict("records")]

    def rank(
        self, features: dict[str, Any], candidates: Sequence[dict] | pd.DataFrame, k: int | None = None,
        observed: pd.DataFrame | None = None, direction: str = "maximize",
    ) -> np.ndarray:
        """Indices into ``candidates`` of the ``k`` best (all when None) not in ``observed``, best first: which rows
        ``suggest`` picked, without re-encoding and matching its dicts."""
        self._check_fitted()
        self._warn_unknown(features)
        with bounded_threads(self.threads):
            x = encode_candidates(candidates, self.space)
            return self._rank_free(features, x, len(x) if k is None else k, oriented(observed, direction))

    def _rank_free(self, features: dict[str, Any], x: np.ndarray, k: int, observed: pd.DataFrame | None) -> np.ndarray:
        """``_best`` among the rows of ``x`` not in ``observed``, as indices into ``x``."""
        taken = observed_keys(observed, self.space)
        free = np.array([tuple(row) not in taken for row in np.round(x, 9)], dtype=bool)
        if not free.any():
            raise ConfigError("Every given candidate configuration is already observed: give configurations not yet run.")
        index = np.flatnonzero(free)
        return index[self._best(features, x[index], k, observed)]

    def _suggest_drawn(
        self, features: dict[str, Any], k: int, observed: pd.DataFrame | None, n: int, seed: int
    ) -> list[dict]:
        """``suggest`` among ``self.candidates(n, seed)``."""
        x = drop_observed(self.candidates(n, seed), observed, self.space)
        if len(x) == 0:
            raise ConfigError("Every candidate configuration is already observed: raise `candidates`.")
        return [self.space.validate(c) for c in self.space.decode(x[self._best(features, x, k, observed)])]

    def _best(self, features: dict[str, Any], x: np.ndarray, k: int, observed: pd.DataFrame | None) -> np.ndarray:
        """Indices of the ``k`` rows of ``x`` with the best ``mean + exploration * std``, best first."""
        mean, std = self.predict_adapted(features, x, observed)
        return np.argsort(-(mean + self.exploration * std), kind="stable")[:k]

    def candidates(self, n: int, seed: int) -> np.ndarray:
        """Encoded candidates: every configuration seen in training plus ``n`` random draws."""
        return unique_rows(np.concatenate([self.seen, self.space.encode(self.space.sample(n, seed))]))

    def scaled_features(self, features: dict[str, Any]) -> np.ndarray:
        """The task's features encoded and scaled like the training tasks'; missing ones imputed."""
        return self.encoder.one(features)

    def save(self, path: str | Path) -> Path:
        """Writes the fitted mapping to one file holding no code (``file_format.py``), read by ``Mapping.load``."""
        self._check_fitted()
        from lightning_meta.hpo.mappings import MAPPINGS

        kind = MAPPINGS.kind_of(type(self))
        if kind is None:
            raise ConfigError(f"{type(self).__name__} cannot be saved: only the mappings of MAPPINGS ({sorted(MAPPINGS)}) can.")
        state = self._state()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        file_format.write(path, kind, self.space.to_dict(), state)
        return path

    @staticmethod
    def load(path: str | Path) -> Mapping:
        """Reads a file written by ``save``; a missing, corrupted, foreign or old (pickle) file raises ConfigError."""
        from lightning_meta.hpo.mappings import MAPPINGS

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"Mapping file {path} does not exist: fit a mapping and save() it, or fix the path.")
        kind, space, state = file_format.read(path)
        if kind not in MAPPINGS:
            raise ConfigError(f"Mapping file {path} names the mapping {kind!r}, which is not one of {sorted(MAPPINGS)}.")
        try:
            mapping = MAPPINGS[kind](**state["settings"])
            mapping.space = SearchSpace.from_dict(space)
            mapping._set_state(state)
        except (LightningMetaError, KeyError, TypeError, ValueError, AttributeError) as err:
            reason = f"{type(err).__name__}: {str(err).splitlines()[0]}" if str(err) else type(err).__name__
            raise ConfigError(f"Mapping file {path} is corrupted ({reason}): re-create it with save().") from None
        return mapping

    def _settings(self) -> dict[str, Any]:
        """The constructor arguments (each subclass keeps them as attributes of the same name)."""
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        parameters = inspect.signature(type(self).__init__).parameters.values()
        return {p.name: getattr(self, p.name) for p in parameters if p.kind in named and p.name != "self"}

    def _state(self) -> dict[str, Any]:
        return {"settings": self._settings(), "threads": self.threads, "exploration": self.exploration,
                "adapt_lengthscale": self.adapt_lengthscale, "adapt_min": self.adapt_min, "adapt": self.adapt,
                "encoder": self.encoder.state(), "seen": self.seen, "fitted_runs": self.fitted_runs,
                "index": self.index.state() if self.index is not None else None,
                "fitted": self._fitted_state()}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.threads, self.exploration = int(state["threads"]), float(state["exploration"])
        # files written before the kernel correction existed lack these keys: the class defaults apply
        self.adapt_lengthscale = state.get("adapt_lengthscale", type(self).adapt_lengthscale)
        self.adapt_min = int(state.get("adapt_min", self.adapt_min))
        self.adapt = bool(state.get("adapt", True))
        self.encoder = FeatureEncoder.from_state(state["encoder"])
        self.feature_names = self.encoder.names
        self.seen = np.asarray(state["seen"], dtype=float)
        self.fitted_runs = int(state.get("fitted_runs", 0))
        # files written before the task index existed cannot compare a task with their training tasks
        self.index = TaskIndex.from_state(state["index"]) if state.get("index") is not None else None
        with bounded_threads(self.threads):
            self._set_fitted_state(state["fitted"])

    def _fitted_state(self) -> dict[str, Any]:
        """What ``_fit`` learnt, as JSON values, arrays and tensors (see ``file_format.py``).

        Every kind in ``MAPPINGS`` (the only ones ``save`` and ``load`` accept) overrides this pair;
        mappings that are never saved (a random search, a constant) need not.
        """
        raise ConfigError(f"{type(self).__name__} does not define _fitted_state: implement it to register it in MAPPINGS.")

    def _set_fitted_state(self, state: dict[str, Any]) -> None:
        """Restores what ``_fitted_state`` returned."""
        raise ConfigError(f"{type(self).__name__} does not define _set_fitted_state: implement it to register it in MAPPINGS.")

    def used_features(self) -> list[str]:
        """The task features this mapping's zero-shot predictions read: all it was fit with, unless its kind ignores
        some (``BestOnAverage`` reads none), so ``suggest`` can say which given ones change nothing."""
        return list(self.feature_names)

    def _warn_unknown(self, features: dict[str, Any]) -> None:
        """A feature name the mapping never saw is ignored: say so (a misspelling would otherwise pass silently)."""
        unknown = sorted(str(n) for n in features if n not in self.feature_names)
        if unknown:
            warnings.warn(f"Task features {unknown} are unknown to the mapping and ignored (it reads "
                          f"{self.feature_names}): check their names, or re-fit on runs that record them.", stacklevel=3)

    def _check_fitted(self) -> None:
        if not hasattr(self, "space"):
            raise ConfigError(f"{type(self).__name__} is not fitted: call fit(frame, space) or Mapping.load(path) first.")


def check_frame(frame: pd.DataFrame, space: SearchSpace) -> pd.DataFrame:
    """The complete, finite runs of a pool frame that fit ``space``, their values in canonical form.

    A pool may hold runs of several search spaces (``frame()`` has ``hp_`` columns for all of them,
    NaN where a run lacks one) or values the space refuses; those runs are dropped with one warning
    that counts them by reason. DataError when columns are missing or no run is left.
    """
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
    usable, reasons = usable_rows(frame, space)
    if usable.empty:
        raise DataError(f"No run of the frame fits the search space {space.names}: {reasons}. Fit on runs of this space.")
    if reasons:
        warnings.warn(
            f"{len(frame) - len(usable)} of {len(frame)} runs do not fit the search space {space.names} and are "
            f"left out of the fit: {reasons}. Fit one mapping per search space, or widen the space.",
            stacklevel=3,
        )
    return usable.reset_index(drop=True)


def usable_rows(frame: pd.DataFrame, space: SearchSpace) -> tuple[pd.DataFrame, str]:
    """The rows whose configuration ``space`` accepts (values made canonical by ``Param.conform``), and
    why the others are not usable ("" when all are): a value missing, a value outside the space, or a
    value of a hyperparameter the space does not declare (a run of another search space)."""
    keep = np.ones(len(frame), dtype=bool)
    lacking, outside, canonical = [], [], {}
    n_missing = n_outside = 0
    for p in space.params:
        column = frame[f"hp_{p.name}"].to_numpy()
        canonical[f"hp_{p.name}"], ok = p.conform(column)
        absent = ~ok & keep & np.asarray(pd.isna(column), dtype=bool)
        refused = ~ok & keep & ~absent
        n_missing, n_outside = n_missing + int(absent.sum()), n_outside + int(refused.sum())
        lacking += [p.name] if absent.any() else []
        outside += [f"{p.name}={v.item() if isinstance(v, np.generic) else v!r}" for v in column[refused][:1]]
        keep &= ok
    extra = [c for c in frame.columns if c.startswith("hp_") and c[3:] not in space.names]
    foreign = keep & np.asarray(frame[extra].notna().any(axis=1), dtype=bool) if extra else np.zeros(len(frame), dtype=bool)
    keep &= ~foreign
    reasons = [
        (n_missing, f"{n_missing} lack a value of {lacking}"),
        (n_outside, f"{n_outside} have a value outside it (e.g. {', '.join(outside)})"),
        (int(foreign.sum()), f"{int(foreign.sum())} set hyperparameters it does not declare "
                             f"({[c[3:] for c in extra]}: runs of another search space)"),
    ]
    return frame.assign(**canonical)[keep], ", ".join(text for count, text in reasons if count)


def candidate_frame(candidates: Sequence[dict] | pd.DataFrame, space: SearchSpace) -> pd.DataFrame:
    """The given configurations as a frame with one column per hyperparameter, in the space's order.

    A DataFrame may name its columns like the hyperparameters or like a pool frame (``hp_<name>``); its other
    columns are ignored. A list of dicts must give every hyperparameter and no other. Values are checked by
    ``encode_candidates``.
    """
    if isinstance(candidates, pd.DataFrame):
        for prefix in ("", "hp_"):
            if all(prefix + n in candidates.columns for n in space.names):
                frame = candidates[[prefix + n for n in space.names]].set_axis(space.names, axis=1)
                break
        else:
            raise ConfigError(
                f"The candidates DataFrame has no column for each of {space.names} (or hp_<name>): "
                f"its columns are {list(candidates.columns)}."
            )
    elif isinstance(candidates, Sequence) and not isinstance(candidates, str) and all(isinstance(c, Mapping_) for c in candidates):
        if not candidates:
            raise ConfigError("candidates is empty: give at least one configuration to rank.")
        frame = pd.DataFrame.from_records(list(candidates))
        unknown = sorted(set(frame.columns) - set(space.names), key=str)
        if unknown:
            raise ConfigError(f"A candidate configuration has unknown hyperparameters {unknown}: the search space "
                              f"declares {space.names}.")
        missing = [n for n in space.names if n not in frame.columns or frame[n].isna().any()]
        if missing:
            raise ConfigError(f"A candidate configuration lacks hyperparameters {missing}: give a value for each of "
                              f"{space.names}.")
        frame = frame[space.names]
    else:
        raise ConfigError(
            f"candidates={candidates!r} is invalid: give a number of random draws, a list of configurations "
            "(dicts) or a DataFrame of them."
        )
    if frame.empty:
        raise ConfigError("candidates is empty: give at least one configuration to rank.")
    return frame


def encode_candidates(candidates: Sequence[dict] | pd.DataFrame, space: SearchSpace) -> np.ndarray:
    """The given configurations encoded, validated once, column by column (``Param.conform``); ConfigError names
    the first bad one. ``candidates`` may also be what ``candidate_frame`` returned."""
    hp = candidate_frame(candidates, space).set_axis([f"hp_{n}" for n in space.names], axis=1)
    canonical = {}
    for p in space.params:
        canonical[f"hp_{p.name}"], ok = p.conform(hp[f"hp_{p.name}"].to_numpy())
        if not ok.all():
            bad = hp[f"hp_{p.name}"].to_numpy()[~ok][0]
            p.check(bad.item() if isinstance(bad, np.generic) else bad)  # raises the one-line error naming it
    return encode_frame(hp.assign(**canonical), space)


DIRECTIONS = {"maximize": 1.0, "max": 1.0, "minimize": -1.0, "min": -1.0}


def oriented(frame: pd.DataFrame | None, direction: str) -> pd.DataFrame | None:
    """``frame`` with its ``objective`` negated when ``direction`` is ``"minimize"``, so higher is better."""
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction={direction!r} is invalid: use 'maximize' or 'minimize'.")
    if frame is None or DIRECTIONS[direction] > 0 or "objective" not in getattr(frame, "columns", ()):
        return frame
    return frame.assign(objective=-frame["objective"].astype(float))


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
    """The encoded configurations of ``observed`` (rounded) as hashable keys, failed trials included."""
    rows = observed_rows(observed, space)
    return {tuple(row) for row in np.round(encode_frame(rows, space), 9)}


def observed_scores(observed: pd.DataFrame | None, space: SearchSpace) -> tuple[np.ndarray, np.ndarray]:
    """Encoded configurations and raw objectives of the complete, finite trials in ``observed``."""
    rows = observed_rows(observed, space)
    if rows.empty:
        return np.zeros((0, space.dim)), np.zeros(0)
    if "objective" not in rows.columns:
        raise DataError("The observed trials lack the column 'objective': pass the task's runs from ExperiencePool.frame().")
    if "status" in rows.columns:
        rows = rows[rows["status"] == "complete"]
    rows = rows[np.isfinite(rows["objective"].to_numpy(dtype=float))]
    return encode_frame(rows, space), rows["objective"].to_numpy(dtype=float)


def observed_rows(observed: pd.DataFrame | None, space: SearchSpace) -> pd.DataFrame:
    """The trials of ``observed`` whose configuration ``space`` accepts (canonical values).

    Trials of another search space, or with a value the space refuses, can neither be compared
    with its candidates nor adapted to, so they are left out.
    """
    if observed is None or observed.empty:
        return pd.DataFrame({f"hp_{n}": [] for n in space.names})
    missing = [f"hp_{n}" for n in space.names if f"hp_{n}" not in observed.columns]
    if missing:
        raise DataError(f"The observed trials lack columns {missing}: pass the task's runs from ExperiencePool.frame().")
    return usable_rows(observed, space)[0]


def nearest_rows(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index of the nearest row of ``keys`` (Euclidean, encoded space) for each query row."""
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=1).fit(keys).kneighbors(queries, return_distance=False)[:, 0]
