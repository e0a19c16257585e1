"""CIFAR-FS (Bertinetto et al. 2019) and FC100 (Oreshkin et al. 2018): few-shot splits of CIFAR-100.

Both read the official ``cifar-100-python`` pickles and pool the train and test pickles, so each
class has all 600 images. CIFAR-FS splits the 100 classes 64/16/20 at random; FC100 splits by
superclass (12/4/4 superclasses, 60/20/20 classes), so test classes are less like training ones.
"""

from __future__ import annotations

import json
import pickle
from importlib import resources
from pathlib import Path

import numpy as np

from lightning_meta.checks import ImageSize, checked
from lightning_meta.data.classes import ClassImages
from lightning_meta.data.decoded_images import STAGES, StoredSplit, resize_array
from lightning_meta.data.download import download as fetch
from lightning_meta.data.download import extract
from lightning_meta.data.preprocessing import describe
from lightning_meta.errors import DataError

CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
FOLDER = "cifar-100-python"
FILES = ("train", "test", "meta")


def _split_file(split: str, stage: str) -> Path:
    return Path(str(resources.files("lightning_meta") / "assets" / "splits" / split / f"{stage}.json"))


@checked
def load_cifarfs(root: str | Path, image_size: ImageSize = 32, download: bool = False) -> dict[str, ClassImages]:
    """CIFAR-FS: 64/16/20 CIFAR-100 classes, listed as ``[superclass, class]`` in the shipped split."""
    cifar = _load_cifar100(Path(root).expanduser(), download)
    out = {}
    for stage in STAGES:
        pairs = _read_json(_split_file("cifarfs_bertinetto", stage))
        for coarse, fine in pairs:
            if cifar.coarse_of.get(fine) != coarse:
                raise DataError(
                    f"{_split_file('cifarfs_bertinetto', stage)} puts {fine!r} in superclass {coarse!r}, but "
                    f"CIFAR-100's meta file says {cifar.coarse_of.get(fine)!r}: {cifar.folder} is not CIFAR-100. "
                    f"Delete it and download it again (download=True)."
                )
        out[stage] = cifar.split([fine for _, fine in pairs], image_size)
    return out


@checked
def load_fc100(root: str | Path, image_size: ImageSize = 32, download: bool = False) -> dict[str, ClassImages]:
    """FC100: the CIFAR-100 classes of 12/4/4 superclasses listed in the shipped split."""
    cifar = _load_cifar100(Path(root).expanduser(), download)
    out = {}
    for stage in STAGES:
        coarse = _read_json(_split_file("fc100_oreshkin", stage))
        unknown = [c for c in coarse if c not in cifar.coarse_names]
        if unknown:
            raise DataError(
                f"Superclasses {unknown} of the FC100 split are not in {cifar.folder / 'meta'}: it is not CIFAR-100. "
                f"Delete {cifar.folder} and download it again (download=True)."
            )
        fine = [f for c in coarse for f in cifar.fine_names if cifar.coarse_of[f] == c]
        out[stage] = cifar.split(fine, image_size)
    return out


def _read_json(path: Path) -> list:
    with open(path) as f:
        return json.load(f)


class _Cifar100:
    """CIFAR-100's 60,000 images, with fine labels and the fine -> coarse class map."""

    def __init__(
        self,
        folder: Path,
        images: np.ndarray,
        fine: np.ndarray,
        fine_names: list[str],
        coarse_names: list[str],
        coarse_of: dict[str, str],
    ) -> None:
        self.folder = folder
        self.images = images
        self.fine = fine
        self.fine_names = fine_names
        self.coarse_names = coarse_names
        self.coarse_of = coarse_of

    def split(self, classes: list[str], image_size: int) -> ClassImages:
        index = {n: i for i, n in enumerate(self.fine_names)}
        missing = [c for c in classes if c not in index]
        if missing:
            raise DataError(
                f"Classes {missing} are not in {self.folder / 'meta'}: it is not CIFAR-100. "
                f"Delete {self.folder} and download it again (download=True)."
            )
        rows = [np.flatnonzero(self.fine == index[c]) for c in classes]
        images = resize_array(self.images[np.concatenate(rows)], image_size)
        return StoredSplit(images, [len(r) for r in rows], classes).to_class_images(describe(image_size, 3, "photo"))


def _unpickle(path: Path, keys: tuple[bytes, ...]) -> dict:
    broken = f"Cannot read {path}: the file is truncated or corrupted. Delete {path.parent} and download it again (download=True)."
    try:
        with open(path, "rb") as f:
            data = pickle.load(f, encoding="bytes")
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, AttributeError, ImportError, IndexError) as e:
        raise DataError(f"{broken} ({type(e).__name__}: {e})") from e
    if not isinstance(data, dict) or any(k not in data for k in keys):
        raise DataError(f"{path} lacks the entries {[k.decode() for k in keys]} of CIFAR-100's python format. {broken}")
    return data


def _load_cifar100(root: Path, download: bool) -> _Cifar100:
    folder = root / FOLDER
    if not all((folder / f).is_file() for f in FILES):
        if not download:
            raise DataError(
                f"CIFAR-100 not found: expected {folder}/train, {folder}/test and {folder}/meta (the python version "
                f"of CIFAR-100). Pass download=True (data.dataset_kwargs.download=true) to fetch it, or download "
                f"{CIFAR100_URL} and extract it into {root}."
            )
        extract(fetch(CIFAR100_URL, root / f"{FOLDER}.tar.gz", md5=CIFAR100_MD5), root)
    meta = _unpickle(folder / "meta", (b"fine_label_names", b"coarse_label_names"))
    fine_names = [n.decode() for n in meta[b"fine_label_names"]]
    coarse_names = [n.decode() for n in meta[b"coarse_label_names"]]
    images, fine, coarse = [], [], []
    for name in ("train", "test"):
        part = _unpickle(folder / name, (b"data", b"fine_labels", b"coarse_labels"))
        data = np.asarray(part[b"data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072 or len(part[b"fine_labels"]) != len(data):
            raise DataError(
                f"{folder / name} holds data of shape {data.shape} for {len(part[b'fine_labels'])} labels, not "
                f"CIFAR-100's [N, 3072]. Delete {folder} and download it again (download=True)."
            )
        images.append(data.reshape(-1, 3, 32, 32))
        fine.append(np.asarray(part[b"fine_labels"], dtype=np.int64))
        coarse.append(np.asarray(part[b"coarse_labels"], dtype=np.int64))
    fine_all, coarse_all = np.concatenate(fine), np.concatenate(coarse)
    if len(fine_names) != 100 or len(coarse_names) != 20 or fine_all.max() >= 100 or coarse_all.max() >= 20:
        raise DataError(
            f"{folder} does not hold CIFAR-100's 100 fine and 20 coarse classes. "
            "Delete it and download it again (download=True)."
        )
    coarse_of = {}
    for f, c in zip(fine_all.tolist(), coarse_all.tolist()):
        coarse_of.setdefault(fine_names[f], coarse_names[c])
    return _Cifar100(folder, np.concatenate(images), fine_all, fine_names, coarse_names, coarse_of)
