"""The Lightning callback that puts a hyperparameter mapping to work on any LightningModule.

At ``setup("fit")`` — before ``configure_optimizers`` runs and before any dataloader exists — it
computes the task's features, asks the mapping for a configuration, writes each value where the
search space says (``lr`` on the module or its ``hparams``, ``datamodule.batch_size``, ...),
and logs the choice. Rank 0 decides and broadcasts, so every DDP rank trains the same
configuration. At the end of fit the outcome goes to the experience pool, so the mapping can
learn from every run; a pool that cannot be reached only costs a warning, never the fit.
"""

from __future__ import annotations

import math
import time
import warnings
from itertools import islice
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.parsing import lightning_hasattr, lightning_setattr

from lightning_meta.errors import ConfigError, PoolError
from lightning_meta.hpo.features import probe_features, task_features
from lightning_meta.hpo.mappings.base import Mapping
from lightning_meta.hpo.pool import ExperiencePool
from lightning_meta.hpo.space import SearchSpace

DEFAULT_MAPPING_DIR = Path(__file__).resolve().parents[1] / "assets" / "mapping"
_MODES = {"max": "maximize", "min": "minimize"}


class HyperparameterMapping(Callback):
    """Proposes and applies hyperparameters at ``setup("fit")``; records the outcome after fit.

    Args:
        mapping: a fitted ``Mapping``, the path of a saved one, or None for the mapping shipped
            in ``lightning_meta/assets/mapping/default.*``.
        space: which hyperparameters to set and where (``SearchSpace``, its dict, a YAML path);
            defaults to the mapping's space.
        pool: ``ExperiencePool`` or database URL where runs are recorded; None records nothing.
            Earlier runs of the same ``task`` in the pool are the mapping's observed trials, so
            repeated fits on one task continue a search instead of repeating one configuration.
        probe: also compute probe features (a few SGD steps on training batches).
        task: the task's name in the pool; defaults to ``<Module>/<DataModule>`` class names.
        monitor, mode: the metric in ``trainer.callback_metrics`` that scores the run.
        k: how many proposals to keep (``proposals``; the first is applied).
    """

    def __init__(
        self,
        mapping: Mapping | str | Path | None = None,
        space: SearchSpace | dict | str | Path | None = None,
        pool: ExperiencePool | str | None = None,
        probe: bool = False,
        task: str | None = None,
        monitor: str = "val_acc",
        mode: str = "max",
        k: int = 1,
        probe_batches: int = 2,
    ) -> None:
        if mode not in _MODES:
            raise ConfigError(f"HyperparameterMapping mode={mode!r} is invalid: use 'max' or 'min'.")
        if k < 1:
            raise ConfigError(f"HyperparameterMapping k={k} is invalid: give k >= 1.")
        self.mapping = _load_mapping(mapping)
        self.space = _load_space(space) if space is not None else self.mapping.space
        self._pool_arg = pool
        self.pool: ExperiencePool | None = None
        self.probe = probe
        self.probe_batches = probe_batches
        self.task = task
        self.monitor = monitor
        self.mode = mode
        self.k = k
        self.features: dict[str, float] = {}
        self.proposals: list[dict] = []
        self.config: dict[str, Any] = {}
        self.predicted: tuple[float, float] = (math.nan, math.nan)
        self.run_id: int | None = None
        self.curve: list[float] = []
        self._started = 0.0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self.task = self.task or _default_task(pl_module, trainer.datamodule)
        self.curve, self.run_id, self._started = [], None, time.monotonic()
        decision: Any = None
        if trainer.is_global_zero:
            self.pool = self._open_pool()
            try:
                decision = self._decide(trainer, pl_module)
            except Exception as error:  # sent to every rank, so no rank waits forever on the broadcast
                decision = error
        decision = trainer.strategy.broadcast(decision, src=0)
        if isinstance(decision, Exception):
            raise decision
        self.features, self.proposals, self.predicted = decision
        self.config = self.space.validate(_within(self.space, self.proposals[0]))
        for name, value in self.config.items():
            _apply(trainer, pl_module, self._target(name), value)
        self._log(trainer)
        if trainer.is_global_zero:
            self.run_id = self._pool_call("start", self.task, self.features, self.config)

    def _decide(self, trainer: pl.Trainer, pl_module: pl.LightningModule):
        features = dict(task_features(pl_module, trainer.datamodule))
        if self.probe:
            features.update(probe_features(pl_module, islice(_train_batches(trainer, pl_module), self.probe_batches)))
        observed = self._observed()
        proposals = self.mapping.suggest(features, k=self.k, observed=observed)
        mean, std = self.mapping.predict(features, proposals[:1], observed=observed)
        return features, proposals, (float(mean[0]), float(std[0]))

    def _observed(self):
        frame = self._pool_call("frame")
        if frame is None or frame.empty or not {f"hp_{n}" for n in self.space.names} <= set(frame.columns):
            return None
        return frame[frame["task"] == self.task]

    def _target(self, name: str) -> str:
        return next(p.target for p in self.space.params if p.name == name)

    def _log(self, trainer: pl.Trainer) -> None:
        params = {f"hpo/{name}": value for name, value in self.config.items()}
        scores = {"hpo/predicted_score": self.predicted[0], "hpo/predicted_std": self.predicted[1]}
        for logger in trainer.loggers:
            logger.log_hyperparams({**params, "hpo/task": self.task})
            logger.log_metrics(scores, step=0)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if not trainer.sanity_checking and value is not None:
            self.curve.append(float(value))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or self.run_id is None:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            warnings.warn(
                f"HyperparameterMapping: metric {self.monitor!r} was never logged, so the run is recorded "
                "as failed. Log it with self.log() or set monitor= to a logged metric.",
                stacklevel=2,
            )
            self._finish("failed", None)
            return
        final = float(value)
        status = "complete" if math.isfinite(final) else "diverged"
        finite = [v for v in self.curve if math.isfinite(v)]
        best = (max(finite) if self.mode == "max" else min(finite)) if finite else None
        self._finish(status, final, best)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if trainer.is_global_zero and self.run_id is not None:
            self._finish("failed", None)

    def _finish(self, status: str, final: float | None, best: float | None = None) -> None:
        self._pool_call(
            "finish", self.run_id, status, final, best_metric=best, curve=self.curve,
            duration_s=time.monotonic() - self._started, metric_name=self.monitor, direction=_MODES[self.mode],
        )
        self.run_id = None

    def enqueue(self, study: Any, features: dict[str, float] | None = None, k: int | None = None) -> list[dict]:
        """Hands the top-``k`` proposals for ``features`` to ``study.enqueue_trial`` (Optuna warm start).

        ``features`` defaults to those of the last ``fit``; the proposals are returned.
        """
        features = self.features if features is None else features
        if not features and self.mapping.feature_names:
            raise ConfigError("enqueue() needs task features: pass features= or call it after trainer.fit().")
        proposals = self.mapping.suggest(features, k=k or self.k)
        for config in proposals:
            study.enqueue_trial(self.space.validate(config))
        return proposals

    def _open_pool(self) -> ExperiencePool | None:
        if self._pool_arg is None or isinstance(self._pool_arg, ExperiencePool) or hasattr(self._pool_arg, "finish"):
            return self._pool_arg
        try:
            return ExperiencePool(str(self._pool_arg))
        except (PoolError, OSError) as error:
            warnings.warn(f"HyperparameterMapping continues without recording: {error}", stacklevel=2)
            return None

    def _pool_call(self, method: str, *args, **kwargs):
        """Calls the pool; a PoolError (unreachable, locked, corrupted) becomes a warning."""
        if self.pool is None:
            return None
        try:
            return getattr(self.pool, method)(*args, **kwargs)
        except PoolError as error:
            warnings.warn(f"HyperparameterMapping could not {method} in the experience pool: {error}", stacklevel=2)
            return None


