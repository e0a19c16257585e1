"""Outer learning-rate schedules planned over the run's budget: its steps, or ``trainer.max_time``.

A schedule is a function of the run's progress in [0, 1]: the larger of the fraction of planned optimizer
steps taken and, when ``max_time`` is set, the fraction of the time budget spent (Lightning's ``Timer``,
which a resumed run restores). So a run stopped by ``max_time`` ends annealed instead of being cut
mid-schedule. Why the time fraction itself rather than a step count extrapolated once from a warm-up:
the step rate of a shared 2-core VM drifted from 4.3 to 8 Reptile meta-iterations/s within one
30-minute run (benchmarks/results/accuracy.md), so a plan made after a warm-up ends early or late.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer

from lightning_meta.errors import ConfigError

Schedule = Literal["step", "cosine", "linear"]
SCHEDULES = get_args(Schedule)


def planned_steps(trainer: L.Trainer | None) -> float:
    """The optimizer steps ``max_epochs`` / ``max_steps`` plan (``inf`` when only a time limit ends the run)."""
    if trainer is None:
        return math.inf
    total = trainer.estimated_stepping_batches
    return math.inf if total in (None, float("inf")) else max(1.0, float(total))


def time_spent(trainer: L.Trainer | None) -> float | None:
    """The fraction of ``trainer.max_time`` spent so far, or None without a time limit."""
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None) if trainer is not None else None
    remaining = timer.time_remaining() if timer is not None else None
    if remaining is None:
        return None
    elapsed = timer.time_elapsed()
    return min(1.0, elapsed / max(elapsed + remaining, 1e-9))


def progress(trainer: L.Trainer | None, step: int, total: float) -> float:
    """Fraction of the run done at optimizer step ``step``: steps or time, whichever ran out further."""
    by_steps = step / total if math.isfinite(total) else 0.0
    by_time = time_spent(trainer) or 0.0
    return min(1.0, max(by_steps, by_time))


def outer_scheduler(optimizer: torch.optim.Optimizer, kind: str, trainer: L.Trainer | None,
                    step_size: int | None = None, gamma: float = 0.5) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The outer-rate schedule ``kind`` as a per-step ``LambdaLR`` (None: constant rate).

    ``linear`` goes from the rate to 0 (Reptile's anneal), ``cosine`` likewise along a half cosine, and
    ``step`` multiplies it by ``gamma`` every ``step_size`` steps; under a time budget the milestones are
    placed at the same fractions of the run as in the planned steps.
    """
    if kind not in SCHEDULES:
        raise ConfigError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, got '{kind}'.")
    total = planned_steps(trainer)
    if kind in ("cosine", "linear") and not math.isfinite(total) and time_spent(trainer) is None:
        raise ConfigError(f"lr_schedule={kind} needs a planned length. Fix: set trainer.max_epochs, "
                          "trainer.max_steps or trainer.max_time.")
    if kind == "step" and not step_size:
        return None

    def factor(step: int) -> float:
        done = progress(trainer, step, total)
        if kind == "linear":
            return max(0.0, 1.0 - done)
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * done))
        # Step decay: the step a planned run would be at, at this fraction of the budget.
        at = done * total if math.isfinite(total) else step
        return gamma ** int(at // step_size)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
