"""Tasks: what a goal (classification, sft, ...) needs from the pipeline. Each registers itself."""

from tunelab.tasks.base import TASKS, Task, get_task

__all__ = ["TASKS", "Task", "get_task"]
