"""Checks of a run's config that no single object can make, done before anything is built or launched.

Without them a meta-batch that does not split over the DDP processes is found inside ``train_dataloader``,
after every process has started and loaded the data, and training episodes without the query images that
MAML's or ProtoNet's loss is measured on train on a NaN loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hydra.utils import get_class

from lightning_meta.errors import ConfigError
from lightning_meta.learners.base import MetaLearner


def check_launch(cfg: Mapping[str, Any]) -> None:
    """Raises ``ConfigError`` for a seed out of numpy's range (``check_seed``), if ``data.meta_batch_size`` does not
    split over the processes the trainer launches, or if the learner trains on query images and ``data.train`` has
    none (``MetaLearner.check_training_queries``)."""
    check_seed(cfg.get("seed", 0))
    data, trainer = cfg.get("data") or {}, cfg.get("trainer") or {}
    size, processes = data.get("meta_batch_size", 32), ddp_processes(trainer)
    if processes and type(size) is int and size % processes:  # a size of another type: the datamodule says why
        devices, nodes = trainer.get("devices"), trainer.get("num_nodes", 1)
        raise ConfigError(
            f"data.meta_batch_size={size} does not split over the {processes} DDP processes (trainer.devices={devices} "
            f"x trainer.num_nodes={nodes}), each of which takes meta_batch_size / {processes} tasks. Fix: set "
            f"data.meta_batch_size to a multiple of {processes} (e.g. {(size // processes + 1) * processes}), or "
            "change trainer.devices or trainer.num_nodes."
        )
    if not cfg.get("train", True):
        return
    learner = _learner_class(cfg.get("model") or {})
    queries = (data.get("train") or {}).get("queries", 15)  # the datamodule's defaults
    if learner is not None and type(queries) is int:
        learner.check_training_queries(queries)


SEED_RANGE = (0, 2**32 - 1)  # what numpy's generators accept, through Lightning's seed_everything


def check_seed(seed: Any) -> None:
    """Raises ``ConfigError`` for a seed numpy would refuse with a traceback (negative, too large) or that Lightning
    would silently truncate (not an integer)."""
    low, high = SEED_RANGE
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not low <= seed <= high:
        raise ConfigError(f"seed={seed!r} is invalid: give an integer from {low} to {high}, e.g. seed=42.")


def ddp_processes(trainer: Mapping[str, Any]) -> int | None:
    """How many processes a trainer config launches with DDP (``devices`` x ``num_nodes``); None when its strategy
    is not DDP (or ``auto``, which is DDP on several devices) or the count is left to the hardware (``auto``, -1)."""
    strategy = trainer.get("strategy", "auto")
    name = str(strategy.get("_target_", "") if isinstance(strategy, Mapping) else strategy).lower()
    if "ddp" not in name and name != "auto":
        return None
    devices, nodes = trainer.get("devices", "auto"), trainer.get("num_nodes", 1)
    if isinstance(devices, str):  # Lightning reads "2" as two devices and "0,1" as the devices 0 and 1
        ids = [d for d in devices.split(",") if d.strip()] if "," in devices else None
        devices = int(devices) if devices.strip().isdigit() else ids
    count = len(devices) if isinstance(devices, Sequence) else devices
    if isinstance(count, bool) or not isinstance(count, int) or count < 1 or not isinstance(nodes, int) or nodes < 1:
        return None
    return count * nodes


def _learner_class(model: Mapping[str, Any]) -> type[MetaLearner] | None:
    """The learner class ``model._target_`` names; None if it names none (instantiating it will say why)."""
    try:
        cls = get_class(str(model.get("_target_")))
    except (ImportError, ValueError):
        return None
    return cls if issubclass(cls, MetaLearner) else None
