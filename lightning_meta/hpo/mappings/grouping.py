"""Checks of the ``by`` features that the grouping mappings split the training tasks on.

A grouping that silently finds no group is best-on-average under another name, so a ``by`` feature the frame does
not record (absent or misspelt) is a warning at fit, a text feature an error, and a task that lacks one a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import pandas as pd

from lightning_meta.errors import ConfigError


def check_grouping(by: Sequence[str], frame: pd.DataFrame, encoder: Any, mapping: str) -> bool:
    """Whether every ``by`` feature is a numeric feature of ``frame``; warns (absent) or raises (text) otherwise."""
    recorded = sorted(c[2:] for c in frame.columns if c.startswith("f_"))
    text = [name for name in by if name in getattr(encoder, "categories", {})]
    if text:
        raise ConfigError(f"{mapping}(by={list(by)}): {text} are text features; group by numeric features "
                          f"(one of {recorded}).")
    absent = [name for name in by if name not in recorded]
    if absent:
        warnings.warn(f"{mapping}(by={list(by)}): the runs record no feature {absent} (they record {recorded}), so "
                      "every task falls back to the average over all training tasks: fix the name or record it.",
                      stacklevel=4)
        return False
    return True


def warn_ungrouped(by: Sequence[str], features: dict[str, Any], mapping: str) -> None:
    """Warns that a task lacking a ``by`` feature gets the average over all training tasks."""
    lacking = [name for name in by if name not in features]
    warnings.warn(f"{mapping}: the task lacks the grouping features {lacking or list(by)}, so it gets the average "
                  "over all training tasks: give them (task_features reads the optimizer kind from "
                  "configure_optimizers).", stacklevel=4)
