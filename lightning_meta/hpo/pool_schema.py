"""The experience pool's table: one row per training run of a base learner.

Kept apart from ``pool.py`` so the schema reads at a glance. JSON columns hold the open-ended parts
(task features, hyperparameters, learning curve, library versions) so a new hyperparameter or
feature never needs a migration.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, Float, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

STATUSES = ("complete", "failed", "diverged", "running")


class Base(DeclarativeBase):
    pass


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Run(Base):
    """One observation of (task, hyperparameters) -> performance.

    ``objective`` is higher-is-better: the metric as measured when ``direction`` is "maximize",
    its negation when "minimize". It is NULL unless the run completed with a finite metric.
    """

    __tablename__ = "run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task: Mapped[str] = mapped_column(String(255), index=True)
    task_features: Mapped[dict] = mapped_column(JSON, default=dict)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    objective: Mapped[float | None] = mapped_column(Float, nullable=True)
    metric_name: Mapped[str] = mapped_column(String(255), default="val_acc")
    direction: Mapped[str] = mapped_column(String(16), default="maximize")
    best_metric: Mapped[float | None] = mapped_column(Float, nullable=True)
    final_metric: Mapped[float | None] = mapped_column(Float, nullable=True)
    curve: Mapped[list | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    versions: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
