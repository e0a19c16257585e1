"""miniImageNet loader on small files written in the two real layouts, with the real Ravi classes."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lightning_meta.data import miniimagenet
from lightning_meta.data.miniimagenet import load_miniimagenet, shipped_split_dir
from lightning_meta.errors import DataError

STAGES = ("train", "val", "test")
PER_CLASS = 3


@pytest.fixture(scope="module")
def ravi() -> dict[str, list[str]]:
    """The real wnids of each stage, read from the shipped Ravi CSVs."""
    out = {}
    for stage in STAGES:
        with open(shipped_split_dir() / f"{stage}.csv", newline="") as f:
            out[stage] = list(dict.fromkeys(row["label"] for row in csv.DictReader(f)))
    return out


def colour(stage: int, c: int, i: int) -> tuple[int, int, int]:
    return (40 * stage + 7, (3 * c) % 256, 60 * i + 20)


def write_csv_layout(root: Path, ravi: dict[str, list[str]], size: int = 84) -> None:
    (root / "images").mkdir(parents=True)
    for s, stage in enumerate(STAGES):
        with open(root / f"{stage}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["filename", "label"])
            for c, wnid in enumerate(ravi[stage]):
                for i in range(PER_CLASS):
                    name = f"{wnid}{i + 1:08d}.jpg"
                    Image.new("RGB", (size, size), colour(s, c, i)).save(root / "images" / name, quality=95)
                    w.writerow([name, wnid])


def write_pickles(root: Path, ravi: dict[str, list[str]], rng: np.random.Generator) -> dict[str, np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    data = {}
    for stage in STAGES:
        n = len(ravi[stage]) * PER_CLASS
        images = rng.integers(0, 256, (n, 84, 84, 3), dtype=np.uint8)
        order = rng.permutation(n)  # class rows need not be contiguous in the real pickles
        class_dict = {w: order[c * PER_CLASS:(c + 1) * PER_CLASS].tolist() for c, w in enumerate(reversed(ravi[stage]))}
        with open(root / f"mini-imagenet-cache-{stage}.pkl", "wb") as f:
            pickle.dump({"image_data": images, "class_dict": class_dict}, f, protocol=4)
        data[stage] = images
    return data


def test_csv_layout_counts_pixels_and_names(tmp_path, ravi):
    write_csv_layout(tmp_path, ravi)
    splits = load_miniimagenet(tmp_path)
    assert [splits[s].num_classes for s in STAGES] == [64, 16, 20]
    for s, stage in enumerate(STAGES):
        ci = splits[stage]
        assert ci.class_names == ravi[stage]
        assert ci.input_shape == (3, 84, 84)
        assert ci.min_samples == PER_CLASS and ci.images.shape[0] == PER_CLASS * len(ravi[stage])
    img = splits["val"].get(5, [2])[0] * 255
    expected = np.array(colour(1, 5, 2), dtype=np.float32)[:, None, None]
    assert np.abs(img.numpy() - expected).max() <= 2  # JPEG keeps a flat colour within rounding


def test_csv_layout_resizes_and_caches(tmp_path, ravi, monkeypatch):
    write_csv_layout(tmp_path, ravi, size=50)
    first = load_miniimagenet(tmp_path, image_size=32)
    assert first["train"].input_shape == (3, 32, 32)
    assert (tmp_path / ".lightning_meta_cache_32.npz").is_file()

    def no_decoding(*a, **k):
        raise AssertionError("images decoded again although the cache is valid")

    monkeypatch.setattr(miniimagenet, "decode_image", no_decoding)
    second = load_miniimagenet(tmp_path, image_size=32)
    assert second["test"].class_names == first["test"].class_names
    assert np.array_equal(second["train"].images.numpy(), first["train"].images.numpy())
    # A changed split file invalidates the cache.
    with open(tmp_path / "test.csv", "a") as f:
        f.write(f"{ravi['test'][0]}00000001.jpg,{ravi['test'][0]}\n")
    with pytest.raises(AssertionError, match="decoded again"):
        load_miniimagenet(tmp_path, image_size=32)


def test_csv_falls_back_to_shipped_split(tmp_path, ravi):
    write_csv_layout(tmp_path, ravi)
    for stage in STAGES:
        (tmp_path / f"{stage}.csv").unlink()
    with open(shipped_split_dir() / "train.csv", newline="") as f:
        first_listed = next(csv.DictReader(f))["filename"]
    with pytest.raises(DataError, match="images listed in") as e:
        load_miniimagenet(tmp_path)
    assert str(shipped_split_dir() / "train.csv") in str(e.value)
    assert "38400" in str(e.value)
    assert f"first: {first_listed}" in str(e.value)


def test_unreadable_jpeg_is_named(tmp_path, ravi):
    write_csv_layout(tmp_path, ravi, size=16)
    bad = tmp_path / "images" / f"{ravi['test'][3]}00000002.jpg"
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(DataError, match=bad.name):
        load_miniimagenet(tmp_path, image_size=16)


def test_pickle_layout_round_trips(tmp_path, ravi):
    data = write_pickles(tmp_path, ravi, np.random.default_rng(0))
    splits = load_miniimagenet(tmp_path)
    assert [splits[s].num_classes for s in STAGES] == [64, 16, 20]
    with open(tmp_path / "mini-imagenet-cache-val.pkl", "rb") as f:
        class_dict = pickle.load(f)["class_dict"]
    names = splits["val"].class_names
    assert sorted(names) == sorted(ravi["val"])
    wnid = names[7]
    got = (splits["val"].get(7, [1])[0] * 255).round().byte().numpy()
    assert np.array_equal(got, data["val"][class_dict[wnid][1]].transpose(2, 0, 1))
    assert not list(tmp_path.glob(".lightning_meta_cache_*"))  # nothing to decode at 84 px


def test_pickle_layout_resized_is_cached(tmp_path, ravi):
    write_pickles(tmp_path, ravi, np.random.default_rng(1))
    splits = load_miniimagenet(tmp_path, image_size=21)
    assert splits["train"].input_shape == (3, 21, 21)
    assert (tmp_path / ".lightning_meta_cache_21.npz").is_file()
    again = load_miniimagenet(tmp_path, image_size=21)
    assert np.array_equal(again["test"].images.numpy(), splits["test"].images.numpy())


def test_truncated_pickle_is_named(tmp_path, ravi):
    write_pickles(tmp_path, ravi, np.random.default_rng(2))
    path = tmp_path / "mini-imagenet-cache-val.pkl"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataError, match="mini-imagenet-cache-val.pkl.*truncated or corrupted"):
        load_miniimagenet(tmp_path)


def test_missing_data_names_folder_files_and_sources(tmp_path):
    with pytest.raises(DataError) as e:
        load_miniimagenet(tmp_path / "nowhere")
    msg = str(e.value)
    for expected in (str(tmp_path / "nowhere"), "images/", "train.csv", "mini-imagenet-cache-train.pkl", "learn2learn", "Ravi"):
        assert expected in msg
