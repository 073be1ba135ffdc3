"""The Task protocol the loop runs: a task file, a MiniWoB++ episode or a widget-world episode."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass
class Outcome:
    """The task's own verdict after a step (or at the end).

    ``done`` means the environment ended the episode by itself (MiniWoB++'s WOB_DONE_GLOBAL) —
    the loop stops; ``success`` is the lenient verdict (raw reward > 0 for MiniWoB++, all checks
    hold for task files), ``strict_success`` the strict one (raw reward == 1).
    """

    done: bool
    success: bool
    reward: float = 0.0
    strict_success: bool | None = None
    detail: str = ""

    def __post_init__(self):
        if self.strict_success is None:
            self.strict_success = self.success


@runtime_checkable
class Task(Protocol):
    id: str
    instruction: str  # may be known only after setup (read off the page)
    max_steps: int
    viewport: tuple[int, int]
    observe_selector: str | None  # observe (screenshot + elements) only this element's area
    script: list[str]  # UI-TARS steps for the scripted policy; may be empty
    stop_on_success: bool  # end the run as soon as evaluate() says success (task files: True)

    def setup(self, driver) -> None:
        """Bring the driver's page to the task's start state (navigate, seed, start the episode)."""
        ...

    def evaluate(self, driver) -> Outcome:
        """Check the task's success rules against the live page."""
        ...

    def teardown(self) -> None:
        """Release what setup acquired (e.g. the local page server)."""
        ...
