"""Task families of the experience pool: real trainings whose best hyperparameters differ."""

from pool.families.catalog import FAMILIES, Task, all_tasks, task_by_key

__all__ = ["FAMILIES", "Task", "all_tasks", "task_by_key"]
