"""Checks that a learner and a datamodule fit together, run before the Trainer starts.

A wrong image size or a head with the wrong number of ways would otherwise surface as a shape
error deep inside the first training step, after data loading and compilation.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from lightning_meta.checks import nearest
from lightning_meta.errors import ConfigError


def check_model_fits_data(model: nn.Module, datamodule) -> None:
    """Raises ``ConfigError`` if the backbone cannot take the data's inputs, a trained learner (from a checkpoint)
    was trained on images of another shape, or its head has the wrong width."""
    shape = tuple(datamodule.input_shape)
    trained = getattr(model, "image_shape", None)
    if trained is not None and tuple(trained) != shape:
        dims = "x".join(map(str, trained)), "x".join(map(str, shape))
        raise ConfigError(
            f"The checkpoint's learner was trained on {dims[0]} images (C x H x W) but data "
            f"'{getattr(datamodule, 'dataset', '?')}' gives {dims[1]}. Fix: test it on data prepared as in training "
            f"(image.size={trained[1]}, image.channels={trained[0]}, or the data set it was trained on).")
    backbone = getattr(model, "backbone", model)
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            out = backbone(_probe(datamodule, shape))
    except (RuntimeError, IndexError) as err:
        name = getattr(datamodule, "dataset_name", getattr(datamodule, "dataset", "?"))
        fix = ("set the backbone's in_channels/image_size to match the data (Hydra: image.size=..., image.channels=...), "
               "or resize the data (data.dataset_kwargs.image_size=...)" if len(shape) == 3 else
               "give the backbone the data's input size (model.backbone.in_features, or vocab_size for token ids), "
               "or pick one for this kind of input (model/backbone=mlp or embedding_bag)")
        raise ConfigError(f"The backbone {type(backbone).__name__} cannot take inputs of shape {shape} from data "
                          f"'{name}': {' '.join(str(err).split())}. Fix: {fix}.") from err
    finally:
        backbone.train(was_training)
    if getattr(model, "fixed_ways", False):
        width = out.shape[-1]
        for stage in ("train", "val", "test"):
            spec = datamodule.spec(stage)
            if spec.ways != width:
                where = _set_by(datamodule, stage)
                raise ConfigError(
                    f"The learner's classifier head has {width} outputs but the {stage} episodes are "
                    f"{spec.ways}-way. {type(model).__name__} adapts a fixed-width head: set data.{where}.ways="
                    f"{width}, or the head width (model.backbone.out_features) to {spec.ways}."
                )


def _probe(datamodule, shape: tuple[int, ...]) -> torch.Tensor:
    """Two training inputs of the data (their dtype too: token ids are integers), else two zero inputs."""
    episodes = getattr(datamodule, "episode_dataset", None)
    if episodes is not None:
        support_x = episodes("train")[0][0]
        if len(support_x) >= 2:
            return support_x[:2]
    return torch.zeros(2, *shape)


def _set_by(datamodule, stage: str) -> str:
    """The stage whose config sets ``stage``'s episodes: val inherits test's and test train's when not given (the
    same spec object), and ``data.val.ways=...`` on a null ``val`` is no override Hydra takes."""
    specs = getattr(datamodule, "specs", {})
    for child, parent in (("val", "test"), ("test", "train")):
        if stage == child and parent in specs and specs.get(child) is specs[parent]:
            stage = parent
    return stage


TOP_LEVEL_KEYS = frozenset({
    "task_name", "seed", "train", "test", "ckpt_path", "test_untrained", "keep_freed_memory", "optimized_metric",  # conf/config.yaml
    "data", "image", "model", "trainer", "callbacks", "logger", "paths", "hydra",  # its groups
})
"""The top-level keys ``train.py`` reads. Hydra lets a ``# @package _global_`` preset (``+experiment=...``) add
any key, so a misplaced one (``model_checkpoint:`` instead of ``callbacks.model_checkpoint:``) would be
silently ignored: the run would train for hours with a setting that never took effect."""


TOP_LEVEL_TYPES = {"train": bool, "test": bool, "test_untrained": bool, "keep_freed_memory": bool, "task_name": str,
                   "optimized_metric": str, "ckpt_path": (str, type(None))}


_ALLOWED = {bool: ("true or false", "true"), str: ("a string", "a_name")}


def check_top_level_values(cfg: Mapping) -> None:
    """Raises ``ConfigError`` for a top-level value of the wrong type (``train=abc`` is truthy, ``ckpt_path=0.5`` no
    path): each would be read as something else, silently or in a traceback."""
    for key, kinds in TOP_LEVEL_TYPES.items():
        value = cfg.get(key)
        if key in cfg and not isinstance(value, kinds) or (key == "ckpt_path" and value == ""):
            allowed, example = _ALLOWED.get(kinds, ("a checkpoint file or null", "PATH/TO/last.ckpt (or null)"))
            raise ConfigError(f"{key}={value!r} is invalid: give {allowed}. Fix: {key}={example}.")


def check_top_level_keys(cfg: Mapping) -> None:
    """Raises ``ConfigError`` naming every top-level key of ``cfg`` that nothing reads, and where it may belong."""
    unknown = sorted(set(cfg) - TOP_LEVEL_KEYS)
    if not unknown:
        return
    hints = []
    for key in unknown:
        homes = [group for group in ("callbacks", "model", "data", "trainer", "logger")
                 if isinstance(cfg.get(group), Mapping) and key in cfg[group]]
        hints.append(f"'{key}'" + (f" (did you mean {', '.join(f'{g}.{key}' for g in homes)}?)" if homes else ""))
    raise ConfigError(
        f"Unknown top-level config key(s) {', '.join(hints)}: nothing reads them, so they would have no effect. "
        f"The top-level keys are {', '.join(sorted(TOP_LEVEL_KEYS))}. Fix: move the key under the group it "
        "configures (in an experiment file, e.g. callbacks: model_checkpoint: ...), or remove it."
    )


def misspelt_key(error: BaseException, overrides: Sequence[str] = ()) -> ConfigError | None:
    """For Hydra's refusal of an override of a key the config does not have (``trainer.max_epoch=1``), the error
    naming the nearest key it has, instead of Hydra's advice to append the misspelt one with ``+``; else None."""
    from omegaconf.errors import OmegaConfBaseException

    cause = error.__cause__
    parent = getattr(cause, "parent_node", None)
    if not isinstance(cause, OmegaConfBaseException) or parent is None or not cause.full_key:
        return None
    near = nearest(str(cause.key), [k for k in parent if not str(k).startswith("_")])
    if near is None:
        return None
    full, group = str(cause.full_key), str(cause.full_key).rpartition(".")[0]
    suggested = f"{group}.{near}" if group else near
    value = next((o.partition("=")[2] for o in overrides if o.partition("=")[0].lstrip("+") == full), "...")
    return ConfigError(f"{full} is not a key of the config: did you mean {suggested}? Fix: {suggested}={value}")


def check_override_keys(argv: Sequence[str] | None = None, config_name: str = "config") -> None:
    """Raises ``ConfigError`` naming the nearest valid key when an override sets a key the config does not have.

    Why here: Hydra refuses such an override inside ``hydra.main`` with several lines and no hint, out of reach of
    the error boundary. Only a single run's plain ``KEY=VALUE`` overrides are composed (about 0.3 s); flags, sweeps
    and runs without a dotted override are left to Hydra.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import ConfigCompositionException, HydraException

    from lightning_meta.configs import CONF_DIR

    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a.startswith("-") for a in argv):
        return
    try:
        parsed = OverridesParser.create().parse_overrides(argv)
    except HydraException:
        return  # Hydra says what is wrong with the syntax
    if any(o.is_sweep_override() for o in parsed) or not any(
            "." in o.key_or_group and not o.is_add() and not o.is_force_add() and not o.is_delete()
            and not o.key_or_group.startswith("hydra.") for o in parsed):
        return
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            compose(config_name=config_name, overrides=argv)
    except ConfigCompositionException as error:
        found = misspelt_key(error, argv)
        if found is not None:
            raise found from None
    except Exception:  # noqa: BLE001 -- anything else Hydra reports itself when it composes the run
        return
