"""Omniglot read from Lake's official ``images_background.zip`` and ``images_evaluation.zip``.

The package ships Omniglot as arrays; this reader serves users who hold (or want to download) the
official PNG zips. Ink is 255 and background 0, as in the shipped arrays. The splits (Vinyals', Lake's)
are ``omniglot_splits``'; class names, alphabets and pixels are those of the shipped-array loader,
``omniglot.load_omniglot``.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lightning_meta.checks import ImageSize, NonNegativeInt, PositiveInt, checked
from lightning_meta.data.classes import ClassImages
from lightning_meta.data.decoded_images import StoredSplit, cached_splits, fingerprint
from lightning_meta.data.download import download as fetch
from lightning_meta.data.omniglot_splits import Split, StageCharacters, rotate, stage_characters
from lightning_meta.data.preprocessing import describe, to_ink
from lightning_meta.errors import DataError

_BASE = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python"
# File -> (URL, checksums). md5s as published with torchvision's Omniglot data set.
ZIPS: dict[str, tuple[str, dict[str, str]]] = {
    "images_background.zip": (f"{_BASE}/images_background.zip", {"md5": "68d2efa1b9178cc56df9314c21c6e718"}),
    "images_evaluation.zip": (f"{_BASE}/images_evaluation.zip", {"md5": "6b91aef0f799c5bb55b94e3f2daec811"}),
}
_PNG = re.compile(r"^[^/]+/([^/]+/character\d+)/\d+_\d+\.png$")


@checked
def load_omniglot_zips(
    root: str | Path,
    image_size: ImageSize = 28,
    split: Split = "vinyals",
    download: bool = False,
    rotations: bool = True,
    val_alphabets: PositiveInt = 5,
    split_seed: NonNegativeInt = 0,
) -> dict[str, ClassImages]:
    """Omniglot's three stages from the official zips in ``root``, images ``[1, image_size, image_size]``.

    ``split``, ``rotations``, ``val_alphabets`` and ``split_seed`` as in ``omniglot.load_omniglot``.
    """
    root = Path(root).expanduser()
    paths = {name: root / name for name in ZIPS}
    if download:
        for name, (url, sums) in ZIPS.items():
            fetch(url, paths[name], **sums)
    missing = [name for name, p in paths.items() if not p.is_file()]
    if missing:
        raise DataError(
            f"Omniglot zips not found in {root}: missing {', '.join(missing)}. Pass download=True "
            f"(data.dataset_kwargs.download=true) or download {', '.join(url for url, _ in ZIPS.values())} into "
            f"{root}. The package also ships Omniglot as arrays: data=omniglot with data.root=null needs no files."
        )
    key = fingerprint(paths.values(), "omniglot", image_size)
    cache = root / f".lightning_meta_cache_omniglot_{image_size}.npz"
    parts = cached_splits(cache, key, lambda: {p.stem.split("_")[-1]: _read_zip(p, image_size) for p in paths.values()})
    characters = {
        name: (part, int(offset), size)
        for part, stored in parts.items()
        for name, offset, size in zip(stored.names, np.cumsum([0, *stored.sizes[:-1]]), stored.sizes)
    }
    stages = stage_characters(list(characters), split, rotations, val_alphabets, split_seed)
    return {stage: _gather(parts, characters, chars) for stage, chars in stages.items()}


DRAWERS = 20
"""Drawings per character in the official zips, one per drawer (``_01`` to ``_20``): with all of them, row ``r`` of
every character is drawer ``r + 1``."""


def _gather(parts: dict[str, StoredSplit], characters: dict, chars: StageCharacters) -> ClassImages:
    absent = [c for c in chars.characters if c not in characters]
    if absent:
        raise DataError(
            f"{len(absent)} characters of the split are not in the Omniglot zips (first: {absent[0]}). The zips are "
            f"incomplete or not the official ones: delete them and pass download=True."
        )
    blocks = [parts[p].images[o : o + n] for p, o, n in (characters[c] for c in chars.characters)]
    images = torch.from_numpy(np.concatenate(blocks))
    return ClassImages(images, [len(b) for b in blocks], chars.class_names, views=chars.views,
                       view=rotate if chars.views > 1 else None, preprocessing=describe(images.shape[-1], 1, "ink"),
                       alphabets=chars.alphabets, drawers=all(len(b) == DRAWERS for b in blocks))


def _read_zip(path: Path, image_size: int) -> StoredSplit:
    """Every character of one zip in the order of its file numbers ``XXXX``, drawings in ``YY`` order."""
    broken = f"Omniglot zip {path} is corrupted or truncated: delete it and download it again (download=True)."
    try:
        with zipfile.ZipFile(path) as zf:
            members: dict[str, list[str]] = {}
            for name in sorted(zf.namelist()):
                m = _PNG.match(name)
                if m:
                    members.setdefault(m.group(1), []).append(name)
            if not members:
                raise DataError(f"{path} holds no images_*/Alphabet/characterNN/XXXX_YY.png files. {broken}")
            chars = sorted(members, key=lambda c: members[c][0].rsplit("/", 1)[1])  # official numbering
            blocks = [_ink([_read_png(zf, name, broken) for name in members[c]], image_size) for c in chars]
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(f"{broken} ({e})") from e
    part = path.stem.split("_")[-1]
    return StoredSplit(np.concatenate(blocks), [len(b) for b in blocks], [f"{part}/{c}" for c in chars])


def _read_png(zf: zipfile.ZipFile, name: str, broken: str) -> np.ndarray:
    try:
        with zf.open(name) as f, Image.open(f) as img:
            return np.asarray(img.convert("L"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as e:
        raise DataError(f"Cannot read {name}: {e}. {broken}") from e


def _ink(drawings: list[np.ndarray], image_size: int) -> np.ndarray:
    """One character's drawings as uint8 ``[D, 1, S, S]``, ink 255 on background 0.

    Resized exactly as the shipped arrays are (bilinear with antialiasing), so both sources give
    the same tensors.
    """
    if len({d.shape for d in drawings}) != 1:
        drawings = [np.asarray(Image.fromarray(d).resize(drawings[0].shape[::-1], Image.Resampling.LANCZOS)) for d in drawings]
    return to_ink(torch.from_numpy(np.stack(drawings)[:, None]).float() / 255.0, image_size).numpy()

