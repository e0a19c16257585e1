"""``python train.py model=<learner> hpo=mapping``: the shipped mapping's values reach every learner's optimizer.

train.py runs in this process (``runpy``, as tests/test_readme.py does) at a tiny size on the Omniglot arrays
shipped in the package. The proof that a value was used is the optimizer state of the checkpoint the run wrote.
"""

from __future__ import annotations

import io
import math
import runpy
import sys
from contextlib import redirect_stderr, redirect_stdout

import pytest
import torch

from lightning_meta.hpo.pool import ExperiencePool
from tests.conftest import REPO

TINY = ["data.train_episodes=4", "data.meta_batch_size=2", "data.val_episodes=2", "data.test_episodes=2",
        "data.eval_batch_size=2", "trainer.max_steps=2", "image.hidden=8", "logger=csv"]
LEARNER = {"maml": "MAML", "fomaml": "MAML", "reptile": "Reptile", "protonet": "ProtoNet"}


def _train(tmp_path, *overrides: str) -> str:
    """Runs train.py with ``overrides`` in ``tmp_path``; returns what it printed."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        patch.setattr(sys, "argv", [str(REPO / "train.py"), *overrides, f"paths.root_dir={tmp_path}"])
        patch.setenv("HYDRA_FULL_ERROR", "1")
        with redirect_stdout(out), redirect_stderr(out):
            try:
                runpy.run_path(str(REPO / "train.py"), run_name="__main__")
            except SystemExit as stop:
                assert stop.code in (None, 0), out.getvalue()[-3000:]
    return out.getvalue()


@pytest.mark.parametrize("model", list(LEARNER))
def test_hpo_mapping_applies_verifies_and_records_on_each_learner(tmp_path, model):
    extra = ["model.inner_steps_eval=2"] if model != "protonet" else []
    printed = _train(tmp_path, f"model={model}", "hpo=mapping", *TINY, *extra)
    assert "Test accuracy:" in printed

    runs = ExperiencePool(f"sqlite:///{tmp_path / 'lightning_meta_pool.db'}").frame()
    assert len(runs) == 1 and runs["task"].iloc[0] == f"{LEARNER[model]}/EpisodicDataModule"
    weight_decay = runs["hp_weight_decay"].iloc[0]
    kind = "opt_sgd" if model == "reptile" else "opt_adaptive"  # Reptile's outer step is SGD, the others' Adam
    assert runs[f"f_{kind}"].iloc[0] == 1.0

    (log,) = tmp_path.glob("logs/train/runs/*/train.log")
    (last,) = tmp_path.glob("logs/train/runs/*/checkpoints/last.ckpt")
    (group,) = torch.load(last, weights_only=False)["optimizer_states"][0]["param_groups"]
    assert math.isclose(group["weight_decay"], weight_decay, rel_tol=1e-9)
    if model == "reptile":  # its lr is the outer step size: declined, left at 1.0 and annealed; the run records no lr
        assert "HyperparameterMapping skips lr: Reptile's lr is its outer step size" in log.read_text()
        assert group["initial_lr"] == 1.0 and group["lr"] < 1.0 and "betas" not in group
        assert "hp_lr" not in runs or runs["hp_lr"].isna().all()
    else:
        decided = [line for line in log.read_text().splitlines() if f"on {LEARNER[model]}: " in line]
        assert len(decided) == 1 and ("HyperparameterMapping sets lr=" in decided[0]
                                      or "HyperparameterMapping keeps lr=" in decided[0])
        # kept or changed, the run records the rate its optimizer trained with
        assert math.isclose(group.get("initial_lr", group["lr"]), runs["hp_lr"].iloc[0], rel_tol=1e-9)
