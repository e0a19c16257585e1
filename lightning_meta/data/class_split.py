"""Which classes meta-train, validate and test: an explicit split, or ratios of a seeded shuffle.

Shared by the image-folder loader and by any labelled ``Dataset`` given with one set of classes, so the two
accept the same ``split``/``ratios`` settings and refuse the same mistakes (unknown or leaked classes).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from lightning_meta.errors import ConfigError, DataError

STAGES = ("train", "val", "test")


def split_classes(
    classes: list[str], split: Mapping | str | Path | None, ratios: Sequence[float], seed: int, where: object,
    unit: str = "class",
) -> dict[str, list[str]]:
    """``classes`` (names) per stage: ``split`` (a mapping or a JSON/YAML file) if given, else ``ratios`` of a shuffle
    seeded by ``seed``. Errors name ``where`` the classes come from and the ``unit`` a class is there (a folder)."""
    if split is None:
        return _split_by_ratios(classes, ratios, seed, where)
    if isinstance(split, (str, Path)):
        split = _read_split_file(Path(split).expanduser())
    if not isinstance(split, Mapping) or not {"train", "test"} <= set(split) or not set(split) <= set(STAGES):
        raise ConfigError(
            f"A class split must map 'train', 'test' and optionally 'val' to lists of class names, got {split!r}. "
            "Without 'val', validation uses the test classes."
        )
    stages = {s: [str(c) for c in split[s]] for s in split}
    stages.setdefault("val", stages["test"])
    known = set(classes)
    for stage, names in stages.items():
        unknown = [c for c in names if c not in known]
        if unknown:
            raise DataError(
                f"The {stage} split names classes with no {unit} in {where}: {unknown[:5]}"
                f"{' ...' if len(unknown) > 5 else ''}. Known classes: {classes[:10]}{' ...' if len(classes) > 10 else ''}. "
                "Fix the class names in the split."
            )
        if not names:
            raise DataError(f"The {stage} split lists no classes. Give it at least one class of {where}.")
    leaked = sorted(set(stages["train"]) & (set(stages["val"]) | set(stages["test"])))
    if leaked:
        raise DataError(
            f"Classes {leaked[:5]} are in train and in val/test: meta-test classes must be unseen in training. "
            "Remove them from one side."
        )
    return stages


def _split_by_ratios(classes: list[str], ratios: Sequence[float], seed: int, where: object) -> dict[str, list[str]]:
    r = [float(x) for x in ratios]
    if len(r) != 3 or min(r) <= 0 or abs(sum(r) - 1) > 1e-6:
        raise ConfigError(
            f"ratios={list(ratios)} must be three positive fractions (train, val, test) summing to 1, "
            "e.g. [0.64, 0.16, 0.20]."
        )
    shuffled = sorted(classes)
    random.Random(seed).shuffle(shuffled)
    n = len(shuffled)
    n_train, n_val = round(r[0] * n), round(r[1] * n)
    if n_train < 1 or n_val < 1 or n - n_train - n_val < 1:
        raise DataError(
            f"{where} has {n} classes: too few to split by ratios {r} with at least one class per stage. "
            "Add classes or give an explicit split."
        )
    return {"train": shuffled[:n_train], "val": shuffled[n_train : n_train + n_val], "test": shuffled[n_train + n_val :]}


def _read_split_file(path: Path) -> object:
    if not path.is_file():
        raise ConfigError(f"Split file {path} does not exist. Give a JSON or YAML file mapping train/val/test to class names, or a dict.")
    try:
        text = path.read_text()
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"Cannot parse split file {path}: {e}. It should map train/val/test to lists of class names.") from e
