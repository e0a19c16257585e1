"""Hyperparameter mappings: (task features, hyperparameters) -> predicted score, and proposals.

The layer needs numpy, pandas, scipy and scikit-learn only: ``MetaSurrogate`` (a torch network) is imported when
it is first named, so reading, fitting and querying the other mappings never loads torch or Lightning.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from collections.abc import Mapping as _ReadOnly
from typing import Any

from lightning_meta.hpo.mappings.base import Mapping
from lightning_meta.hpo.mappings.best_on_average import BestOnAverage
from lightning_meta.hpo.mappings.conditional_best_on_average import ConditionalBestOnAverage
from lightning_meta.hpo.mappings.gbm import GBMSurrogate
from lightning_meta.hpo.mappings.nearest_task import NearestTask
from lightning_meta.hpo.mappings.similar_tasks import SimilarTasksAverage

_KINDS = {
    "best_on_average": "lightning_meta.hpo.mappings.best_on_average:BestOnAverage",
    "conditional_best_on_average": "lightning_meta.hpo.mappings.conditional_best_on_average:ConditionalBestOnAverage",
    "nearest_task": "lightning_meta.hpo.mappings.nearest_task:NearestTask",
    "gbm": "lightning_meta.hpo.mappings.gbm:GBMSurrogate",
    "meta_surrogate": "lightning_meta.hpo.mappings.meta_surrogate:MetaSurrogate",
    "similar_tasks": "lightning_meta.hpo.mappings.similar_tasks:SimilarTasksAverage",
}


class _Registry(_ReadOnly):
    """Name -> mapping class, each imported when it is looked up (the names a mapping file stores)."""

    def __getitem__(self, kind: str) -> type[Mapping]:
        module, name = _KINDS[kind].split(":")
        return getattr(importlib.import_module(module), name)

    def __iter__(self) -> Iterator[str]:
        return iter(_KINDS)

    def __len__(self) -> int:
        return len(_KINDS)

    def kind_of(self, cls: type) -> str | None:
        """The registered name of ``cls`` (None if it has none), without importing the other kinds."""
        return next((k for k, path in _KINDS.items() if path == f"{cls.__module__}:{cls.__qualname__}"), None)


MAPPINGS = _Registry()


def __getattr__(name: str) -> Any:
    if name == "MetaSurrogate":
        return MAPPINGS["meta_surrogate"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MAPPINGS", "BestOnAverage", "ConditionalBestOnAverage", "GBMSurrogate", "Mapping", "MetaSurrogate", "NearestTask", "SimilarTasksAverage"]
