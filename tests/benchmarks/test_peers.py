"""The transfer-HPO peers benchmark (benchmarks/hpo/peers.py) end to end on a small hand-made table.

Syne Tune is a benchmark-only dependency (benchmarks/hpo/requirements-peers.txt), so the protocol
our mappings go through and the snapping run without it; the peers' own run needs it installed.
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.benchmarks.hpo_modules import HPO, load

TASKS = {"car": 0.2, "kc1": 0.5, "phoneme": 0.8}  # names the loader has OpenML facts for


def write_table(root: Path) -> None:
    """An HPOBench-MLP-format grid of 144 configurations whose best learning rate moves with the task."""
    folder = root / "hpobench_mlp"
    folder.mkdir(parents=True)
    grid = list(itertools.product([1e-8, 1e-4, 1e-2, 1.0], [4, 32, 256], [1, 3], [1e-5, 1e-3, 1.0], [16, 1024]))
    header = "dataset,openml_task_id,grid_index,alpha,batch_size,depth,learning_rate_init,width," + ",".join(
        f"val_bal_acc_s{i}" for i in range(5))
    rows = []
    for task, (name, u) in enumerate(TASKS.items()):
        for i, (alpha, batch, depth, lr, width) in enumerate(grid):
            score = 0.9 - (np.log10(lr) / 5 + 1 - u) ** 2 - 0.01 * depth * u - 0.02 * np.log10(batch) / 3
            rows.append(f"{name},{task},{i},{alpha},{batch},{depth},{lr},{width}," + ",".join([f"{score:.6f}"] * 5))
    with gzip.open(folder / "hpobench_mlp_tabular.csv.gz", "wt") as handle:
        handle.write("\n".join([header, *rows]) + "\n")


def run_quick(root: Path, *extra: str) -> str:
    out = root / "hpo_peers"
    done = subprocess.run(
        [sys.executable, str(HPO / "peers.py"), "--quick", "--tasks", "1", "--data", str(root), "--out", str(out), *extra],
        cwd=root, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert out.with_suffix(".png").is_file()
    return out.with_suffix(".md").read_text()


def regrets(report: str, method: str) -> list[float]:
    line = next(line for line in report.splitlines() if line.startswith(f"| {method} |"))
    return [float(cell) for cell in re.findall(r"\| ([0-9.]+)(?= \|)", line)]


def test_snapping_picks_the_nearest_configuration_not_run_yet(tmp_path):
    write_table(tmp_path)
    metadatasets, regret = load("metadatasets"), load("regret")
    dataset = metadatasets.load("hpobench_mlp", tmp_path)
    table = regret.Table(dataset, "car")
    used = np.zeros(len(table.y), dtype=bool)
    x = table.x[17]
    assert table.snap_unused(x, used) == 17
    used[17] = True
    second = table.snap_unused(x, used)
    assert second != 17
    assert np.linalg.norm(table.x[second] - x) == pytest.approx(np.sort(np.linalg.norm(table.x - x, axis=1))[1])
    order = []
    for _ in range(len(table.y) - 1):  # the same proposal over and over visits every other row once
        order.append(table.snap_unused(x, used))
        used[order[-1]] = True
    assert sorted(order + [17]) == list(range(len(table.y)))


def test_quick_run_of_our_mappings_writes_the_table(tmp_path):
    write_table(tmp_path)
    report = run_quick(tmp_path, "--no-peers")
    for method in ("random search", "best-on-average", "nearest-task", "GBM", "meta-surrogate (zero-shot)",
                   "best-on-average search", "meta-surrogate search"):
        values = regrets(report, method)
        assert len(values) == 2 and all(0.0 <= v <= 1.0 for v in values)  # regret@1, @10 (20 trials)
        assert values[1] <= values[0]
    assert "| ZeroShotTransfer |" not in report
