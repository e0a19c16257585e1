"""Task families of the experience pool: real trainings whose best hyperparameters differ."""

from lightning_meta.hpo.families.catalog import FAMILIES, Task, all_tasks, task_by_key

__all__ = ["FAMILIES", "Task", "all_tasks", "task_by_key"]
