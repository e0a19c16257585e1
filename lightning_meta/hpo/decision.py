"""What the callback decides on rank 0: where each value goes, the user's own values, the task's features, the
mapping's proposal, and whether the evidence warrants changing the user's values (``evidence.py``).

Kept apart from the callback so the hook reads as decide -> apply -> verify -> record, and so the decision
is one picklable object that ``trainer.strategy.broadcast`` hands to every DDP rank.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pandas as pd

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.apply import current, resolve_space
from lightning_meta.hpo.evidence import MARGIN, MAX_DISTANCE, Evidence, weigh
from lightning_meta.hpo.features import probe_features, task_features
from lightning_meta.hpo.mappings.base import Mapping, observed_rows
from lightning_meta.hpo.mappings.task_index import family_of
from lightning_meta.hpo.search import next_config
from lightning_meta.hpo.space import SearchSpace


@dataclass
class Decision:
    """The values to write (``config``: name -> value, ``targets``: name -> where) and why.

    ``defaults`` holds the value each target held before the callback (None where it holds no number);
    ``evidence`` says whether the recorded tasks like this one warranted a change; ``config`` is empty when the
    user's values are kept. ``skipped`` names the hyperparameters of the space the module does not expose, with
    the reason; ``proposals`` are the mapping's top-k over its own space and ``predicted`` the (mean, std) score
    of the first; ``missing`` the features the mapping learnt from that this task does not have.
    """

    config: dict[str, Any]
    targets: dict[str, str]
    skipped: dict[str, str] = field(default_factory=dict)
    features: dict[str, float] = field(default_factory=dict)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    predicted: tuple[float, float] = (math.nan, math.nan)
    defaults: dict[str, Any] = field(default_factory=dict)
    evidence: Evidence = field(default_factory=lambda: Evidence(True, "the space was given without a rule"))
    missing: list[str] = field(default_factory=list)

    @property
    def used(self) -> dict[str, Any]:
        """The values the run trains with: the applied ones, and the user's where kept."""
        kept = {n: v for n, v in self.defaults.items() if n in self.targets and n not in self.config and v is not None}
        return {**kept, **self.config}

    def line(self, module: str) -> str:
        """The one line the callback logs."""
        if not self.config:
            kept = ", ".join(f"{n}={_show(v)}" for n, v in self.defaults.items() if n in self.targets)
            return f"HyperparameterMapping keeps {kept} on {module}: {self.evidence.reason}"
        changes = ", ".join(
            f"{n}={_show(v)}" + (f" (yours: {_show(self.defaults[n])})" if self.defaults.get(n) is not None else "")
            for n, v in self.config.items())
        return f"HyperparameterMapping sets {changes} on {module}: {self.evidence.reason}"


def decide(
    mapping: Mapping,
    space: SearchSpace,
    trainer: pl.Trainer,
    pl_module: pl.LightningModule,
    *,
    strict: bool,
    k: int,
    monitor: str | None = None,
    mode: str | None = None,
    observed: pd.DataFrame | None = None,
    probe_batches: Iterable[Any] | None = None,
    margin: float = MARGIN,
    max_distance: float = MAX_DISTANCE,
    apply_proposal: bool = False,
    task: str | None = None,
) -> Decision:
    """Finds where each value goes and what it holds first (a module that exposes nothing fails before any feature
    is computed), then asks the mapping and weighs its proposal against the user's values; ``task`` is the name
    the run is recorded under, whose family (``family_of``) tells the rule which recorded tasks are runs of the same
    model."""
    targets, skipped = resolve_space(space, trainer, pl_module, strict)
    defaults = {name: _number_or_none(current(trainer, pl_module, target)) for name, target in targets.items()}
    features = dict(task_features(pl_module, trainer.datamodule, trainer, monitor, mode))
    if probe_batches is not None:
        features.update(probe_features(pl_module, probe_batches))
    features.update({f"default_{name}": value for name, value in defaults.items() if value is not None})
    missing = [n for n in mapping.feature_names if n not in features]
    with quiet_feature_warnings():
        proposals = mapping.suggest(features, k=k, observed=observed)
        mean, std = mapping.predict(features, proposals[:1], observed=observed)
        if apply_proposal:
            chosen, evidence = proposals[0], Evidence(True, "the mapping's proposal (keep_defaults=False)")
        else:
            family = family_of(task) if task else None
            chosen, evidence = _choose(mapping, features, defaults, proposals, list(targets), observed, margin,
                                       max_distance, family)
    config = _within(space, chosen, [n for n in targets if n in chosen]) if chosen is not None else {}
    unknown = [n for n in targets if defaults[n] is None and n not in config]
    if unknown:  # nothing of the user's to keep: the mapping's value is the only one there is
        config.update(_within(space, proposals[0], unknown))
        config = {n: config[n] for n in space.names if n in config}
    return Decision(config, targets, skipped, features, proposals, (float(mean[0]), float(std[0])), defaults,
                    evidence, missing)


@contextlib.contextmanager
def quiet_feature_warnings() -> Iterator[None]:
    """The encoder's warnings about missing or unknown task features, which the callback reports once, itself."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Task features .* (were present in training|are unknown to)")
        yield


def _choose(mapping, features, defaults, proposals, names, observed, margin, max_distance, family):
    """The configuration to apply and why: the next step of a search when this task has recorded runs, otherwise
    the evidence rule (``evidence.weigh``)."""
    known = {n: v for n, v in defaults.items() if v is not None}
    rows = observed_rows(observed, mapping.space) if observed is not None else pd.DataFrame()
    if len(rows):
        return _search_step(mapping, features, known, rows)
    return weigh(mapping, features, known, proposals, [n for n in names if n in known], margin=margin,
                 max_distance=max_distance, family=family)


def _search_step(mapping: Mapping, features: dict[str, Any], known: dict[str, Any],
                 rows: pd.DataFrame) -> tuple[dict[str, Any] | None, Evidence]:
    """Repeated fits on one task: the user's values are tried first among the ones not yet run, then the search
    (``search.py``: expected improvement over the task's runs, the mapping as prior) proposes; nothing runs twice."""
    tried = len(rows)
    at_bounds = {p.name: p.clip(known[p.name]) for p in mapping.space.params if p.name in known}  # as runs hold them
    ran_defaults = bool(known) and any(
        all(_close(row.get(f"hp_{n}"), v) for n, v in at_bounds.items()) for row in rows.to_dict("records"))
    if known and not ran_defaults:
        return None, Evidence(False, f"search on this task ({tried} earlier runs): your values are tried first")
    return next_config(mapping, features, rows), Evidence(
        True, f"search on this task ({tried} earlier runs): the largest expected improvement, the mapping as prior")


def _close(a: Any, b: Any) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-12)
    except (TypeError, ValueError):
        return a == b


def _number_or_none(value: Any) -> Any:
    """The user's value as a plain number or choice; None when there is none (unset, a tensor, an object)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else None
    return value if isinstance(value, str) else None


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
        config[param.name] = param.check(param.clip(proposal[param.name]))
    return config


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else repr(value)
