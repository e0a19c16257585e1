"""``python -m pool.collect``: real Lightning trainings over task families, recorded in the pool.

The mapping can only be as good as its experience, so this command makes some: every task of the
chosen families (``pool.families``: data x model x optimizer) is trained ``trials``
times, trial ``t`` with draw ``t`` of a random search seeded by ``(seed, task)``. Each run goes
through the real ``HyperparameterMapping`` callback, driven by a ``RandomSearch`` mapping, so the
configuration is applied and the outcome recorded (task, features, params, final/best val_acc,
curve, status, duration) exactly as in a user's fit: the features in the pool are the ones the
callback computes when it later proposes.

Jobs run in this process (``workers=1``) or in ``workers`` spawned processes writing to one pool;
``shard=i/n`` takes every n-th job so several machines share the work on one PostgreSQL pool.
A job whose configuration the pool already holds as complete or diverged is skipped, so an
interrupted collection resumes where it stopped. ``lightning-meta fit OUT pool=...`` then fits a mapping on it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
import warnings
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from lightning_meta.cli.boundary import guarded
from lightning_meta.configs import CONF_DIR
from lightning_meta.errors import ConfigError
from lightning_meta.hpo.mappings.base import Mapping, observed_keys
from lightning_meta.hpo.space import SearchSpace

QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning_meta.hpo.callback")  # per-run chatter
DONE = ("complete", "diverged")  # outcomes a resumed collection keeps; failed and running runs are redone
log = logging.getLogger(__name__)

USAGE = """usage: python -m pool.collect [OVERRIDES...]     (from the repository root)

Trains every task of the task families `trials` times (trial 0 with the task's own defaults, the
others with seeded random configurations) and records each run in the experience pool (resumable:
runs already recorded are skipped). `lightning-meta fit OUT pool=...` then fits a mapping on it.

overrides (conf/collect.yaml): pool=URL families=all|[name,...] trials=N workers=N shard=I/N
  seed=N probe=true|false space.lr.high=0.1 ...
families: omniglot_cnn_adam omniglot_resnet_sgd digits_mlp_sgd tabular_mlp_adamw mnist1d_cnn_adam
  small_tables_mlp_adam text_transformer sequence_gru regression_mlp finetune_cnn sequence_lstm
"""


class RandomSearch(Mapping):
    """Proposes configuration ``trial`` of ``job_config``; predicts nothing (NaN).

    It lets the ``HyperparameterMapping`` callback run a random search: the callback applies and
    records the configuration exactly as it would a learned mapping's proposal.
    """

    def __init__(self, space: SearchSpace, task: str, trial: int, seed: int = 0) -> None:
        self.space = space
        self.feature_names: list[str] = []
        self.config = job_config(space, task, trial, seed)

    def _fit(self, frame: pd.DataFrame, scores: np.ndarray) -> None:
        """Random search learns nothing from past runs."""

    def suggest(self, features, k=1, observed=None, candidates=2000, seed=0) -> list[dict]:
        return [dict(self.config)]

    def predict_encoded(self, features, x, observed=None):
        return np.full(len(x), np.nan), np.full(len(x), np.nan)


def trial_config(space: SearchSpace, task: str, trial: int, seed: int = 0) -> dict[str, Any]:
    """Configuration ``trial`` of ``task``: row ``trial`` of a stream seeded by ``(seed, task)``.

    Rows do not depend on how many trials are drawn, so adding trials later extends the search.
    """
    if trial < 0:
        raise ConfigError(f"trial={trial} is invalid: give trial >= 0.")
    stream = zlib.crc32(f"{seed}/{task}".encode())
    return space.sample(trial + 1, seed=stream)[trial]


def job_config(space: SearchSpace, task: str, trial: int, seed: int = 0) -> dict[str, Any]:
    """Trial 0 runs the task's own defaults (the values its user starts from, clipped into ``space``), so every
    task of the pool says how its defaults score; trial ``t > 0`` is ``trial_config(space, task, t, seed)``."""
    if trial != 0:
        return trial_config(space, task, trial, seed)
    from pool.families import task_by_key

    defaults = task_by_key(task).defaults()
    config = trial_config(space, task, 0, seed)
    for p in space.params:
        if p.name in defaults and p.type != "categorical":
            config[p.name] = p.check(min(max(defaults[p.name], p.low), p.high))
    return config


def resolve_families(families: Any) -> list[str]:
    """``all`` or a list of family names, checked."""
    from pool.families import FAMILIES

    if isinstance(families, str):
        if families != "all":
            raise ConfigError(f"families={families!r} is invalid: give 'all' or a list, e.g. families=[digits_mlp_sgd].")
        return list(FAMILIES)
    names = [str(f) for f in families]
    unknown = [f for f in names if f not in FAMILIES]
    if unknown or not names:
        raise ConfigError(f"families={names!r}: {unknown or 'empty list'} unknown; use some of {list(FAMILIES)}.")
    return names


def parse_shard(shard: Any) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``."""
    index, sep, count = str(shard).partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not sep or not 0 <= i < n:
        raise ConfigError(f"shard={shard!r} is invalid: give I/N with 0 <= I < N, e.g. shard=0/2.")
    return i, n


