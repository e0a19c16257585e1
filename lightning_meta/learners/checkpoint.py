"""Checkpoints rebuild the learner they were trained with, or say in one line why they cannot.

A learner's checkpoint records its class (the ``lightning_meta`` entry) and its constructor arguments
(Lightning's ``hyper_parameters``, the backbone as a plain dict). Testing or resuming builds the learner
from them, not from the current config: the config's default network (a max-pool Conv4) can have weights
of the same shapes as the one trained (a strided Conv4), load them without complaint and score 10 points less.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from lightning_meta.errors import ConfigError

if TYPE_CHECKING:
    from lightning_meta.learners.base import MetaLearner

CHECKPOINT_KEY = "lightning_meta"
"""Checkpoint entry ``{"learner": class name, "backbone": its hparams record, "preprocessing": dict or None,
"training_augmentation": the training-only augmentation in words or None}``, plain types only. The backbone is
kept here too because ``load_from_checkpoint(path, backbone=...)`` overwrites the hparams."""

RUN_SETTINGS = ("inner_steps_eval", "transductive", "test_shift", "task_threads", "channels_last", "batch_tasks")
"""The learner settings a command line may set to other values than its checkpoint's (or set where a checkpoint
from before the setting has none): how evaluation adapts or embeds (``inner_steps_eval``, Reptile's
``transductive``, ProtoNet's ``test_shift``) and how the work is run (``task_threads``, ``channels_last``,
``batch_tasks``). None of them changes what the trained weights mean; every other setting does, or may."""

_ABSENT = "(no such setting)"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The Lightning checkpoint at ``path``, loaded with ``weights_only=True`` (tensors and plain values, no code);
    ``ConfigError`` naming the path if it is missing, unreadable or not a Lightning checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Checkpoint {path} does not exist. Fix: give the path of a .ckpt file (ckpt_path=...).")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, garbage bytes, pickled objects: all mean a file we do not load
        raise unloadable(path, err) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(f"Checkpoint {path} has no 'state_dict': it is not a Lightning checkpoint. Fix: pass a .ckpt "
                          "file written by lightning_meta's Trainer.")
    return checkpoint


def unloadable(path: str | Path, err: BaseException) -> ConfigError:
    """The one-line error for a checkpoint ``torch.load(weights_only=True)`` refused: the global it would have
    unpickled (a class, a function: code that could run) and the safe alternative, or that the file is corrupted."""
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    if found:
        name = found.group(1)
        return ConfigError(
            f"Checkpoint {path} holds a Python object of {name}, which lightning_meta does not unpickle (loading it "
            "could run any code). Fix: re-save it with plain tensors and values (e.g. torch.save({'state_dict': "
            "model.state_dict(), ...}, path)), or use a checkpoint written by lightning_meta's Trainer; only if you "
            f"trust the file, allow the class with torch.serialization.add_safe_globals([{name}]) before loading.")
    reason = re.search(r"WeightsUnpickler error: ([^\n]*)", str(err))  # torch's own words, under its advice
    detail = reason.group(1) if reason else (str(err).strip().splitlines() or [""])[0]
    return ConfigError(f"Checkpoint {path} is corrupted or not a PyTorch checkpoint ({type(err).__name__}: "
                       f"{detail}). Fix: use another checkpoint (e.g. last.ckpt of the run) or retrain.")


@contextmanager
def named_refusals(path: str | Path) -> Iterator[None]:
    """Turns the unpickler's refusal of a checkpoint file (or a corrupted file) inside the block into ``unloadable``'s
    one line. Why: ``Learner.load_from_checkpoint`` otherwise ends in torch's many-line ``UnpicklingError``."""
    try:
        yield
    except (pickle.UnpicklingError, EOFError) as err:
        raise unloadable(path, err) from err
    except RuntimeError as err:
        if "PytorchStreamReader" not in str(err):
            raise
        raise unloadable(path, err) from err


def recorded_learner(checkpoint: Mapping[str, Any]) -> str | None:
    """The class name of the learner a checkpoint holds, if it records one."""
    return (checkpoint.get(CHECKPOINT_KEY) or {}).get("learner")


def learner_class(name: str, path: str | Path) -> type[MetaLearner]:
    """The ``lightning_meta.learners`` class called ``name``; ``ConfigError`` if there is none."""
    from lightning_meta.learners.base import MetaLearner

    cls = getattr(importlib.import_module("lightning_meta.learners"), str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, MetaLearner)):
        raise ConfigError(f"Checkpoint {path} names learner {name!r}, which lightning_meta does not have. "
                          "Fix: load it with the lightning_meta version that wrote it.")
    return cls


