"""Builds the objects of a Hydra config and runs meta-training and testing.

Everything is instantiated from ``_target_`` nodes, checked for compatibility (data vs backbone vs
learner) and only then handed to the Trainer, so bad input fails in seconds, not after an epoch.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import WeightAveraging
from omegaconf import DictConfig, OmegaConf

from lightning_meta.cli.boundary import end
from lightning_meta.cli.quiet import quiet_resumed_checkpoint_dir, quiet_third_party_warnings
from lightning_meta.errors import ConfigError, LightningMetaError, TrainingDiverged
from lightning_meta.launch import check_launch
from lightning_meta.learners.checkpoint import command_line, learner_for_checkpoint, read_checkpoint
from lightning_meta.malloc import keep_freed_memory
from lightning_meta.preflight import check_model_fits_data, check_top_level_keys, check_top_level_values

log = logging.getLogger(__name__)


def _instantiate_dict(node: DictConfig | None) -> list:
    """Instantiates every ``_target_`` child of a group such as ``callbacks`` or ``logger``."""
    if not node:
        return []
    return [instantiate(child) for child in node.values() if isinstance(child, DictConfig) and "_target_" in child]


@dataclass
class Built:
    """What a run starts from: every object built and checked, nothing trained yet."""

    datamodule: L.LightningDataModule
    model: L.LightningModule
    trainer: L.Trainer
    ckpt_path: str | None
    from_checkpoint: bool
    untrained: bool


def build(cfg: DictConfig, overrides: Sequence[str] | None = None) -> Built:
    """Checks ``cfg`` and builds what ``run`` trains and tests, reading the data but running no step: every user's
    mistake in a config ends here, in a ``LightningMetaError`` (the config fuzzer, ``tests/cli/test_config_fuzz.py``,
    holds it to that)."""
    check_top_level_keys(cfg)
    check_top_level_values(cfg)
    check_launch(cfg)
    ckpt_path = checkpoint_to_use(cfg)
    checkpoint = read_checkpoint(ckpt_path) if ckpt_path else None
    if cfg.get("keep_freed_memory", True):
        log.info("Keep freed CPU memory for reuse (glibc mallopt): %s", keep_freed_memory())
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit" if cfg.train else "test")
    if checkpoint is None:
        model = instantiate(cfg.model)
    else:
        model, notes = learner_for_checkpoint(cfg.model, checkpoint, ckpt_path,
                                              command_line() if overrides is None else overrides)
        if notes:
            _say(f"Checkpoint {ckpt_path} rebuilds the learner it was trained with: {'; '.join(notes)}.")
    check_model_fits_data(model, datamodule)

    callbacks = _instantiate_dict(cfg.get("callbacks"))
    loggers = _instantiate_dict(cfg.get("logger"))
    trainer = instantiate_trainer(cfg.trainer, callbacks, loggers)
    return Built(datamodule, model, trainer, ckpt_path, checkpoint is not None, not cfg.train and not ckpt_path)


def instantiate_trainer(node: DictConfig, callbacks: list, loggers: list) -> L.Trainer:
    """The Trainer of ``node``; Lightning's refusal of an argument is a ``ConfigError`` line, not a traceback."""
    try:
        return instantiate(node, callbacks=callbacks, logger=loggers or False)
    except Exception as error:  # noqa: BLE001 -- the Trainer's constructor checks nothing but its arguments
        cause = error.__cause__ or error
        if isinstance(cause, LightningMetaError):
            raise
        raise ConfigError(f"lightning.pytorch.Trainer refuses the trainer config: {type(cause).__name__}: "
                          f"{' '.join(str(cause).split())} Fix: correct the trainer.* value it names "
                          "(conf/trainer/cpu.yaml lists each with Lightning's default).") from error


