"""WidgetSuite: the widget world as a tasks.suites.base.Suite (task ids = family names)."""
from __future__ import annotations

from actions.errors import ConfigError
from tasks.suites.widgets.episode import WidgetEpisode
from tasks.suites.widgets.families import FAMILIES
from tasks.suites.widgets.oracle import WidgetOracle


class WidgetSuite:
    name = "widgets"

    def task_ids(self) -> list[str]:
        return list(FAMILIES)

    def default_task_ids(self) -> list[str]:
        return list(FAMILIES)

    def episode(self, task_id: str, seed: int, split: str = "test") -> WidgetEpisode:
        """A seeded episode. Train seeds are 0..999_999; test seeds below 1_000_000 are shifted
        above it, so the two splits never share a page (see generator.canonical_seed)."""
        if task_id not in FAMILIES:
            raise ConfigError(f"widgets has no task {task_id!r}; tasks: {', '.join(FAMILIES)}")
        try:
            return WidgetEpisode.create(task_id, seed, split)
        except ValueError as e:
            raise ConfigError(str(e)) from None

    def oracle(self, task_id: str) -> WidgetOracle:
        if task_id not in FAMILIES:
            raise ConfigError(f"widgets has no task {task_id!r}; tasks: {', '.join(FAMILIES)}")
        return WidgetOracle(task_id)
