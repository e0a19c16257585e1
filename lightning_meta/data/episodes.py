"""N-way K-shot episodes: which classes and images a task draws, and in which order.

An episode is a pure function of ``(seed, index)``: the same index gives the same task in any
process, worker or rank. Evaluation uses indices ``0..n-1`` (a fixed set); training uses
``EpisodeSampler``, which hands out fresh indices every epoch.

``within_alphabet`` episodes draw all their classes from one alphabet (``ClassImages.alphabets``): the
episode's alphabet is drawn uniformly among those with at least ``ways`` classes, and alphabets with fewer are
skipped (a 20-way episode cannot come from Tagalog's 17 characters); if no alphabet is large enough the episode
shape is refused.

``drawers="lake"`` builds episodes as Lake et al.'s (2015) 20 official one-shot runs are built: on top of one
alphabet, every support image is by one drawer and every query by one other drawer, one of each per class. With
``drawers="any"`` each class draws its images' drawers on its own, so the supports of an episode mix many hands and
so do its queries: another task, which scores differently on the same weights (benchmarks/results/accuracy.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from lightning_meta.checks import NonNegativeInt, PositiveInt, check_arguments
from lightning_meta.data.classes import ClassImages
from lightning_meta.errors import DataError


@dataclass(frozen=True)
class EpisodeSpec:
    """Ways (classes per task), shots (support images per class) and queries (query images per class); with
    ``within_alphabet`` all classes of a task come from one alphabet, with ``drawers="lake"`` all support images from
    one drawer and all queries from another (see the module's docstring). Checked when built (``lightning_meta.checks``)."""

    ways: PositiveInt
    shots: PositiveInt
    queries: NonNegativeInt
    within_alphabet: bool = False
    drawers: Literal["any", "lake"] = "any"

    def __post_init__(self) -> None:
        check_arguments(EpisodeSpec, {f.name: getattr(self, f.name) for f in fields(self)})

    def check(self, classes: ClassImages, where: str) -> None:
        """Raises ``DataError`` if ``classes`` cannot serve this episode shape."""
        if self.ways > classes.num_classes:
            raise DataError(
                f"{where}: {self.ways}-way episodes need {self.ways} classes but the split has only "
                f"{classes.num_classes}. Fix: lower ways to <= {classes.num_classes}."
            )
        need = self.shots + self.queries
        if need > classes.min_samples:
            fix = (f"make shots + queries <= {classes.min_samples}" if classes.min_samples >= 2 else
                   "give every class at least 2 images (1 shot + 1 query: evaluation measures accuracy on queries), "
                   "e.g. leave out the classes with a single image")
            raise DataError(
                f"{where}: shots + queries = {self.shots} + {self.queries} = {need} images per class, but some "
                f"classes have only {classes.min_samples}. Fix: {fix}."
            )
        if self.within_alphabet and classes.alphabets is None:
            raise DataError(f"{where}: within_alphabet episodes need each class's alphabet, which this data set does "
                            "not record. Fix: use Omniglot (data=omniglot or data=omniglot_lake) or within_alphabet=false.")
        if self.within_alphabet and not alphabet_groups(classes, self.ways):
            largest = max(Counter(classes.alphabets).values())
            raise DataError(f"{where}: {self.ways}-way within-alphabet episodes need an alphabet of {self.ways} classes, "
                            f"but the largest has {largest}. Fix: lower ways to <= {largest}, or within_alphabet=false.")
        if self.drawers == "lake" and (self.shots, self.queries, self.within_alphabet) != (1, 1, True):
            raise DataError(f"{where}: drawers=lake builds Lake's one-shot runs, one support and one query image per class "
                            f"of one alphabet, but got shots={self.shots}, queries={self.queries}, within_alphabet="
                            f"{str(self.within_alphabet).lower()}. Fix: set shots=1, queries=1, within_alphabet=true.")
        if self.drawers == "lake" and not classes.drawers:
            raise DataError(f"{where}: drawers=lake needs images stored by drawer (row r of every class by drawer r), "
                            "which only Omniglot records. Fix: use data=omniglot_lake or drawers=any.")


def alphabet_groups(classes: ClassImages, ways: int) -> list[np.ndarray]:
    """The class indices of each alphabet with at least ``ways`` classes, in order of first appearance;
    smaller alphabets are skipped."""
    members: dict[str, list[int]] = {}
    for c, alphabet in enumerate(classes.alphabets or ()):
        members.setdefault(alphabet, []).append(c)
    return [np.asarray(ids) for ids in members.values() if len(ids) >= ways]


class EpisodeDataset(Dataset):
    """Map-style dataset whose item ``i`` is episode ``i`` of ``seed``.

    Returns ``(support_x [N*K, C, H, W], support_y [N*K], query_x [N*Q, C, H, W], query_y [N*Q])``
    with labels remapped to ``0..N-1`` in a random class order, grouped by class. ``augment`` (e.g. a torchvision
    ``transforms.v2`` pipeline) is applied to each input on its own, with torch's random state seeded from the
    episode's, so an augmented episode too is a pure function of ``(seed, index)``.
    """

    def __init__(
        self,
        classes: ClassImages,
        spec: EpisodeSpec,
        num_episodes: int,
        seed: int | tuple[int, ...],
        augment: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.classes = classes
        self.spec = spec
        self.num_episodes = num_episodes
        self.seed = tuple(seed) if isinstance(seed, (tuple, list)) else (int(seed),)
        self.augment = augment
        spec.check(classes, "EpisodeDataset")
        self.alphabets = alphabet_groups(classes, spec.ways) if spec.within_alphabet else None

    def __len__(self) -> int:
        return self.num_episodes

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        rng = np.random.default_rng([*self.seed, int(index)])
        n, k, q = self.spec.ways, self.spec.shots, self.spec.queries
        if self.alphabets is None:
            chosen = rng.choice(self.classes.num_classes, size=n, replace=False)
        else:
            chosen = rng.choice(self.alphabets[rng.integers(len(self.alphabets))], size=n, replace=False)
        support, query = [], []
        drawers = rng.choice(self.classes.min_samples, size=2, replace=False) if self.spec.drawers == "lake" else None
        for c in chosen:
            idx = drawers if drawers is not None else rng.choice(self.classes.num_samples(int(c)), size=k + q, replace=False)
            images = self.classes.get(int(c), idx.tolist())
            support.append(images[:k])
            query.append(images[k:])
        labels = torch.arange(n)
        support_x = torch.cat(support)
        query_x = torch.cat(query) if q else torch.empty(0, *self.classes.input_shape)
        if self.augment is not None:
            support_x, query_x = self._augmented(support_x, query_x, int(rng.integers(2**63)))
        return support_x, labels.repeat_interleave(k), query_x, labels.repeat_interleave(q)

    def _augmented(self, support_x: Tensor, query_x: Tensor, seed: int) -> tuple[Tensor, Tensor]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = [torch.stack([self.augment(x) for x in xs]) if len(xs) else xs for xs in (support_x, query_x)]
        if out[0].shape[1:] != support_x.shape[1:]:
            raise DataError(f"The augmentation changes the input shape {tuple(support_x.shape[1:])} to "
                            f"{tuple(out[0].shape[1:])}. Fix: keep the size (e.g. RandomResizedCrop(size=...) at the image size).")
        return out[0], out[1]


class EpisodeSampler(Sampler[int]):
    """Training indices: ``num_episodes`` fresh episodes each epoch, reproducible from the seed.

    The epoch comes from ``epoch_source`` (the Trainer's ``current_epoch``), so a run resumed from
    a checkpoint sees the same episodes as an uninterrupted one. Under DDP, Lightning wraps this
    sampler and gives each rank a disjoint share of the indices.
    """

    def __init__(self, num_episodes: int, epoch_source: Callable[[], int]) -> None:
        self.num_episodes = num_episodes
        self.epoch_source = epoch_source

    def __len__(self) -> int:
        return self.num_episodes

    def __iter__(self) -> Iterator[int]:
        start = int(self.epoch_source()) * self.num_episodes
        return iter(range(start, start + self.num_episodes))
