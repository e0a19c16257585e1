"""Hyperparameter mappings: (task features, hyperparameters) -> predicted score, and proposals."""

from lightning_meta.hpo.mappings.base import Mapping
from lightning_meta.hpo.mappings.best_on_average import BestOnAverage
from lightning_meta.hpo.mappings.conditional_best_on_average import ConditionalBestOnAverage
from lightning_meta.hpo.mappings.gbm import GBMSurrogate
from lightning_meta.hpo.mappings.meta_surrogate import MetaSurrogate
from lightning_meta.hpo.mappings.nearest_task import NearestTask
from lightning_meta.hpo.mappings.similar_tasks import SimilarTasksAverage

MAPPINGS: dict[str, type[Mapping]] = {
    "best_on_average": BestOnAverage,
    "conditional_best_on_average": ConditionalBestOnAverage,
    "nearest_task": NearestTask,
    "gbm": GBMSurrogate,
    "meta_surrogate": MetaSurrogate,
    "similar_tasks": SimilarTasksAverage,
}

__all__ = ["MAPPINGS", "BestOnAverage", "ConditionalBestOnAverage", "GBMSurrogate", "Mapping", "MetaSurrogate", "NearestTask", "SimilarTasksAverage"]
