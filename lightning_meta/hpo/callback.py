"""The Lightning callback that puts a hyperparameter mapping to work on any LightningModule, with no arguments.

Each fit runs four steps, each in its own module (as Lightning's ``callbacks/lr_finder.py`` drives
``tuner/lr_finder.py``):

1. **decide** (``decision.py``, ``setup("fit")``, rank 0): find where each hyperparameter of the space goes
   (``apply.resolve``) and what it holds, compute the task's features, ask the mapping, and keep the user's values
   unless the recorded tasks like this one say a change pays (``evidence.py``; with earlier runs of the task, the
   search of ``search.py``); the decision is broadcast so every DDP rank trains the same configuration.
2. **apply** (``apply.py``, ``setup("fit")``, every rank): write the values before ``configure_optimizers`` runs
   and before any dataloader exists.
3. **verify** (``verify.py``, ``on_train_start``): the optimizers exist and a resumed checkpoint's optimizer state
   is restored; each applied ``lr``, ``weight_decay`` or ``momentum`` must be in a param group.
4. **record** (rank 0): only a verified run is started in the experience pool; its outcome is stored at the end
   of fit. A pool that cannot be reached only costs a warning, never the fit.

With the mapping's own space (no ``space=``) the callback sets what the module or datamodule exposes and skips
the rest, logging why (``callback.skipped``); a space the user gives is applied in full or not at all.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from itertools import islice
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pandas as pd
from lightning.pytorch.callbacks import Callback

from lightning_meta.errors import ConfigError, LightningMetaError, PoolError
from lightning_meta.hpo.apply import apply, reader
from lightning_meta.hpo.decision import Decision, decide, quiet_feature_warnings
from lightning_meta.hpo.evidence import MARGIN, MAX_DISTANCE
from lightning_meta.hpo.mappings.base import Mapping
from lightning_meta.hpo.pool import ExperiencePool
from lightning_meta.hpo.refit import RefitPolicy
from lightning_meta.hpo.run_facts import infer_mode
from lightning_meta.hpo.space import SearchSpace
from lightning_meta.hpo.verify import check_optimizers, optimizer_key

log = logging.getLogger(__name__)

DEFAULT_MAPPING_DIR = Path(__file__).resolve().parents[1] / "assets" / "mapping"
_MODES = {"max": "maximize", "min": "minimize"}


class HyperparameterMapping(Callback):
    """Proposes and applies hyperparameters at ``setup("fit")``, checks the optimizers use them, records the outcome.

    Args:
        mapping: a fitted ``Mapping``, the path of a saved one, or None for the mapping shipped
            in ``lightning_meta/assets/mapping/default.*``.
        space: which hyperparameters to set and where (``SearchSpace``, its dict, a YAML path); every target
            must exist. None: the mapping's space, of which only what the module or datamodule exposes is set.
        pool: ``ExperiencePool`` or database URL where runs are recorded; None records nothing.
            Earlier runs of the same ``task`` in the pool are the mapping's observed trials, so
            repeated fits on one task continue a search: the mapping adapts to their outcomes and proposes a
            configuration not yet run.
        probe: also compute probe features (a few SGD steps on training batches).
        task: the task's name in the pool; defaults to ``<Module>/<DataModule>`` class names.
        monitor, mode: the metric in ``trainer.callback_metrics`` that scores the run; ``mode`` (``"max"`` or
            ``"min"``) is inferred from the name when not given: a loss or an error is minimised, accuracy, AUC,
            R², F1 maximised; any other name needs ``mode``.
        k: how many proposals to keep (``proposals``; the first is applied).
        probe_batches: how many training batches ``probe`` uses.
        refit_every: learn from every run: once the pool (plus ``refit_base``) holds this many complete runs
            more than the mapping was fit on, it is fit again after the run is recorded (``refit.py``).
        refit_base: pools the refit also learns from; ``"shipped"`` (the default mapping's pool) or None.
        refit_to: where the refit mapping is saved, so that the next run (``mapping=refit_to``) starts from it.
        keep_defaults: first, do no harm: keep the module's own values unless the recorded tasks like this one
            say a change is better by ``margin`` (``evidence.py``); False applies the mapping's proposal as is.
        margin: the smallest predicted gain (task-normalized score, lower bound) that changes the user's values.
        max_distance: how far (``TaskIndex.distances``) a recorded task may be and still count as like this one.

    After ``fit``: ``decision`` (``Decision``: the user's values, the applied ones, the evidence with the
    neighbours, distance, predicted gain and its uncertainty), ``config`` (the applied values, empty when the
    user's are kept), ``targets`` (where each went), ``skipped`` (name -> why not applied), ``features``,
    ``proposals``, ``predicted`` and ``run_id``.
    """

    def __init__(
        self,
        mapping: Mapping | str | Path | None = None,
        space: SearchSpace | dict | str | Path | None = None,
        pool: ExperiencePool | str | None = None,
        probe: bool = False,
        task: str | None = None,
        monitor: str = "val_acc",
        mode: str | None = None,
        k: int = 1,
        probe_batches: int = 2,
        refit_every: int | None = None,
        refit_base: str | list[str] | None = "shipped",
        refit_to: str | Path | None = None,
        keep_defaults: bool = True,
        margin: float = MARGIN,
        max_distance: float = MAX_DISTANCE,
    ) -> None:
        mode = infer_mode(monitor, mode)
        if k < 1:
            raise ConfigError(f"HyperparameterMapping k={k} is invalid: give k >= 1.")
        self.mapping = _load_mapping(mapping)
        self.refit = RefitPolicy(refit_every, refit_base, refit_to) if refit_every is not None else None
        if self.refit is not None and pool is None:
            raise ConfigError("HyperparameterMapping refit_every= needs pool= (where runs are recorded): give both.")
        self.strict = space is not None
        self.space = _load_space(space) if space is not None else self.mapping.space
        self._pool_arg = pool
        self.pool: ExperiencePool | None = None
        self.probe = probe
        self.probe_batches = probe_batches
        self.task = task
        self.monitor = monitor
        self.mode = mode
        self.k = k
        self.keep_defaults, self.margin, self.max_distance = keep_defaults, float(margin), float(max_distance)
        self.decision: Decision | None = None
        self.features: dict[str, float] = {}
        self.proposals: list[dict] = []
        self.config: dict[str, Any] = {}
        self.targets: dict[str, str] = {}
        self.skipped: dict[str, str] = {}
        self.predicted: tuple[float, float] = (math.nan, math.nan)
        self.run_id: int | None = None
        self.curve: list[float] = []
        self._validations = 0
        self._started = 0.0

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Decides on rank 0, broadcasts, applies on every rank: before ``configure_optimizers`` and any dataloader."""
        if stage != "fit":
            return
        self.task = self.task or _default_task(pl_module, trainer.datamodule)
        self.curve, self.run_id, self._started, self._validations = [], None, time.monotonic(), 0
        decision: Decision | Exception | None = None
        if trainer.is_global_zero:
            self.pool = self._open_pool()
            try:
                decision = self._decide(trainer, pl_module)
            except Exception as error:  # sent to every rank, so no rank waits forever on the broadcast
                decision = error
        decision = trainer.strategy.broadcast(decision, src=0)
        if isinstance(decision, Exception):
            raise decision
        self.decision = decision
        self.features, self.proposals, self.predicted = decision.features, decision.proposals, decision.predicted
        self.config, self.targets, self.skipped = decision.config, decision.targets, decision.skipped
        for name, value in self.config.items():
            apply(trainer, pl_module, self.targets[name], value)
        if trainer.is_global_zero:
            self._say(pl_module)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Verifies, then records (pool and loggers): a run is never recorded with values its optimizers do not carry.

        The optimizers exist from ``on_fit_start`` on, but a resumed checkpoint restores their state after it, so
        this is the first hook that sees the rates training will use.
        """
        applied = {name: (optimizer_key(self.targets[name]), value) for name, value in self.config.items()}
        applied = {name: (key, float(value)) for name, (key, value) in applied.items() if key is not None}
        readers = {name: reader(pl_module, self.targets[name]) for name in applied}
        check_optimizers(trainer.optimizers, applied, type(pl_module).__name__, readers, trainer.ckpt_path)
        self._log(trainer)
        if trainer.is_global_zero:
            self.run_id = self._pool_call("start", self.task, self.features, self.decision.used)

    def _decide(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Decision:
        batches = islice(_train_batches(trainer, pl_module), self.probe_batches) if self.probe else None
        rule = {"margin": self.margin, "max_distance": self.max_distance} if self.keep_defaults else \
            {"apply_proposal": True}
        return decide(self.mapping, self.space, trainer, pl_module, strict=self.strict, k=self.k, monitor=self.monitor,
                      mode=self.mode, observed=self._observed(), probe_batches=batches, task=self.task, **rule)

    def _observed(self) -> pd.DataFrame | None:
        """Earlier complete runs of this task that set every hyperparameter of the space."""
        frame = self._pool_call("frame")
        columns = [f"hp_{n}" for n in self.space.names]
        if frame is None or frame.empty or not set(columns) <= set(frame.columns):
            return None
        frame = frame[(frame["task"] == self.task) & frame[columns].notna().all(axis=1)].copy()
        for p in self.mapping.space.params:  # a user's value outside the space (weight_decay=0) counts at its bound
            if p.type != "categorical" and f"hp_{p.name}" in frame:
                frame[f"hp_{p.name}"] = p.clip(pd.to_numeric(frame[f"hp_{p.name}"], errors="coerce"))
        return frame if not frame.empty else None

    def _say(self, pl_module: pl.LightningModule) -> None:
        line = self.decision.line(type(pl_module).__name__)
        if not self.decision.config and self.decision.evidence.unlike and self.pool is None:
            line += "; pass pool=... to learn from your own runs"
        log.info(line)
        for name, why in self.skipped.items():
            log.info("HyperparameterMapping skips %s: %s", name, why)
        if self.decision.missing:
            names = self.decision.missing
            log.info("HyperparameterMapping: %d of the mapping's %d features are unknown for this task and imputed: %s",
                     len(names), len(self.mapping.feature_names), ", ".join(names))

    def _log(self, trainer: pl.Trainer) -> None:
        params = {f"hpo/{name}": value for name, value in self.config.items()}
        scores = {"hpo/predicted_score": self.predicted[0], "hpo/predicted_std": self.predicted[1]}
        for logger in trainer.loggers:
            logger.log_hyperparams({**params, "hpo/task": self.task})
            logger.log_metrics(scores, step=0)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._validations += 1
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None:
            self.curve.append(float(value))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            recorded = " so the run is recorded as failed." if self.run_id is not None else ""
            warnings.warn(f"HyperparameterMapping: {self._never_logged(trainer)}{recorded}", stacklevel=2)
            if self.run_id is not None:
                self._finish("failed", None)
            return
        if self.run_id is None:
            return
        final = float(value)
        status = "complete" if math.isfinite(final) else "diverged"
        finite = [v for v in self.curve if math.isfinite(v)]
        best = (max(finite) if self.mode == "max" else min(finite)) if finite else None
        self._finish(status, final, best)

    def _never_logged(self, trainer: pl.Trainer) -> str:
        """Why the monitor has no value, with the fix."""
        if self._validations == 0:
            return (f"validation never ran, so {self.monitor!r} has no value (the fit stopped after "
                    f"{trainer.global_step} steps, before the first validation): validate more often "
                    "(val_check_interval=N steps, check_val_every_n_epoch) or train for at least one epoch.")
        return (f"metric {self.monitor!r} was never logged in {self._validations} validations: log it with "
                f"self.log({self.monitor!r}, ...) in validation_step, or set monitor= to a logged metric.")

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if trainer.is_global_zero and self.run_id is not None:
            self._finish("failed", None)

    def _finish(self, status: str, final: float | None, best: float | None = None) -> None:
        self._pool_call(
            "finish", self.run_id, status, final, best_metric=best, curve=self.curve,
            duration_s=time.monotonic() - self._started, metric_name=self.monitor, direction=_MODES[self.mode],
        )
        self.run_id = None
        if self.refit is not None and self.pool is not None:
            self._refit()

    def _refit(self) -> None:
        """Fits the mapping again when the policy says so; a failed refit costs a warning, never the run."""
        try:
            if self.refit.due(self.mapping, self.pool):
                self.refit.refit(self.mapping, self.pool)
                log.info("HyperparameterMapping refit %s on %d runs", type(self.mapping).__name__, self.mapping.fitted_runs)
        except (PoolError, LightningMetaError, OSError) as error:
            warnings.warn(f"HyperparameterMapping could not refit the mapping: {error}", stacklevel=2)

    def enqueue(self, study: Any, features: dict[str, float] | None = None, k: int | None = None) -> list[dict]:
        """Hands the top-``k`` proposals for ``features`` to ``study.enqueue_trial`` (Optuna warm start).

        ``features`` defaults to those of the last ``fit``; the proposals are returned.
        """
        features = self.features if features is None else features
        if not features and self.mapping.feature_names:
            raise ConfigError("enqueue() needs task features: pass features= or call it after trainer.fit().")
        with quiet_feature_warnings():
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
