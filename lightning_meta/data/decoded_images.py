"""Image files decoded into uint8 arrays, and a disk cache of the decoded result.

Decoding tens of thousands of JPEGs or PNGs takes minutes; the arrays they give are cached once in
an ``.npz`` beside the data (when that folder is writable) and reused while the source is unchanged.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from PIL import Image

from lightning_meta.data.classes import ClassImages
from lightning_meta.data.preprocessing import photo_pixels
from lightning_meta.errors import DataError

STAGES = ("train", "val", "test")


class StoredSplit(NamedTuple):
    """One stage's images ``[N, C, H, W]`` uint8, grouped by class (rows of a class are contiguous)."""

    images: np.ndarray
    sizes: list[int]
    names: list[str]

    def to_class_images(self, preprocessing: Mapping[str, Any] | None = None) -> ClassImages:
        return ClassImages(torch.from_numpy(self.images), self.sizes, self.names, preprocessing=preprocessing)


def check_fits_in_memory(images: int, channels: int, image_size: int, setting: str) -> None:
    """Refuses, before decoding, an ``image_size`` whose uint8 arrays would take over half of this machine's memory
    (the loader holds them all, and a resize needs a float copy of a chunk): one line instead of a MemoryError."""
    need = images * channels * image_size**2
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > total / 2:
        largest = int((total / 2 / (images * channels)) ** 0.5)
        raise DataError(f"{setting}={image_size} makes {images} images of {need / 2**30:.1f} GiB, more than half of this "
                        f"machine's {total / 2**30:.0f} GiB. Fix: set {setting} <= {largest} (e.g. the usual 28 or 84).")


def decode_image(source: str | Path, image_size: int, channels: int) -> np.ndarray:
    """One image file as uint8 ``[channels, image_size, image_size]`` (``preprocessing.photo_pixels``)."""
    try:
        with Image.open(source) as img:
            return photo_pixels(img, image_size, channels)
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(f"Cannot read image {source}: {e}. The file is corrupted or not an image: replace or delete it.") from e


def resize_array(images: np.ndarray, image_size: int) -> np.ndarray:
    """Resize uint8 ``[N, C, H, W]`` images to ``image_size`` with PIL's antialiasing (as ``decode_image``)."""
    if images.shape[-2:] == (image_size, image_size):
        return images
    out = np.empty((*images.shape[:2], image_size, image_size), dtype=np.uint8)
    for i, img in enumerate(images):
        for c, plane in enumerate(img):
            out[i, c] = np.asarray(Image.fromarray(plane).resize((image_size, image_size), Image.Resampling.LANCZOS))
    return out


def fingerprint(paths: Iterable[Path], *extra: object) -> str:
    """A digest of the files' names, sizes and modification times, plus ``extra`` settings."""
    h = hashlib.sha256(repr(extra).encode())
    for p in sorted(Path(x) for x in paths):
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cached_splits(cache: Path, key: str, build: Callable[[], dict[str, StoredSplit]]) -> dict[str, StoredSplit]:
    """``build()``'s result (parts named by ``[A-Za-z0-9]`` keys), read from ``cache`` if written for ``key``.

    A stale, unreadable or unwritable cache only costs the rebuild; it never fails the load.
    """
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                if str(z["key"]) == key:
                    return {
                        s: StoredSplit(z[f"{s}_images"], z[f"{s}_sizes"].tolist(), z[f"{s}_names"].tolist())
                        for s in z["parts"].tolist()
                    }
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            warnings.warn(f"Ignoring unreadable cache {cache} ({e}); it is rebuilt.", stacklevel=2)
    splits = build()
    arrays: dict[str, np.ndarray] = {"key": np.array(key), "parts": np.asarray(list(splits), dtype=str)}
    for s in splits:
        arrays[f"{s}_images"] = splits[s].images
        arrays[f"{s}_sizes"] = np.asarray(splits[s].sizes, dtype=np.int64)
        arrays[f"{s}_names"] = np.asarray(splits[s].names, dtype=str)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{cache.name}.", suffix=".part", dir=cache.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, cache)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as e:
        warnings.warn(f"Could not write the decoded-image cache {cache} ({e}); the images are decoded again next time.", stacklevel=2)
    return splits
