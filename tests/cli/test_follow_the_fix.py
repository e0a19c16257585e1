"""Every fix a message suggests works when followed: the bad command stops with a message that holds the fix, and the
command with the fix applied runs (meta-trains one step and tests) instead of stopping again on the same problem.

Each row: the bad overrides, a fragment of the message, the fix as the message writes it (overrides that replace the
bad ones of the same key) and the bad overrides the fix drops. Rows run in this process (``cli.train.run``), as
``train.py`` does after ``check_override_keys``; about 20 s on 2 CPU cores.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lightning_meta.cli.train import run
from lightning_meta.errors import LightningMetaError
from lightning_meta.launch import check_devices
from lightning_meta.preflight import check_override_keys
from tests.cli.test_train_cli import _cfg

ONE_STEP = ["data.train_episodes=1", "data.meta_batch_size=1", "data.val_episodes=1", "data.test_episodes=2",
            "data.eval_batch_size=2", "trainer.max_steps=1", "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0",
            "image.hidden=8", "logger=csv", "callbacks=none"]


def _folder(root: Path, per_class: int) -> Path:
    """An image folder of 10 classes with ``per_class`` 12x12 RGB images each."""
    for c in range(10):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (12, 12), (20 * c, 10 * i, 90)).save(root / f"class{c}" / f"{i}.png")
    return root


def _run(tmp_path: Path, overrides: list[str]) -> dict[str, float]:
    """What ``train.py OVERRIDES`` runs: the override check, then the run in this process."""
    check_override_keys(overrides)
    return run(_cfg(tmp_path, *overrides), overrides=overrides)


def _apply(bad: list[str], fix: list[str], drop: list[str]) -> list[str]:
    keys = {f.split("=", 1)[0].lstrip("+") for f in fix}
    kept = [o for o in bad if o not in drop and o.split("=", 1)[0].lstrip("+") not in keys]
    return [*kept, *fix]


@pytest.fixture(scope="module")
def last_ckpt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained")
    run(_cfg(out, *[o for o in ONE_STEP if o != "callbacks=none"], "test=false"))
    return out / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def two_per_class(tmp_path_factory) -> Path:
    return _folder(tmp_path_factory.mktemp("two"), 2)


ROWS = {  # name -> (bad overrides, message fragment, fix overrides, bad overrides the fix drops)
    "trainer key typo": (["+trainer.max_epoch=1"], "did you mean trainer.max_epochs?", ["trainer.max_epochs=1"],
                         ["+trainer.max_epoch=1"]),
    "model key typo (Hydra)": (["model=maml", "model.inner_lrr=0.4"], "did you mean model.inner_lr?",
                               ["model.inner_lr=0.4"], ["model.inner_lrr=0.4"]),
    "seed": (["seed=-1"], "seed=-1 is invalid", ["seed=42"], []),
    "train=false without a checkpoint": (["train=false"], "would test an untrained network", ["test_untrained=true"], []),
    "ckpt_path=last in a fresh folder": (["train=false", "ckpt_path=last"], "no last checkpoint in",
                                         ["ckpt_path={last}"], []),
    "MAML head narrower than the test ways": (["model=maml", "data.test.ways=20"], "set data.test.ways=5",
                                              ["data.test.ways=5"], []),
    "trainer=gpu without a GPU": (["trainer=gpu"], "Fix: trainer=cpu", ["trainer=cpu"], []),
    "folder: more shots + queries than images": (
        ["data=folder", "data.root={two}", "image.size=16", "data.dataset_kwargs.ratios=[0.5,0.2,0.3]",
         "data.train.ways=2", "data.test.ways=2", "data.train.queries=3", "data.test.queries=3"],
        "make shots + queries <= 2", ["data.train.queries=1", "data.test.queries=1"], []),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_following_the_fix_the_message_suggests_starts_the_run(name, tmp_path, last_ckpt, two_per_class, monkeypatch):
    monkeypatch.setattr("lightning_meta.launch.available_devices", lambda kind: 0)  # the same on a GPU machine
    bad, fragment, fix, drop = ROWS[name]
    paths = {"last": last_ckpt, "two": two_per_class}
    bad, fix = [o.format(**paths) for o in bad], [o.format(**paths) for o in fix]
    with pytest.raises(LightningMetaError) as stop:
        _run(tmp_path / "bad", [*ONE_STEP, *bad])
    message = str(stop.value)
    assert fragment in message and "\n" not in message.strip()
    assert all(f.split("=", 1)[0].rsplit(".", 1)[-1] in message for f in fix), (fix, message)  # it names what to set
    metrics = _run(tmp_path / "fixed", [*ONE_STEP, *_apply(bad, fix, drop)])
    assert 0.0 <= metrics["test_acc"] <= 1.0


def test_a_folder_of_one_image_per_class_gets_a_fix_that_works(tmp_path):
    one = _folder(tmp_path / "one", 1)
    bad = [*ONE_STEP, "data=folder", f"data.root={one}", "image.size=16", "data.dataset_kwargs.ratios=[0.5,0.2,0.3]",
           "data.train.ways=2", "data.test.ways=2"]
    with pytest.raises(LightningMetaError) as stop:
        _run(tmp_path / "bad", bad)
    assert "make shots + queries <= 1" not in str(stop.value)  # following it, queries=0 is refused by another check
    assert "give every class at least 2 images" in str(stop.value)
    two = _folder(tmp_path / "two", 2)
    fixed = [f"data.root={two}" if o.startswith("data.root=") else o for o in bad]
    _run(tmp_path / "fixed", [*fixed, "data.train.queries=1", "data.test.queries=1"])


def test_devices_beyond_the_machine_name_the_count_it_has(monkeypatch):
    monkeypatch.setattr("lightning_meta.launch.available_devices", lambda kind: 1)
    with pytest.raises(LightningMetaError, match=r"^trainer\.devices=4 asks for 4 devices but this machine has 1 CUDA "
                                                 r"device\(s\)\. Fix: trainer\.devices=1, or trainer=cpu"):
        check_devices({"accelerator": "cuda", "devices": 4})
    with pytest.raises(LightningMetaError, match=r"asks for device index 3 .* Fix: trainer\.devices=1"):
        check_devices({"accelerator": "gpu", "devices": [0, 3]})
    check_devices({"accelerator": "gpu", "devices": 1})
    check_devices({"accelerator": "cpu", "devices": 4})  # CPU processes: any number
    check_devices({"accelerator": "auto", "devices": 2})  # trainer=ddp on a CPU machine
