"""The learned hyperparameter mapping: search space, task features, experience pool, mappings, callback.

Names are imported when first used (PEP 562), so ``lightning_meta.hpo.mappings`` and the pool load without torch
or Lightning; ``HyperparameterMapping`` and the features bring them in.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "HyperparameterMapping": "lightning_meta.hpo.callback",
    "probe_features": "lightning_meta.hpo.features",
    "task_features": "lightning_meta.hpo.features",
    "ExperiencePool": "lightning_meta.hpo.pool",
    "Param": "lightning_meta.hpo.space",
    "SearchSpace": "lightning_meta.hpo.space",
    **{name: "lightning_meta.hpo.mappings" for name in ("MAPPINGS", "BestOnAverage", "ConditionalBestOnAverage",
                                                         "GBMSurrogate", "Mapping", "MetaSurrogate", "NearestTask",
                                                         "SimilarTasksAverage")},
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_WHERE)
