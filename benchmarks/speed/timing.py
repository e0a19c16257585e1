"""Side-by-side timing: warm-up, then interleaved repeats, so that load from other processes and
clock changes hit every contender alike; medians are reported.

Each meta-batch update is timed on its own. On CUDA the brackets are CUDA events, read after a
synchronize, because the host returns long before the kernels finish; the peak of allocated
memory above what was allocated before the run is taken at the same time.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import torch

Step = Callable[[], object]
"""Runs one meta-batch update (forward, meta-gradient and optimizer step) in place; any return value is ignored."""


class StepClock:
    """Brackets pieces of work on the device's own timeline."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self._marks: list = []

    def _mark(self):
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def start(self) -> None:
        self._marks.append([self._mark(), None])

    def stop(self) -> None:
        self._marks[-1][1] = self._mark()

    def seconds(self) -> list[float]:
        """Length of every bracket, in order; waits for the device to finish first."""
        if not self.cuda:
            return [end - begin for begin, end in self._marks]
        torch.cuda.synchronize()
        return [begin.elapsed_time(end) / 1000.0 for begin, end in self._marks]


class Contender(Protocol):
    def run(self, iters: int) -> list[float]:
        """Performs ``iters`` meta-batch updates and returns the seconds each one took."""


class LoopContender:
    """A plain training loop: ``step`` called back to back."""

    def __init__(self, step: Step, device: torch.device) -> None:
        self.step, self.device = step, device

    def run(self, iters: int) -> list[float]:
        clock = StepClock(self.device)
        for _ in range(iters):
            clock.start()
            self.step()
            clock.stop()
        return clock.seconds()


@dataclass
class Timing:
    """Seconds per meta-batch update, one list per repeat; ``peak_bytes`` only on CUDA."""

    repeats: list[list[float]] = field(default_factory=list)
    peak_bytes: int | None = None

    @property
    def median(self) -> float:
        return statistics.median(t for repeat in self.repeats for t in repeat)

    @property
    def repeat_medians(self) -> list[float]:
        return [statistics.median(repeat) for repeat in self.repeats]


def _run_tracking_memory(contender: Contender, iters: int, device: torch.device) -> tuple[list[float], int | None]:
    if device.type != "cuda":
        return contender.run(iters), None
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    seconds = contender.run(iters)
    torch.cuda.synchronize(device)
    return seconds, torch.cuda.max_memory_allocated(device) - before


def interleaved(
    contenders: Mapping[str, Contender], device: torch.device, warmup: int, repeats: int, iters: int,
    budget_s: float | None = None,
) -> dict[str, Timing]:
    """Times every contender ``repeats`` times, alternating between them within each repeat.

    With ``budget_s``, fewer rounds (but at least 2) are run when the warm-up shows that ``repeats``
    rounds would take longer: a 20-way or 84 px meta-batch on a CPU takes tens of seconds.
    """
    if repeats < 1 or iters < 1 or warmup < 0:
        raise ValueError(f"Need repeats >= 1, iters >= 1 and warmup >= 0 (got {repeats}, {iters}, {warmup}).")
    round_s = 0.0
    for contender in contenders.values():
        if warmup:
            round_s += statistics.median(contender.run(warmup)) * iters
    if budget_s is not None and round_s > 0:
        repeats = max(2, min(repeats, int(budget_s / round_s)))
    timings = {name: Timing() for name in contenders}
    names = list(contenders)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:  # nobody always runs right after the other
            seconds, peak = _run_tracking_memory(contenders[name], iters, device)
            timings[name].repeats.append(seconds)
            if peak is not None:
                timings[name].peak_bytes = max(peak, timings[name].peak_bytes or 0)
    return timings
