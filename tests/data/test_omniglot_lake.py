"""Lake's Omniglot split on the shipped arrays: sizes, held-out alphabets, rotations, within-alphabet episodes."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest
import torch

from lightning_meta.data import EpisodeDataset, EpisodeSpec, EpisodicDataModule
from lightning_meta.data.classes import ClassImages
from lightning_meta.data.omniglot import load_omniglot
from lightning_meta.data.preprocessing import to_ink
from lightning_meta.errors import ConfigError, DataError
from tests.data.conftest import ASSETS

HELD_OUT = ["Futurama", "Grantha", "N_Ko", "Syriac_(Estrangelo)", "Tagalog"]  # as documented in omniglot_splits


@pytest.fixture(scope="module")
def lake():
    return load_omniglot(split="lake")


def characters(classes: ClassImages) -> list[str]:
    """The stored characters of a stage, ``background/Alphabet/characterNN``."""
    return list(dict.fromkeys(n.rsplit("/", 1)[0] if classes.views > 1 else n for n in classes.class_names))


def test_background_alphabets_train_and_validate_evaluation_alphabets_test(lake):
    train, val, test = (characters(lake[s]) for s in ("train", "val", "test"))
    assert len(train) + len(val) == 964 and len(test) == 659 and (len(train), len(val)) == (822, 142)
    assert lake["train"].num_classes == 4 * 822 and lake["val"].num_classes == 4 * 142  # x 4 rotations
    assert lake["test"].num_classes == 659 and lake["test"].views == 1
    assert all(c.startswith("background/") for c in train + val) and all(c.startswith("evaluation/") for c in test)
    assert sorted({c.split("/")[1] for c in val}) == HELD_OUT
    assert not {c.split("/")[1] for c in train} & set(HELD_OUT)
    assert len({c.split("/")[1] for c in train}) == 25 and len({c.split("/")[1] for c in test}) == 20
    unrotated = load_omniglot(split="lake", rotations=False)
    assert [unrotated[s].num_classes for s in ("train", "val", "test")] == [822, 142, 659]
    other = load_omniglot(split="lake", split_seed=1, val_alphabets=3)
    assert len({a.split("/")[0] for a in other["val"].alphabets}) == 3 and other["val"].alphabets != lake["val"].alphabets


def test_rotated_classes_are_the_drawings_rotated_counterclockwise(lake):
    with open(ASSETS / "omniglot_npz_index.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["alphabet"] == "Korean" and r["character"] == "character07")
    raw = np.load(ASSETS / row["npz_file"])["images"][int(row["npz_row"]), 3]  # drawing 3, True = background
    upright = to_ink(torch.from_numpy(raw).float()[None, None], 28)[0].float() / 255
    train = lake["train"]
    c = train.class_names.index("background/Korean/character07/rot000")
    for k, rotation in enumerate(("rot000", "rot090", "rot180", "rot270")):
        assert train.class_names[c + k] == f"background/Korean/character07/{rotation}"
        assert train.alphabets[c + k] == f"Korean/{rotation}"
        expected = torch.from_numpy(np.rot90(upright.numpy(), k, axes=(1, 2)).copy())
        assert torch.equal(train.get(c + k, [3])[0], expected)
    assert not torch.equal(train.get(c, [3]), train.get(c + 1, [3]))


def _alphabets_by_pixels(classes: ClassImages) -> dict[bytes, set[str]]:
    """Every image of a stage (as served) -> the alphabets of the classes that hold it."""
    found: dict[bytes, set[str]] = {}
    for c in range(classes.num_classes):
        for image in classes.get(c, range(classes.num_samples(c))):
            found.setdefault(_key(image), set()).add(classes.alphabets[c])
    return found


def each(episodes: EpisodeDataset) -> list:
    return [episodes[i] for i in range(len(episodes))]


def _key(image: torch.Tensor) -> bytes:
    return image.mul(255).round().byte().numpy().tobytes()


@pytest.mark.parametrize("stage", ["val", "test"])
def test_within_alphabet_episodes_draw_every_class_from_one_alphabet(lake, stage):
    classes = lake[stage]
    where = _alphabets_by_pixels(classes)
    episodes = EpisodeDataset(classes, EpisodeSpec(20, 1, 2, within_alphabet=True), 60, seed=5)
    seen = Counter()
    for sx, _, qx, _ in each(episodes):
        shared = set.intersection(*(where[_key(image)] for image in torch.cat([sx, qx])))
        assert len(shared) == 1, "an episode mixes alphabets"
        seen[shared.pop()] += 1
    assert len(seen) > 10  # many alphabets over the episodes, not one
    assert not any(a.startswith("Tagalog") for a in seen)  # 17 characters: skipped for 20-way episodes
    mixed = EpisodeDataset(classes, EpisodeSpec(20, 1, 2), 5, seed=5)
    assert any(len(set.union(*(where[_key(image)] for image in sx))) > 1 for sx, *_ in each(mixed))


def test_datamodule_serves_within_alphabet_test_episodes_and_refuses_what_cannot_be_served():
    dm = EpisodicDataModule(dataset="omniglot", dataset_kwargs={"split": "lake"}, train={"ways": 60, "shots": 1, "queries": 1},
                            test={"ways": 20, "shots": 1, "queries": 15, "within_alphabet": True}, test_episodes=4)
    dm.setup("test")
    assert dm.spec("test").within_alphabet and dm.spec("val").within_alphabet and not dm.spec("train").within_alphabet
    sx, sy, qx, qy = next(iter(dm.test_dataloader()))
    assert sx.shape == (4, 20, 1, 28, 28) and qx.shape == (4, 300, 1, 28, 28)
    too_wide = EpisodicDataModule(dataset="omniglot", dataset_kwargs={"split": "lake"},
                                  test={"ways": 48, "shots": 1, "queries": 1, "within_alphabet": True})
    with pytest.raises(DataError, match=r"test split: 48-way within-alphabet episodes .* the largest has 47\. Fix: lower ways to <= 47"):
        too_wide.setup("test")


def test_too_small_alphabets_are_skipped_and_data_without_alphabets_refused():
    images = torch.arange(12, dtype=torch.uint8).reshape(6, 1, 1, 2).repeat_interleave(2, 0)
    classes = ClassImages(images, [2] * 6, list("abcdef"), alphabets=["big"] * 3 + ["small"] * 2 + ["tiny"])
    drawn = set()
    for sx, *_ in each(EpisodeDataset(classes, EpisodeSpec(3, 1, 0, within_alphabet=True), 30, seed=0)):
        drawn |= {int(x.mul(255).round()[0, 0, 0]) // 2 for x in sx}
    assert drawn == {0, 1, 2}  # only the one alphabet with 3 classes serves 3-way episodes
    two_way = {frozenset(int(x.mul(255).round()[0, 0, 0]) // 2 for x in sx)
               for sx, *_ in each(EpisodeDataset(classes, EpisodeSpec(2, 1, 0, within_alphabet=True), 60, seed=0))}
    assert frozenset({3, 4}) in two_way and all(s <= {0, 1, 2} or s == {3, 4} for s in two_way)
    with pytest.raises(DataError, match=r"4-way within-alphabet episodes need an alphabet of 4 classes, but the largest has 3"):
        EpisodeDataset(classes, EpisodeSpec(4, 1, 0, within_alphabet=True), 1, seed=0)
    no_alphabets = ClassImages(images, [2] * 6, list("abcdef"))
    with pytest.raises(DataError, match=r"do(es)? not record\. Fix: use Omniglot"):
        EpisodeDataset(no_alphabets, EpisodeSpec(2, 1, 0, within_alphabet=True), 1, seed=0)


def test_bad_lake_options_name_the_fix():
    with pytest.raises(ConfigError, match=r"val_alphabets=30: .* 1 to 29 of the 30 background alphabets"):
        load_omniglot(split="lake", val_alphabets=30)
    with pytest.raises(ConfigError, match=r"split=vinyals serves the 4 rotations .*Fix: drop rotations=false"):
        load_omniglot(split="vinyals", rotations=False)
    with pytest.raises(ConfigError, match=r"split='random', but split must be one of 'vinyals', 'lake'"):
        load_omniglot(split="random")


def test_lake_drawers_take_every_support_image_from_one_drawer_and_every_query_from_another():
    # each image's pixels hold (class, drawer), so the episode says where every image came from
    n_classes, n_drawers = 12, 20
    values = torch.tensor([[20 * c + d for d in range(n_drawers)] for c in range(n_classes)], dtype=torch.uint8)
    images = values.reshape(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    classes = ClassImages(images, [n_drawers] * n_classes, [f"c{c}" for c in range(n_classes)],
                          alphabets=["a"] * 6 + ["b"] * 6, drawers=True)
    spec = EpisodeSpec(ways=5, shots=1, queries=1, within_alphabet=True, drawers="lake")
    episodes = EpisodeDataset(classes, spec, 50, seed=0)
    pairs = set()
    for i in range(50):
        sx, sy, qx, qy = episodes[i]
        support, query = (torch.round(x[:, 0, 0, 0] * 255).long() for x in (sx, qx))
        assert len({int(v) % 20 for v in support}) == 1 and len({int(v) % 20 for v in query}) == 1  # one drawer each
        assert int(support[0]) % 20 != int(query[0]) % 20
        assert torch.equal(support // 20, query // 20)  # the query of label k is the support's class k
        assert len({int(v) // 20 < 6 for v in support}) == 1  # one alphabet
        pairs.add((int(support[0]) % 20, int(query[0]) % 20))
    assert len(pairs) > 20  # the two drawers change from episode to episode
    with pytest.raises(DataError, match="drawers=lake builds Lake's one-shot runs.*Fix: set shots=1, queries=1"):
        EpisodeDataset(classes, EpisodeSpec(ways=5, shots=1, queries=15, within_alphabet=True, drawers="lake"), 1, 0)
    unaligned = ClassImages(images, [n_drawers] * n_classes, [f"c{c}" for c in range(n_classes)],
                            alphabets=["a"] * 6 + ["b"] * 6)
    with pytest.raises(DataError, match="only Omniglot records. Fix: use data=omniglot_lake or drawers=any"):
        EpisodeDataset(unaligned, spec, 1, 0)


def test_the_shipped_omniglot_records_its_drawers(lake):
    assert all(lake[s].drawers for s in ("train", "val", "test"))
