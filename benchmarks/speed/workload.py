"""What one benchmark row measures: an algorithm on one episode shape, and the tensors it trains on.

Both libraries are fed the very same pre-built episodes (already on the device), so the timings
compare the meta-training step itself, not two data pipelines.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

ALGORITHMS = ("maml", "fomaml", "reptile", "protonet")


@dataclass(frozen=True)
class ImageSpec:
    """Input shape and the Conv4 variant the MAML literature pairs with it."""

    channels: int
    size: int
    hidden: int
    downsample: str  # "stride": learn2learn OmniglotCNN; "pool": learn2learn MiniImagenetCNN


IMAGES = {
    "omniglot": ImageSpec(channels=1, size=28, hidden=64, downsample="stride"),
    "miniimagenet": ImageSpec(channels=3, size=84, hidden=32, downsample="pool"),
}
PROTONET_HIDDEN = 64
"""ProtoNet embeds with a 64-filter max-pool Conv4 on every data set (Snell et al. 2017)."""


@dataclass(frozen=True)
class Workload:
    """One meta-training configuration, identical for both libraries."""

    algo: str
    image: str
    ways: int
    shots: int
    queries: int
    meta_batch: int
    inner_steps: int = 1
    inner_lr: float = 0.4
    meta_lr: float = 1e-3

    def __post_init__(self) -> None:
        if self.algo not in ALGORITHMS:
            raise ValueError(f"Unknown algorithm {self.algo!r}: choose one of {ALGORITHMS}.")
        if self.image not in IMAGES:
            raise ValueError(f"Unknown image shape {self.image!r}: choose one of {tuple(IMAGES)}.")
        if min(self.ways, self.shots, self.meta_batch, self.inner_steps) < 1 or self.queries < 0:
            raise ValueError(f"Workload {self} needs ways, shots, meta_batch, inner_steps >= 1 and queries >= 0.")

    @property
    def spec(self) -> ImageSpec:
        return IMAGES[self.image]

    @property
    def label(self) -> str:
        return f"{self.algo} {self.image} {self.ways}w{self.shots}s mb{self.meta_batch}"


@dataclass
class Episodes:
    """A meta-batch of N-way K-shot episodes; labels are 0..ways-1 in class-major order."""

    support_x: Tensor  # [meta_batch, ways*shots, C, H, W]
    support_y: Tensor  # [meta_batch, ways*shots]
    query_x: Tensor  # [meta_batch, ways*queries, C, H, W]
    query_y: Tensor  # [meta_batch, ways*queries]

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> Episodes:
        return Episodes(
            self.support_x.to(device, dtype), self.support_y.to(device),
            self.query_x.to(device, dtype), self.query_y.to(device),
        )

    def task(self, i: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.support_x[i], self.support_y[i], self.query_x[i], self.query_y[i]


def _labels(meta_batch: int, ways: int, per_class: int) -> Tensor:
    return torch.arange(ways).repeat_interleave(per_class).expand(meta_batch, -1).contiguous()


def synthetic_episodes(workload: Workload, seed: int = 0) -> Episodes:
    """Random binary images of the workload's shape: timings do not depend on pixel values."""
    g = torch.Generator().manual_seed(seed)
    s, w = workload.spec, workload.ways
    shape = (s.channels, s.size, s.size)
    make = lambda n: (torch.rand((workload.meta_batch, n, *shape), generator=g) > 0.5).float()  # noqa: E731
    return Episodes(
        make(w * workload.shots), _labels(workload.meta_batch, w, workload.shots),
        make(w * workload.queries), _labels(workload.meta_batch, w, workload.queries),
    )


def workloads(device_type: str, quick: bool = False) -> list[Workload]:
    """The benchmark grid: Omniglot 5w1s and 20w1s, miniImageNet 5w1s (15 queries per class), meta-batch
    32 on CPU and also 128 and 256 on a GPU; ProtoNet on 5-way episodes; Reptile with 5 inner steps."""
    if quick:
        return [Workload("maml", "omniglot", ways=5, shots=1, queries=15, meta_batch=4)]
    meta_batches = (32,) if device_type == "cpu" else (32, 128, 256)
    grid = []
    for image, ways in (("omniglot", 5), ("omniglot", 20), ("miniimagenet", 5)):
        for algo in ALGORITHMS:
            if algo == "protonet" and ways != 5:
                continue
            for mb in meta_batches:
                grid.append(Workload(algo, image, ways, 1, 15, mb, inner_steps=5 if algo == "reptile" else 1))
    return grid
