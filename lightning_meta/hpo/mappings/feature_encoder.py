"""Task features (the ``f_`` columns of a pool frame) as the numeric vector every mapping uses.

Numeric features are min-max scaled on the training tasks; a missing value is imputed with the
training mean. Text-valued features (a frequency ``'1D'``, a data set's domain) are one-hot encoded
over the categories seen at fit, in sorted order; a category never seen in training encodes as all
zeros (it is like none of the training tasks), and a missing one is imputed like a number.
"""

from __future__ import annotations

import warnings
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd

from lightning_meta.errors import ConfigError


class FeatureEncoder:
    """Learns the feature columns of a frame and maps a task's features to scaled numbers."""

    def fit(self, frame: pd.DataFrame) -> FeatureEncoder:
        """Learns the names, which are text (with their categories) and the scaling from ``frame``."""
        self.names = sorted(c[2:] for c in frame.columns if c.startswith("f_"))
        columns = {n: frame[f"f_{n}"].to_numpy() for n in self.names}
        self.categories = {n: _categories(v) for n, v in columns.items() if _is_text(v)}
        raw = self._raw(columns, len(frame))
        with warnings.catch_warnings():  # a feature no training task has: all-NaN column, scaled to the default
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high, mean = np.nanmin(raw, axis=0), np.nanmax(raw, axis=0), np.nanmean(raw, axis=0)
        self.low = np.nan_to_num(low)
        self.span = np.where(np.nan_to_num(high - low) > 1e-12, np.nan_to_num(high - low), 1.0)
        self.mean = np.nan_to_num((mean - self.low) / self.span, nan=0.5)
        return self

    def frame(self, frame: pd.DataFrame) -> np.ndarray:
        """``[n_rows, width]`` scaled features of the rows of a (training) frame."""
        return self._scale(self._raw({n: frame[f"f_{n}"].to_numpy() for n in self.names}, len(frame)))

    def one(self, features: dict[str, Any]) -> np.ndarray:
        """``[width]`` scaled features of one task; features missing from ``features`` are imputed, with a warning."""
        missing = [n for n in self.names if n not in features]
        if missing:
            warnings.warn(
                f"Task features {missing} were present in training but not given; they are imputed "
                "with the training mean. Compute features the same way as for the pool's runs.",
                stacklevel=4,
            )
        return self._scale(self._raw({n: np.array([features.get(n)], dtype=object) for n in self.names}, 1))[0]

    def state(self) -> dict[str, Any]:
        """What a mapping file stores to encode features as at fit."""
        return {"names": self.names, "categories": self.categories, "low": self.low, "span": self.span, "mean": self.mean}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureEncoder:
        encoder = cls()
        encoder.names, encoder.categories = list(state["names"]), {k: list(v) for k, v in state["categories"].items()}
        encoder.low, encoder.span, encoder.mean = (np.asarray(state[k], dtype=float) for k in ("low", "span", "mean"))
        return encoder

    def _raw(self, columns: dict[str, Any], n: int) -> np.ndarray:
        """Unscaled ``[n, width]`` values: numbers as given (NaN when missing), text one-hot."""
        blocks = []
        for name in self.names:
            values = np.asarray(columns[name])
            if name in self.categories:
                onehot = np.array([[str(v) == c for c in self.categories[name]] for v in values], dtype=float)
                onehot = onehot.reshape(n, len(self.categories[name]))
                onehot[np.array([_missing(v) for v in values], dtype=bool)] = np.nan
                blocks.append(onehot)
            elif values.dtype.kind in "iuf":
                blocks.append(values.astype(float)[:, None])
            else:
                blocks.append(np.array([_number(name, v) for v in values], dtype=float)[:, None])
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0))

    def _scale(self, raw: np.ndarray) -> np.ndarray:
        scaled = (raw - self.low) / self.span
        return np.where(np.isnan(scaled), self.mean, scaled)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _is_text(column: np.ndarray) -> bool:
    """Whether a feature column holds text: any present value that is not a number."""
    return column.dtype.kind not in "iuf" and any(not _missing(v) and (isinstance(v, (bool, np.bool_)) or not isinstance(v, Real)) for v in column)


def _categories(column: np.ndarray) -> list[str]:
    return sorted({str(v) for v in column if not _missing(v)})


def _number(name: str, value: Any) -> float:
    if _missing(value):
        return np.nan
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise ConfigError(
            f"Task feature {name!r}={value!r} is not a number, but the mapping learnt {name!r} as numeric: "
            "give a number, or re-fit on a pool where it is text."
        )
    return float(value)
