"""Learning from every run: when and on what a mapping is fit again.

A mapping is fit once on a pool; every later run the callback records is new experience. The
policy is stateless, so it works across processes and machines: a mapping remembers how many
complete runs it was fit on (``fitted_runs``), and once the pool(s) it learns from hold
``every`` more, it is fit again on all of them, with the same settings, and saved where the user
asked. The shipped pool is one of the sources by default, so a user's first runs add to the
experience the default mapping came with instead of replacing it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from lightning_meta.errors import ConfigError
from lightning_meta.hpo.mappings.base import Mapping
from lightning_meta.hpo.pool import ExperiencePool

SHIPPED_POOL = Path(__file__).resolve().parents[1] / "assets" / "mapping" / "families.db"


SHIPPED = "shipped"


def _frame(source: ExperiencePool | str) -> pd.DataFrame:
    """The complete runs of one source; the shipped pool is read from a copy (the package may be read-only)."""
    if isinstance(source, ExperiencePool):
        return source.frame()
    if source != SHIPPED:
        with ExperiencePool(str(source)) as pool:
            return pool.frame()
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(shutil.copy(SHIPPED_POOL, folder))
        with ExperiencePool(f"sqlite:///{copy}") as pool:
            return pool.frame()


def experience(sources: Sequence[ExperiencePool | str]) -> pd.DataFrame:
    """The complete runs of every source (pool, URL or ``"shipped"``), stacked; run ids are not kept."""
    frames = [_frame(source) for source in sources]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["task", "objective", "status"])


class RefitPolicy:
    """Fits ``mapping`` again once its sources hold ``every`` complete runs more than it was fit on.

    Args:
        every: new complete runs between fits (>= 1).
        base: extra pools it also learns from; ``"shipped"`` = the pool the default mapping was fit
            on, ``None`` = only the recording pool.
        save_to: where the refit mapping is written (atomically), so the next process loads it.
    """

    def __init__(self, every: int, base: str | Sequence[str] | None = "shipped", save_to: str | Path | None = None) -> None:
        if int(every) < 1:
            raise ConfigError(f"refit_every={every} is invalid: give an integer >= 1 (or leave it unset).")
        self.every = int(every)
        bases = [] if base is None else [base] if isinstance(base, str) else list(base)
        self.base = [str(b) for b in bases]
        self.save_to = Path(save_to) if save_to is not None else None
        self._base: pd.DataFrame | None = None  # the base pools are read once: they are other people's past runs

    def due(self, mapping: Mapping, pool: ExperiencePool) -> bool:
        """Whether the sources hold ``every`` more complete runs than ``mapping`` was fit on."""
        fitted = getattr(mapping, "fitted_runs", 0)
        return self._count(pool) - fitted >= self.every

    def _count(self, pool: ExperiencePool) -> int:
        return pool.count("complete") + len(self._base_frame())

    def _base_frame(self) -> pd.DataFrame:
        if self._base is None:
            self._base = experience(self.base)
        return self._base

    def refit(self, mapping: Mapping, pool: ExperiencePool) -> Mapping:
        """Fits ``mapping`` again (same class and settings) on the base pools plus ``pool``; saves it."""
        mapping.fit(pd.concat([self._base_frame(), pool.frame()], ignore_index=True), mapping.space)
        if self.save_to is not None:
            mapping.save(self.save_to)  # written beside and renamed into place: a reader never sees half a file
        return mapping
