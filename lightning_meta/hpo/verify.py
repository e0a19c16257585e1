"""Checks that the optimizers ``configure_optimizers`` built carry the values the callback applied.

Writing ``lr`` on a module proves nothing if ``configure_optimizers`` reads a hard-coded rate or another
attribute; the run would then be recorded with a value it never used. Only optimizer settings are checked
(a target ending in ``lr``/``learning_rate``, ``weight_decay`` or ``momentum``): the others have no common
place to look.

Rule for several optimizers or param groups: the value must be carried by at least one param group of one
optimizer. Other groups may differ (a smaller rate for a pretrained backbone, a second optimizer with its
own rate), but a value that no group carries was not used.

A scheduler may already have changed a group's rate (``LambdaLR`` warm-up multiplies it at construction), so
a group carries ``lr`` when its ``initial_lr`` (the rate before any schedule), its ``lr`` or its ``max_lr``
(``OneCycleLR``, ``CyclicLR``) equals it; ``momentum`` is also found as Adam's ``betas[0]`` or ``max_momentum``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Real
from typing import Any

from torch import Tensor
from torch.optim import Optimizer

from lightning_meta.errors import ConfigError

KEYS = {"lr": "lr", "learning_rate": "lr", "weight_decay": "weight_decay", "momentum": "momentum"}
REL_TOL = 1e-6


def optimizer_key(target: str) -> str | None:
    """The param-group key a target sets (``lr``, ``weight_decay``, ``momentum``), or None if it sets none."""
    if target.startswith("datamodule."):
        return None
    return KEYS.get(target.rsplit(".", 1)[-1])


def carried(group: Mapping[str, Any], key: str) -> list[float]:
    """Every value of ``key`` the param group holds, including what a scheduler started from."""
    if key == "lr":
        names = ("initial_lr", "lr", "max_lr")
    elif key == "momentum":
        names = ("momentum", "max_momentum")
    else:
        names = (key,)
    values = [group.get(n) for n in names]
    if key == "momentum" and isinstance(group.get("betas"), (tuple, list)):
        values.append(group["betas"][0])
    return [float(v) for v in values if _scalar(v)]


def _scalar(value: Any) -> bool:
    """A number, or a one-element tensor (``Adam(lr=torch.tensor(...))``)."""
    if isinstance(value, Tensor):
        return value.numel() == 1
    return isinstance(value, Real) and not isinstance(value, bool)


def check_optimizers(
    optimizers: Iterable[Optimizer],
    applied: Mapping[str, tuple[str, float]],
    module: str,
    readers: Mapping[str, str],
    restored_from: str | None = None,
) -> None:
    """Raises ``ConfigError`` unless each optimizer setting in ``applied`` (name -> (key, value)) is carried.

    ``module`` is the module's class name and ``readers`` (name -> ``self.lr``) say what the fix should read;
    ``restored_from`` (a checkpoint the optimizer state was resumed from, which overwrote the values) changes the fix.
    """
    groups = [(o, g, group) for o, optimizer in enumerate(optimizers) for g, group in enumerate(optimizer.param_groups)]
    for name, (key, value) in applied.items():
        found = [(o, g, carried(group, key)) for o, g, group in groups]
        if any(math.isclose(v, value, rel_tol=REL_TOL, abs_tol=1e-12) for _, _, values in found for v in values):
            continue
        holding = [(o, g, values) for o, g, values in found if values]
        if not holding:
            raise ConfigError(
                f"HyperparameterMapping set {name}={value:.4g} on {module} but no param group of its optimizers has "
                f"{key}: make configure_optimizers pass {key}={readers[name]} to the optimizer, or leave {name} out "
                "of the search space."
            )
        o, g, values = holding[0]
        several = len({h[0] for h in groups}) > 1
        where = f"optimizer {o}'s param group {g}" if several else f"optimizer's param group {g}"
        fix = (f"resuming from {restored_from} restored the optimizer's own {key}; resume without "
               "HyperparameterMapping, or start a new fit" if restored_from else
               f"make configure_optimizers read {readers[name]}")
        raise ConfigError(
            f"HyperparameterMapping set {name}={value:.4g} on {module} but its {where} has {key}={values[0]:.4g}: "
            f"{fix}."
        )
