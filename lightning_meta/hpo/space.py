"""The hyperparameter search space: what may be tuned, in which range, and where each value goes.

Every mapping works in one numeric coordinate system so that runs of different tasks can be
compared: ``encode`` maps a configuration to a vector in ``[0, 1]^dim`` (log scale where asked,
one-hot for categoricals) and ``decode`` maps any such vector back to a valid configuration.
Integers use Optuna's convention of bins centred on each value (``[low - 0.5, high + 0.5]``), so a
uniform draw in the encoded space gives every integer the same probability.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Real
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lightning_meta.errors import ConfigError

ParamType = Literal["float", "int", "categorical"]
_TYPES = ("float", "int", "categorical")
_SPEC_KEYS = {"type", "low", "high", "log", "choices", "target"}
_CHOICE_TYPES = (str, bool, int, float, type(None))
_NO_CHOICE = object()  # what ``Param._choice`` returns for a value matching no choice (None may be a choice)

ROUND_OFF = 1e-6
"""How far float round-off may push a value: a share of the encoded range past a bound (clipped to it),
or of the value off an integer (rounded). Values stored as text or float32, or computed (``0.1 * 5``,
``exp(log(105))`` = 104.99999999999997), land this close; anything farther is a different value."""


def _near_integer(values: np.ndarray, tolerance: float) -> np.ndarray:
    """Whether each value is an integer up to round-off (relative to its size, at least ``tolerance``)."""
    with np.errstate(invalid="ignore"):
        return np.abs(values - np.rint(values)) <= tolerance * np.maximum(1.0, np.abs(values))


@dataclass
class Param:
    """One tunable hyperparameter.

    ``target`` says where the callback writes the value: ``"lr"`` (an attribute or ``hparams`` key
    of the LightningModule), ``"datamodule.batch_size"`` or ``"model.<attr>"``; it defaults to
    ``name``.
    """

    name: str
    type: ParamType
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: Sequence[Any] | None = None
    target: str | None = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"Hyperparameter name {self.name!r} is invalid: give a non-empty string.")
        if self.type not in _TYPES:
            raise ConfigError(
                f"Hyperparameter {self.name!r} has type {self.type!r}: use one of {', '.join(_TYPES)}."
            )
        if self.target is None:
            self.target = self.name
        if self.type == "categorical":
            self._check_categorical()
        else:
            self._check_numeric()

    def _check_categorical(self) -> None:
        if self.low is not None or self.high is not None or self.log:
            raise ConfigError(
                f"Categorical hyperparameter {self.name!r} has low/high/log: give only `choices`."
            )
        if self.choices is None or isinstance(self.choices, str) or len(self.choices) == 0:
            raise ConfigError(
                f"Categorical hyperparameter {self.name!r} needs a non-empty list `choices`, got {self.choices!r}."
            )
        choices = tuple(self.choices)
        bad = [c for c in choices if not isinstance(c, _CHOICE_TYPES)]
        if bad:
            raise ConfigError(
                f"Categorical hyperparameter {self.name!r} has choices {bad!r} of unsupported type: "
                "use strings, numbers, booleans or null."
            )
        if len({(type(c), c) for c in choices}) != len(choices):
            raise ConfigError(f"Categorical hyperparameter {self.name!r} lists a choice twice in {list(choices)!r}: remove the duplicate.")
        self.choices = choices

    def _check_numeric(self) -> None:
        if self.choices is not None:
            raise ConfigError(
                f"Hyperparameter {self.name!r} of type {self.type!r} has `choices`: use type 'categorical' or drop `choices`."
            )
        if self.low is None or self.high is None:
            raise ConfigError(f"Hyperparameter {self.name!r} of type {self.type!r} needs both `low` and `high`.")
        self.low = self._number(self.low, "low")
        self.high = self._number(self.high, "high")
        if not self.low < self.high:
            raise ConfigError(
                f"Hyperparameter {self.name!r} has low={self.low} >= high={self.high}: give low < high."
            )
        if self.log and self.low <= 0:
            raise ConfigError(
                f"Hyperparameter {self.name!r} is on a log scale but low={self.low} <= 0: give low > 0 or set log: false."
            )
        self.log = bool(self.log)

    def _number(self, value: Any, which: str) -> float | int:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"Hyperparameter {self.name!r} has {which}={value!r}: give a number.") from None
        if isinstance(value, bool) or not math.isfinite(number):
            raise ConfigError(f"Hyperparameter {self.name!r} has {which}={value!r}: give a finite number.")
        if self.type == "int":
            if not number.is_integer():
                raise ConfigError(f"Integer hyperparameter {self.name!r} has {which}={value!r}: give an integer.")
            return int(number)
        return number

    @property
    def width(self) -> int:
        """Number of encoded columns (one per choice for categoricals)."""
        return len(self.choices) if self.type == "categorical" else 1

    def to_dict(self) -> dict[str, Any]:
        """The spec as ``SearchSpace.from_dict`` reads it (without the name)."""
        if self.type == "categorical":
            spec: dict[str, Any] = {"type": self.type, "choices": list(self.choices)}
        else:
            spec = {"type": self.type, "low": self.low, "high": self.high, "log": self.log}
        if self.target != self.name:
            spec["target"] = self.target
        return spec

    def check(self, value: Any, tolerance: float = ROUND_OFF) -> Any:
        """Returns ``value`` in canonical form (ints cast, the listed choice) or raises ConfigError.

        Float round-off is repaired, not refused (see ``ROUND_OFF``): a value within ``tolerance`` of
        the encoded range past a bound is clipped to it, and an integer's near-integer value is rounded.
        """
        if self.type == "categorical":
            choice = self._choice(value)
            if choice is _NO_CHOICE:
                raise ConfigError(
                    f"Hyperparameter {self.name!r}={value!r} is not one of {list(self.choices)!r}: pick a listed choice."
                )
            return choice
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
            raise ConfigError(f"Hyperparameter {self.name!r}={value!r} has the wrong type: give a {self.type}.")
        repaired = float(self._repair(np.array([float(value)]), tolerance)[0])
        if math.isnan(repaired):
            if self.type == "int" and not _near_integer(np.array([float(value)]), tolerance)[0]:
                raise ConfigError(f"Hyperparameter {self.name!r}={value!r} is not an integer: give an int.")
            raise ConfigError(
                f"Hyperparameter {self.name!r}={value!r} is outside [{self.low}, {self.high}]: "
                "give a value in range or widen the search space."
            )
        return int(repaired) if self.type == "int" else repaired

    def clip(self, value: Any) -> Any:
        """A number (or array of numbers) pulled into ``[low, high]``: a user's value outside the space, such as
        ``weight_decay=0``, counts at the nearest bound. Choices are returned as they are."""
        return value if self.type == "categorical" else np.clip(value, self.low, self.high)

    def conform(self, values: np.ndarray, tolerance: float = ROUND_OFF) -> tuple[np.ndarray, np.ndarray]:
        """``check`` for a column of values: their canonical form and a mask of those ``check`` accepts.

        Fitting a mapping keeps the accepted rows of a pool frame and drops the others, so a value
        is usable for training exactly when ``predict`` would take it.
        """
        values = np.asarray(values)
        if self.type == "categorical":
            canonical = np.empty(len(values), dtype=object)
            canonical[:] = [self._choice(v) for v in values]
            return canonical, np.array([c is not _NO_CHOICE for c in canonical], dtype=bool)
        if values.dtype.kind in "iuf":
            numbers = values.astype(float)
        else:  # object columns (pool frames of mixed spaces): only real, non-boolean numbers count
            numbers = np.array(
                [float(v) if isinstance(v, Real) and not isinstance(v, (bool, np.bool_)) else np.nan for v in values],
                dtype=float,
            )
        repaired = self._repair(numbers, tolerance)
        return repaired, ~np.isnan(repaired)

    def _choice(self, value: Any) -> Any:
        """The listed choice ``value`` stands for (32.0 for choice 32, numpy scalars), else ``_NO_CHOICE``."""
        for choice in self.choices:
            if type(choice) is type(value) and choice == value:
                return choice
        for choice in self.choices:
            if not isinstance(choice, (str, bool)) and not isinstance(value, (str, bool)) and choice == value:
                return choice
        return _NO_CHOICE

    def _repair(self, values: np.ndarray, tolerance: float) -> np.ndarray:
        """Numeric values with round-off repaired (clipped to a bound, rounded to an integer); NaN where invalid."""
        if self.type == "int":
            rounded = np.where(_near_integer(values, tolerance), np.rint(values), np.nan)
            with np.errstate(invalid="ignore"):
                return np.where((rounded >= self.low) & (rounded <= self.high), rounded, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            position = self.encode(values)
            inside = (position >= -tolerance) & (position <= 1.0 + tolerance)
        return np.where(inside, np.clip(values, self.low, self.high), np.nan)

    def _bounds(self) -> tuple[float, float]:
        """Ends of the encoded interval in value (or log value) units."""
        low, high = (self.low - 0.5, self.high + 0.5) if self.type == "int" else (self.low, self.high)
        return (math.log(low), math.log(high)) if self.log else (low, high)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Maps canonical numeric values to ``[0, 1]``."""
        low, high = self._bounds()
        values = np.log(values) if self.log else values
        return (values - low) / (high - low)

    def decode(self, x: np.ndarray) -> list[Any]:
        """Maps encoded columns (``[n]`` numeric, ``[n, k]`` one-hot scores) back to valid values."""
        if self.type == "categorical":
            return [self.choices[i] for i in np.argmax(x, axis=1)]
        low, high = self._bounds()
        values = low + np.clip(x, 0.0, 1.0) * (high - low)
        values = np.exp(values) if self.log else values
        values = np.clip(values, self.low, self.high)
        if self.type == "int":
            return [int(v) for v in np.clip(np.rint(values), self.low, self.high)]
        return [float(v) for v in values]


