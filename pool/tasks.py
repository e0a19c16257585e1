"""A distribution of small real image-classification tasks, and the plain model a user trains on them.

Each Omniglot alphabet is one task a user might have: "classify the characters of this
alphabet" (14 to 55 classes), drawings 0-13 of every character for training and 14-19 for
validation. The Omniglot families of the pool train on background alphabets; the fine-tuning family
pretrains on the 8 background alphabets the others leave unused and fine-tunes on evaluation alphabets
(``pool/families/pretrained.py``). ``SmallCNN`` is deliberately
an ordinary user LightningModule (not a meta-learner): the hyperparameter mapping must work on
code it does not own.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_meta.data.classes import ClassImages
from lightning_meta.data.omniglot import load_omniglot
from lightning_meta.errors import ConfigError

TRAIN_DRAWINGS = range(0, 14)
VAL_DRAWINGS = range(14, 20)
GROUPS = ("background", "evaluation")  # Lake's alphabet groups: background = pool, evaluation = held out


def _split(group: str, image_size: int) -> ClassImages:
    if group not in GROUPS:
        raise ConfigError(f"Unknown alphabet group {group!r}: use 'background' (pool) or 'evaluation' (held out).")
    lake = load_omniglot(split="lake", image_size=image_size, rotations=False)
    return lake["train"].merged(lake["val"]) if group == "background" else lake["test"]


def alphabets(group: str = "background", image_size: int = 28) -> list[str]:
    """Sorted alphabet names of a group: ``background`` (30, the pool) or ``evaluation`` (20, held out)."""
    names = _split(group, image_size).class_names
    return sorted({n.split("/")[1] for n in names})


def _group_of(alphabet: str, image_size: int) -> str:
    for group in GROUPS:
        if alphabet in alphabets(group, image_size):
            return group
    raise ConfigError(
        f"{alphabet!r} is not an Omniglot alphabet: pick one of pool.tasks.alphabets('background') "
        "or alphabets('evaluation')."
    )


def alphabet_images(alphabet: str, image_size: int = 28) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(x_train, y_train, x_val, y_val)`` of one alphabet; labels ``0..n_characters-1``."""
    group = _group_of(alphabet, image_size)
    classes = _split(group, image_size)
    prefix = f"{group}/{alphabet}/"
    ids = [i for i, n in enumerate(classes.class_names) if n.startswith(prefix)]
    parts: dict[str, tuple[list[Tensor], list[Tensor]]] = {"train": ([], []), "val": ([], [])}
    for label, c in enumerate(ids):
        for stage, drawings in (("train", TRAIN_DRAWINGS), ("val", VAL_DRAWINGS)):
            images = classes.get(c, list(drawings))
            parts[stage][0].append(images)
            parts[stage][1].append(torch.full((len(images),), label, dtype=torch.long))
    return (*(torch.cat(t) for t in parts["train"]), *(torch.cat(t) for t in parts["val"]))


class AlphabetDataModule(pl.LightningDataModule):
    """One alphabet as a plain classification data set; ``batch_size`` is read when loaders are built.

    ``meta_features()`` states the task's facts for ``task_features`` (the mapping's input), so
    they are known before any dataloader exists.
    """

    def __init__(self, alphabet: str, image_size: int = 28, batch_size: int = 32, seed: int = 0) -> None:
        super().__init__()
        self.alphabet = alphabet
        self.batch_size = int(batch_size)
        self.seed = seed
        x_train, y_train, x_val, y_val = alphabet_images(alphabet, image_size)
        self.train_dataset = TensorDataset(x_train, y_train)
        self.val_dataset = TensorDataset(x_val, y_val)
        self.num_classes = int(y_train.max()) + 1
        self.input_shape = tuple(x_train.shape[1:])
        self._ink = float(x_train.mean())

    def meta_features(self) -> dict[str, float]:
        """Classes, training images per class, and mean ink (how dense the strokes are)."""
        return {
            "n_classes": float(self.num_classes),
            "shots": float(len(self.train_dataset) // self.num_classes),
            "ink": round(self._ink, 6),
        }

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train_dataset, batch_size=self.batch_size, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_dataset, batch_size=256)


class SmallCNN(pl.LightningModule):
    """A user's small CNN (3 conv-BN-ReLU-pool blocks); Adam reads ``lr`` and ``weight_decay`` from hparams."""

    def __init__(
        self, num_classes: int, lr: float = 1e-3, weight_decay: float = 0.0, width: int = 24, image_size: int = 28
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        blocks = []
        for fan_in in (1, width, width):  # each block halves the side: 28 -> 14 -> 7 -> 3
            blocks += [nn.Conv2d(fan_in, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)]
        self.net = nn.Sequential(*blocks, nn.Flatten(), nn.Linear(width * (image_size // 8) ** 2, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(-1) == y).float().mean(), prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
