"""miniImageNet (Vinyals et al. 2016) with the Ravi & Larochelle split: 64/16/20 classes x 600 images.

miniImageNet cannot be redistributed, so the images come from the user. Two layouts are read:
the original ``{train,val,test}.csv`` + ``images/`` folder of JPEGs (the CSVs are shipped with the
package when missing), or the ``mini-imagenet-cache-{stage}.pkl`` pickles many libraries use.
Decoded or resized images are cached in ``root`` so only the first load is slow.
"""

from __future__ import annotations

import csv
import os
import pickle
from importlib import resources
from pathlib import Path

import numpy as np

from lightning_meta.checks import ImageSize, checked
from lightning_meta.data.classes import ClassImages
from lightning_meta.data.decoded_images import (
    STAGES,
    StoredSplit,
    cached_splits,
    decode_image,
    fingerprint,
    resize_array,
)
from lightning_meta.data.preprocessing import describe
from lightning_meta.errors import DataError

PICKLE_NAME = "mini-imagenet-cache-{stage}.pkl"
HOW_TO_GET = (
    "miniImageNet cannot be redistributed, so get it from its authors' sources: (a) the Ravi & Larochelle "
    "layout, train.csv/val.csv/test.csv (optional, shipped with lightning_meta) plus an images/ folder holding "
    "the 60,000 JPEGs named like n0153282900000005.jpg (https://github.com/twitter/meta-learning-lstm), or "
    "(b) the pickles mini-imagenet-cache-train.pkl, mini-imagenet-cache-val.pkl and mini-imagenet-cache-test.pkl "
    "used by learn2learn and torchmeta. Put them in that folder or set data.root to where they are."
)


def shipped_split_dir() -> Path:
    """The Ravi & Larochelle split CSVs shipped inside the package."""
    return Path(str(resources.files("lightning_meta") / "assets" / "splits" / "miniimagenet_ravi"))


@checked
def load_miniimagenet(root: str | Path, image_size: ImageSize = 84, download: bool = False) -> dict[str, ClassImages]:
    """The three stages of miniImageNet found in ``root`` as uint8 RGB images of ``image_size``."""
    root = Path(root).expanduser()
    pickles = {s: root / PICKLE_NAME.format(stage=s) for s in STAGES}
    if (root / "images").is_dir():
        csvs = {s: _split_csv(root, s) for s in STAGES}
        key = fingerprint([*csvs.values(), root / "images"], "csv", image_size)
        splits = cached_splits(_cache_path(root, image_size), key, lambda: _read_csv_layout(root, csvs, image_size))
    elif all(p.is_file() for p in pickles.values()):
        if image_size == 84:
            splits = {s: _read_pickle(p, image_size) for s, p in pickles.items()}
        else:
            key = fingerprint(pickles.values(), "pickle", image_size)
            splits = cached_splits(
                _cache_path(root, image_size), key, lambda: {s: _read_pickle(p, image_size) for s, p in pickles.items()}
            )
    else:
        missing = [p.name for p in pickles.values() if not p.is_file()]
        refused = "download=True cannot help: miniImageNet is not redistributable. " if download else ""
        raise DataError(
            f"{refused}No miniImageNet found in {root}: expected either an images/ folder of JPEGs (with train.csv, val.csv, "
            f"test.csv) or the files {', '.join(p.name for p in pickles.values())} (missing: {', '.join(missing)}). "
            f"{HOW_TO_GET}"
        )
    return {s: split.to_class_images(describe(image_size, 3, "photo")) for s, split in splits.items()}


def _cache_path(root: Path, image_size: int) -> Path:
    return root / f".lightning_meta_cache_{image_size}.npz"


def _split_csv(root: Path, stage: str) -> Path:
    local = root / f"{stage}.csv"
    return local if local.is_file() else shipped_split_dir() / f"{stage}.csv"


def _read_csv(path: Path) -> dict[str, list[str]]:
    """Class -> file names, classes in order of first appearance."""
    classes: dict[str, list[str]] = {}
    try:
        with open(path, newline="") as f:
            rows = csv.reader(f)
            header = next(rows, None)
            if header is None or [h.strip() for h in header[:2]] != ["filename", "label"]:
                raise DataError(
                    f"{path} does not start with the header 'filename,label': it is not a Ravi split CSV. "
                    "Replace it, or delete it to use the shipped one."
                )
            for line, row in enumerate(rows, start=2):
                if len(row) < 2:
                    raise DataError(
                        f"{path} line {line} has no 'filename,label' pair: the file is truncated or corrupted. "
                        "Replace it, or delete it to use the shipped one."
                    )
                classes.setdefault(row[1], []).append(row[0])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"Cannot read split file {path}: {e}. Replace it or delete it to use the shipped one.") from e
    if not classes:
        raise DataError(f"Split file {path} lists no images. Replace it or delete it to use the shipped one.")
    return classes


def _read_csv_layout(root: Path, csvs: dict[str, Path], image_size: int) -> dict[str, StoredSplit]:
    images_dir = root / "images"
    present = set(os.listdir(images_dir))
    splits = {}
    for stage, path in csvs.items():
        classes = _read_csv(path)
        files = [f for names in classes.values() for f in names]
        missing = [f for f in files if f not in present]
        if missing:
            raise DataError(
                f"{images_dir} lacks {len(missing)} of the {len(files)} images listed in {path} (first: {missing[0]}). "
                f"The image folder is incomplete or from another release: {HOW_TO_GET}"
            )
        images = np.empty((len(files), 3, image_size, image_size), dtype=np.uint8)
        for i, f in enumerate(files):
            images[i] = decode_image(images_dir / f, image_size, 3)
        splits[stage] = StoredSplit(images, [len(v) for v in classes.values()], list(classes))
    return splits


def _read_pickle(path: Path, image_size: int) -> StoredSplit:
    broken = f"Cannot read {path}: the file is truncated or corrupted. Delete it and obtain it again. {HOW_TO_GET}"
    try:
        with open(path, "rb") as f:
            try:
                data = pickle.load(f)
            except UnicodeDecodeError:
                f.seek(0)
                data = pickle.load(f, encoding="latin1")
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, AttributeError, ImportError, IndexError) as e:
        raise DataError(f"{broken} ({type(e).__name__}: {e})") from e
    if not isinstance(data, dict) or "image_data" not in data or "class_dict" not in data:
        raise DataError(f"{path} is not a miniImageNet cache: expected a dict with 'image_data' and 'class_dict'. {HOW_TO_GET}")
    images = np.asarray(data["image_data"])
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(f"{path}: 'image_data' should be uint8 [N, H, W, 3], got {images.dtype} {images.shape}. {broken}")
    names = sorted(data["class_dict"])
    rows = [np.asarray(data["class_dict"][n], dtype=np.int64) for n in names]
    if any(len(r) == 0 or r.min() < 0 or r.max() >= len(images) for r in rows):
        raise DataError(f"{path}: 'class_dict' indexes rows outside 'image_data' ({len(images)} images). {broken}")
    ordered = images[np.concatenate(rows)].transpose(0, 3, 1, 2)
    return StoredSplit(np.ascontiguousarray(resize_array(ordered, image_size)), [len(r) for r in rows], names)
