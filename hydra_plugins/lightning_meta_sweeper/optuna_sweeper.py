"""An Optuna sweeper for Hydra on Optuna's ask/tell API, warm-started by a hyperparameter mapping.

The upstream ``hydra-optuna-sweeper`` pins ``optuna<3``; this one works with current Optuna. Search
dimensions are written in Hydra's override grammar (``model.lr: tag(log, interval(1e-4, 1e-2))``,
``choice(...)``, ``range(...)``), in ``hydra.sweeper.params`` or on the command line. Before any
sampling, the top-``k`` proposals of a fitted ``lightning_meta`` mapping for the task's features are
queued with ``study.enqueue_trial``, so the first trials run the configurations that worked on
similar tasks. After the sweep, ``optimization_results.yaml`` in the sweep directory holds the best
parameters and every trial.
"""

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import optuna
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep, Transformer
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from lightning_meta.errors import ConfigError

log = logging.getLogger(__name__)

RESULTS_FILE = "optimization_results.yaml"
_WARM_START_ATTR = "warm_start"


@dataclass
class WarmStartConf:
    """Which mapping proposes the first trials, for which task, and where its values go."""

    mapping: Optional[str] = None  # null: no warm start; "default": the shipped mapping; else a path
    k: int = 3  # proposals queued before sampling
    features: Dict[str, float] = field(default_factory=dict)  # task features the mapping reads
    keys: Dict[str, str] = field(default_factory=dict)  # mapping hyperparameter -> swept config key


@dataclass
class OptunaMappingSweeperConf:
    _target_: str = "hydra_plugins.lightning_meta_sweeper.optuna_sweeper.OptunaMappingSweeper"
    direction: str = "maximize"
    n_trials: int = 20
    n_jobs: int = 1  # trials asked and launched together (parallel with a parallel launcher)
    study_name: Optional[str] = None
    storage: Optional[str] = None  # e.g. sqlite:///optuna.db to keep and resume the study
    sampler: Any = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": None})
    params: Dict[str, str] = field(default_factory=dict)
    warm_start: WarmStartConf = field(default_factory=WarmStartConf)


ConfigStore.instance().store(
    group="hydra/sweeper", name="lightning_meta_optuna", node=OptunaMappingSweeperConf, provider="lightning_meta"
)


