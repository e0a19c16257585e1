"""The text (Python help topics) and tabular (font letters) data sets: disjoint class splits, shapes, episodes, and a
tiny ``train.py`` run of each experiment preset."""

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from lightning_meta.cli.train import run
from lightning_meta.data import EpisodicDataModule
from lightning_meta.data.font_letters import CHARACTERS, FEATURES, FONTS, FontLetters, glyph_features
from lightning_meta.data.text_topics import PydocTopics, token_id, unique_tokens
from lightning_meta.errors import ConfigError
from tests.conftest import REPO

SPLITS = ("train", "val", "test")


def test_pydoc_topics_split_into_disjoint_topics_of_token_id_chunks():
    parts = {s: PydocTopics(s, chunk_tokens=16, min_chunks=10, vocab_size=1000) for s in SPLITS}
    names = [set(parts[s].classes) for s in SPLITS]
    assert not (names[0] & names[1]) and not (names[1] & names[2]) and not (names[0] & names[2])
    for part in parts.values():
        ids, labels = part.tensors
        assert ids.dtype == torch.int64 and ids.shape[1] == 16 and ids.min() >= 1 and ids.max() < 1000
        assert torch.bincount(labels).min() >= 10 and labels.max() == len(part.classes) - 1
    again = PydocTopics("test", chunk_tokens=16, min_chunks=10, vocab_size=1000)
    assert again.classes == parts["test"].classes and torch.equal(again.tensors[0], parts["test"].tensors[0])


def test_default_topics_under_this_python():
    sizes = [len(PydocTopics(s).classes) for s in SPLITS]
    assert sum(sizes) >= 25 and min(sizes) >= 5  # 20/10/9 under Python 3.11; other versions have other texts


def test_a_passage_two_topics_share_stays_with_the_shorter_one():
    shared = [f"w{i}" for i in range(10)]
    texts = {"short": ["a", *shared], "long": ["b", "c", *shared, "d", "e", "f"], "other": ["x"] * 20}
    kept = unique_tokens(texts, ngram=8)
    assert kept["short"] == texts["short"] and kept["long"] == ["b", "c", "d", "e", "f"] and kept["other"] == ["x"] * 20


def test_token_ids_are_pinned():
    # trained embeddings are indexed by these ids: a change of the hash would silently break every checkpoint
    assert [token_id(t, 16384) for t in ("lambda", "yield", "(")] == [3592, 10796, 9827]


def test_glyph_features_of_a_filled_square_and_a_ring():
    square = np.zeros((20, 20), dtype=bool)
    square[5:15, 5:15] = True  # 10 x 10 px, bottom row 14, drawn at pen (5, 15) with 10 px per em
    f = dict(zip(FEATURES, glyph_features(square, (5, 15), 10)))
    assert f["x-box"] == 0 and f["y-box"] == 0.1 and f["width"] == 1 and f["height"] == 1 and f["onpix"] == 1
    assert abs(f["x-bar"]) < 1e-12 and abs(f["y-bar"]) < 1e-12 and f["x-ege"] == 1 and f["y-ege"] == 1
    ring = square.copy()
    ring[8:12, 8:12] = False
    g = dict(zip(FEATURES, glyph_features(ring, (5, 15), 10)))
    assert g["x-ege"] == pytest.approx((6 * 1 + 4 * 2) / 10) and g["onpix"] == pytest.approx(0.84)


def test_font_letters_split_characters_and_standardize_with_training_statistics():
    parts = {s: FontLetters(s) for s in SPLITS}
    assert sorted(c for p in parts.values() for c in p.classes) == sorted(CHARACTERS)  # each character in one split
    assert [len(p.classes) for p in parts.values()] == [31, 16, 15]
    for part in parts.values():
        x, y = part.tensors
        assert x.dtype == torch.float32 and x.shape == (len(FONTS) * len(part.classes), 16) and x.isfinite().all()
        assert torch.bincount(y).tolist() == [len(FONTS)] * len(part.classes)
    x = parts["train"].tensors[0]
    assert torch.allclose(x.mean(0), torch.zeros(16), atol=1e-5) and torch.allclose(x.std(0, unbiased=False), torch.ones(16), atol=1e-4)


@pytest.mark.parametrize("make, shape, dtype", [(lambda s: PydocTopics(s), (32,), torch.int64),
                                                (lambda s: FontLetters(s), (16,), torch.float32)])
def test_episodes_of_both_data_sets(make, shape, dtype):
    dm = EpisodicDataModule(dataset={s: make(s) for s in SPLITS}, train={"ways": 5, "shots": 2, "queries": 3},
                            test={"ways": 5, "shots": 1, "queries": 4}, meta_batch_size=2, eval_batch_size=3,
                            train_episodes=4, val_episodes=3, test_episodes=3)
    sx, sy, qx, qy = next(iter(dm.train_dataloader()))
    assert sx.shape == (2, 10, *shape) and qx.shape == (2, 15, *shape) and sx.dtype == dtype
    assert sorted(sy[0].tolist()) == sorted(list(range(5)) * 2) and sorted(qy[0].tolist()) == sorted(list(range(5)) * 3)
    sx, sy, qx, qy = next(iter(dm.test_dataloader()))
    assert sx.shape == (3, 5, *shape) and qx.shape == (3, 20, *shape)


TINY = ["data.train_episodes=4", "data.meta_batch_size=2", "data.val_episodes=2", "data.test_episodes=4",
        "data.eval_batch_size=2", "trainer.max_epochs=1", "logger=csv", "callbacks=none"]


@pytest.mark.parametrize("experiment", ["protonet_text", "maml_text", "protonet_tabular", "maml_tabular"])
def test_each_preset_meta_trains_and_tests(tmp_path, experiment):
    extra = ["model.inner_steps_eval=1"] if experiment.startswith("maml") else []
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"+experiment={experiment}", *TINY, *extra])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.root_dir = str(tmp_path)
    metrics = run(cfg)
    assert metrics["test_episodes"] == 4 and 0.0 <= metrics["test_acc"] <= 1.0 and np.isfinite(metrics["train_loss"])
    assert list(tmp_path.glob("csv/*/metrics.csv"))


def test_a_vocabulary_without_room_for_tokens_is_refused():
    with pytest.raises(ConfigError, match="vocab_size=1 leaves no id for tokens"):
        PydocTopics("train", vocab_size=1)
