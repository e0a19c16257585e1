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


class ArrayDataModule(pl.LightningDataModule):
    """Tensors in memory; ``batch_size`` is read when the training loader is built."""

    def __init__(
        self, x_train: Tensor | np.ndarray, y_train: Tensor | np.ndarray, x_val: Tensor | np.ndarray,
        y_val: Tensor | np.ndarray, batch_size: int = 32, seed: int = 0, facts: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        as_x = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        as_y = lambda a: torch.as_tensor(a, dtype=torch.long)  # noqa: E731
        self.train_dataset = TensorDataset(as_x(x_train), as_y(y_train))
        self.val_dataset = TensorDataset(as_x(x_val), as_y(y_val))
        self.batch_size = int(batch_size)
        self.seed = seed
        self.num_classes = int(max(int(self.train_dataset.tensors[1].max()), int(self.val_dataset.tensors[1].max())) + 1)
        self.input_shape = tuple(self.train_dataset.tensors[0].shape[1:])
        self._facts = dict(facts or {})

    def meta_features(self) -> dict[str, float]:
        """Classes, training samples per class, and the task's own stated facts."""
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