def check_fits(learner: MetaLearner, checkpoint: Mapping[str, Any]) -> None:
    """Raises ``ConfigError`` unless ``checkpoint`` holds a learner of ``learner``'s class (or a base class of it)
    with weights of its names and shapes. Why: Lightning would otherwise build a MAML from a ProtoNet's settings
    and load its weights, or fail with a many-line state_dict error."""
    name, own = recorded_learner(checkpoint), type(learner).__name__
    if name is not None and name not in {c.__name__ for c in type(learner).__mro__}:
        raise ConfigError(f"This checkpoint holds a {name} learner, not a {own}. Fix: {name}.load_from_checkpoint(path), "
                          "or lightning_meta.learners.load_learner(path), which takes the class from the checkpoint.")
    ours, theirs = learner.state_dict(), checkpoint["state_dict"]
    shapes = [f"{k} is {list(theirs[k].shape)} there, {list(ours[k].shape)} here"
              for k in ours.keys() & theirs.keys() if ours[k].shape != theirs[k].shape]
    missing = sorted(ours.keys() - theirs.keys()) if learner.strict_loading else []
    unexpected = sorted(theirs.keys() - ours.keys()) if learner.strict_loading else []
    if shapes or missing or unexpected:
        recorded = (checkpoint.get(CHECKPOINT_KEY) or {}).get("backbone")
        problems = [*sorted(shapes)[:2], *([f"missing here: {', '.join(missing[:3])}"] if missing else []),
                    *([f"not here: {', '.join(unexpected[:3])}"] if unexpected else [])]
        raise ConfigError(
            f"The checkpoint's weights do not fit this {own}: its backbone was {_backbone_name(recorded)}, this one is "
            f"{_backbone_name(learner.hparams.get('backbone'), learner.backbone)} ({'; '.join(problems)}). Fix: load it "
            "with the backbone and settings it was trained with (load_from_checkpoint(path) rebuilds them).")


def _backbone_name(recorded: Any, module: torch.nn.Module | None = None) -> str:
    """A backbone as ``Class(arg=value, ...)`` from its hparams record, else the module's class."""
    if isinstance(recorded, Mapping) and "_target_" in recorded:
        args = ", ".join(f"{k}={v}" for k, v in recorded.items() if k != "_target_")
        return f"{recorded['_target_'].rsplit('.', 1)[-1]}({args})"
    if isinstance(recorded, Mapping) and recorded:
        return str(next(iter(recorded.values())))  # the class of a module whose arguments were not recorded
    return type(module).__name__ if module is not None else "not recorded"


def learner_for_checkpoint(
    model: DictConfig, checkpoint: Mapping[str, Any], path: str | Path, command_line: Sequence[str]
) -> tuple[MetaLearner, list[str]]:
    """The learner ``checkpoint`` holds, built as it was trained, and the settings where the config said otherwise.

    Its class and settings come from the checkpoint. The command line's ``model=NAME`` must name that class, and a
    setting it gives (``model.KEY=...``, or a key a model setting interpolates, e.g. ``image.downsample``) must
    agree with the checkpoint, except the ``RUN_SETTINGS``, which it sets. ``ConfigError`` names both values.
    """
    given = _given(command_line)
    chosen = get_class(model._target_)
    name = recorded_learner(checkpoint)
    notes = []
    if name is not None and name != chosen.__name__:
        if "model" in given:
            raise ConfigError(
                f"Checkpoint {path} holds a {name} learner, but {given['model']} selects {chosen.__name__}. Fix: select "
                f"the checkpoint's learner (model={name.lower()}) or leave model= out, or train a {chosen.__name__} "
                "anew without ckpt_path.")
        notes.append(f"learner={name} (the config says {chosen.__name__})")
        chosen = learner_class(name, path)
    accepted = inspect.signature(chosen.__init__).parameters
    config = _leaves(OmegaConf.to_container(model, resolve=True))
    raw = _leaves(OmegaConf.to_container(model, resolve=False))
    recorded = _leaves(dict(checkpoint.get("hyper_parameters") or {}))
    sources = {key: _source(key, raw[key], given) for key in config}
    conflicts = [f"model.{k} is {recorded.get(k, _ABSENT)} in the checkpoint, {config[k]} on the command line"
                 f"{'' if src == f'model.{k}' else f' (via {src})'}"
                 for k, src in sources.items()
                 if src and (k not in RUN_SETTINGS or k not in accepted)
                 and (k not in recorded or recorded[k] != config[k])]
    if conflicts:
        raise ConfigError(
            f"Checkpoint {path} contradicts the command line: {'; '.join(conflicts)}. Fix: drop the override "
            "(the checkpoint rebuilds the learner it was trained with), or train anew without ckpt_path; only "
            f"{', '.join(RUN_SETTINGS)} may differ from a checkpoint.")
    notes += [f"model.{k}={recorded[k]} (the config says {config[k]})"
              for k, src in sources.items() if not src and k in recorded and recorded[k] != config[k]]
    settings = {k: config[k] for k, src in sources.items() if src and k in RUN_SETTINGS}
    learner = chosen.load_from_checkpoint(path, map_location="cpu", weights_only=True, **settings)
    return learner, notes


def command_line() -> list[str]:
    """The overrides of the running Hydra job (``python train.py KEY=VALUE ...``); none outside a Hydra job."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _given(overrides: Sequence[str]) -> dict[str, str]:
    """The keys the overrides set (``model.inner_lr``, or ``model`` for the learner's group), each with its override."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return {o.key_or_group: o.input_line or o.key_or_group for o in parsed}


def _source(key: str, raw: Any, given: Mapping[str, str]) -> str | None:
    """Where the command line sets model setting ``key``: ``model.KEY`` itself (or a parent of it), or a key its
    config value interpolates (``image.downsample``); None if it does not. Group choices (``data=...``) do not count."""
    for source in [f"model.{key}", *re.findall(r"\$\{([\w.]+)\}", str(raw))]:
        if any("." in k and (source == k or source.startswith(k + ".")) for k in given):
            return source
    return None


def _leaves(node: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"backbone.hidden": 64, "inner_lr": 0.4, ...}``: the settings of a model node, without Hydra's own keys."""
    out = {}
    for key, value in node.items():
        if not prefix and str(key).startswith("_"):
            continue
        if isinstance(value, Mapping):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
