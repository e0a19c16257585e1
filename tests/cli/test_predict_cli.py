"""``lightning-meta predict`` on a checkpoint trained for two steps here: one line per query, errors in one line."""

from __future__ import annotations

import shutil

import pytest
import torch

from lightning_meta.cli.main import main as console_main
from lightning_meta.cli.train import run
from lightning_meta.data.preprocessing import describe
from lightning_meta.learners import ProtoNet, load_learner
from tests.cli.test_train_cli import TINY, _cfg
from tests.learners.test_predict_task import CHARACTERS, write_omniglot_pngs


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    run(_cfg(out, *TINY, "test=false"))  # ProtoNet on Omniglot, 2 training steps
    return out / "checkpoints" / "last.ckpt"


@pytest.fixture
def task(tmp_path):
    """``support/<alphabet>/*.png`` (2 drawings of 3 characters) and ``query/`` (one more drawing each, one nested)."""
    for character in CHARACTERS:
        write_omniglot_pngs(tmp_path / "support" / character.split("/")[0], character, [0, 1])
    for character in CHARACTERS[:2]:
        write_omniglot_pngs(tmp_path / "query", character, [9])
    write_omniglot_pngs(tmp_path / "query" / "more", CHARACTERS[2], [9])
    return tmp_path / "support", tmp_path / "query"


def predict(capsys, *args: str) -> list[list[str]]:
    console_main(["predict", *args])
    return [line.split("\t") for line in capsys.readouterr().out.splitlines()]


def test_checkpoint_records_learner_and_preprocessing_in_plain_types(checkpoint):
    record = torch.load(checkpoint, map_location="cpu", weights_only=True)["lightning_meta"]
    assert record == {"learner": "ProtoNet", "backbone": {"_target_": "lightning_meta.nets.Conv4", "in_channels": 1,
                      "out_features": None, "hidden": 64, "downsample": "pool", "image_size": 28},
                      "preprocessing": describe(28, 1, "ink"), "training_augmentation": None}
    learner = ProtoNet.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    assert learner.preprocessing == describe(28, 1, "ink")


def test_predict_prints_each_query_file_with_the_class_the_learner_predicts(checkpoint, task, capsys):
    support, query = task
    lines = predict(capsys, f"ckpt_path={checkpoint}", f"support={support}", f"query={query}")
    queries = sorted(p.relative_to(query) for p in query.rglob("*.png"))
    assert [line[0] for line in lines] == [str(q) for q in queries] and len(lines) == 3
    learner = load_learner(checkpoint)
    names = sorted(c.split("/")[0] for c in CHARACTERS)
    files = [p for name in names for p in sorted((support / name).glob("*.png"))]
    expected = learner.predict_task(files, [p.parent.name for p in files], [query / q for q in queries])
    assert [line[1] for line in lines] == expected.labels and set(expected.labels) <= set(names)
    assert [float(line[2]) for line in lines] == pytest.approx(expected.probabilities.max(-1).values.tolist(), abs=1e-3)


def _one_line_exit(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exc:
        console_main(["predict", *args])
    message = str(exc.value.code)
    assert message.startswith("lightning-meta predict: ") and "\n" not in message
    return message


def test_errors_name_the_problem_and_the_fix_in_one_line(checkpoint, task, capsys, tmp_path):
    support, query = task
    args = [f"ckpt_path={checkpoint}", f"support={support}", f"query={query}"]
    (support / "Empty").mkdir()
    assert "Empty holds no image files. Add images to it or remove the folder" in _one_line_exit(capsys, *args)
    (support / "Empty").rmdir()
    (query / "broken.png").write_bytes(b"\x89PNG truncated")
    assert "Cannot read image" in _one_line_exit(capsys, *args) and "broken.png" in _one_line_exit(capsys, *args)
    (query / "broken.png").unlink()
    old = tmp_path / "old.ckpt"
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    del state["lightning_meta"]
    torch.save(state, old)
    message = _one_line_exit(capsys, f"ckpt_path={old}", *args[1:])
    assert "records no preprocessing" in message and "Fix: retrain" in message
    assert "Missing query. Fix: lightning-meta predict ckpt_path=PATH" in _one_line_exit(capsys, *args[:2])
    assert "does not exist" in _one_line_exit(capsys, f"ckpt_path={tmp_path / 'none.ckpt'}", *args[1:])
    shutil.rmtree(query)
    assert "Query folder" in _one_line_exit(capsys, *args)
