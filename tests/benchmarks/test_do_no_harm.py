"""do_no_harm.py --append: the arms run again replace their earlier rows, the others are kept."""

from __future__ import annotations

import json

import pytest

from tests.benchmarks.hpo_modules import load


def test_append_keeps_the_other_methods_rows_and_drops_the_ones_run_again(tmp_path):
    do_no_harm = load("do_no_harm")
    path = tmp_path / "rows.jsonl"
    rows = [{"method": m, "task": "t", "seed": 0, "score": 0.5} for m in ("defaults", "zero_config", "task_blind")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    kept = do_no_harm._earlier_rows(path, [do_no_harm.TASK_BLIND])
    assert [r["method"] for r in kept] == ["defaults", "zero_config"]
    with pytest.raises(SystemExit, match="Fix: run without --append"):
        do_no_harm._earlier_rows(tmp_path / "missing.jsonl", [do_no_harm.TASK_BLIND])
