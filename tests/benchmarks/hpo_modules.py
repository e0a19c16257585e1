"""The HPO benchmark scripts as modules: they import each other by file name, as when run from benchmarks/hpo."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

HPO = Path(__file__).resolve().parents[2] / "benchmarks" / "hpo"


def load(name: str) -> ModuleType:
    if str(HPO) not in sys.path:
        sys.path.insert(0, str(HPO))
    return importlib.import_module(name)
