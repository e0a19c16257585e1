"""Names of the data sets ``EpisodicDataModule(dataset=...)`` accepts, and where their loaders live.

Loaders are imported on first use so that a run on Omniglot never imports PIL-heavy readers.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from lightning_meta.data.classes import ClassImages
from lightning_meta.errors import ConfigError

LOADERS = {
    "omniglot": "lightning_meta.data.omniglot:load_omniglot",
    "omniglot_zips": "lightning_meta.data.omniglot_zips:load_omniglot_zips",
    "miniimagenet": "lightning_meta.data.miniimagenet:load_miniimagenet",
    "cifarfs": "lightning_meta.data.cifar:load_cifarfs",
    "fc100": "lightning_meta.data.cifar:load_fc100",
    "folder": "lightning_meta.data.folder:load_folder",
}


def loader(name: str) -> Callable[..., dict[str, ClassImages]]:
    """The loader registered under ``name`` (imported, not called: nothing is read)."""
    if name not in LOADERS:
        raise ConfigError(f"Unknown dataset {name!r}. Fix: use one of {', '.join(sorted(LOADERS))}.")
    module, func = LOADERS[name].split(":")
    return getattr(importlib.import_module(module), func)


def load_dataset(name: str, root: str | Path | None, **kwargs) -> dict[str, ClassImages]:
    """Calls the loader registered under ``name``; returns ClassImages for "train", "val" and "test"."""
    return loader(name)(root, **kwargs)
