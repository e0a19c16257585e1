"""One error boundary for every console entry point: a user's mistake is one line and exit 1, a bug is the
traceback, "this is a bug" and exit 2, and ``HYDRA_FULL_ERROR=1`` lets everything through."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lightning_meta.cli import boundary
from lightning_meta.cli.main import main as console_main
from lightning_meta.errors import ConfigError
from lightning_meta.hpo import fit_command
from lightning_meta.launch import check_seed
from tests.conftest import REPO

BAD = {  # command line -> the start of its one line on stderr
    "train": (["lightning-meta", "train", "model=maml", "model.lr_schedule=exponential"], "Error: MAML got lr_schedule"),
    "train.py": (["train.py", "model=maml", "model.lr_schedule=exponential"], "Error: MAML got lr_schedule"),
    "seed": (["train.py", "seed=-1"], "Error: seed=-1 is invalid: give an integer from 0 to 4294967295"),
    "test": (["lightning-meta", "test", "ckpt_path=missing.ckpt"], "Error: "),
    "predict": (["lightning-meta", "predict", "ckpt_path=missing.ckpt", "support=none", "query=none"],
                "lightning-meta predict: "),
    "fit": (["lightning-meta", "fit", "out.mapping", "mapping=oracle"], "lightning-meta fit: mapping='oracle' is unknown"),
    "suggest": (["lightning-meta", "suggest", "--features", "n_classes"], "lightning-meta suggest: "),
    "collect": (["pool.collect", "shard=3/2"], "python -m pool.collect: shard='3/2' is invalid"),
}


def _command(argv: list[str]) -> list[str]:
    if argv[0] == "train.py":
        return [sys.executable, str(REPO / "train.py"), *argv[1:]]
    if argv[0] == "pool.collect":
        return [sys.executable, "-m", "pool.collect", *argv[1:]]
    return [sys.executable, "-m", "lightning_meta.cli.main", *argv[1:]]


@pytest.mark.parametrize("name", list(BAD))
def test_every_command_answers_a_bad_argument_with_one_line_and_exit_1(name, tmp_path):
    argv, start = BAD[name]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(_command(argv), capture_output=True, text=True, timeout=300, cwd=tmp_path if name != "collect"
                          else REPO, env={**env, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith(start), done.stderr[-2000:]


def test_an_unexpected_error_says_it_is_a_bug_shows_the_traceback_and_exits_2(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("something we did not foresee")

    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.setattr(fit_command, "fit_mapping", broken)
    with pytest.raises(SystemExit) as stop:
        console_main(["fit", "out.mapping"])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert "Traceback" in err and "RuntimeError: something we did not foresee" in err
    assert err.strip().splitlines()[-1] == boundary.BUG.format(command="lightning-meta fit", kind="RuntimeError")


def test_hydra_full_error_lets_everything_through(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("something we did not foresee")

    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    monkeypatch.setattr(fit_command, "fit_mapping", broken)
    with pytest.raises(RuntimeError, match="did not foresee"):
        console_main(["fit", "out.mapping"])


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "abc", True])
def test_a_seed_numpy_would_refuse_or_lightning_would_truncate_is_refused_at_the_door(seed):
    with pytest.raises(ConfigError, match=f"seed={seed!r} is invalid"):
        check_seed(seed)
    check_seed(0)
    check_seed(2**32 - 1)
