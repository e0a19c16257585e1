"""Any folder of images as a few-shot data set: one sub-folder per class.

The class split is the user's: an explicit ``{stage: [class, ...]}`` (inline or in a JSON/YAML
file) or ratios applied to a seeded shuffle of the class names, so the same folder and seed always
give the same split. Decoded images are cached in ``root`` so only the first load is slow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from lightning_meta.checks import ImageSize, NonNegativeFloat, NonNegativeInt, checked
from lightning_meta.data.class_split import split_classes
from lightning_meta.data.classes import ClassImages
from lightning_meta.data.decoded_images import STAGES, StoredSplit, cached_splits, decode_image, fingerprint
from lightning_meta.data.preprocessing import describe
from lightning_meta.errors import ConfigError, DataError

IMAGE_SUFFIXES = frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


@checked
def load_folder(
    root: str | Path,
    image_size: ImageSize = 84,
    channels: Literal[1, 3] = 3,
    split: Mapping[str, Sequence[str]] | str | Path | None = None,
    ratios: Sequence[NonNegativeFloat] = (0.64, 0.16, 0.20),
    seed: NonNegativeInt = 0,
) -> dict[str, ClassImages]:
    """The classes of ``root`` split into train/val/test, images ``[channels, image_size, image_size]``."""
    root = Path(root).expanduser()
    files = class_files(root)
    stages = split_classes(list(files), split, ratios, seed, where=root, unit="folder")
    all_files = [f for names in files.values() for f in names]
    key = fingerprint(all_files, "folder", image_size, channels, {s: stages[s] for s in STAGES})
    cache = root / f".lightning_meta_cache_folder_{image_size}_{channels}.npz"
    splits = cached_splits(cache, key, lambda: {s: _decode(files, stages[s], image_size, channels) for s in STAGES})
    return {s: splits[s].to_class_images(describe(image_size, channels, "photo")) for s in STAGES}


def class_files(root: Path, setting: str = "data.root") -> dict[str, list[Path]]:
    """Class name -> its image files (by suffix), classes and files in name order; errors name ``setting``."""
    if not root.is_dir():
        raise DataError(f"Image folder {root} does not exist. Set {setting} to a folder holding one sub-folder of images per class.")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise DataError(
            f"Image folder {root} has no class sub-folders. "
            f"Put the images of each class in its own sub-folder, e.g. {root}/cat/001.jpg."
        )
    files = {}
    for c in classes:
        images = sorted(
            p for p in (root / c).iterdir()
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        )
        if not images:
            raise DataError(f"Class folder {root / c} holds no image files. Add images to it or remove the folder.")
        files[c] = images
    return files


def _decode(files: dict[str, list[Path]], classes: list[str], image_size: int, channels: int) -> StoredSplit:
    paths = [p for c in classes for p in files[c]]
    images = np.empty((len(paths), channels, image_size, image_size), dtype=np.uint8)
    for i, p in enumerate(paths):
        images[i] = decode_image(p, image_size, channels)
    return StoredSplit(images, [len(files[c]) for c in classes], list(classes))
