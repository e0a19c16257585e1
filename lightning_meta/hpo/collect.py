"""``lightning-meta collect``: real Lightning trainings over a task distribution, recorded in the pool.

The mapping can only be as good as its experience, so this command makes some: a Hydra multirun
over ``alphabet x trial`` (config ``conf/collect.yaml``) trains ``SmallCNN`` on each Omniglot
alphabet task with a seeded random configuration. Each run goes through the real
``HyperparameterMapping`` callback, driven by a ``RandomSearch`` mapping, so the configuration is
applied and the outcome recorded (task, features, params, final/best val_acc, curve, status,
duration) exactly as in a user's fit; the features in the pool are therefore the ones the callback
computes when it later proposes. ``--fit OUT`` then fits a mapping on the pool and saves it.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lightning_meta.configs import CONF_DIR
from lightning_meta.errors import ConfigError, DataError
from lightning_meta.hpo.mappings.base import Mapping
from lightning_meta.hpo.space import SearchSpace

DEFAULT_MAPPING = Path(__file__).resolve().parents[1] / "assets" / "mapping" / "default.mapping"
log = logging.getLogger(__name__)

USAGE = f"""usage: lightning-meta collect [OVERRIDES...]
       lightning-meta collect --fit OUT [OVERRIDES...]

Runs short real trainings of SmallCNN on Omniglot alphabet tasks (a Hydra multirun over
alphabet x trial) and records each run in the experience pool. With --fit OUT, fits a mapping
on the pool instead and saves it to OUT (the shipped default is {DEFAULT_MAPPING.name}).

overrides (conf/collect.yaml): pool=URL alphabets=background|evaluation|[A,B] trials=N epochs=N
  seed=N mapping=meta_surrogate|gbm|nearest_task|best_on_average space.lr.high=0.1 ...
