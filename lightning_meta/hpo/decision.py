"""What the callback decides on rank 0: where each value goes, the task's features, and the mapping's proposal.

Kept apart from the callback so the hook reads as decide -> apply -> verify -> record, and so the decision
is one picklable object that ``trainer.strategy.broadcast`` hands to every DDP rank.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import lightning.pytorch as pl
import pandas as pd

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.apply import resolve_space
from lightning_meta.hpo.features import probe_features, task_features
from lightning_meta.hpo.mappings.base import Mapping
from lightning_meta.hpo.space import SearchSpace


@dataclass
class Decision:
    """The configuration to apply (``config``: name -> value, ``targets``: name -> where) and why.

    ``skipped`` names the hyperparameters of the space the module does not expose, with the reason;
    ``proposals`` are the mapping's top-k over its own space and ``predicted`` the (mean, std) score of the first.
    """

    config: dict[str, Any]
    targets: dict[str, str]
    skipped: dict[str, str] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    predicted: tuple[float, float] = (math.nan, math.nan)


def decide(
    mapping: Mapping,
    space: SearchSpace,
    trainer: pl.Trainer,
    pl_module: pl.LightningModule,
    *,
    strict: bool,
    k: int,
    observed: pd.DataFrame | None = None,
    probe_batches: Iterable[Any] | None = None,
) -> Decision:
    """Finds where each value goes first (a module that exposes nothing fails before any feature is computed),
    then asks the mapping; ``probe_batches`` (training batches) adds the probe features."""
    targets, skipped = resolve_space(space, trainer, pl_module, strict)
    features = dict(task_features(pl_module, trainer.datamodule))
    if probe_batches is not None:
        features.update(probe_features(pl_module, probe_batches))
    proposals = mapping.suggest(features, k=k, observed=observed)
    mean, std = mapping.predict(features, proposals[:1], observed=observed)
    config = _within(space, proposals[0], list(targets))
    return Decision(config, targets, skipped, features, proposals, (float(mean[0]), float(std[0])))


def _within(space: SearchSpace, proposal: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The proposal's values of ``names`` in the user's space: numbers clipped into the user's ranges (the mapping
    may know a wider space), each checked; in the space's order."""
    config = {}
    for param in space.params:
        if param.name not in names:
            continue
        if param.name not in proposal:
            raise ConfigError(
                f"The mapping proposes no {param.name!r} (it tunes {sorted(proposal)}): remove {param.name!r} from "
                "space= or use a mapping fitted on a space with it."
            )
        value = proposal[param.name]
        if param.type != "categorical" and param.low is not None and param.high is not None:
            value = min(max(value, param.low), param.high)
        config[param.name] = param.check(value)
    return config
