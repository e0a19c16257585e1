"""Omniglot from zips in the official layout, built from the shipped arrays (all 1623 real characters)."""

from __future__ import annotations

import csv
import shutil
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lightning_meta.data import omniglot_zips
from lightning_meta.data.omniglot_splits import ROTATIONS
from lightning_meta.data.omniglot_zips import load_omniglot_zips
from lightning_meta.errors import ConfigError, DataError
from tests.data.conftest import ASSETS, DRAWINGS

STAGES = ("train", "val", "test")


@pytest.fixture
def zips(omniglot_zips, tmp_path):
    """A private copy of the zips, so a test's cache or damage stays its own."""
    for p in omniglot_zips.glob("*.zip"):
        shutil.copy(p, tmp_path / p.name)
    return tmp_path


def npz_ink(character: str) -> np.ndarray:
    """The shipped drawings of ``Alphabet/characterNN`` as uint8 [20, 105, 105], ink 255."""
    with open(ASSETS / "omniglot_npz_index.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if f"{r['alphabet']}/{r['character']}" == character)
    images = np.load(ASSETS / row["npz_file"])["images"][int(row["npz_row"])]
    return (~images).astype(np.uint8) * 255


def test_vinyals_counts_pixels_and_rotations(zips):
    splits = load_omniglot_zips(zips, image_size=105)
    assert [splits[s].num_classes for s in STAGES] == [1028 * 4, 172 * 4, 423 * 4]
    test = splits["test"]
    assert test.input_shape == (1, 105, 105) and test.min_samples == DRAWINGS
    expected = npz_ink("Gurmukhi/character42")[:DRAWINGS]
    c = test.class_names.index("Gurmukhi/character42/rot000")
    for k in range(4):
        assert test.class_names[c + k] == f"Gurmukhi/character42/{ROTATIONS[k]}"
        got = (test.get(c + k, range(DRAWINGS))[:, 0] * 255).round().byte().numpy()
        assert np.array_equal(got, np.rot90(expected, k, axes=(1, 2)))  # counterclockwise, as np.rot90


def test_lake_split_and_resize(zips):
    splits = load_omniglot_zips(zips, image_size=28, split="lake", rotations=False)
    assert [splits[s].num_classes for s in STAGES] == [822, 142, 659]  # 5 background alphabets validate
    assert "background/Latin/character01" in splits["train"].class_names
    assert splits["test"].class_names[0] == "evaluation/Angelic/character01"  # file 0965, the first evaluation one
    c = splits["train"].class_names.index("background/Korean/character07")
    got = splits["train"].get(c, [1])
    assert got.shape == (1, 1, 28, 28)
    ink = torch.from_numpy(npz_ink("Korean/character07")[1:2, None]).float() / 255
    reference = F.interpolate(ink, size=28, mode="bilinear", antialias=True)
    assert (got - reference).abs().mean() < 0.03 and got.max() > 0.5 and got[..., 0, :].max() < 0.1


@pytest.mark.parametrize("split", ["lake", "vinyals"])
def test_same_tensors_as_the_shipped_arrays(zips, split):
    """Both Omniglot sources give identical classes, names and pixels (first DRAWINGS drawings)."""
    from lightning_meta.data.omniglot import load_omniglot

    ours, shipped = load_omniglot_zips(zips, split=split), load_omniglot(None, split=split)
    for stage in STAGES:
        assert ours[stage].class_names == shipped[stage].class_names
        assert ours[stage].alphabets == shipped[stage].alphabets
        a = ours[stage].images.reshape(-1, DRAWINGS, 1, 28, 28)
        b = shipped[stage].images.reshape(len(a), 20, 1, 28, 28)[:, :DRAWINGS]
        assert torch.equal(a, b)
    assert torch.equal(ours["val"].get(9, [1]), shipped["val"].get(9, [1]))  # rotated views agree too


def test_decoded_images_are_cached(zips, monkeypatch):
    first = load_omniglot_zips(zips, image_size=14, split="lake")
    assert (zips / ".lightning_meta_cache_omniglot_14.npz").is_file()

    def no_decoding(*a, **k):
        raise AssertionError("PNGs decoded again although the cache is valid")

    monkeypatch.setattr(omniglot_zips, "_ink", no_decoding)
    again = load_omniglot_zips(zips, image_size=14)  # the cache serves both splits
    assert torch.equal(again["test"].images, load_omniglot_zips(zips, image_size=14)["test"].images)
    assert torch.equal(load_omniglot_zips(zips, image_size=14, split="lake")["train"].images, first["train"].images)


def test_truncated_zip_is_named(zips):
    path = zips / "images_evaluation.zip"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="images_evaluation.zip is corrupted or truncated"):
        load_omniglot_zips(zips)


def test_corrupted_member_is_named(zips):
    path = zips / "images_background.zip"
    with zipfile.ZipFile(path) as zf:
        info = zf.infolist()[10]
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + 5 : start + 25] = bytes(20)  # damage the compressed bytes of one PNG
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="images_background.zip is corrupted"):
        load_omniglot_zips(zips, split="lake")


def test_incomplete_zip_is_refused_for_vinyals(zips, tmp_path_factory):
    path = zips / "images_evaluation.zip"
    with zipfile.ZipFile(path) as src:
        keep = [n for n in src.namelist() if n.startswith("images_evaluation/Angelic/")]
        contents = {n: src.read(n) for n in keep}
    with zipfile.ZipFile(path, "w") as dst:
        for n, b in contents.items():
            dst.writestr(n, b)
    assert load_omniglot_zips(zips, split="lake")["test"].num_classes == 20  # Angelic has 20 characters
    with pytest.raises(DataError, match="characters of the split are not in the Omniglot zips"):
        load_omniglot_zips(zips, split="vinyals")


def test_missing_zips_and_bad_split(tmp_path):
    with pytest.raises(DataError) as e:
        load_omniglot_zips(tmp_path)
    assert str(tmp_path) in str(e.value) and "images_background.zip" in str(e.value) and "download=True" in str(e.value)
    with pytest.raises(ConfigError, match="split must be one of .vinyals., .lake."):  # before any file is looked at
        load_omniglot_zips(tmp_path, split="random")