class SearchSpace:
    """An ordered set of ``Param``; the coordinate system shared by the pool and every mapping."""

    def __init__(self, params: Sequence[Param]) -> None:
        params = list(params)
        if not params:
            raise ConfigError("The search space is empty: declare at least one hyperparameter.")
        names = [p.name for p in params]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ConfigError(f"The search space declares {duplicated} more than once: give each hyperparameter once.")
        self.params = params

    @classmethod
    def from_dict(cls, spec: Mapping[str, Mapping[str, Any]]) -> SearchSpace:
        """Reads ``{name: {type, low, high, log, choices, target}}`` (a dict or an OmegaConf node)."""
        if hasattr(spec, "_metadata"):  # OmegaConf DictConfig
            from omegaconf import OmegaConf

            spec = OmegaConf.to_container(spec, resolve=True)
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"A search space must be a mapping name -> {{type, low, high, ...}}, got {type(spec).__name__}."
            )
        params = []
        for name, options in spec.items():
            if not isinstance(options, Mapping):
                raise ConfigError(
                    f"Hyperparameter {name!r} must map to {{type, low, high, log, choices, target}}, got {options!r}."
                )
            unknown = sorted(set(options) - _SPEC_KEYS)
            if unknown:
                raise ConfigError(
                    f"Hyperparameter {name!r} has unknown keys {unknown}: use only {sorted(_SPEC_KEYS)}."
                )
            if "type" not in options:
                raise ConfigError(f"Hyperparameter {name!r} has no `type`: give one of {', '.join(_TYPES)}.")
            params.append(Param(name=name, **options))
        return cls(params)

    @classmethod
    def from_yaml(cls, path: str | Path) -> SearchSpace:
        """Reads a YAML file holding the mapping ``from_dict`` expects."""
        import yaml

        path = Path(path)
        try:
            spec = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"Search space file {path} does not exist: check the path.") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"Search space file {path} is not valid YAML ({error}): fix its syntax.") from None
        return cls.from_dict(spec)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The inverse of ``from_dict`` (for saving a mapping together with its space)."""
        return {p.name: p.to_dict() for p in self.params}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.params == other.params

    def __repr__(self) -> str:
        return f"SearchSpace({self.params!r})"

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    @property
    def dim(self) -> int:
        """Width of the encoded vectors."""
        return sum(p.width for p in self.params)

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Checks one configuration and returns it in canonical form (ints cast, declared order)."""
        if not isinstance(config, Mapping):
            raise ConfigError(f"A configuration must be a dict name -> value, got {type(config).__name__}.")
        unknown = sorted(set(config) - set(self.names), key=str)
        if unknown:
            raise ConfigError(
                f"Configuration has unknown hyperparameters {unknown}: the search space declares {self.names}."
            )
        missing = [n for n in self.names if n not in config]
        if missing:
            raise ConfigError(f"Configuration lacks hyperparameters {missing}: give a value for each of {self.names}.")
        return {p.name: p.check(config[p.name]) for p in self.params}

    def sample(self, n: int, seed: int) -> list[dict[str, Any]]:
        """Draws ``n`` configurations uniformly in the encoded space, reproducibly from ``seed``."""
        rng = np.random.default_rng(seed)
        return self.decode(rng.random((n, self.dim)))

    def encode(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Returns the ``[n, dim]`` float array of the (validated) configurations."""
        canonical = [self.validate(c) for c in configs]
        columns = []
        for p in self.params:
            values = [c[p.name] for c in canonical]
            if p.type == "categorical":
                index = {(type(c), c): i for i, c in enumerate(p.choices)}
                onehot = np.zeros((len(values), p.width))
                onehot[np.arange(len(values)), [index[(type(v), v)] for v in values]] = 1.0
                columns.append(onehot)
            else:
                columns.append(p.encode(np.asarray(values, dtype=float))[:, None])
        return np.concatenate(columns, axis=1) if canonical else np.zeros((0, self.dim))

    def decode(self, x: np.ndarray) -> list[dict[str, Any]]:
        """Maps rows of ``x`` (``[n, dim]``, any real values) to valid configurations."""
        x = np.asarray(x, dtype=float)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ConfigError(f"Cannot decode an array of shape {x.shape}: expected [n, {self.dim}].")
        decoded: dict[str, list[Any]] = {}
        start = 0
        for p in self.params:
            block = x[:, start : start + p.width]
            decoded[p.name] = p.decode(block if p.type == "categorical" else block[:, 0])
            start += p.width
        return [{name: values[i] for name, values in decoded.items()} for i in range(x.shape[0])]

    def to_optuna(self, trial: Any) -> dict[str, Any]:
        """Asks an ``optuna.Trial`` for one value per hyperparameter (same names, ranges and scales)."""
        config = {}
        for p in self.params:
            if p.type == "float":
                config[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
            elif p.type == "int":
                config[p.name] = trial.suggest_int(p.name, p.low, p.high, log=p.log)
            else:
                config[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        return config
