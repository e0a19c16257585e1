"""The learned hyperparameter mapping: search space, task features, experience pool, mappings, callback."""

from lightning_meta.hpo.callback import HyperparameterMapping
from lightning_meta.hpo.features import probe_features, task_features
from lightning_meta.hpo.mappings import MAPPINGS, BestOnAverage, GBMSurrogate, Mapping, MetaSurrogate, NearestTask
from lightning_meta.hpo.pool import ExperiencePool
from lightning_meta.hpo.space import Param, SearchSpace

__all__ = [
    "MAPPINGS", "BestOnAverage", "ExperiencePool", "GBMSurrogate", "HyperparameterMapping", "Mapping",
    "MetaSurrogate", "NearestTask", "Param", "SearchSpace", "probe_features", "task_features",
]