class OptunaMappingSweeper(Sweeper):
    """Asks Optuna for ``n_jobs`` trials at a time, launches them as Hydra jobs, tells their return values."""

    def __init__(
        self,
        direction: str,
        n_trials: int,
        n_jobs: int,
        study_name: Optional[str],
        storage: Optional[str],
        sampler: Optional[optuna.samplers.BaseSampler],
        params: Optional[DictConfig],
        warm_start: DictConfig,
    ) -> None:
        if direction not in ("maximize", "minimize"):
            raise ConfigError(f"hydra.sweeper.direction={direction!r}: use 'maximize' or 'minimize'.")
        if n_trials < 1 or n_jobs < 1:
            raise ConfigError(f"hydra.sweeper has n_trials={n_trials}, n_jobs={n_jobs}: give both >= 1.")
        if sampler is not None and not isinstance(sampler, optuna.samplers.BaseSampler):
            raise ConfigError(
                f"hydra.sweeper.sampler is {type(sampler).__name__}: give {{_target_: optuna.samplers.<Sampler>, ...}}."
            )
        self.direction = direction
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.study_name = study_name
        self.storage = storage
        self.sampler = sampler
        self.params = dict(params or {})
        self.warm_start = OmegaConf.to_container(warm_start, resolve=True) if isinstance(warm_start, DictConfig) else dict(warm_start)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: List[str]) -> optuna.Study:
        space, fixed = self._search_space(arguments)
        study = optuna.create_study(
            study_name=self.study_name, storage=self.storage, sampler=self.sampler,
            direction=self.direction, load_if_exists=True,
        )
        enqueued = enqueue_proposals(study, space, self.warm_start)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        failures: list[str] = []
        done = 0
        while done < self.n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - done))]
            batch = [[f"{key}={value}" for key, value in trial.params.items()] + fixed for trial in trials]
            self.validate_batch_is_legal(batch)
            returns = self.launcher.launch(batch, initial_job_idx=done)
            for trial, job in zip(trials, returns):
                failure = tell(study, trial, job)
                if failure:
                    failures.append(failure)
            done += len(trials)

        if not any(t.state == TrialState.COMPLETE for t in study.trials):
            raise ConfigError(f"Every trial of the sweep failed; the first: {failures[0]}")
        write_results(study, sweep_dir / RESULTS_FILE, self.warm_start.get("mapping"), enqueued)
        log.info("Best value %s with %s (%s)", study.best_value, study.best_params, sweep_dir / RESULTS_FILE)
        return study

    def _search_space(self, arguments: Sequence[str]) -> tuple[dict[str, BaseDistribution], list[str]]:
        """Distributions of the sweep overrides and the fixed overrides; the command line wins over ``params``."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        lines = [f"{key}={value}" for key, value in self.params.items()] + list(arguments)
        space: dict[str, BaseDistribution] = {}
        fixed: dict[str, str] = {}
        for override in parser.parse_overrides(lines):
            key = override.get_key_element()
            space.pop(key, None)
            fixed.pop(key, None)
            if override.is_sweep_override():
                space[key] = distribution(override)
            else:
                fixed[key] = f"{key}={override.get_value_element_as_str()}"
        if not space:
            raise ConfigError(
                "The sweep has nothing to search: give hydra.sweeper.params (e.g. `model.lr: tag(log, interval(1e-4, 1e-2))`) "
                "or a sweep override such as `model.lr=interval(1e-4,1e-2)`."
            )
        return space, list(fixed.values())


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution of one Hydra sweep override (``choice``, ``range``, ``interval``, ``tag(log, ...)``)."""
    sweep = override.value()
    log_scale = "log" in sweep.tags
    if isinstance(sweep, ChoiceSweep) or override.is_choice_sweep():
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if isinstance(sweep, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise ConfigError(f"{override.input_line!r} is an empty range: give start < stop for a positive step.")
        step = abs(sweep.step)
        if all(isinstance(v, int) for v in values):
            return IntDistribution(min(values), max(values), step=int(step), log=log_scale)
        return FloatDistribution(min(values), max(values), step=float(step), log=log_scale)
    if isinstance(sweep, IntervalSweep):
        if isinstance(sweep.start, int) and isinstance(sweep.end, int):
            return IntDistribution(sweep.start, sweep.end, log=log_scale)
        return FloatDistribution(float(sweep.start), float(sweep.end), log=log_scale)
    raise ConfigError(f"{override.input_line!r} is not a sweep this sweeper understands: use choice, range or interval.")


def enqueue_proposals(study: optuna.Study, space: dict[str, BaseDistribution], warm_start: dict) -> list[dict]:
    """Queues the mapping's top-``k`` proposals (mapped to swept keys, fitted into their ranges); returns them."""
    if warm_start.get("mapping") is None:
        return []
    from lightning_meta.hpo.mappings import Mapping

    mapping = Mapping.load(mapping_path(warm_start["mapping"]))
    keys = dict(warm_start.get("keys") or {})
    if not keys:
        raise ConfigError(
            f"hydra.sweeper.warm_start.keys is empty: map the mapping's hyperparameters {mapping.space.names} "
            "to swept config keys, e.g. {lr: model.lr}."
        )
    unknown = [name for name in keys if name not in mapping.space.names]
    if unknown:
        raise ConfigError(
            f"hydra.sweeper.warm_start.keys names {unknown}, which the mapping does not tune: use some of {mapping.space.names}."
        )
    not_swept = [key for key in keys.values() if key not in space]
    if not_swept:
        raise ConfigError(f"hydra.sweeper.warm_start.keys maps to {not_swept}, which are not swept: add them to hydra.sweeper.params.")
    proposals = mapping.suggest(dict(warm_start.get("features") or {}), k=int(warm_start.get("k", 3)))
    enqueued: list[dict] = []
    for proposal in proposals:
        params = {key: fit_value(space[key], proposal[name], key) for name, key in keys.items()}
        if params not in enqueued:
            study.enqueue_trial(params, user_attrs={_WARM_START_ATTR: True}, skip_if_exists=True)
            enqueued.append(params)
    log.info("Warm start: queued %d proposals of %s: %s", len(enqueued), warm_start["mapping"], enqueued)
    return enqueued


def mapping_path(mapping: str) -> Path:
    """``"default"`` is the mapping shipped in ``lightning_meta/assets/mapping``; anything else is a path."""
    if mapping != "default":
        return Path(mapping)
    from lightning_meta.hpo.callback import DEFAULT_MAPPING_DIR

    shipped = sorted(DEFAULT_MAPPING_DIR.glob("default.*"))
    if not shipped:
        raise ConfigError(
            f"warm_start.mapping=default but no mapping is shipped in {DEFAULT_MAPPING_DIR}: "
            "give the path of a saved mapping, or mapping=null for no warm start."
        )
    return shipped[0]


def fit_value(dist: BaseDistribution, value: Any, key: str) -> Any:
    """``value`` moved into ``dist`` (clipped to the range, onto the step grid, or to the nearest choice)."""
    if isinstance(dist, CategoricalDistribution):
        if value in dist.choices:
            return value
        numeric = [c for c in dist.choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
        if not numeric or isinstance(value, (str, bool)):
            raise ConfigError(f"The mapping proposes {key}={value!r}, which is not in {list(dist.choices)}: add it to the choices.")
        fitted = min(numeric, key=lambda c: abs(c - value))
    elif isinstance(dist, IntDistribution):
        fitted = dist.low + dist.step * round((min(max(value, dist.low), dist.high) - dist.low) / dist.step)
        fitted = int(min(fitted, dist.high))
    else:
        fitted = min(max(float(value), dist.low), dist.high)
        if dist.step is not None:
            fitted = min(dist.low + dist.step * round((fitted - dist.low) / dist.step), dist.high)
    if fitted != value:
        log.info("Warm start: the mapping's %s=%s is outside the sweep, using %s", key, value, fitted)
    return fitted


def tell(study: optuna.Study, trial: optuna.Trial, job: Any) -> Optional[str]:
    """Reports a finished job to the study; returns why it failed (None when it completed)."""
    try:
        value = job.return_value  # re-raises the job's exception
    except Exception as error:  # a failed trial is recorded as such, the sweep goes on
        reason = f"trial {trial.number} raised {type(error).__name__}: {error}"
    else:
        if value is not None and math.isfinite(float(value)):
            study.tell(trial, float(value))
            return None
        reason = f"trial {trial.number} returned {value!r}: the task must return a finite number (train.py: set test=true)"
    log.warning("Sweep: %s", reason)
    study.tell(trial, state=TrialState.FAIL)
    return reason


def write_results(study: optuna.Study, path: Path, mapping: Optional[str], enqueued: list[dict]) -> None:
    """Writes the best parameters and every trial (params, value, state, warm-started or not)."""
    trials = [
        {"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
         _WARM_START_ATTR: bool(t.user_attrs.get(_WARM_START_ATTR, False))}
        for t in study.trials
    ]
    results = {
        "name": "lightning_meta_optuna", "direction": study.direction.name.lower(),
        "best_value": study.best_value, "best_params": study.best_params,
        "warm_start": {"mapping": mapping, "enqueued": enqueued}, "trials": trials,
    }
    OmegaConf.save(OmegaConf.create(results), path)