def plan(cfg: Any) -> list[tuple[str, int]]:
    """The ``(task, trial)`` jobs of this shard that the pool does not hold yet."""
    from pool.families import all_tasks
    from lightning_meta.hpo.pool import ExperiencePool

    if int(cfg.trials) < 1:
        raise ConfigError(f"trials={cfg.trials} is invalid: give trials >= 1.")
    space = SearchSpace.from_dict(cfg.space)  # a bad space fails here, before any job starts
    index, count = parse_shard(cfg.shard)
    jobs = [(t.key, trial) for t in all_tasks(resolve_families(cfg.families)) for trial in range(int(cfg.trials))]
    jobs = jobs[index::count]
    with ExperiencePool(str(cfg.pool)) as pool:
        frame = pool.frame(status=list(DONE))
    columns = [f"hp_{n}" for n in space.names]
    done: dict[str, set[tuple]] = {}
    if not frame.empty and set(columns) <= set(frame.columns):
        done = {task: observed_keys(runs, space) for task, runs in frame.groupby("task")}

    def recorded(task: str, trial: int) -> bool:
        config = job_config(space, task, trial, int(cfg.seed))
        return tuple(np.round(space.encode([config])[0], 9)) in done.get(task, set())

    return [(task, trial) for task, trial in jobs if not recorded(task, trial)]


def run_trial(task_key: str, trial: int, pool: str, space: dict, seed: int = 0, probe: bool = True) -> float:
    """One job: trains ``task_key`` with configuration ``trial``, recorded through the callback.

    Returns the final value of the task's monitor (NaN when the run failed; the failure is recorded in the
    pool and the collection goes on).
    """
    import lightning.pytorch as pl

    from lightning_meta.hpo.callback import HyperparameterMapping
    from pool.families import task_by_key

    task = task_by_key(task_key)
    search = RandomSearch(SearchSpace.from_dict(space), task.key, int(trial), int(seed))
    callback = HyperparameterMapping(mapping=search, pool=pool, task=task.key, probe=probe, keep_defaults=False,
                                     monitor=task.monitor, mode=task.mode)
    trial_seed = zlib.crc32(f"{seed}/{task.key}/{trial}".encode()) % (2**31)
    pl.seed_everything(trial_seed, verbose=False)
    model, datamodule = task.build(trial_seed)
    trainer = pl.Trainer(
        max_epochs=task.epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_model_summary=False, enable_progress_bar=False, callbacks=[callback], num_sanity_val_steps=0,
    )
    try:
        trainer.fit(model, datamodule=datamodule)
    except Exception as error:  # recorded as failed by the callback; one bad run must not end the collection
        log.warning("%s trial %s failed: %s", task.key, trial, error)
        return math.nan
    value = trainer.callback_metrics.get(task.monitor)
    return float(value) if value is not None else math.nan


def _worker_init() -> None:
    """Each worker process trains on one thread, so ``workers`` processes share the cores."""
    import torch

    torch.set_num_threads(1)
    _quiet()


def _quiet() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")


@contextlib.contextmanager
def _quiet_here() -> Iterator[None]:
    """``_quiet`` for trainings in the caller's process, undone afterwards (the caller keeps its own logs)."""
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    with warnings.catch_warnings():
        _quiet()
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def _job(args: tuple) -> tuple[str, int, float]:
    task, trial, *rest = args
    return task, trial, run_trial(task, trial, *rest)


def collect(cfg: Any) -> int:
    """Runs the jobs ``plan`` gives (in ``cfg.workers`` processes) with a progress bar; returns how many ran."""
    import multiprocessing

    from omegaconf import OmegaConf
    from tqdm import tqdm

    jobs = plan(cfg)
    workers = int(cfg.workers)
    if workers < 1:
        raise ConfigError(f"workers={workers} is invalid: give workers >= 1.")
    space = OmegaConf.to_container(cfg.space, resolve=True)
    args = [(task, trial, str(cfg.pool), space, int(cfg.seed), bool(cfg.probe)) for task, trial in jobs]
    bar = tqdm(total=len(args), desc="collect", unit="run", disable=not bool(cfg.progress_bar))
    if workers == 1:
        quiet, results = _quiet_here(), map(_job, args)
    else:
        pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_worker_init)
        quiet, results = contextlib.nullcontext(), pool.imap_unordered(_job, args)
    try:
        with quiet:
            for task, trial, value in results:
                bar.set_postfix_str(f"{task} #{trial} score={value:.3f}", refresh=False)
                bar.update()
    finally:
        bar.close()
        if workers > 1:
            pool.close()
            pool.join()
    return len(args)


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="collect", overrides=overrides)


def main(argv: list[str] | None = None) -> None:
    """Entry of ``python -m pool.collect`` (see ``USAGE``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return
    started = time.perf_counter()
    ran = guarded("python -m pool.collect", lambda: collect(_compose([a for a in argv if "=" in a])))
    print(f"collected {ran} runs in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
