"""Facts of the run rather than of the network: what is optimised, in which direction, and for how long.

A regression scored by R² and a classifier scored by accuracy want different steps; a 200-step run and a
20,000-step run want different learning rates; clipping and half precision change what a rate does. All of
it is read from the ``Trainer``, the monitor and the data set before the first step.
"""

from __future__ import annotations

import math
import re
from typing import Any

from lightning_meta.errors import ConfigError

_LOWER_IS_BETTER = {"loss", "error", "err", "mse", "mae", "rmse", "nll", "perplexity", "ppl", "wer", "cer",
                    "regret", "mape", "smape", "bpd", "bpc"}
_HIGHER_IS_BETTER = {"acc", "accuracy", "auc", "auroc", "auprc", "r2", "f1", "fbeta", "precision", "recall",
                     "map", "iou", "miou", "dice", "bleu", "rouge", "top1", "top5", "score", "ap", "mcc",
                     "spearman", "pearson", "kappa"}
_REGRESSION = {"r2", "mse", "mae", "rmse", "mape", "smape", "spearman", "pearson", "explained"}
_CLASSIFICATION = {"acc", "accuracy", "auc", "auroc", "auprc", "f1", "fbeta", "precision", "recall", "top1",
                   "top5", "mcc", "kappa", "nll", "ap"}
_DATASET_ATTRS = ("train_dataset", "dataset_train", "train_set", "dataset")


def _words(monitor: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", monitor.lower())) - {""}


def infer_mode(monitor: str, mode: str | None) -> str:
    """``mode`` as given, or inferred from the monitor's name as Lightning users expect.

    A loss or an error is minimised; accuracy, AUC, R², F1 and the like are maximised; for any other name
    the direction cannot be guessed, so ``mode`` must be given.
    """
    if mode is not None:
        if mode not in ("max", "min"):
            raise ConfigError(f"HyperparameterMapping mode={mode!r} is invalid: use 'max' or 'min'.")
        return mode
    words = _words(monitor)
    lower, higher = words & _LOWER_IS_BETTER, words & _HIGHER_IS_BETTER
    if lower and not higher:
        return "min"
    if higher and not lower:
        return "max"
    raise ConfigError(
        f"HyperparameterMapping cannot tell whether monitor={monitor!r} is better high or low: pass mode='max' "
        "(accuracy, R², AUC, ...) or mode='min' (a loss or an error)."
    )


def objective_features(monitor: str, mode: str, datamodule: Any = None) -> dict[str, float]:
    """``objective_min`` (1 when the monitor is minimised) and ``objective_regression`` (1 regression, 0
    classification) when it can be told: from the training targets' dtype (float targets are regression), else
    from the monitor's name (``val_r2``, ``val_mse`` against ``val_acc``, ``val_f1``)."""
    facts = {"objective_min": float(mode == "min")}
    regression = _targets_are_float(datamodule)
    if regression is None:
        words = _words(monitor)
        if words & _REGRESSION and not words & _CLASSIFICATION:
            regression = True
        elif words & _CLASSIFICATION and not words & _REGRESSION:
            regression = False
    if regression is not None:
        facts["objective_regression"] = float(regression)
    return facts


def _targets_are_float(datamodule: Any) -> bool | None:
    """Whether the training set's targets are floating point (a ``TensorDataset``'s last tensor, or
    ``.targets``); None when the data set does not show them without loading a sample."""
    for attr in _DATASET_ATTRS:
        dataset = getattr(datamodule, attr, None)
        if dataset is None:
            continue
        tensors = getattr(dataset, "tensors", None)
        targets = tensors[-1] if isinstance(tensors, tuple) and len(tensors) > 1 else getattr(dataset, "targets", None)
        dtype = getattr(targets, "dtype", None)
        if dtype is not None:
            return bool(getattr(dtype, "is_floating_point", False)) or getattr(dtype, "kind", "") == "f"
    return None


def trainer_features(trainer: Any, n_samples: float | None = None, batch_size: float | None = None) -> dict[str, float]:
    """The planned length and the numerics of the run.

    ``log_planned_steps``: log10 of ``max_steps``, or of ``max_epochs`` x batches per epoch when the data set
    size and batch size are known (``limit_train_batches`` applied); ``planned_minutes`` when ``max_time`` is
    set; ``grad_clip`` (0 when off) and ``precision_bits`` (16 for half and bfloat16, 32, 64).
    """
    if trainer is None:
        return {}
    facts: dict[str, float] = {}
    steps = _planned_steps(trainer, n_samples, batch_size)
    if steps is not None:
        facts["log_planned_steps"] = math.log10(max(steps, 1))
    max_time = getattr(getattr(trainer, "fit_loop", None), "max_time", None) or _max_time(trainer)
    if max_time is not None:
        facts["planned_minutes"] = float(max_time) / 60.0
    clip = getattr(trainer, "gradient_clip_val", None)
    facts["grad_clip"] = float(clip) if isinstance(clip, (int, float)) and clip else 0.0
    precision = str(getattr(trainer, "precision", "32"))
    facts["precision_bits"] = 16.0 if ("16" in precision) else 64.0 if "64" in precision else 32.0
    return facts


def _max_time(trainer: Any) -> float | None:
    """Seconds of ``Trainer(max_time=...)``, from the Timer callback Lightning adds for it."""
    for callback in getattr(trainer, "callbacks", []):
        duration = getattr(callback, "_duration", None)
        if type(callback).__name__ == "Timer" and duration is not None:
            return float(duration)
    return None


def _planned_steps(trainer: Any, n_samples: float | None, batch_size: float | None) -> float | None:
    max_steps = getattr(trainer, "max_steps", -1)
    epochs = getattr(trainer, "max_epochs", None)
    per_epoch = None
    if n_samples and batch_size:
        per_epoch = math.ceil(n_samples / batch_size)
        limit = getattr(trainer, "limit_train_batches", 1.0)
        if isinstance(limit, int) and not isinstance(limit, bool):
            per_epoch = min(per_epoch, limit)
        elif isinstance(limit, float):
            per_epoch = max(int(per_epoch * limit), 1)
    from_epochs = epochs * per_epoch if epochs not in (None, -1) and per_epoch else None
    if max_steps is not None and max_steps > 0:
        return float(min(max_steps, from_epochs)) if from_epochs else float(max_steps)
    return float(from_epochs) if from_epochs else None
