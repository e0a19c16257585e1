"""How raw images become model inputs, written down as plain data so that a checkpoint can repeat it.

Every loader turns images into uint8 pixels in one of two ways, and ``ClassImages.get`` divides
them by 255: Omniglot's ink conversion (``to_ink``) or a photo's Lanczos resize (``photo_pixels``).
``describe`` records which one, with the size and channels, as a dict of plain types; a learner keeps
that dict in its checkpoint, and ``prepare`` runs new images through the same function, so a model
sees at prediction time exactly the pixels it was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from lightning_meta.errors import ConfigError, DataError

ImageSource = Union[str, Path, Image.Image, np.ndarray]
"""A file path, a PIL image, or a uint8 numpy array ``H x W`` or ``H x W x C``."""

VERSION = 1
NORMALIZATION = "divide_by_255"
CONVERSIONS = {"ink": ("bilinear_antialias", True), "photo": ("lanczos", False)}
"""Conversion -> (resize, invert). ``ink``: grey levels inverted (dark strokes on white paper become 255,
Omniglot's convention), then resized bilinearly with antialiasing; ``photo``: pixels as they are, resized
with PIL's Lanczos filter."""
KEYS = ("version", "image_size", "channels", "resize", "invert", "normalization")


def to_ink(background: Tensor, image_size: int) -> Tensor:
    """Float images ``[N, 1, H, W]`` with background 1 to uint8 ``[N, 1, S, S]`` with ink 255, resized
    with antialiased bilinear interpolation: the one conversion every Omniglot source goes through."""
    x = 1.0 - background
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    return x.mul_(255).round_().clamp_(0, 255).to(torch.uint8)


def photo_pixels(image: Image.Image, image_size: int, channels: int) -> np.ndarray:
    """An image as uint8 ``[channels, image_size, image_size]``: made RGB or grey, resized with PIL's Lanczos filter."""
    image = image.convert("RGB" if channels == 3 else "L")
    if image.size != (image_size, image_size):
        image = image.resize((image_size, image_size), Image.Resampling.LANCZOS)
    arr = np.asarray(image, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def describe(image_size: int, channels: int, conversion: str) -> dict[str, Any]:
    """The preprocessing of a loader's images as a dict of plain types (what checkpoints record)."""
    resize, invert = CONVERSIONS[conversion]
    return {"version": VERSION, "image_size": int(image_size), "channels": int(channels), "resize": resize,
            "invert": invert, "normalization": NORMALIZATION}


def check(preprocessing: Mapping) -> dict[str, Any]:
    """``preprocessing`` as a dict if it is one ``describe`` writes, else ``ConfigError``."""
    p = dict(preprocessing)
    known = (p.get("resize"), p.get("invert")) in CONVERSIONS.values() and not (p.get("invert") and p.get("channels") != 1)
    if (sorted(p) != sorted(KEYS) or p["version"] != VERSION or p["normalization"] != NORMALIZATION or not known
            or p["channels"] not in (1, 3) or not isinstance(p["image_size"], int) or p["image_size"] < 1):
        raise ConfigError(f"Unknown preprocessing record {p}: not one this lightning_meta writes (version {VERSION}, "
                          "ink or photo conversion). Fix: use a checkpoint written by this version, or retrain.")
    return p


def prepare(images: Sequence[ImageSource], preprocessing: Mapping) -> Tensor:
    """Float model inputs ``[N, C, S, S]`` in [0, 1] from raw images, preprocessed as ``preprocessing`` records."""
    p = check(preprocessing)
    return torch.from_numpy(np.stack([_pixels(source, p) for source in images])).float().div_(255.0)


def _pixels(source: ImageSource, p: Mapping) -> np.ndarray:
    if isinstance(source, (str, Path)):
        try:
            with Image.open(source) as image:
                return _convert(image, p)
        except (OSError, ValueError, SyntaxError) as e:
            raise DataError(f"Cannot read image {source}: {e}. Fix: replace it with a readable image or leave it out.") from e
    if isinstance(source, np.ndarray):
        source = _from_array(source)
    if not isinstance(source, Image.Image):
        raise DataError(f"Cannot use a {type(source).__name__} as an image. "
                        "Fix: give file paths, PIL images or uint8 numpy arrays (H x W or H x W x C).")
    return _convert(source, p)


def _convert(image: Image.Image, p: Mapping) -> np.ndarray:
    if not p["invert"]:
        return photo_pixels(image, p["image_size"], p["channels"])
    grey = torch.from_numpy(np.asarray(image.convert("L"), dtype=np.uint8).copy())
    return to_ink(grey[None, None].float() / 255.0, p["image_size"])[0].numpy()


def _from_array(array: np.ndarray) -> Image.Image:
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))):
        raise DataError(f"Cannot use a {array.dtype} array of shape {array.shape} as an image. "
                        "Fix: give uint8 arrays H x W (grey) or H x W x C with C = 1, 3 or 4.")
    return Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array)
