"""Checks that a learner and a datamodule fit together, run before the Trainer starts.

A wrong image size or a head with the wrong number of ways would otherwise surface as a shape
error deep inside the first training step, after data loading and compilation.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from lightning_meta.errors import ConfigError


def check_model_fits_data(model: nn.Module, datamodule) -> None:
    """Raises ``ConfigError`` if the backbone cannot take the data's images, a trained learner (from a checkpoint)
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
            out = backbone(torch.zeros(2, *shape))
    except RuntimeError as err:
        raise ConfigError(
            f"The backbone {type(backbone).__name__} cannot take images of shape {shape} "
            f"(C, H, W) from data '{getattr(datamodule, 'hparams', {}).get('dataset', '?')}': {err}. "
            "Fix: set the backbone's in_channels/image_size to match the data (Hydra: image.size=..., "
            "image.channels=...), or resize the data (data.dataset_kwargs.image_size=...)."
        ) from err
    finally:
        backbone.train(was_training)
    if getattr(model, "fixed_ways", False):
        width = out.shape[-1]
        for stage in ("train", "val", "test"):
            spec = datamodule.spec(stage)
            if spec.ways != width:
                raise ConfigError(
                    f"The learner's classifier head has {width} outputs but the {stage} episodes are "
                    f"{spec.ways}-way. {type(model).__name__} adapts a fixed-width head: set data.{stage}.ways="
                    f"{width}, or the head width (model.backbone.out_features) to {spec.ways}."
                )


TOP_LEVEL_KEYS = frozenset({
    "task_name", "seed", "train", "test", "ckpt_path", "keep_freed_memory", "optimized_metric",  # conf/config.yaml
    "data", "image", "model", "trainer", "callbacks", "logger", "paths", "hydra",  # its groups
})
"""The top-level keys ``train.py`` reads. Hydra lets a ``# @package _global_`` preset (``+experiment=...``) add
any key, so a misplaced one (``model_checkpoint:`` instead of ``callbacks.model_checkpoint:``) would be
silently ignored: the run would train for hours with a setting that never took effect."""


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
