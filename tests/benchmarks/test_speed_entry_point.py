"""The speed benchmark's entry point runs end to end: correctness gate, timings, table and JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_quick_cpu_run_checks_the_meta_gradient_and_writes_results(repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "speed_cpu"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(repo_root / "benchmarks" / "speed" / "run.py"), "--quick", "--device", "cpu", "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    result = json.loads(out.with_suffix(".json").read_text())
    checks = {c["name"]: c for c in result["settings"]["meta_gradient_checks"]}
    assert checks["lightning_meta"]["passed"]
    assert checks["lightning_meta"]["max_relative_error"] <= 1e-4
    ours = [r for r in result["rows"] if r["library"] == "lightning_meta"]
    assert ours and all(r["tasks_per_s"] > 0 for r in ours)
    assert all(r["peak_mb"] is not None and r["peak_mb"] >= 0 for r in ours)
    assert all(f["flops_per_task"] > 0 and f["tasks_per_s"] > 0 for f in result["floors"])

    baseline_rows = [r for r in result["rows"] if r["library"] == "learn2learn"]
    if result["machine"]["learn2learn"] == "not installed":
        assert not baseline_rows
        assert "baseline skipped" in done.stdout
    else:
        assert baseline_rows and all(r["tasks_per_s"] > 0 for r in baseline_rows)
        assert checks["learn2learn"]["passed"]

    table = out.with_suffix(".md").read_text()
    assert "| maml | omniglot | 5-way 1-shot, 15 queries | 4 |" in table
    assert checks["lightning_meta (batched)"]["passed"]
    assert "meta-gradient check" in table.lower()
    assert out.with_suffix(".png").stat().st_size > 0
