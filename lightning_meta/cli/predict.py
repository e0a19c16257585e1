"""``lightning-meta predict ckpt_path=PATH support=DIR query=DIR``: few-shot classification of image files.

``support`` holds one sub-folder of images per class, named for the class; every image file under
``query`` is classified after the checkpoint's learner has learned from the support images. One line
per query image: its path relative to ``query``, the predicted class and its probability, tab-separated.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from lightning_meta.data.folder import IMAGE_SUFFIXES, class_files
from lightning_meta.errors import ConfigError, DataError, LightningMetaError
from lightning_meta.learners.prediction import load_learner

KEYS = ("ckpt_path", "support", "query")
USAGE = "lightning-meta predict ckpt_path=PATH support=DIR query=DIR"


def parse(argv: list[str]) -> dict[str, str]:
    """``key=value`` arguments as a dict; every key of ``KEYS`` is required."""
    args = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in KEYS:
            raise ConfigError(f"Unknown argument {arg!r}. Fix: {USAGE}.")
        args[key] = value
    missing = [k for k in KEYS if not args.get(k)]
    if missing:
        raise ConfigError(f"Missing {', '.join(missing)}. Fix: {USAGE}.")
    return args


def query_files(root: Path) -> list[Path]:
    """The image files (by suffix) under ``root``, at any depth, in path order; hidden files and folders skipped."""
    if not root.is_dir():
        raise DataError(f"Query folder {root} does not exist. Fix: set query= to a folder of images to classify.")
    found = sorted(
        Path(folder, name).relative_to(root)
        for folder, dirs, names in os.walk(root)
        for name in names
        if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in Path(folder).relative_to(root).parts)
    )
    if not found:
        raise DataError(f"Query folder {root} holds no image files. Fix: put the images to classify in it.")
    return found


def main(argv: list[str]) -> None:
    """Prints one ``path<TAB>class<TAB>probability`` line per query image; bad input exits with a one-line error."""
    try:
        args = parse(argv)
        query_root = Path(args["query"]).expanduser()
        query = query_files(query_root)
        classes = class_files(Path(args["support"]).expanduser(), setting="support=")
        learner = load_learner(args["ckpt_path"])
        prediction = learner.predict_task(
            [f for files in classes.values() for f in files],
            [c for c, files in classes.items() for _ in files],
            [query_root / q for q in query],
        )
    except LightningMetaError as err:
        sys.exit(f"lightning-meta predict: {err}")
    for name, label, probabilities in zip(query, prediction.labels, prediction.probabilities):
        print(f"{name}\t{label}\t{probabilities.max():.3f}")
