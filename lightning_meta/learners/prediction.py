"""Few-shot prediction on raw images, with nothing but a trained learner or its checkpoint.

A learner records its data's preprocessing and its own class in every checkpoint
(``MetaLearner.on_save_checkpoint``), so ``load_learner(path).predict_task(...)`` prepares new
images exactly as the training images were prepared, needing no datamodule.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from lightning_meta.data.preprocessing import ImageSource, prepare
from lightning_meta.errors import ConfigError, DataError
from lightning_meta.learners.checkpoint import CHECKPOINT_KEY, learner_class, read_checkpoint

if TYPE_CHECKING:
    from lightning_meta.learners.base import MetaLearner

NO_PREPROCESSING_FIX = (
    "Fix: retrain with lightning_meta's Trainer and EpisodicDataModule (they record it), or set "
    "learner.preprocessing = EpisodicDataModule(...).preprocessing for the data it was trained on."
)


@dataclass(frozen=True)
class TaskPrediction:
    """One query's predicted class name per entry of ``labels``; ``probabilities`` and ``logits`` are
    ``[queries, classes]`` with columns in the order of ``classes`` (first appearance in the support labels)."""

    labels: list[Hashable]
    probabilities: Tensor
    logits: Tensor
    classes: list[Hashable]


def predict_task(
    learner: MetaLearner, support: Sequence[ImageSource], support_labels: Sequence[Hashable], query: Sequence[ImageSource]
) -> TaskPrediction:
    """See ``MetaLearner.predict_task``."""
    if learner.preprocessing is None:
        raise ConfigError(f"This {type(learner).__name__} records no preprocessing, so raw images cannot be prepared "
                          f"as in training. {NO_PREPROCESSING_FIX}")
    support, support_labels, query = list(support), list(support_labels), list(query)
    if len(support) != len(support_labels):
        raise DataError(f"{len(support)} support images but {len(support_labels)} support labels. "
                        "Fix: give one label per support image.")
    if not support or not query:
        raise DataError("A task needs at least one support image and one query image. Fix: give both.")
    classes = list(dict.fromkeys(support_labels))
    if len(classes) < 2:
        raise DataError(f"A support set needs at least 2 classes, got 1 ({classes[0]!r}): every query would be that "
                        "class with probability 1.000. Fix: give support images of at least 2 classes (for "
                        "lightning-meta predict, 2 or more class folders under support=).")
    index = {c: i for i, c in enumerate(classes)}
    was_training = learner.training
    learner.eval()  # as in validation: running BatchNorm statistics are used, never updated
    try:
        # Prediction may be called under inference mode; MAML and Reptile still need gradients to adapt.
        with torch.inference_mode(False), torch.enable_grad() if learner.needs_grad_in_eval else torch.no_grad():
            sx = prepare(support, learner.preprocessing).to(learner.device)
            qx = prepare(query, learner.preprocessing).to(learner.device)
            sy = torch.tensor([index[c] for c in support_labels], device=learner.device)
            logits = learner.adapt_and_predict(sx, sy, qx).detach().float().cpu()
    finally:
        learner.train(was_training)
    return TaskPrediction([classes[i] for i in logits.argmax(-1).tolist()], logits.softmax(-1), logits, classes)


def load_learner(path: str | Path, map_location: str | torch.device = "cpu") -> MetaLearner:
    """The learner saved in checkpoint ``path``, of the class the checkpoint records, with its preprocessing."""
    checkpoint = read_checkpoint(path)
    record = checkpoint.get(CHECKPOINT_KEY)
    if not record or record.get("preprocessing") is None:
        raise ConfigError(f"Checkpoint {path} records no preprocessing, so raw images cannot be prepared as in "
                          f"training. {NO_PREPROCESSING_FIX}")
    cls = learner_class(record.get("learner"), path)
    return cls.load_from_checkpoint(path, map_location=map_location, weights_only=True)
