"""CIFAR-FS and FC100 on a small CIFAR-100 written in the real python-pickle format with the real class names."""

from __future__ import annotations

import hashlib
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from lightning_meta.data import cifar
from lightning_meta.data.cifar import load_cifarfs, load_fc100
from lightning_meta.errors import DataError

STAGES = ("train", "val", "test")
SPLITS = Path(cifar.__file__).resolve().parents[1] / "assets" / "splits"
N_TRAIN, N_TEST = 3, 2  # images per class in the train and test pickles (the real files hold 500 and 100)


def real_names() -> tuple[list[str], list[str], dict[str, str]]:
    """CIFAR-100's fine and coarse names (alphabetical, as in its meta file), from the CIFAR-FS split files."""
    pairs = [p for s in STAGES for p in json.loads((SPLITS / "cifarfs_bertinetto" / f"{s}.json").read_text())]
    coarse_of = {fine: coarse for coarse, fine in pairs}
    return sorted(coarse_of), sorted(set(coarse_of.values())), coarse_of


def write_cifar100(root: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """The three files of ``cifar-100-python`` in the real layout; returns the data arrays written."""
    fine_names, coarse_names, coarse_of = real_names()
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    written = {}
    for name, per_class in (("train", N_TRAIN), ("test", N_TEST)):
        fine = rng.permutation(np.repeat(np.arange(100), per_class))
        data = rng.integers(0, 256, (len(fine), 3072), dtype=np.uint8)
        coarse = [coarse_names.index(coarse_of[fine_names[f]]) for f in fine]
        content = {
            b"filenames": [f"img_{i}.png".encode() for i in range(len(fine))],
            b"batch_label": f"{name} batch".encode(),
            b"fine_labels": fine.tolist(),
            b"coarse_labels": coarse,
            b"data": data,
        }
        with open(folder / name, "wb") as f:
            pickle.dump(content, f, protocol=2)
        written[name], written[f"{name}_fine"] = data, fine
    meta = {b"fine_label_names": [n.encode() for n in fine_names], b"coarse_label_names": [n.encode() for n in coarse_names]}
    with open(folder / "meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return written


def test_cifarfs_counts_names_and_pixels(tmp_path):
    written = write_cifar100(tmp_path)
    splits = load_cifarfs(tmp_path)
    assert [splits[s].num_classes for s in STAGES] == [64, 16, 20]
    fine_names = real_names()[0]
    for stage in STAGES:
        pairs = json.loads((SPLITS / "cifarfs_bertinetto" / f"{stage}.json").read_text())
        assert splits[stage].class_names == [fine for _, fine in pairs]
        assert splits[stage].input_shape == (3, 32, 32)
        assert splits[stage].min_samples == N_TRAIN + N_TEST
    assert not set(splits["train"].class_names) & set(splits["test"].class_names)
    # Class 4 of the test stage: its first image is its first row in the train pickle, its last the test pickle's.
    label = fine_names.index(splits["test"].class_names[4])
    got = (splits["test"].get(4, [0, N_TRAIN + N_TEST - 1]) * 255).round().byte().numpy()
    first = written["train"][np.flatnonzero(written["train_fine"] == label)[0]].reshape(3, 32, 32)
    last = written["test"][np.flatnonzero(written["test_fine"] == label)[-1]].reshape(3, 32, 32)
    assert np.array_equal(got[0], first) and np.array_equal(got[1], last)


def test_fc100_splits_by_superclass(tmp_path):
    write_cifar100(tmp_path)
    splits = load_fc100(tmp_path, image_size=20)
    assert [splits[s].num_classes for s in STAGES] == [60, 20, 20]
    _, _, coarse_of = real_names()
    for stage in STAGES:
        supers = json.loads((SPLITS / "fc100_oreshkin" / f"{stage}.json").read_text())
        assert {coarse_of[c] for c in splits[stage].class_names} == set(supers)
        assert splits[stage].input_shape == (3, 20, 20)
    assert sum(splits[s].images.shape[0] for s in STAGES) == 100 * (N_TRAIN + N_TEST)


def test_missing_cifar_names_folder_and_download(tmp_path):
    with pytest.raises(DataError) as e:
        load_fc100(tmp_path)
    assert str(tmp_path / "cifar-100-python") in str(e.value) and "download=True" in str(e.value)


def test_truncated_pickle_is_named(tmp_path):
    write_cifar100(tmp_path)
    path = tmp_path / "cifar-100-python" / "train"
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(DataError, match=r"cifar-100-python/train.*truncated or corrupted"):
        load_cifarfs(tmp_path)


def test_wrong_meta_is_refused(tmp_path):
    write_cifar100(tmp_path)
    meta = tmp_path / "cifar-100-python" / "meta"
    names = pickle.loads(meta.read_bytes(), encoding="bytes")
    names[b"fine_label_names"][0] = b"not_a_cifar_class"
    meta.write_bytes(pickle.dumps(names, protocol=2))
    with pytest.raises(DataError, match="apple"):
        load_cifarfs(tmp_path)


def make_tarball(http_dir: Path, tmp_path: Path) -> str:
    src = tmp_path / "src"
    write_cifar100(src)
    archive = http_dir / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(src / "cifar-100-python", arcname="cifar-100-python")
    return hashlib.md5(archive.read_bytes()).hexdigest()


def test_download_fetches_verifies_and_extracts(tmp_path, http_root, monkeypatch):
    served, url = http_root
    md5 = make_tarball(served, tmp_path)
    monkeypatch.setattr(cifar, "CIFAR100_URL", f"{url}/cifar-100-python.tar.gz")
    monkeypatch.setattr(cifar, "CIFAR100_MD5", md5)
    root = tmp_path / "data"
    splits = load_cifarfs(root, download=True)
    assert splits["val"].num_classes == 16
    assert (root / "cifar-100-python" / "meta").is_file()


def test_download_with_wrong_md5_leaves_nothing(tmp_path, http_root, monkeypatch):
    served, url = http_root
    make_tarball(served, tmp_path)
    monkeypatch.setattr(cifar, "CIFAR100_URL", f"{url}/cifar-100-python.tar.gz")
    monkeypatch.setattr(cifar, "CIFAR100_MD5", "0" * 32)
    root = tmp_path / "data"
    with pytest.raises(DataError, match="Checksum mismatch.*expected 0{32}"):
        load_fc100(root, download=True)
    assert not (root / "cifar-100-python").exists()
    assert list(root.iterdir()) == []
