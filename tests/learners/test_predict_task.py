"""``predict_task`` on raw images: the pixels and logits of the data's own loading path, any learner, bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from lightning_meta.data import EpisodicDataModule
from lightning_meta.data.folder import load_folder
from lightning_meta.data.preprocessing import describe, prepare
from lightning_meta.errors import ConfigError, DataError
from lightning_meta.learners import MAML, ProtoNet, Reptile
from lightning_meta.nets import Conv4
from tests.data.conftest import ASSETS

CHARACTERS = ("Gurmukhi/character42", "Kannada/character05", "Tengwar/character11")


def write_omniglot_pngs(folder: Path, character: str, drawings: list[int]) -> list[Path]:
    """The shipped drawings of ``Alphabet/characterNN`` as grayscale PNGs, black ink on white, 105 x 105."""
    with open(ASSETS / "omniglot_npz_index.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if f"{r['alphabet']}/{r['character']}" == character)
    images = np.load(ASSETS / row["npz_file"])["images"][int(row["npz_row"])]  # bool, True = background
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for d in drawings:
        paths.append(folder / f"{character.replace('/', '_')}_{d:02d}.png")
        Image.fromarray(images[d].astype(np.uint8) * 255, mode="L").save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def omniglot_module():
    dm = EpisodicDataModule(dataset="omniglot")
    dm.setup("test")
    return dm


def protonet(seed: int = 0) -> ProtoNet:
    torch.manual_seed(seed)
    return ProtoNet(Conv4(1, out_features=None, hidden=8, downsample="pool", image_size=28))


def test_png_files_give_the_pixels_and_logits_of_the_datamodules_loading_path(omniglot_module, tmp_path):
    test = omniglot_module.classes["test"]
    support, support_y, query, files = [], [], [], {"support": [], "query": []}
    for label, character in enumerate(CHARACTERS):
        c = test.class_names.index(f"{character}/rot000")
        support.append(test.get(c, [0, 1]))
        query.append(test.get(c, [5, 6, 7]))
        support_y += [label, label]
        files["support"] += write_omniglot_pngs(tmp_path, character, [0, 1])
        files["query"] += write_omniglot_pngs(tmp_path, character, [5, 6, 7])
    sx, qx, sy = torch.cat(support), torch.cat(query), torch.tensor(support_y)
    assert torch.equal(prepare(files["support"], omniglot_module.preprocessing), sx)
    assert torch.equal(prepare(files["query"], omniglot_module.preprocessing), qx)

    learner = protonet()
    learner.preprocessing = omniglot_module.preprocessing
    learner.train()
    learner.backbone(torch.rand(8, 1, 28, 28))  # running BatchNorm statistics away from their initial values
    bn = next(m for m in learner.modules() if isinstance(m, nn.BatchNorm2d))
    running = bn.running_mean.clone()
    learner.eval()
    with torch.no_grad():
        expected = learner.adapt_and_predict(sx, sy, qx)
    learner.train()
    names = [c.split("/")[0] for c in CHARACTERS]
    got = learner.predict_task(files["support"], [names[i] for i in support_y], files["query"])
    assert torch.allclose(got.logits, expected, atol=1e-5)
    assert got.classes == names and got.labels == [names[i] for i in expected.argmax(-1).tolist()]
    assert torch.allclose(got.probabilities, expected.softmax(-1), atol=1e-6)
    assert learner.training and torch.equal(bn.running_mean, running)


def test_photo_folders_give_the_pixels_of_the_folder_loader(tmp_path):
    rng = np.random.default_rng(0)
    for c in ("cat", "dog", "owl"):
        (tmp_path / c).mkdir()
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(tmp_path / c / f"{i}.png")
    classes = load_folder(tmp_path, image_size=20, channels=3, split={"train": ["cat"], "test": ["dog", "owl"]})
    test = classes["test"]
    assert torch.equal(prepare(sorted((tmp_path / "owl").glob("*.png")), test.preprocessing), test.get(1, [0, 1]))
    pil = Image.open(tmp_path / "dog" / "1.png")
    assert torch.equal(prepare([pil, np.asarray(pil)], test.preprocessing), test.get(0, [1, 1]))


def _make(name: str):
    torch.manual_seed(0)
    if name == "protonet":
        return protonet()
    net = Conv4(1, out_features=3, hidden=8, downsample="stride", image_size=28)
    return MAML(net, inner_steps_eval=2) if name == "maml" else Reptile(net, inner_steps_eval=3)


@pytest.mark.parametrize("name", ["protonet", "maml", "reptile"])
def test_every_learner_predicts_class_names_in_its_evaluation_mode(name, tmp_path):
    learner = _make(name)
    learner.preprocessing = describe(28, 1, "ink")
    paths = {c: write_omniglot_pngs(tmp_path, c, [0, 1, 2]) for c in CHARACTERS}
    labels = [("g", 1), "k", None]  # any hashable class names
    grey = [np.asarray(Image.open(p)) for p in paths[CHARACTERS[1]]]
    support = [paths[CHARACTERS[0]][0], Image.open(paths[CHARACTERS[0]][1]), grey[0], grey[1][..., None], paths[CHARACTERS[2]][0]]
    support_labels = [labels[0], labels[0], labels[1], labels[1], labels[2]]
    query = [paths[c][2] for c in CHARACTERS]
    before = {k: v.clone() for k, v in learner.state_dict().items()}
    learner.eval()
    with torch.enable_grad() if name != "protonet" else torch.no_grad():
        expected = learner.adapt_and_predict(prepare(support, learner.preprocessing), torch.tensor([0, 0, 1, 1, 2]),
                                             prepare(query, learner.preprocessing))
    learner.train()
    with torch.inference_mode():  # MAML and Reptile switch gradients back on themselves
        got = learner.predict_task(support, support_labels, query)
    assert got.classes == labels and all(label in labels for label in got.labels)
    assert torch.allclose(got.logits, expected.detach(), atol=1e-5) and got.probabilities.shape == (3, 3)
    assert learner.training and all(torch.equal(v, before[k]) for k, v in learner.state_dict().items())


def test_bad_input_names_the_problem_and_the_fix(tmp_path):
    learner = protonet()
    image = write_omniglot_pngs(tmp_path, CHARACTERS[0], [0])[0]
    with pytest.raises(ConfigError, match=r"records no preprocessing.*Fix: .*learner.preprocessing = "):
        learner.predict_task([image], ["a"], [image])
    learner.preprocessing = describe(28, 1, "ink")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"Cannot read image .*broken.png.*Fix: replace it"):
        learner.predict_task([image, broken], ["a", "b"], [image])
    with pytest.raises(DataError, match=r"2 support images but 1 support labels"):
        learner.predict_task([image, image], ["a"], [image])
    with pytest.raises(DataError, match=r"float32 array .*Fix: give uint8 arrays"):
        learner.predict_task([np.zeros((5, 5), dtype=np.float32), image], ["a", "b"], [image])
    with pytest.raises(DataError, match=r"at least one support image and one query image"):
        learner.predict_task([image], ["a"], [])
    with pytest.raises(DataError, match=r"^A support set needs at least 2 classes, got 1 \('a'\).*probability 1\.000"):
        learner.predict_task([image, image], ["a", "a"], [image])  # one class: every query would be it, surely
    maml = _make("maml")
    maml.preprocessing = learner.preprocessing
    with pytest.raises(DataError, match=r"3-way head but the support set has 2 classes.*exactly 3 classes"):
        maml.predict_task([image, image], ["a", "b"], [image])
    learner.preprocessing = {**learner.preprocessing, "resize": "nearest"}
    with pytest.raises(ConfigError, match=r"Unknown preprocessing record"):
        learner.predict_task([image, image], ["a", "b"], [image])
