"""Omniglot (Lake et al. 2015) from the arrays shipped with the package, with the Vinyals or Lake split.

The package ships all 1623 characters x 20 drawings as two compressed boolean arrays
(``assets/omniglot``, MIT license, source and sha256 in ``assets/omniglot/README.md``), so the
default run needs no download. Images are inverted (ink = 1), resized with antialiasing and kept
as uint8; what each stage serves (characters, rotations, alphabets) is ``omniglot_splits``'.
"""

from __future__ import annotations

import csv
import functools
import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lightning_meta.checks import ImageSize, NonNegativeInt, PositiveInt, checked
from lightning_meta.data.classes import ClassImages
from lightning_meta.data.decoded_images import check_fits_in_memory
from lightning_meta.data.omniglot_splits import Split, StageCharacters, rotate, stage_characters
from lightning_meta.data.omniglot_zips import load_omniglot_zips
from lightning_meta.data.preprocessing import describe, to_ink
from lightning_meta.errors import DataError

ASSETS = Path(__file__).resolve().parents[1] / "assets"
SHIPPED = ASSETS / "omniglot"
CHARACTERS, DRAWINGS = 1623, 20
SHA256 = {
    "images_background.npz": "8bf84167413cd00beacdce3fe582f780ab538d8dbef043a6d688f2527bbce199",
    "images_evaluation.npz": "0b84c7ffd94c4841c0040e529c86a82eaaccb986d8eadad5673f7991b7475276",
}


@checked
def load_omniglot(
    root: str | Path | None = None,
    image_size: ImageSize = 28,
    split: Split = "vinyals",
    download: bool = False,
    rotations: bool = True,
    val_alphabets: PositiveInt = 5,
    split_seed: NonNegativeInt = 0,
) -> dict[str, ClassImages]:
    """Train/val/test classes of Omniglot. ``root`` holds the two ``.npz`` files (default: the shipped ones).

    ``split``, ``rotations`` and (Lake's split only) ``val_alphabets`` and ``split_seed`` are explained in
    ``omniglot_splits``. With ``download=True`` and no arrays in ``root``, the official PNG zips are fetched
    into ``root`` and read instead (see ``omniglot_zips``).
    """
    options = {"split": split, "rotations": rotations, "val_alphabets": val_alphabets, "split_seed": split_seed}
    folder = Path(root) if root is not None else SHIPPED
    if not all((folder / name).is_file() for name in SHA256):
        if download or any(folder.glob("images_*.zip")):
            return load_omniglot_zips(folder, image_size=image_size, download=download, **options)
        raise DataError(
            f"Omniglot arrays not found in {folder}: expected {', '.join(SHA256)}. Fix: leave data.root unset "
            "to use the arrays shipped with lightning_meta, put the official images_background.zip and "
            "images_evaluation.zip there, or set data.dataset_kwargs.download=true to fetch them."
        )
    check_fits_in_memory(CHARACTERS * DRAWINGS, 1, image_size, "data.dataset_kwargs.image_size")
    images, names = _characters(str(folder), int(image_size))
    row = {n: i for i, n in enumerate(names)}
    return {stage: _classes(images, [row[c] for c in chars.characters], chars)
            for stage, chars in stage_characters(names, **options).items()}


def _classes(images: Tensor, rows: list[int], chars: StageCharacters) -> ClassImages:
    picked = images[torch.as_tensor(rows, dtype=torch.long)]
    flat = picked.reshape(-1, 1, *picked.shape[-2:])
    return ClassImages(flat, [picked.shape[1]] * len(rows), chars.class_names, views=chars.views,
                       view=rotate if chars.views > 1 else None, preprocessing=describe(picked.shape[-1], 1, "ink"),
                       alphabets=chars.alphabets, drawers=True)


@functools.lru_cache(maxsize=2)
def _characters(folder: str, image_size: int) -> tuple[Tensor, list[str]]:
    """All characters as uint8 ``[1623, 20, S, S]`` (ink = 255) and names ``background/Alphabet/characterNN``."""
    index = _index(Path(folder))
    parts, names = [], []
    for file, part in (("images_background.npz", "background"), ("images_evaluation.npz", "evaluation")):
        path = Path(folder) / file
        _check_sha256(path, SHA256[file])
        try:
            with np.load(path, allow_pickle=False) as npz:
                raw = npz["images"]
        except Exception as err:  # zipfile.BadZipFile, KeyError, ValueError: all mean a broken file
            raise DataError(f"Cannot read Omniglot array file {path}: {err}. Fix: delete it and restore a good copy.") from err
        parts.append(_resize(raw, image_size))
        names += [f"{part}/{index[(file, row)]}" for row in range(raw.shape[0])]
    return torch.cat(parts), names


def _resize(raw: np.ndarray, size: int) -> Tensor:
    """Bool ``[N, D, 105, 105]`` (True = background) to uint8 ink-high ``[N, D, size, size]``, in chunks."""
    n, d, h, w = raw.shape
    flat = raw.reshape(n * d, 1, h, w)
    out = torch.empty(n * d, 1, size, size, dtype=torch.uint8)
    for start in range(0, n * d, 4096):
        out[start : start + 4096] = to_ink(torch.from_numpy(flat[start : start + 4096]).float(), size)
    return out.reshape(n, d, size, size)


def _index(folder: Path) -> dict[tuple[str, int], str]:
    path = folder / "omniglot_npz_index.csv"
    if not path.is_file():
        path = SHIPPED / "omniglot_npz_index.csv"
    with path.open(newline="") as f:
        return {(r["npz_file"], int(r["npz_row"])): f"{r['alphabet']}/{r['character']}" for r in csv.DictReader(f)}


def _check_sha256(path: Path, expected: str) -> None:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != expected:
        raise DataError(
            f"Checksum mismatch for {path}: sha256 {digest}, expected {expected}. The file is corrupted or not "
            "the official array. Fix: delete it and restore it (reinstall lightning_meta for the shipped copy)."
        )
