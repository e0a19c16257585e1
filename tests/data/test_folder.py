"""Image-folder data sets: class splits given by the user or by seeded ratios, and the errors users hit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lightning_meta.data import folder as folder_module
from lightning_meta.data.folder import load_folder
from lightning_meta.errors import ConfigError, DataError

STAGES = ("train", "val", "test")


def make_folder(root: Path, n_classes: int = 10, per_class: int = 3, size: int = 24) -> dict[str, list[np.ndarray]]:
    """``root/class_XX/img_Y.png`` with random RGB pixels (PNG is lossless); returns the arrays per class."""
    rng = np.random.default_rng(0)
    written = {}
    for c in range(n_classes):
        d = root / f"class_{c:02d}"
        d.mkdir(parents=True)
        written[d.name] = []
        for i in range(per_class):
            arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(d / f"img_{i}.png")
            written[d.name].append(arr)
        (d / "notes.txt").write_text("not an image, ignored")
    return written


def test_explicit_split_round_trips_pixels(tmp_path):
    written = make_folder(tmp_path)
    split = {"train": ["class_00", "class_01", "class_02", "class_03"], "val": ["class_04"], "test": ["class_05", "class_09"]}
    splits = load_folder(tmp_path, image_size=24, split=split)
    assert {s: splits[s].class_names for s in STAGES} == split
    assert splits["train"].input_shape == (3, 24, 24) and splits["test"].min_samples == 3
    got = (splits["test"].get(1, [2])[0] * 255).round().byte().numpy()
    assert np.array_equal(got, written["class_09"][2].transpose(2, 0, 1))


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_split_file_and_grayscale_resize(tmp_path, suffix):
    make_folder(tmp_path / "data")
    split = {"train": ["class_03", "class_01"], "test": ["class_02"]}
    path = tmp_path / f"split{suffix}"
    path.write_text(json.dumps(split) if suffix == ".json" else "train: [class_03, class_01]\ntest:\n  - class_02\n")
    splits = load_folder(tmp_path / "data", image_size=10, channels=1, split=str(path))
    assert splits["train"].class_names == ["class_03", "class_01"]
    assert splits["val"].class_names == splits["test"].class_names == ["class_02"]
    assert splits["train"].input_shape == (1, 10, 10)


def test_ratio_split_is_seeded_and_disjoint(tmp_path):
    make_folder(tmp_path, n_classes=25, per_class=1, size=8)
    a = load_folder(tmp_path, image_size=8, seed=3)
    b = load_folder(tmp_path, image_size=8, seed=3)
    c = load_folder(tmp_path, image_size=8, seed=4)
    assert [a[s].num_classes for s in STAGES] == [16, 4, 5]
    assert all(a[s].class_names == b[s].class_names for s in STAGES)
    assert a["train"].class_names != c["train"].class_names
    names = [n for s in STAGES for n in a[s].class_names]
    assert sorted(names) == [f"class_{i:02d}" for i in range(25)]


def test_decoded_folder_is_cached(tmp_path, monkeypatch):
    make_folder(tmp_path, n_classes=6)
    first = load_folder(tmp_path, image_size=12, ratios=(0.5, 0.25, 0.25))

    def no_decoding(*a, **k):
        raise AssertionError("images decoded again although the cache is valid")

    monkeypatch.setattr(folder_module, "decode_image", no_decoding)
    again = load_folder(tmp_path, image_size=12, ratios=(0.5, 0.25, 0.25))
    assert again["train"].class_names == first["train"].class_names
    Image.new("RGB", (5, 5)).save(tmp_path / "class_00" / "img_new.png")  # new file: decoded again
    with pytest.raises(AssertionError, match="decoded again"):
        load_folder(tmp_path, image_size=12, ratios=(0.5, 0.25, 0.25))


def test_unknown_class_in_split(tmp_path):
    make_folder(tmp_path)
    with pytest.raises(DataError, match=r"test split names classes with no folder .*\['class_99'\].*Known classes"):
        load_folder(tmp_path, split={"train": ["class_00"], "test": ["class_99"]})


def test_empty_folder_and_missing_folder(tmp_path):
    with pytest.raises(DataError, match="no class sub-folders"):
        load_folder(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_folder(tmp_path / "absent")


def test_class_without_images(tmp_path):
    make_folder(tmp_path)
    empty = tmp_path / "class_empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="class_empty holds no image files"):
        load_folder(tmp_path)


def test_unreadable_image_is_named(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "class_04" / "img_1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(DataError, match="img_1.png"):
        load_folder(tmp_path, split={"train": ["class_04"], "test": ["class_05"]})


def test_bad_split_settings(tmp_path):
    make_folder(tmp_path, n_classes=2)
    with pytest.raises(DataError, match="too few to split"):
        load_folder(tmp_path)
    with pytest.raises(ConfigError, match="summing to 1"):
        load_folder(tmp_path, ratios=(0.5, 0.5))
    with pytest.raises(ConfigError, match="'train', 'test'"):
        load_folder(tmp_path, split={"training": ["class_00"]})
    with pytest.raises(DataError, match="in train and in val/test"):
        load_folder(tmp_path, split={"train": ["class_00"], "test": ["class_00", "class_01"]})
    with pytest.raises(ConfigError, match="does not exist"):
        load_folder(tmp_path, split=str(tmp_path / "nope.yaml"))
