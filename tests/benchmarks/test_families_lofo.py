"""The leave-one-family-out report's arithmetic: repeats averaged per task, ratios paired with the re-run best."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.benchmarks.hpo_modules import load


def rows() -> pd.DataFrame:
    lofo = load("families_lofo")
    family = next(iter(lofo.FAMILIES))
    a, b = f"{family}/a", f"{family}/b"
    return pd.DataFrame([
        {"method": "m", "task": a, "family": family, "repeat": 0, "val_acc": 0.6, "hp_lr": 0.01, "hp_weight_decay": 0.0},
        {"method": "m", "task": a, "family": family, "repeat": 1, "val_acc": 0.8, "hp_lr": 0.01, "hp_weight_decay": 0.0},
        {"method": "m", "task": b, "family": family, "repeat": 0, "val_acc": 0.9, "hp_lr": 0.02, "hp_weight_decay": 0.0},
        {"method": "best_of_30_rerun", "task": a, "family": family, "repeat": 0, "val_acc": 0.8, "hp_lr": 0.1,
         "hp_weight_decay": 0.0},
        {"method": "best_of_30_rerun", "task": b, "family": family, "repeat": 0, "val_acc": 0.6, "hp_lr": 0.1,
         "hp_weight_decay": 0.0},
    ]), family


def test_repeats_are_averaged_per_task_and_counted() -> None:
    lofo = load("families_lofo")
    frame, _ = rows()
    table = lofo.per_task(frame).set_index(["method", "task"])
    assert table["val_acc"].to_dict()[("m", frame["task"][0])] == pytest.approx(0.7)
    assert table["repeats"].to_dict()[("m", frame["task"][0])] == 2


def test_paired_ratio_divides_by_the_rerun_of_the_same_task() -> None:
    lofo = load("families_lofo")
    frame, family = rows()
    results = lofo.per_task(frame)
    line = next(line for line in lofo.paired_with_rerun(results) if line.startswith("| m |"))
    # task a: 0.7 / 0.8 = 0.875; task b: 0.9 / 0.6 = 1.5; mean 1.1875, min 0.875 (printed 0.87)
    assert "1.188 (0.87)" in line