def _within(space: SearchSpace, proposal: dict[str, Any]) -> dict[str, Any]:
    """The proposal restricted to the user's space: hyperparameters the user does not tune are dropped
    and numbers are clipped into the user's ranges (the mapping may know a wider space)."""
    config = {}
    for param in space.params:
        if param.name not in proposal:
            continue  # validate() names what is missing
        value = proposal[param.name]
        if param.type != "categorical" and param.low is not None and param.high is not None:
            value = min(max(value, param.low), param.high)
        config[param.name] = value
    return config


def _apply(trainer: pl.Trainer, pl_module: pl.LightningModule, target: str, value: Any) -> None:
    """Writes ``value`` where ``target`` points, the way ``lightning_setattr`` does.

    ``datamodule.<attr>`` goes to ``trainer.datamodule``, ``model.<path>`` to the (nested)
    attribute of the LightningModule, and a plain name to the module's attribute or ``hparams``
    key (or the datamodule's), exactly as Lightning's own tuner resolves it.
    """
    if target.startswith("datamodule."):
        if trainer.datamodule is None:
            raise ConfigError(f"Search-space target {target!r} needs a datamodule: pass datamodule= to trainer.fit().")
        _set_path(trainer.datamodule, target.split(".", 1)[1], value, target)
    elif target.startswith("model."):
        _set_path(pl_module, target.split(".", 1)[1], value, target)
    elif lightning_hasattr(pl_module, target):
        lightning_setattr(pl_module, target, value)
    else:
        raise ConfigError(
            f"Search-space target {target!r} is neither an attribute nor an hparams key of "
            f"{type(pl_module).__name__} or its datamodule: add it (e.g. self.{target} = ... in __init__) "
            "or set `target` in the search space."
        )


