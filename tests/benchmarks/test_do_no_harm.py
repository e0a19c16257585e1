"""do_no_harm.py --methods / --append: the arms run again replace their earlier rows, the others are kept, and a
run with no defaults to compare with stops before it trains."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.benchmarks.hpo_modules import HPO, load


def test_append_keeps_the_other_methods_rows_and_drops_the_ones_run_again(tmp_path):
    do_no_harm = load("do_no_harm")
    path = tmp_path / "rows.jsonl"
    rows = [{"method": m, "task": "t", "seed": 0, "score": 0.5} for m in ("defaults", "zero_config", "task_blind")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    kept = do_no_harm._earlier_rows(path, [do_no_harm.TASK_BLIND])
    assert [r["method"] for r in kept] == ["defaults", "zero_config"]
    with pytest.raises(SystemExit, match="Fix: run without --append"):
        do_no_harm._earlier_rows(tmp_path / "missing.jsonl", [do_no_harm.TASK_BLIND])


def test_a_run_without_defaults_to_compare_with_stops_before_training(tmp_path):
    done = subprocess.run([sys.executable, str(HPO / "do_no_harm.py"), "--methods", "task_blind", "--out",
                           str(tmp_path / "rows")], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("Every arm is compared with the defaults")
    assert not (tmp_path / "rows.jsonl").exists()


def test_the_ceiling_arm_trains_each_tasks_best_recorded_configuration_and_divides_by_it():
    import pandas as pd

    do_no_harm = load("do_no_harm")
    frame = pd.DataFrame({"task": ["f/a", "f/a", "f/b"], "objective": [0.2, 0.9, 0.5], "hp_lr": [0.1, 0.01, 0.3],
                          "hp_weight_decay": [0.0, 1e-4, 1e-3]})
    assert do_no_harm.best_recorded_configs(frame) == {"f/a": {"lr": 0.01, "weight_decay": 1e-4},
                                                       "f/b": {"lr": 0.3, "weight_decay": 1e-3}}
    rows = pd.DataFrame([{"method": m, "task": t, "family": "f", "seed": 0, "score": s} for m, t, s in [
        ("best_recorded", "f/a", 0.8), ("best_recorded", "f/b", 0.5), ("defaults", "f/a", 0.4),
        ("defaults", "f/b", 0.5), ("zero_config", "f/a", 0.8), ("zero_config", "f/b", 0.25)]])
    table = do_no_harm.ceiling_table(rows, ["f"])
    assert "| f | 0.750 | 0.750 |" in table  # defaults (0.5 + 1.0) / 2, zero-config (1.0 + 0.5) / 2
