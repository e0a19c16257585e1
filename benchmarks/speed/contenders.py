"""The implementations under comparison, each built from the same weights for every workload."""

from __future__ import annotations

import torch

from benchmarks.speed.baseline_l2l import NOT_INSTALLED, l2l_step, l2l_version
from benchmarks.speed.ours import batched_step, our_step
from benchmarks.speed.timing import LoopContender
from benchmarks.speed.workload import Episodes, Workload

OURS, THREADED, BATCHED, THEIRS = "lightning_meta", "lightning_meta (task threads)", "lightning_meta (batched)", "learn2learn"
LIBRARIES = (OURS, THREADED, BATCHED, THEIRS)


def available(library: str, workload: Workload) -> bool:
    """Whether ``library`` can run ``workload`` in this interpreter."""
    if library == THEIRS:
        return l2l_version() != NOT_INSTALLED
    if library == BATCHED:
        return workload.algo in ("maml", "fomaml")
    if library == THREADED:  # one task thread per torch thread; ours and learn2learn use them for intra-op work
        return torch.get_num_threads() > 1 and workload.meta_batch > 1
    return library == OURS


def build_contender(library: str, workload: Workload, episodes: Episodes, device: torch.device) -> LoopContender:
    """A fresh model and optimizer of ``library`` that trains on ``episodes`` when run."""
    if library == OURS:
        return LoopContender(our_step(workload, episodes, device), device)
    if library == THREADED:
        return LoopContender(our_step(workload, episodes, device, task_threads=torch.get_num_threads()), device)
    if library == BATCHED:
        return LoopContender(batched_step(workload, episodes, device), device)
    if library == THEIRS:
        return LoopContender(l2l_step(workload, episodes, device), device)
    raise ValueError(f"Unknown library {library!r}: choose one of {LIBRARIES}.")
