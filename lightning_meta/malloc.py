"""Keeps freed CPU tensor memory in the process, so training steps stop page-faulting it back in.

glibc serves every allocation above its mmap threshold (dynamic, at most 32 MiB) with fresh pages
from the kernel and returns them on ``free``; the heap top above 2x that threshold is trimmed too.
A meta-training step allocates and frees the same large activations every step (a 60-way ProtoNet
episode: 72 MiB per conv output), so each step zero-fills and faults in that memory again. Raising
both thresholds to 1 GiB makes glibc reuse it: the 60-way bf16 ProtoNet step on 2 cores goes from
0.156 s to 0.087 s (benchmarks/results/accuracy.md). It is what ``GLIBC_TUNABLES`` or a preloaded
jemalloc would do, but set from inside the process, so ``python train.py`` gets it without a wrapper.
The cost: the process keeps its peak heap instead of shrinking between steps.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEEP_BELOW = 1 << 30
"""Allocations up to this size are reused from the heap; larger ones still come from mmap."""


def keep_freed_memory(limit: int = KEEP_BELOW) -> bool:
    """Tells glibc to keep freed blocks up to ``limit`` bytes for reuse; True when it took effect.

    False (and nothing changed) where the C library is not glibc (macOS, Windows, musl).
    """
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, limit)) and bool(mallopt(M_TRIM_THRESHOLD, limit))
