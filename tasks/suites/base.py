"""The Suite interface: a family of seeded tasks with oracle teachers."""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from agent.task import Task
from policy.base import Policy


@runtime_checkable
class Suite(Protocol):
    name: str  # "miniwob", "widgets"

    def task_ids(self) -> list[str]:
        """Every task this suite can run, in a stable order."""
        ...

    def default_task_ids(self) -> list[str]:
        """The tasks `galago eval SUITE` runs when none are named (e.g. the 56-task WebGUM set)."""
        ...

    def episode(self, task_id: str, seed: int, split: str = "test") -> Task:
        """A Task for one seeded episode. ``split`` is "train" or "test" (held-out)."""
        ...

    def oracle(self, task_id: str) -> Policy:
        """A teacher that solves this task's episodes by reading the page, acting only through
        the action schema and the driver."""
        ...