Hydra flags (--cfg job, hydra.sweep.dir=...) pass through.
"""


class RandomSearch(Mapping):
    """Proposes draw ``trial`` of a random search seeded by ``(seed, task)``; predicts nothing (NaN).

    It lets the ``HyperparameterMapping`` callback run a random search: the callback applies and
    records the configuration exactly as it would a learned mapping's proposal.
    """

    def __init__(self, space: SearchSpace, task: str, trial: int, seed: int = 0) -> None:
        self.space = space
        self.feature_names: list[str] = []
        self.config = trial_config(space, task, trial, seed)

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


def resolve_alphabets(alphabets: Any, image_size: int = 28) -> list[str]:
    """``background`` / ``evaluation`` (the group's alphabets) or a list of alphabet names, checked."""
    from lightning_meta.hpo.tasks import GROUPS
    from lightning_meta.hpo.tasks import alphabets as group_alphabets

    if isinstance(alphabets, str):
        if alphabets not in GROUPS:
            raise ConfigError(f"alphabets={alphabets!r} is invalid: give 'background', 'evaluation' or a list of names.")
        return group_alphabets(alphabets, image_size)
    names = [str(a) for a in alphabets]
    known = set(group_alphabets("background", image_size)) | set(group_alphabets("evaluation", image_size))
    unknown = [a for a in names if a not in known]
    if unknown or not names:
        raise ConfigError(
            f"alphabets={names!r}: {unknown or 'empty list'} not Omniglot alphabets; see "
            "lightning_meta.hpo.tasks.alphabets('background') and alphabets('evaluation')."
        )
    return names


def run_trial(cfg: Any) -> float:
    """One job of the sweep: trains SmallCNN on ``cfg.alphabet`` with configuration ``cfg.trial``.

    Returns the final ``val_acc`` (NaN when the run failed; the failure is recorded in the pool and
    the sweep goes on).
    """
    import lightning.pytorch as pl

    from lightning_meta.hpo.callback import HyperparameterMapping
    from lightning_meta.hpo.tasks import AlphabetDataModule, SmallCNN

    if cfg.alphabet is None or cfg.trial is None:
        raise ConfigError("A collect job needs alphabet= and trial=; run `lightning-meta collect`, which sets them.")
    space = SearchSpace.from_dict(cfg.space)
    search = RandomSearch(space, cfg.alphabet, int(cfg.trial), int(cfg.seed))
    callback = HyperparameterMapping(mapping=search, pool=str(cfg.pool), task=str(cfg.alphabet))
    pl.seed_everything(int(cfg.seed) + int(cfg.trial), verbose=False)
    datamodule = AlphabetDataModule(cfg.alphabet, image_size=cfg.image_size, seed=int(cfg.seed) + int(cfg.trial))
    model = SmallCNN(datamodule.num_classes, image_size=cfg.image_size)
    trainer = pl.Trainer(
        max_epochs=int(cfg.epochs), accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_model_summary=False, enable_progress_bar=bool(cfg.progress_bar), callbacks=[callback],
        num_sanity_val_steps=0,
    )
    try:
        trainer.fit(model, datamodule=datamodule)
    except Exception as error:  # recorded as failed by the callback; one bad run must not end the sweep
        log.warning("%s trial %s failed: %s", cfg.alphabet, cfg.trial, error)
        return math.nan
    value = trainer.callback_metrics.get("val_acc")
    score = float(value) if value is not None else math.nan
    log.info("%s trial %s %s -> val_acc %.4f", cfg.alphabet, cfg.trial, callback.config, score)
    return score


def fit_mapping(pool_url: str, space: SearchSpace, out: str | Path, kind: str = "meta_surrogate") -> Mapping:
    """Fits mapping ``kind`` on the complete runs of the pool and saves it to ``out``."""
    from lightning_meta.hpo.mappings import MAPPINGS
    from lightning_meta.hpo.pool import ExperiencePool

    if kind not in MAPPINGS:
        raise ConfigError(f"mapping={kind!r} is unknown: use one of {', '.join(MAPPINGS)}.")
    with ExperiencePool(pool_url) as pool:
        frame = pool.frame()
    if frame.empty:
        raise DataError(f"The pool {pool_url} has no complete run: run `lightning-meta collect pool={pool_url}` first.")
    mapping = MAPPINGS[kind]().fit(frame, space)
    mapping.save(out)
    return mapping


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="collect", overrides=overrides)


def _quote(name: str) -> str:
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _sweep(argv: list[str]) -> None:
    import hydra

    overrides = [a for a in argv if "=" in a and not a.startswith("-")]
    cfg = _compose(overrides)
    names = resolve_alphabets(cfg.alphabets, int(cfg.image_size))
    if int(cfg.trials) < 1:
        raise ConfigError(f"trials={cfg.trials} is invalid: give trials >= 1.")
    SearchSpace.from_dict(cfg.space)  # a bad space fails here, before any job starts
    sweep = [f"alphabet={','.join(_quote(n) for n in names)}", f"trial=range(0,{int(cfg.trials)})"]

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="collect")
    def _job(job_cfg) -> float:
        return run_trial(job_cfg)

    argv0 = sys.argv
    sys.argv = ["lightning-meta collect", "--multirun", *argv, *sweep]
    try:
        _job()
    finally:
        sys.argv = argv0


def main(argv: list[str] | None = None) -> None:
    """Entry of ``lightning-meta collect`` (see ``USAGE``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return
    if "--fit" not in argv:
        _sweep(argv)
        return
    at = argv.index("--fit")
    if at + 1 >= len(argv) or "=" in argv[at + 1] or argv[at + 1].startswith("-"):
        sys.exit(f"lightning-meta collect --fit: give the output file, e.g. --fit {DEFAULT_MAPPING}")
    out, overrides = Path(argv[at + 1]), argv[:at] + argv[at + 2 :]
    cfg = _compose(overrides)
    started = time.perf_counter()
    mapping = fit_mapping(str(cfg.pool), SearchSpace.from_dict(cfg.space), out, str(cfg.mapping))
    print(f"fitted {type(mapping).__name__} on {cfg.pool} in {time.perf_counter() - started:.1f} s -> {out}")
