"""The tasks of a meta-batch on several CPU threads at once, each thread running whole tasks.

Why: one Omniglot task is a few dozen kernels on 5-75 small images, too small for intra-op
threads to split well (2 OpenMP threads make a MAML meta-batch about 1.5x faster than 1), while
independent tasks on single-threaded workers scale with the cores (benchmarks/results/speed_cpu.md).
Kernels release the GIL, so Python threads suffice.

Each worker runs a contiguous chunk of the tasks and the results come back in task order, so a run
is reproducible for a given number of threads. Grad mode and autocast are thread-local in PyTorch;
the workers take the caller's. Modules called through ``inner_loop.forward`` get a private copy per
worker thread there, as ``functional_call`` swaps tensors into the module it is given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")
_pools: dict[int, ThreadPoolExecutor] = {}  # module-level: learners stay picklable and copyable


def chunks(n: int, parts: int) -> list[range]:
    """``range(n)`` cut into ``parts`` contiguous pieces of near-equal length (none empty)."""
    parts = max(1, min(parts, n))
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:])]


def map_tasks(fn: Callable[[range], T], n: int, threads: int) -> list[T]:
    """``[fn(chunk) for chunk in chunks(n, threads)]``, the chunks run concurrently when ``threads > 1``."""
    parts = chunks(n, threads)
    if len(parts) == 1:
        return [fn(parts[0])]
    grad = torch.is_grad_enabled()
    autocast = [(d, torch.get_autocast_dtype(d)) for d in ("cpu", "cuda") if torch.is_autocast_enabled(d)]
    caller_threads = torch.get_num_threads()

    def run(part: range) -> T:
        torch.set_num_threads(1)
        with torch.set_grad_enabled(grad), contextlib.ExitStack() as regions:
            for device, dtype in autocast:
                regions.enter_context(torch.autocast(device, dtype))
            return fn(part)

    pool = _pools.get(threads)
    if pool is None:
        pool = _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix="lightning_meta-task")
    try:
        return list(pool.map(run, parts))
    finally:
        torch.set_num_threads(caller_threads)  # the workers' setting is also the default of new threads

