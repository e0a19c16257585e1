"""Builds the objects of a Hydra config and runs meta-training and testing.

Everything is instantiated from ``_target_`` nodes, checked for compatibility (data vs backbone vs
learner) and only then handed to the Trainer, so bad input fails in seconds, not after an epoch.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import WeightAveraging
from omegaconf import DictConfig, OmegaConf

from lightning_meta.cli.boundary import end
from lightning_meta.cli.quiet import quiet_resumed_checkpoint_dir, quiet_third_party_warnings
from lightning_meta.errors import ConfigError, TrainingDiverged
from lightning_meta.launch import check_launch
from lightning_meta.learners.checkpoint import command_line, learner_for_checkpoint, read_checkpoint
from lightning_meta.malloc import keep_freed_memory
from lightning_meta.preflight import check_model_fits_data, check_top_level_keys

log = logging.getLogger(__name__)


def _instantiate_dict(node: DictConfig | None) -> list:
    """Instantiates every ``_target_`` child of a group such as ``callbacks`` or ``logger``."""
    if not node:
        return []
    return [instantiate(child) for child in node.values() if isinstance(child, DictConfig) and "_target_" in child]


def run(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict[str, float]:
    """Meta-trains and/or tests as ``cfg`` says; returns the final metrics (``test_acc``, ``test_acc_ci95``, ...).

    With a checkpoint file as ``ckpt_path`` the learner is the one it holds, built as it was trained, not as the
    config's defaults say (``learners/checkpoint.py``); ``overrides`` (by default the Hydra job's command line) must
    agree with it, but for the settings that may differ (``RUN_SETTINGS``).
    """
    check_top_level_keys(cfg)
    check_launch(cfg)
    ckpt_path = cfg.get("ckpt_path")
    checkpoint = read_checkpoint(ckpt_path) if ckpt_path and ckpt_path not in ("best", "last") else None
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
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
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
    elif checkpoint is not None:
        ckpt_path = None  # the learner holds the checkpoint's weights already: the Trainer has nothing to restore
    if cfg.test:
        results = trainer.test(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        metrics.update(results[0] if results else {})
        _report(metrics, model)
    return metrics


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


def _report(metrics: dict[str, float], model) -> None:
    if "test_acc" not in metrics:
        return
    bn = getattr(model.hparams, "bn_mode", None)
    suffix = f" (BatchNorm: {bn})" if bn else ""
    line = f"Test accuracy: {100 * metrics['test_acc']:.2f}% ± {100 * metrics.get('test_acc_ci95', float('nan')):.2f}% (95% CI){suffix}"
    _say(line)


def _say(line: str) -> None:
    """A line for the log and the terminal: what the run measured, or what it did that the config did not say."""
    log.info(line)
    print(line, flush=True)
