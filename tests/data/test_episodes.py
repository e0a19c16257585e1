"""Episode sampling on the shipped Omniglot: shapes, label remapping, determinism, sharding, bad shapes."""

import pytest
import torch
from lightning.fabric.utilities.distributed import DistributedSamplerWrapper
from torch.utils.data import DataLoader

from lightning_meta.data import EpisodeDataset, EpisodeSampler, EpisodeSpec, EpisodicDataModule
from lightning_meta.data.omniglot import load_omniglot
from lightning_meta.errors import DataError


@pytest.fixture(scope="module")
def omniglot():
    return load_omniglot()


def test_vinyals_split_sizes_match_the_paper(omniglot):
    # 1028 / 172 / 423 characters, each at 4 rotations, 20 drawings each.
    assert {s: c.num_classes for s, c in omniglot.items()} == {"train": 4112, "val": 688, "test": 1692}
    assert omniglot["train"].input_shape == (1, 28, 28)
    assert omniglot["test"].min_samples == 20


def test_rotated_classes_are_rotations_of_the_same_drawings(omniglot):
    train = omniglot["train"]
    base, rot90 = train.get(0, [3]), train.get(1, [3])
    assert torch.equal(torch.rot90(base, 1, dims=(-2, -1)), rot90)
    assert not torch.equal(base, rot90)


def test_episode_shapes_labels_and_disjoint_support_query(omniglot):
    ds = EpisodeDataset(omniglot["train"], EpisodeSpec(ways=5, shots=2, queries=3), 10, seed=0)
    sx, sy, qx, qy = ds[4]
    assert sx.shape == (10, 1, 28, 28) and qx.shape == (15, 1, 28, 28)
    assert sorted(sy.unique().tolist()) == list(range(5)) and torch.equal(torch.bincount(qy), torch.full((5,), 3))
    # No query image appears in the support set of the same episode.
    flat_s, flat_q = sx.flatten(1), qx.flatten(1)
    assert not (torch.cdist(flat_q, flat_s) == 0).any()


def test_episode_depends_only_on_seed_and_index(omniglot):
    spec = EpisodeSpec(5, 1, 5)
    a, b = EpisodeDataset(omniglot["test"], spec, 10, seed=7), EpisodeDataset(omniglot["test"], spec, 10, seed=7)
    other = EpisodeDataset(omniglot["test"], spec, 10, seed=8)
    assert all(torch.equal(x, y) for x, y in zip(a[3], b[3]))
    assert not torch.equal(a[3][0], other[3][0])
    assert not torch.equal(a[3][0], a[4][0])


def test_eval_episodes_identical_with_any_number_of_workers(omniglot):
    ds = EpisodeDataset(omniglot["val"], EpisodeSpec(5, 1, 2), 8, seed=3)
    single = [b[0] for b in DataLoader(ds, batch_size=4, num_workers=0)]
    multi = [b[0] for b in DataLoader(ds, batch_size=4, num_workers=2)]
    assert all(torch.equal(x, y) for x, y in zip(single, multi))


def test_training_episodes_change_each_epoch_and_differ_between_ranks():
    epoch = {"now": 0}
    sampler = EpisodeSampler(6, lambda: epoch["now"])
    first = list(sampler)
    epoch["now"] = 1
    assert set(first).isdisjoint(list(sampler))
    epoch["now"] = 0
    ranks = [list(DistributedSamplerWrapper(sampler, num_replicas=2, rank=r, shuffle=False)) for r in (0, 1)]
    assert set(ranks[0]).isdisjoint(ranks[1]) and sorted(ranks[0] + ranks[1]) == first


def test_datamodule_serves_meta_batches_and_fixed_test_episodes():
    dm = EpisodicDataModule(train={"ways": 5, "shots": 1, "queries": 3}, test={"ways": 3, "shots": 2, "queries": 4},
                            meta_batch_size=4, eval_batch_size=2, train_episodes=8, val_episodes=4, test_episodes=4)
    dm.setup("fit")
    sx, sy, qx, qy = next(iter(dm.train_dataloader()))
    assert sx.shape == (4, 5, 1, 28, 28) and qy.shape == (4, 15)
    t1 = next(iter(dm.test_dataloader()))
    t2 = next(iter(EpisodicDataModule(test={"ways": 3, "shots": 2, "queries": 4}, test_episodes=4, eval_batch_size=2).test_dataloader()))
    assert t1[0].shape == (2, 6, 1, 28, 28) and torch.equal(t1[0], t2[0])
    assert dm.spec("val") == EpisodeSpec(3, 2, 4)  # validation defaults to the test shape


def test_trainval_trains_on_the_train_and_validation_classes(omniglot):
    dm = EpisodicDataModule(train={"ways": 60, "shots": 1, "queries": 5}, trainval=True)
    dm.setup("fit")
    train = dm.classes["train"]
    assert train.num_classes == 4800  # the paper's 1200 characters x 4 rotations
    assert train.class_names == omniglot["train"].class_names + omniglot["val"].class_names
    first_val = omniglot["train"].num_classes  # class 0 of the validation split, now a training class
    assert torch.equal(train.get(first_val + 1, [2]), omniglot["val"].get(1, [2]))
    assert dm.classes["test"].num_classes == omniglot["test"].num_classes


def test_too_many_ways_for_the_split_is_refused_before_training():
    dm = EpisodicDataModule(dataset="omniglot", dataset_kwargs={"split": "lake"}, test={"ways": 700, "shots": 1, "queries": 1})
    with pytest.raises(DataError, match=r"700-way episodes need 700 classes but the split has only 659"):
        dm.setup("fit")


def test_too_many_shots_plus_queries_is_refused_before_training():
    dm = EpisodicDataModule(train={"ways": 5, "shots": 5, "queries": 16})
    with pytest.raises(DataError, match=r"5 \+ 16 = 21 images per class.*only 20.*shots \+ queries <= 20"):
        dm.setup("fit")


def test_missing_omniglot_folder_says_where_and_how(tmp_path):
    with pytest.raises(DataError, match=r"not found in .*download=true"):
        load_omniglot(tmp_path)


def test_corrupted_omniglot_array_is_named_with_its_checksum(tmp_path):
    from lightning_meta.data.omniglot import SHIPPED

    for name in ("images_background.npz", "images_evaluation.npz", "omniglot_npz_index.csv"):
        data = (SHIPPED / name).read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 2] if name == "images_evaluation.npz" else data)
    with pytest.raises(DataError, match=r"Checksum mismatch for .*images_evaluation.npz"):
        load_omniglot(tmp_path, image_size=20)


def test_image_size_is_configurable():
    assert load_omniglot(image_size=14)["train"].input_shape == (1, 14, 14)
