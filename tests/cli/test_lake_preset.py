"""The Lake one-shot configs: ``data=omniglot_lake`` composes as documented, the preset runs end to end at a tiny size."""

from __future__ import annotations

from lightning_meta.cli.train import run
from lightning_meta.data.omniglot import load_omniglot
from lightning_meta.learners import load_learner
from tests.cli.test_config_composition import _compose
from tests.cli.test_train_cli import _cfg


def test_lake_data_config_and_overrides_give_the_lake_protocol():
    cfg = _compose("data=omniglot_lake")
    assert cfg.data.dataset == "omniglot" and cfg.data.dataset_kwargs.split == "lake"
    assert cfg.data.test == {"ways": 20, "shots": 1, "queries": 15, "within_alphabet": True, "drawers": "any"}
    assert not cfg.data.train.within_alphabet
    by_hand = _compose("data=omniglot", "data.dataset_kwargs.split=lake", "+data.test.within_alphabet=true")
    assert by_hand.data.dataset_kwargs.split == "lake" and by_hand.data.test.within_alphabet
    lake_runs = _compose("data=omniglot_lake", "data.test.queries=1", "data.test.drawers=lake")  # no + needed
    assert lake_runs.data.test == {"ways": 20, "shots": 1, "queries": 1, "within_alphabet": True, "drawers": "lake"}


def test_protonet_lake_preset_trains_on_the_background_set_and_tests_within_alphabets(tmp_path):
    preset = _compose("+experiment=protonet_omniglot_lake")
    assert preset.data.trainval and preset.data.train.ways == 60 and preset.trainer.max_epochs == 40
    assert preset.data.test == {"ways": 20, "shots": 1, "queries": 15, "within_alphabet": True, "drawers": "any"}
    tiny = ["data.train_episodes=2", "data.test_episodes=4", "data.eval_batch_size=2", "model.backbone.hidden=8",
            "trainer.max_epochs=1", "logger=csv"]
    metrics = run(_cfg(tmp_path, "+experiment=protonet_omniglot_lake", *tiny))  # 2 steps of 60-way episodes
    assert metrics["test_episodes"] == 4 and 0.0 <= metrics["test_acc"] <= 1.0
    learner = load_learner(tmp_path / "checkpoints" / "last.ckpt")  # EMA state included, loaded with weights_only
    test = load_omniglot(split="lake")["test"]
    images = [(255 - test.images[i, 0].numpy()) for i in (0, 1, 20, 21)]  # white paper again, as a scan would be
    assert learner.predict_task(images[::2], ["first", "second"], images[1::2]).classes == ["first", "second"]
