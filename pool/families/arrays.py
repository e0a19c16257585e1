"""A datamodule over in-memory arrays: the training and validation split of one task.

It states its facts through ``meta_features()`` (classes, samples, input size, label noise where
known), so the mapping reads them before any dataloader exists.
"""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset


def split(x: np.ndarray, y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """A seeded shuffle split into ``x_train, y_train, x_val, y_val``."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(int(round(val_fraction * len(x))), 1)
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def standardize(x_train: np.ndarray, x_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero mean, unit variance per column, with the training split's statistics."""
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
    return (x_train - mean) / std, (x_val - mean) / std


def _tensor(values: Tensor | np.ndarray) -> Tensor:
    """Integers (labels, tokens) as ``long``, everything else as ``float32``."""
    values = torch.as_tensor(values)
    return values.long() if not values.is_floating_point() else values.float()


class ArrayDataModule(pl.LightningDataModule):
    """Tensors in memory; ``batch_size`` is read when the training loader is built. Integer inputs are tokens,
    float targets make a regression."""

    def __init__(
        self, x_train: Tensor | np.ndarray, y_train: Tensor | np.ndarray, x_val: Tensor | np.ndarray,
        y_val: Tensor | np.ndarray, batch_size: int = 32, seed: int = 0, facts: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.train_dataset = TensorDataset(_tensor(x_train), _tensor(y_train))
        self.val_dataset = TensorDataset(_tensor(x_val), _tensor(y_val))
        self.batch_size = int(batch_size)
        self.seed = seed
        targets = (self.train_dataset.tensors[1], self.val_dataset.tensors[1])
        self.regression = targets[0].is_floating_point()
        self.num_classes = 1 if self.regression else int(max(int(t.max()) for t in targets) + 1)
        self.input_shape = tuple(self.train_dataset.tensors[0].shape[1:])
        self._facts = dict(facts or {})

    def meta_features(self) -> dict[str, float]:
        """Classes and training samples per class (classification), and the task's own stated facts."""
        if self.regression:
            return dict(self._facts)
        return {
            "n_classes": float(self.num_classes),
            "samples_per_class": len(self.train_dataset) / self.num_classes,
            **self._facts,
        }

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.train_dataset, batch_size=self.batch_size, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_dataset, batch_size=1024)
