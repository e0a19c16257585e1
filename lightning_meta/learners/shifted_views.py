"""Test-time views of an image batch: the image and its copies shifted by a few pixels.

A one-shot prototype is one drawing; a query by another drawer is the same character a little displaced, thicker
or thinner. Averaging each image's embedding over small shifts makes the prototype and the query less sensitive to
where the strokes fall on the pixel grid. Edge pixels are repeated into the uncovered border (Omniglot's
background), so a shift adds no artificial edge.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_meta.errors import ConfigError


def shifted_views(x: Tensor, shift: int) -> Tensor:
    """``[9 * N, C, H, W]``: ``x`` (``[N, C, H, W]``) and its 8 copies shifted by ``shift`` px along each axis and
    both diagonals, view-major (``x`` first)."""
    if x.dim() != 4:
        raise ConfigError(f"test_shift={shift} shifts images, but the inputs have shape {tuple(x.shape)}. Fix: set "
                          "model.test_shift=0 for inputs that are not [N, C, H, W] images.")
    height, width = x.shape[-2:]
    padded = F.pad(x, (shift, shift, shift, shift), mode="replicate")
    offsets = [(0, 0)] + [(dy, dx) for dy in (-shift, 0, shift) for dx in (-shift, 0, shift) if (dy, dx) != (0, 0)]
    views = [padded[..., shift + dy : shift + dy + height, shift + dx : shift + dx + width] for dy, dx in offsets]
    return torch.cat(views)


def mean_over_views(embeddings: Tensor, n: int) -> Tensor:
    """The mean embedding of each of the ``n`` images from ``shifted_views``' view-major batch of embeddings."""
    return embeddings.reshape(-1, n, *embeddings.shape[1:]).mean(dim=0)