def run(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict[str, float]:
    """Meta-trains and/or tests as ``cfg`` says; returns the final metrics (``test_acc``, ``test_acc_ci95``, ...).

    With a checkpoint file as ``ckpt_path`` the learner is the one it holds, built as it was trained, not as the
    config's defaults say (``learners/checkpoint.py``); ``overrides`` (by default the Hydra job's command line) must
    agree with it, but for the settings that may differ (``RUN_SETTINGS``).
    """
    built = build(cfg, overrides)
    datamodule, model, trainer, ckpt_path, untrained = (built.datamodule, built.model, built.trainer, built.ckpt_path,
                                                        built.untrained)
    for lg in trainer.loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    metrics: dict[str, float] = {}
    if cfg.train:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        if getattr(model, "diverged", False):
            raise TrainingDiverged(
                f"Meta-training diverged (a non-finite loss after {trainer.global_step} optimizer steps): nothing trained "
                "to test. "
                "Fix: lower model.lr or model.inner_lr, or add trainer.gradient_clip_val.")
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1})
        # Test the best validated weights when a checkpoint callback kept them, else the final ones.
        best = getattr(trainer.checkpoint_callback, "best_model_path", "")
        ckpt_path = "best" if best else None
        _drop_weight_averaging(trainer)
    elif built.from_checkpoint:
        ckpt_path = None  # the learner holds the checkpoint's weights already: the Trainer has nothing to restore
    if cfg.test:
        if untrained:
            _say("Testing an untrained network (train=false, no ckpt_path, test_untrained=true): expect chance accuracy.")
        results = trainer.test(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        metrics.update(results[0] if results else {})
        _report(metrics, model, untrained)
    return metrics


def checkpoint_to_use(cfg: DictConfig) -> str | None:
    """The checkpoint file the run starts from: ``ckpt_path``, with ``last`` and ``best`` found in the run's checkpoint
    folder. ``ConfigError`` when ``train=false`` has none to test (unless ``test_untrained=true``), or ``last``/``best``
    names none: Lightning would test random weights, or resume nothing, and only warn."""
    ckpt_path = cfg.get("ckpt_path")
    if not cfg.train and not ckpt_path and not cfg.get("test_untrained", False):
        raise ConfigError("train=false without ckpt_path would test an untrained network. Fix: give the trained "
                          "checkpoint, e.g. ckpt_path=logs/train/runs/<date>/checkpoints/last.ckpt, or set "
                          "test_untrained=true to measure an untrained network on purpose.")
    if ckpt_path not in ("last", "best"):
        return ckpt_path
    folder = Path(OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None)
                  or Path(str(cfg.trainer.get("default_root_dir") or ".")) / "checkpoints")
    lasts = sorted(folder.glob("last*.ckpt"), key=lambda p: p.stat().st_mtime)
    found = lasts[-1] if lasts else None
    if found is not None and ckpt_path == "best":
        found = _recorded_best(found)
    if found is None:
        raise ConfigError(
            f"ckpt_path={ckpt_path}: no {ckpt_path} checkpoint in {folder}, the checkpoint folder of this run (a new "
            f"folder for each run unless hydra.run.dir is set). Fix: give the checkpoint file, e.g. "
            "ckpt_path=logs/train/runs/<date>/checkpoints/last.ckpt.")
    _say(f"ckpt_path={ckpt_path} is {found}")
    return str(found)


def _recorded_best(last: Path) -> Path | None:
    """The best checkpoint the ModelCheckpoint state in ``last`` records, if that file still exists."""
    state = read_checkpoint(last).get("callbacks") or {}
    paths = [Path(v["best_model_path"]) for k, v in state.items()
             if str(k).startswith("ModelCheckpoint") and isinstance(v, dict) and v.get("best_model_path")]
    return next((p for p in paths if p.is_file()), None)


def _drop_weight_averaging(trainer: L.Trainer) -> None:
    """Removes ``WeightAveraging`` callbacks (EMA, SWA) after fit, so that testing a checkpoint tests its averaged
    weights. Why: a checkpoint written during fit holds the average in ``state_dict`` and the live weights in
    ``current_model_state``, and the callback's ``on_load_checkpoint`` (run by ``trainer.test`` in the same
    Trainer) loads the live ones back into the model; a fresh Trainer (``train=false``) tests ``state_dict``."""
    trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, WeightAveraging)]


def objective(cfg: DictConfig) -> float | None:
    """``run`` as a Hydra task function: returns ``cfg.optimized_metric``, the value sweepers optimise.

    The metric is a validation one (``val_acc`` by default), so a sweep selects a configuration without looking at
    the test episodes; the search configs turn testing off in every trial (``conf/hparams_search/``), and the chosen
    configuration is tested once afterwards (docs/hparams_search.md). A multirun job that logged no such metric is
    an error naming the logged ones, so a sweep never optimises a missing value.

    The task function of ``train.py`` and ``lightning-meta train``: it runs with the command line's warnings filters
    (``cli/quiet.py``), in every job of a sweep, launched in this process or in another. Errors go through the
    console boundary (``cli/boundary.py``): a project error (bad input, a diverged run) ends a single run with its one
    line and exit status 1, anything else with the traceback, "this is a bug" and exit status 2;
    ``HYDRA_FULL_ERROR=1`` shows every traceback, and a multirun hands the error to Hydra so the sweep records it.
    """
    try:
        with warnings.catch_warnings():
            quiet_third_party_warnings()
            if cfg.get("ckpt_path") and cfg.get("train", True):
                quiet_resumed_checkpoint_dir()
            metrics = run(cfg)
            return _optimized(cfg, metrics)
    except Exception as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1" or _in_multirun():
            raise
        end("Error", error)


def _optimized(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    """The value of ``cfg.optimized_metric``; missing in a multirun job, a ``ConfigError`` naming the logged ones."""
    name = cfg.get("optimized_metric", "val_acc")
    if name in metrics:
        return float(metrics[name])
    if _in_multirun():
        raise ConfigError(
            f"optimized_metric={name!r} was not logged by this job (logged: {', '.join(sorted(metrics)) or 'none'}): "
            "set optimized_metric to one of them, or keep train=true so validation runs."
        )
    return None


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _report(metrics: dict[str, float], model, untrained: bool = False) -> None:
    if "test_acc" not in metrics:
        return
    bn = getattr(model.hparams, "bn_mode", None)
    suffix = f" (BatchNorm: {bn})" if bn else ""
    line = f"Test accuracy{' of the untrained network' if untrained else ''}: {100 * metrics['test_acc']:.2f}% ± {100 * metrics.get('test_acc_ci95', float('nan')):.2f}% (95% CI){suffix}"
    _say(line)


def _say(line: str) -> None:
    """A line for the log and the terminal: what the run measured, or what it did that the config did not say."""
    log.info(line)
    print(line, flush=True)
