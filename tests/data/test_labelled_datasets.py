"""Any labelled map-style Dataset as an episode source: labels found the way users expect, the same episodes as the
registered path, torchvision's ImageFolder through Hydra, and the mistakes users make, each one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils.data import Dataset, TensorDataset
from torchvision.datasets import ImageFolder

from lightning_meta.data import EpisodicDataModule
from lightning_meta.data.labelled import labelled_splits, read_labels
from lightning_meta.data.omniglot import load_omniglot
from lightning_meta.errors import ConfigError, DataError
from tests.conftest import REPO
from tests.data.test_folder import make_folder

STAGES = ("train", "val", "test")


class Counted(Dataset):
    """Items ``(x, label)`` with no label record: the only way to its labels is reading the items."""

    def __init__(self, x: torch.Tensor, y: list) -> None:
        self.x, self.y, self.reads = x, y, 0

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        self.reads += 1
        return self.x[i], self.y[i]


def vectors(n_classes: int = 12, per_class: int = 6, dim: int = 5, first: int = 0) -> TensorDataset:
    x = torch.arange(n_classes * per_class * dim, dtype=torch.float32).reshape(-1, dim)
    return TensorDataset(x, torch.arange(first, first + n_classes).repeat_interleave(per_class))


def test_labels_are_found_where_users_keep_them():
    x, y = torch.zeros(6, 2), [0, 0, 1, 1, 2, 2]
    for attribute in ("targets", "labels"):
        ds = Counted(x, y)
        setattr(ds, attribute, [9, 9, 8, 8, 7, 7])
        assert read_labels(ds) == [9, 9, 8, 8, 7, 7] and ds.reads == 0
    ds = Counted(x, y)
    ds.get_labels = lambda: ["a", "a", "b", "b", "c", "c"]
    assert read_labels(ds) == ["a", "a", "b", "b", "c", "c"] and ds.reads == 0
    assert read_labels(Counted(x, y), labels=[5] * 6) == [5] * 6
    assert read_labels(vectors(2, 3)) == [0, 0, 0, 1, 1, 1]  # TensorDataset: its label tensor, no item read


def test_without_a_record_labels_are_read_once_and_remembered():
    ds = Counted(torch.zeros(6, 2), [0, 0, 1, 1, 2, 2])
    assert read_labels(ds) == [0, 0, 1, 1, 2, 2] and ds.reads == 6
    assert read_labels(ds) == [0, 0, 1, 1, 2, 2] and ds.reads == 6


def test_dict_items_take_input_and_label_keys():
    class Rows(Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return {"input_ids": torch.full((4,), i), "label": i // 2}

    splits = labelled_splits({"train": Rows(), "test": Rows()}, input_key="input_ids", label_key="label")
    assert splits["train"].num_classes == 4 and splits["val"].num_classes == 4  # val without data: the test data
    assert splits["test"].get(1, [0, 1]).tolist() == [[2] * 4, [3] * 4]
    with pytest.raises(DataError, match="Cannot take the label at 'target'.*keys \\['input_ids', 'label'\\].*label_key"):
        labelled_splits({"train": Rows(), "test": Rows()}, input_key="input_ids", label_key="target")


def test_tensor_dataset_serves_the_registered_omniglot_episodes_unchanged():
    omniglot = load_omniglot()
    def as_tensors(classes):
        xs = [classes.get(c, range(classes.num_samples(c))) for c in range(classes.num_classes)]
        return TensorDataset(torch.cat(xs), torch.arange(len(xs)).repeat_interleave(torch.tensor([len(x) for x in xs])))

    spec = {"ways": 5, "shots": 1, "queries": 3}
    registered = EpisodicDataModule(dataset="omniglot", train=spec)
    generic = EpisodicDataModule(dataset={s: as_tensors(omniglot[s]) for s in STAGES}, train=spec)
    for stage, index in (("train", 0), ("train", 917), ("test", 5)):
        ours = generic.episode_dataset(stage)[index]
        theirs = registered.episode_dataset(stage)[index]
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert generic.input_shape == (1, 28, 28) and generic.preprocessing is None


def test_one_dataset_is_split_by_classes_or_ratios():
    ds = vectors(n_classes=10)
    by_ratio = labelled_splits(ds, ratios=[0.6, 0.2, 0.2], seed=3)
    names = {s: set(by_ratio[s].class_names) for s in STAGES}
    assert [len(names[s]) for s in STAGES] == [6, 2, 2] and not names["train"] & (names["val"] | names["test"])
    given = labelled_splits(ds, split={"train": ["0", "1", "2"], "test": ["8", "9"]})
    assert given["val"].class_names == ["8", "9"]
    # class 8 holds rows 48..53: item 2 of the class is row 50
    assert given["test"].get(0, [2]).tolist() == ds.tensors[0][50:51].tolist()


def test_vectors_and_token_ids_come_out_as_stored():
    tokens = TensorDataset(torch.randint(0, 100, (24, 7)), torch.arange(4).repeat_interleave(6))
    dm = EpisodicDataModule(dataset={"train": tokens, "test": tokens}, train={"ways": 3, "shots": 2, "queries": 2})
    sx, sy, qx, qy = dm.episode_dataset("train")[0]
    assert sx.dtype == torch.int64 and sx.shape == (6, 7) and qx.shape == (6, 7)
    assert dm.input_shape == (7,) and dm.meta_features()["input_dim"] == 7


def test_image_folder_through_hydra_records_its_preprocessing(tmp_path):
    written = make_folder(tmp_path / "images", n_classes=8, per_class=4, size=20)
    with initialize_config_dir(str(REPO / "conf"), version_base=None):
        cfg = compose("config", overrides=[
            "data=dataset_split", "data.dataset._target_=torchvision.datasets.ImageFolder",
            f"data.dataset.root={tmp_path / 'images'}", "image.size=20", "data.dataset_kwargs.ratios=[0.5,0.25,0.25]",
            "data.train.ways=2", "data.test.ways=2", "data.train.queries=2", "data.test.queries=2"])
    dm = instantiate(cfg.data)
    assert isinstance(dm.dataset, ImageFolder)
    dm.setup()
    assert dm.input_shape == (3, 20, 20)
    assert dm.preprocessing == {"version": 1, "image_size": 20, "channels": 3, "resize": "lanczos", "invert": False,
                                "normalization": "divide_by_255"}
    classes = dm.classes["train"]
    name = classes.class_names[0]
    assert torch.allclose(classes.get(0, [1])[0], torch.from_numpy(written[name][1]).permute(2, 0, 1).float() / 255)


def test_one_image_folder_per_split_through_hydra(tmp_path):
    for stage in ("train", "test"):
        make_folder(tmp_path / stage, n_classes=4, per_class=3, size=12)
    with initialize_config_dir(str(REPO / "conf"), version_base=None):
        cfg = compose("config", overrides=[
            "data=dataset", "image.size=12", "data.train.ways=2", "data.test.ways=2", "data.train.queries=1",
            "data.test.queries=1", *(f"data.dataset.{s}.{k}={v}" for s in ("train", "test") for k, v in
                                     (("_target_", "torchvision.datasets.ImageFolder"), ("root", tmp_path / s)))])
    dm = instantiate(cfg.data)
    dm.setup()
    assert dm.classes["val"].class_names == dm.classes["test"].class_names == [f"class_{c:02d}" for c in range(4)]
    assert dm.episode_dataset("val")[0][0].shape == (2, 3, 12, 12)


@pytest.mark.parametrize("case, error, match", [
    ("unhashable", DataError, r"Labels must be hashable .*got a list.*Fix: give labels="),
    ("too_few_items", DataError, r"shots \+ queries = 2 \+ 5 = 7 images per class, but some classes have only 6"),
    ("too_few_classes", DataError, r"5-way episodes need 5 classes but the split has only 2"),
    ("no_split", DataError, r"too few to split by ratios"),
    ("root_with_object", ConfigError, r"root locates a registered data set's files\. Fix: drop root"),
    ("not_a_dataset", ConfigError, r"dataset\.train is a int, not a data set"),
    ("bad_kwarg", ConfigError, r"dataset_kwargs\.ratio=.*labelled_splits takes dataset, labels, split, ratios"),
    ("pil_without_size", ConfigError, r"PIL images but no image size is set\. Fix: set dataset_kwargs\.image_size"),
    ("ragged", DataError, r"Inputs of class '0' have different shapes .*pad token ids"),
    ("lake_drawers", DataError, r"within_alphabet episodes need each class's alphabet.*Fix: use Omniglot"),
])
def test_bad_input_is_one_line_naming_the_fix(case, error, match, tmp_path):
    spec = {"ways": 2, "shots": 1, "queries": 1} if case in ("ragged", "lake_drawers") else {"ways": 5, "shots": 2,
                                                                                             "queries": 5}
    if case == "pil_without_size":
        make_folder(tmp_path, n_classes=6, per_class=8)
    args = {
        "unhashable": lambda: dict(dataset=Counted(torch.zeros(4, 2), [[0], [0], [1], [1]])),
        "too_few_items": lambda: dict(dataset={"train": vectors(6), "test": vectors(6)}),
        "too_few_classes": lambda: dict(dataset={"train": vectors(2, 8), "test": vectors(6, 8)}),
        "no_split": lambda: dict(dataset=vectors(2, 8)),
        "root_with_object": lambda: dict(dataset=vectors(), root="/data"),
        "not_a_dataset": lambda: dict(dataset={"train": 3, "test": vectors()}),
        "bad_kwarg": lambda: dict(dataset=vectors(), dataset_kwargs={"ratio": [0.5, 0.25, 0.25]}),
        "pil_without_size": lambda: dict(dataset={"train": ImageFolder(tmp_path), "test": ImageFolder(tmp_path)}),
        "ragged": lambda: dict(dataset={"train": Counted([torch.zeros(3), torch.zeros(4)] * 10, [0] * 10 + [1] * 10),
                                        "test": vectors()}),
        "lake_drawers": lambda: dict(dataset={"train": vectors(), "test": vectors()}, test={
            "ways": 2, "shots": 1, "queries": 1, "within_alphabet": True, "drawers": "lake"}),
    }[case]()
    with pytest.raises(error, match=match) as raised:
        dm = EpisodicDataModule(train=spec, **args)
        dm.setup()
        dm.episode_dataset("train")[0]
    assert "\n" not in str(raised.value)


def test_trainval_merges_the_classes_of_two_data_sets():
    dm = EpisodicDataModule(dataset={"train": vectors(6), "val": vectors(4, first=6), "test": vectors(4, first=10)},
                            trainval=True, train={"ways": 3, "shots": 1, "queries": 1})
    dm.setup()
    merged = dm.classes["train"]
    assert merged.num_classes == 10 and merged.class_names[6:] == ["6", "7", "8", "9"]
    assert np.allclose(merged.get(6, [0]).numpy(), vectors(4, first=6).tensors[0][:1].numpy())
