"""The simulated searches of benchmarks/hpo/search_design.py (also the callback's arm of peers_families.py) run what
the callback runs: the rule's decision, the user's values, then the search's proposals, never one twice."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.benchmarks.hpo_modules import load


def test_simulated_callback_fits_start_from_the_rule_and_the_user_values():
    design = load("search_design")
    frame = load("families_lofo").family_frame(f"sqlite:///{design.ROOT / 'lightning_meta/assets/mapping/families.db'}")
    mappings = load("lightning_meta.hpo.mappings").MAPPINGS
    index = mappings["conditional_best_on_average"]().fit(frame, design.SPACE).index
    mapping = mappings["conditional_best_on_average"]().fit(frame[frame["family"] != "sequence_gru"], design.SPACE)
    name = sorted(frame.loc[frame["family"] == "sequence_gru", "task"].unique())[0]
    task = design.SimulatedTask(index, name, frame)

    runs = task.callback_runs(mapping, np.random.default_rng(0))

    configs = pd.DataFrame(runs)[["hp_lr", "hp_weight_decay"]]
    assert len(runs) == design.FITS and not configs.duplicated().any()
    user = task.user_values()
    assert any(np.isclose(r["hp_lr"], user["lr"]) and np.isclose(r["hp_weight_decay"], user["weight_decay"])
               for r in runs[:2])
    assert design.picked(runs) == max(runs, key=lambda r: r["objective"])["truth"]
    assert design.picked(runs[:1]) == runs[0]["truth"]
