"""Episodes exchanged with task-set code in learn2learn's protocol, without importing learn2learn.

A *task set* is anything whose ``sample()`` returns one task as ``(data, labels)``, learn2learn's ``TaskDataset``
included (``MetaDataset`` -> ``TaskDataset`` with ``NWays``/``KShots``/``LoadData``/``RemapLabels``, or
``vision.benchmarks.get_tasksets``). Its tasks are split into support and query sets by the convention of
learn2learn's examples: with each class's samples consecutive (``ConsecutiveLabels``; we sort stably by label
either way), even positions adapt and odd positions evaluate, so a task of ``2K`` samples per class gives ``K``
shots and ``K`` queries.

``TaskSetEpisodes`` feeds such a task set to our learners; ``TaskSetView`` and ``learn2learn_tasksets`` hand our
episodes to code written for learn2learn, in the same layout.
"""

from __future__ import annotations

import functools
import random
from collections import namedtuple
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lightning_meta.data.episodes import EpisodeDataset, EpisodeSpec
from lightning_meta.errors import DataError

Episode = tuple[Tensor, Tensor, Tensor, Tensor]
BenchmarkTasksets = namedtuple("BenchmarkTasksets", ("train", "validation", "test"))
"""What ``learn2learn.vision.benchmarks.get_tasksets`` returns, field for field."""


def is_task_set(value: object) -> bool:
    """Anything with a ``sample()`` method: learn2learn's ``TaskDataset`` and look-alikes."""
    return callable(getattr(value, "sample", None))


def task_set_splits(value: Any) -> dict[str, Any] | None:
    """``{"train", "val", "test"}`` task sets from a dict of them (``val`` may be None: then the test set) or a
    ``BenchmarkTasksets``-like object (``.train``, ``.validation``, ``.test``); None if ``value`` holds no task sets."""
    if isinstance(value, Mapping):
        parts = {"train": value.get("train"), "val": value.get("val"), "test": value.get("test")}
    elif all(hasattr(value, a) for a in ("train", "validation", "test")):
        parts = {"train": value.train, "val": value.validation, "test": value.test}
    else:
        return None
    if not any(is_task_set(p) for p in parts.values()):
        return None
    if parts["val"] is None:
        parts["val"] = parts["test"]
    for stage, part in parts.items():
        if not is_task_set(part):
            raise DataError(f"dataset.{stage} is a {type(part).__name__} without sample(), while other splits are task "
                            "sets. Fix: give every split as a task set (e.g. learn2learn TaskDataset), or none.")
    return parts


def split_task(data: Tensor, labels: Tensor) -> Episode:
    """One task's ``(data, labels)`` as ``(support_x, support_y, query_x, query_y)``, labels remapped to ``0..N-1``
    in sorted label order: after a stable sort by label, even positions are support and odd positions query."""
    data, labels = torch.as_tensor(data), torch.as_tensor(labels).flatten()
    if data.shape[0] != labels.shape[0]:
        raise DataError(f"A task gave {data.shape[0]} inputs and {labels.shape[0]} labels: sample() must return "
                        "(data, labels) with one label per input.")
    order = torch.argsort(labels, stable=True)
    data, labels = data[order], labels[order]
    classes, counts = torch.unique(labels, return_counts=True)
    if len(classes) < 2 or bool((counts != counts[0]).any()) or int(counts[0]) % 2:
        raise DataError(f"A task has classes {classes.tolist()} with {counts.tolist()} samples: support and query are split "
                        "as learn2learn's examples do, which needs >= 2 classes of one even count each. Fix: sample "
                        "tasks with NWays(n), KShots(2 * shots) and ConsecutiveLabels.")
    remapped = torch.searchsorted(classes, labels)
    return data[0::2], remapped[0::2], data[1::2], remapped[1::2]


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Python's, numpy's and torch's global random state seeded by ``seed`` inside, restored after: learn2learn's
    task transforms draw from them, so a task ``sample()``s the same for the same seed."""
    py, npy = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.manual_seed(seed)
            yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)


class TaskSetEpisodes(Dataset):
    """Map-style episodes of a task set: item ``i`` is ``sample()`` drawn with the random state seeded by
    ``(seed, i)``, split by ``split_task``, so that resume and DDP shares see the same tasks as one process."""

    def __init__(self, task_set: Any, num_episodes: int, seed: tuple[int, ...]) -> None:
        self.task_set = task_set
        self.num_episodes = num_episodes
        self.seed = seed

    def __len__(self) -> int:
        return self.num_episodes

    def __getitem__(self, index: int) -> Episode:
        with seeded(int(np.random.default_rng([*self.seed, int(index)]).integers(2**63))):
            task = self.task_set.sample()
        if not (isinstance(task, (tuple, list)) and len(task) == 2):
            raise DataError(f"{type(self.task_set).__name__}.sample() returned a {type(task).__name__}; a task set's "
                            "sample() must return (data, labels) of one task.")
        return split_task(*task)

    @functools.cached_property
    def spec(self) -> EpisodeSpec:
        """The episode shape of this task set's tasks (read from episode 0), an attribute as ``EpisodeDataset``'s is."""
        sx, _, qx, qy = self[0]
        ways = int(qy.max()) + 1
        return EpisodeSpec(ways=ways, shots=len(sx) // ways, queries=len(qx) // ways)


class TaskSetView:
    """Our episodes in learn2learn's ``TaskDataset`` protocol: ``sample()`` and ``view[i]`` give ``(data, labels)``
    with each class's support and query inputs interleaved, so learn2learn code's even/odd split gets our support
    and query sets back. ``sample()`` walks the episodes in order (fresh training episodes, as learn2learn's do)."""

    def __init__(self, episodes: EpisodeDataset) -> None:
        spec = episodes.spec
        if spec.queries != spec.shots:
            raise DataError(f"learn2learn's even/odd split needs as many queries as shots per class, got shots={spec.shots}, "
                            f"queries={spec.queries}. Fix: set queries={spec.shots} for this stage.")
        self.episodes = episodes
        self._next = 0

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        sx, sy, qx, qy = self.episodes[index]
        data = torch.stack([sx, qx], dim=1).flatten(0, 1)  # s0 q0 s1 q1 ... (both grouped by class)
        return data, torch.stack([sy, qy], dim=1).flatten()

    def sample(self) -> tuple[Tensor, Tensor]:
        task = self[self._next % len(self)]
        self._next += 1
        return task


def learn2learn_tasksets(datamodule: Any) -> BenchmarkTasksets:
    """A datamodule's train/val/test episodes as learn2learn's ``BenchmarkTasksets(train, validation, test)``."""
    datamodule.setup()
    views = [TaskSetView(datamodule.episode_dataset(stage)) for stage in ("train", "val", "test")]
    return BenchmarkTasksets(*views)
