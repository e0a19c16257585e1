"""The arithmetic floor: how many tasks per second the machine could do if every FLOP of a task ran
at the speed of a large fp32 matrix multiply. Our fraction of it says how much is left to win.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_flops(work: Callable[[], object]) -> int:
    """FLOPs of matmuls and convolutions (forward, backward and double backward) that ``work`` runs."""
    counter = FlopCounterMode(display=False)
    with counter:
        work()
    return counter.get_total_flops()


def matmul_flops_per_second(device: torch.device, n: int = 2048, repeats: int = 7) -> float:
    """Best-case fp32 throughput: the median rate of an n x n by n x n matrix product."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.mm(a, b)  # warm-up: thread pool / cuBLAS handle
    rates = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            torch.mm(a, b)
            end.record()
            end.synchronize()
            seconds = start.elapsed_time(end) / 1000.0
        else:
            begin = time.perf_counter()
            torch.mm(a, b)
            seconds = time.perf_counter() - begin
        rates.append(2.0 * n**3 / seconds)
    return statistics.median(rates)
