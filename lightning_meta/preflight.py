"""Checks that a learner and a datamodule fit together, run before the Trainer starts.

A wrong image size or a head with the wrong number of ways would otherwise surface as a shape
error deep inside the first training step, after data loading and compilation.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_meta.errors import ConfigError


def check_model_fits_data(model: nn.Module, datamodule) -> None:
    """Raises ``ConfigError`` if the backbone cannot take the data's images or its head has the wrong width."""
    shape = tuple(datamodule.input_shape)
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
