"""Any folder of images as a few-shot data set: one sub-folder per class.

The class split is the user's: an explicit ``{stage: [class, ...]}`` (inline or in a JSON/YAML
file) or ratios applied to a seeded shuffle of the class names, so the same folder and seed always
give the same split. Decoded images are cached in ``root`` so only the first load is slow.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from PIL import Image

from lightning_meta.checks import NonNegativeFloat, NonNegativeInt, PositiveInt, checked
from lightning_meta.data.classes import ClassImages
from lightning_meta.data.decoded_images import STAGES, StoredSplit, cached_splits, decode_image, fingerprint
from lightning_meta.data.preprocessing import describe
from lightning_meta.errors import ConfigError, DataError

IMAGE_SUFFIXES = frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


@checked
def load_folder(
    root: str | Path,
    image_size: PositiveInt = 84,
    channels: Literal[1, 3] = 3,
    split: Mapping[str, Sequence[str]] | str | Path | None = None,
    ratios: Sequence[NonNegativeFloat] = (0.64, 0.16, 0.20),
    seed: NonNegativeInt = 0,
) -> dict[str, ClassImages]:
    """The classes of ``root`` split into train/val/test, images ``[channels, image_size, image_size]``."""
    root = Path(root).expanduser()
    files = class_files(root)
    stages = _split_classes(list(files), split, ratios, seed, root)
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


def _read_split_file(path: Path) -> object:
    if not path.is_file():
        raise ConfigError(f"Split file {path} does not exist. Give a JSON or YAML file mapping train/val/test to class names, or a dict.")
    try:
        text = path.read_text()
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"Cannot parse split file {path}: {e}. It should map train/val/test to lists of class names.") from e


def _split_classes(
    classes: list[str], split: Mapping | str | Path | None, ratios: Sequence[float], seed: int, root: Path
) -> dict[str, list[str]]:
    if split is None:
        return _split_by_ratios(classes, ratios, seed, root)
    if isinstance(split, (str, Path)):
        split = _read_split_file(Path(split).expanduser())
    if not isinstance(split, Mapping) or not {"train", "test"} <= set(split) or not set(split) <= set(STAGES):
        raise ConfigError(
            f"A class split must map 'train', 'test' and optionally 'val' to lists of class names, got {split!r}. "
            "Without 'val', validation uses the test classes."
        )
    stages = {s: [str(c) for c in split[s]] for s in split}
    stages.setdefault("val", stages["test"])
    known = set(classes)
    for stage, names in stages.items():
        unknown = [c for c in names if c not in known]
        if unknown:
            raise DataError(
                f"The {stage} split names classes with no folder in {root}: {unknown[:5]}"
                f"{' ...' if len(unknown) > 5 else ''}. Known classes: {classes[:10]}{' ...' if len(classes) > 10 else ''}. "
                "Fix the class names in the split or add the folders."
            )
        if not names:
            raise DataError(f"The {stage} split lists no classes. Give it at least one class of {root}.")
    leaked = sorted(set(stages["train"]) & (set(stages["val"]) | set(stages["test"])))
    if leaked:
        raise DataError(
            f"Classes {leaked[:5]} are in train and in val/test: meta-test classes must be unseen in training. "
            "Remove them from one side."
        )
    return stages


def _split_by_ratios(classes: list[str], ratios: Sequence[float], seed: int, root: Path) -> dict[str, list[str]]:
    r = [float(x) for x in ratios]
    if len(r) != 3 or min(r) <= 0 or abs(sum(r) - 1) > 1e-6:
        raise ConfigError(
            f"ratios={list(ratios)} must be three positive fractions (train, val, test) summing to 1, "
            "e.g. [0.64, 0.16, 0.20]."
        )
    shuffled = sorted(classes)
    random.Random(seed).shuffle(shuffled)
    n = len(shuffled)
    n_train, n_val = round(r[0] * n), round(r[1] * n)
    if n_train < 1 or n_val < 1 or n - n_train - n_val < 1:
        raise DataError(
            f"{root} has {n} classes: too few to split by ratios {r} with at least one class per stage. "
            "Add classes or give an explicit split."
        )
    return {"train": shuffled[:n_train], "val": shuffled[n_train : n_train + n_val], "test": shuffled[n_train + n_val :]}


def _decode(files: dict[str, list[Path]], classes: list[str], image_size: int, channels: int) -> StoredSplit:
    paths = [p for c in classes for p in files[c]]
    images = np.empty((len(paths), channels, image_size, image_size), dtype=np.uint8)
    for i, p in enumerate(paths):
        images[i] = decode_image(p, image_size, channels)
    return StoredSplit(images, [len(files[c]) for c in classes], list(classes))
