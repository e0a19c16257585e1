"""Checks of a run's config that no single object can make, done before anything is built or launched.

Without them a meta-batch that does not split over the DDP processes is found inside ``train_dataloader``,
after every process has started and loaded the data, and training episodes without the query images that
MAML's or ProtoNet's loss is measured on train on a NaN loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hydra.utils import get_class

from lightning_meta.checks import check_target_keys
from lightning_meta.errors import ConfigError
from lightning_meta.learners.base import MetaLearner


def check_launch(cfg: Mapping[str, Any]) -> None:
    """Raises ``ConfigError`` for a seed out of numpy's range (``check_seed``), a key a ``_target_`` does not take
    (``check_target_keys``), accelerators the machine does not have (``check_devices``), if ``data.meta_batch_size`` does not
    split over the processes the trainer launches, or if the learner trains on query images and ``data.train`` has
    none (``MetaLearner.check_training_queries``)."""
    check_seed(cfg.get("seed", 0))
    # With a checkpoint the learner is rebuilt from what it records, and a model setting that contradicts it is
    # named with both values there (learners/checkpoint.py): a message about its keys would be beside the point.
    groups = ("trainer", "data", "callbacks", "logger") if cfg.get("ckpt_path") else ("trainer", "data", "model",
                                                                                      "callbacks", "logger")
    for group in groups:
        check_target_keys(cfg.get(group), group)
    data, trainer = cfg.get("data") or {}, cfg.get("trainer") or {}
    check_devices(trainer)
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


ACCELERATORS = {"gpu": "cuda", "cuda": "cuda", "mps": "mps"}  # the ones this machine may lack; cpu never is


def check_devices(trainer: Mapping[str, Any]) -> None:
    """Raises ``ConfigError`` when ``trainer.accelerator`` names GPUs (or MPS) the machine lacks, or ``trainer.devices``
    asks for more of them than it has. Why: Lightning finds out only when the Trainer is built, after the data is
    loaded, and says it in a traceback."""
    accelerator = str(trainer.get("accelerator", "auto")).lower()
    kind = ACCELERATORS.get(accelerator)
    if kind is None:
        return
    have = available_devices(kind)
    devices = trainer.get("devices", "auto")
    ids = _device_ids(devices)
    wanted = max(ids) + 1 if ids else _device_count(devices)
    cpu = "trainer=cpu (or trainer.accelerator=cpu)"
    if have == 0:
        raise ConfigError(f"trainer.accelerator={accelerator} asks for a {kind.upper()} device but this machine has none. "
                          f"Fix: {cpu}.")
    if wanted is not None and wanted > have:
        asked = f"device index {max(ids)}" if ids else f"{wanted} devices"
        raise ConfigError(f"trainer.devices={devices!r} asks for {asked} but this machine has {have} {kind.upper()} "
                          f"device(s). Fix: trainer.devices={have}, or {cpu}.")


def available_devices(kind: str) -> int:
    """How many devices of ``kind`` (``cuda``, ``mps``) this machine has."""
    import torch

    if kind == "cuda":
        return torch.cuda.device_count()
    return int(torch.backends.mps.is_available())


def _device_ids(devices: Any) -> list[int] | None:
    """The device indices a list (``[0, 1]``) or a string with a comma (``"0,1"``) names; None for a count."""
    if isinstance(devices, str) and "," in devices:
        parts = [d.strip() for d in devices.split(",") if d.strip()]
        return [int(d) for d in parts] if all(d.isdigit() for d in parts) else None
    if isinstance(devices, Sequence) and not isinstance(devices, str):
        return [d for d in devices if isinstance(d, int) and not isinstance(d, bool)] or None
    return None


def _device_count(devices: Any) -> int | None:
    """How many devices an int (or ``"4"``) asks for; None for ``auto`` and -1 (all there are)."""
    if isinstance(devices, str) and devices.strip().isdigit():
        devices = int(devices)
    return devices if isinstance(devices, int) and not isinstance(devices, bool) and devices >= 1 else None


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