def _set_path(root: Any, path: str, value: Any, target: str) -> None:
    """Sets the dotted attribute ``path`` below ``root`` (the last part may be an hparams key)."""
    *parents, last = path.split(".")
    owner = root
    for part in parents:
        if not hasattr(owner, part):
            raise ConfigError(f"Search-space target {target!r}: {type(owner).__name__} has no attribute {part!r}; fix the target.")
        owner = getattr(owner, part)
    if hasattr(owner, last):
        setattr(owner, last, value)
    elif last in getattr(owner, "hparams", {}):
        owner.hparams[last] = value
    else:
        raise ConfigError(
            f"Search-space target {target!r}: {type(owner).__name__} has no attribute or hparams key {last!r}; "
            "add it or fix the target."
        )


def _train_batches(trainer: pl.Trainer, pl_module: pl.LightningModule):
    source = trainer.datamodule if trainer.datamodule is not None else pl_module
    try:
        return iter(source.train_dataloader())
    except Exception as error:
        raise ConfigError(
            f"probe=True needs training batches before fit, but {type(source).__name__}.train_dataloader() "
            f"failed ({error}): use a LightningDataModule or set probe=False."
        ) from error


def _default_task(pl_module: pl.LightningModule, datamodule: Any) -> str:
    data = type(datamodule).__name__ if datamodule is not None else "dataloaders"
    return f"{type(pl_module).__name__}/{data}"


def _load_mapping(mapping: Mapping | str | Path | None) -> Mapping:
    if isinstance(mapping, Mapping):
        return mapping
    if mapping is None:
        shipped = sorted(DEFAULT_MAPPING_DIR.glob("default.*"))
        if not shipped:
            raise ConfigError(
                f"No mapping given and no default mapping is shipped in {DEFAULT_MAPPING_DIR}: pass "
                "mapping= (a fitted Mapping or the path of one saved with Mapping.save)."
            )
        mapping = shipped[0]
    return Mapping.load(mapping)


def _load_space(space: SearchSpace | dict | str | Path) -> SearchSpace:
    if isinstance(space, SearchSpace):
        return space
    if isinstance(space, (str, Path)):
        return SearchSpace.from_yaml(space)
    return SearchSpace.from_dict(space)
