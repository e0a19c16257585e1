"""Where each hyperparameter of a search space lives on a LightningModule, and writing it there.

A target is found the way Lightning's own tuner finds one: a plain name is an attribute or ``hparams`` key of
the module or of its datamodule (``lightning_hasattr``), and a learning rate is found under ``lr`` or, failing
that, ``learning_rate`` (``lightning/pytorch/tuner/lr_finder.py``). ``datamodule.<attr>`` and ``model.<path>``
name the object explicitly. ``resolve`` says where a value would go (or why it cannot), so the callback can
skip what a module does not expose instead of failing on it.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities.parsing import lightning_getattr, lightning_hasattr, lightning_setattr

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.space import SearchSpace

LR_NAMES = ("lr", "learning_rate")


def resolve(trainer: pl.Trainer, pl_module: pl.LightningModule, target: str) -> tuple[str | None, str]:
    """Returns ``(target as found, "")``, or ``(None, why it is not there)``.

    ``lr`` and ``learning_rate`` stand for each other, ``lr`` first, as in Lightning's LR finder.
    """
    if target.startswith("datamodule."):
        if trainer.datamodule is None:
            return None, "no datamodule was passed to trainer.fit()"
        missing = _missing_path(trainer.datamodule, target.split(".", 1)[1])
        return (None, missing) if missing else (target, "")
    if target.startswith("model."):
        missing = _missing_path(pl_module, target.split(".", 1)[1])
        return (None, missing) if missing else (target, "")
    names = LR_NAMES if target in LR_NAMES else (target,)
    for name in names:
        if lightning_hasattr(pl_module, name):
            return name, ""
    wanted = " or ".join(repr(n) for n in names)
    return None, f"{type(pl_module).__name__} and its datamodule have no attribute or hparams key {wanted}"


def resolve_space(
    space: SearchSpace, trainer: pl.Trainer, pl_module: pl.LightningModule, strict: bool
) -> tuple[dict[str, str], dict[str, str]]:
    """Splits the space into ``targets`` (name -> where its value goes) and ``skipped`` (name -> why not).

    ``strict`` (the user chose the space) makes any unavailable target an error; otherwise the callback
    tunes what the module exposes, and only a module exposing nothing of the space is an error. A module's
    ``hpo_declines`` (target -> why) names attributes it has but whose meaning differs from what a mapping's
    runs learned (Reptile's ``lr`` is its outer step size): they are skipped unless the user's space names them.
    """
    targets: dict[str, str] = {}
    skipped: dict[str, str] = {}
    declined = getattr(pl_module, "hpo_declines", {})
    for param in space.params:
        if not strict and param.target in declined:
            skipped[param.name] = declined[param.target]
            continue
        found, why = resolve(trainer, pl_module, param.target)
        if found is not None:
            targets[param.name] = found
        elif strict:
            raise ConfigError(
                f"Search-space target {param.target!r} cannot be set: {why}. Fix: add it to the module (e.g. "
                f"self.{param.target.rsplit('.', 1)[-1]} = ... in __init__) or correct `target` in the search space."
            )
        else:
            skipped[param.name] = why
    if not targets:
        raise ConfigError(
            f"HyperparameterMapping can set none of {space.names} on {type(pl_module).__name__} "
            f"({'; '.join(f'{n}: {w}' for n, w in skipped.items())}). Fix: expose one (e.g. self.lr = lr in "
            "__init__, read by configure_optimizers) or pass space= with targets the module has."
        )
    return targets, skipped


def apply(trainer: pl.Trainer, pl_module: pl.LightningModule, target: str, value: Any) -> None:
    """Writes ``value`` at a target ``resolve`` found (a plain name: every holder, as ``lightning_setattr``)."""
    if target.startswith("datamodule."):
        _set_path(trainer.datamodule, target.split(".", 1)[1], value)
    elif target.startswith("model."):
        _set_path(pl_module, target.split(".", 1)[1], value)
    else:
        lightning_setattr(pl_module, target, value)


def current(trainer: pl.Trainer, pl_module: pl.LightningModule, target: str) -> Any:
    """The value a target ``resolve`` found holds now: the user's own value, read before the callback writes."""
    if target.startswith("datamodule."):
        return _get_path(trainer.datamodule, target.split(".", 1)[1])
    if target.startswith("model."):
        return _get_path(pl_module, target.split(".", 1)[1])
    return lightning_getattr(pl_module, target)


def reader(pl_module: pl.LightningModule, target: str) -> str:
    """How ``configure_optimizers`` reads the value written at ``target``: ``self.lr (or self.hparams.lr)``."""
    if target.startswith("model."):
        return f"self.{target.split('.', 1)[1]}"
    if target.startswith("datamodule."):
        return f"self.trainer.{target}"
    places = []
    if hasattr(pl_module, target):
        places.append(f"self.{target}")
    if target in getattr(pl_module, "hparams", {}):
        places.append(f"self.hparams.{target}")
    if not places:
        return f"self.trainer.datamodule.{target}"
    return places[0] + "".join(f" (or {p})" for p in places[1:])


def _missing_path(root: Any, path: str) -> str:
    """Why the dotted attribute ``path`` below ``root`` cannot be set ("" when it can)."""
    *parents, last = path.split(".")
    owner = root
    for part in parents:
        if not hasattr(owner, part):
            return f"{type(owner).__name__} has no attribute {part!r}"
        owner = getattr(owner, part)
    if hasattr(owner, last) or last in getattr(owner, "hparams", {}):
        return ""
    return f"{type(owner).__name__} has no attribute or hparams key {last!r}"


def _get_path(root: Any, path: str) -> Any:
    *parents, last = path.split(".")
    owner = root
    for part in parents:
        owner = getattr(owner, part)
    if hasattr(owner, last):
        return getattr(owner, last)
    return getattr(owner, "hparams", {}).get(last)


def _set_path(root: Any, path: str, value: Any) -> None:
    """Sets the dotted attribute ``path`` below ``root``: the attribute and the ``hparams`` key, where each exists."""
    *parents, last = path.split(".")
    owner = root
    for part in parents:
        owner = getattr(owner, part)
    if hasattr(owner, last):
        setattr(owner, last, value)
    if last in getattr(owner, "hparams", {}):
        owner.hparams[last] = value
