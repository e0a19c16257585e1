"""Two-process DDP on CPU (gloo) gives the same meta-gradient as one process on the same tasks."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.conftest import REPO

SCRIPT = Path(__file__).with_name("ddp_meta_gradient.py")


def _run(out: Path, devices: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), str(out), str(devices)], cwd=out.parent, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out)


def test_two_rank_ddp_meta_gradient_equals_single_process(tmp_path):
    single_run, ddp_run = _run(tmp_path / "single.pt", 1), _run(tmp_path / "ddp.pt", 2)
    assert (single_run["world_size"], single_run["tasks_per_rank"]) == (1, 4)
    assert (ddp_run["world_size"], ddp_run["tasks_per_rank"]) == (2, 2)  # the meta-batch is sharded, not repeated
    single, ddp = single_run["grads"], ddp_run["grads"]
    assert single.keys() == ddp.keys()
    for name in single:
        assert torch.allclose(single[name], ddp[name], rtol=1e-4, atol=1e-6), name
    assert any(g.abs().sum() > 0 for g in single.values())


def test_every_rank_stops_when_one_rank_meets_a_nan_loss(tmp_path):
    """Rank 1 alone sees NaN at step 1: both ranks stop there without updating the weights, and neither waits
    forever in the gradient all-reduce."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    script = Path(__file__).with_name("ddp_divergence.py")
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    # gloo's threads may still abort the interpreter's exit on a loaded machine (SIGABRT, "terminate called without
    # an active exception") after everything below was written; ddp_divergence.py destroys the process group to
    # avoid it. Any other failure, or an abort before the ranks wrote their results, fails here.
    teardown_abort = done.returncode == -6 and done.stderr.strip().endswith("terminate called without an active exception")
    assert done.returncode == 0 or teardown_abort, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]  # the same decision and the same weights on both ranks
    assert ranks[0]["diverged"] and ranks[0]["batches"] == 2  # stopped at the second of 4 planned steps
    assert ranks[0]["final"] == ranks[0]["after_first_step"]  # the diverged step changed no weight
    assert math.isfinite(ranks[0]["final"])
