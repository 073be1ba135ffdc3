"""The Policy protocol: who decides the next step."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

from actions.schema import Step
from perception.observation import Observation
from perception.space import CoordinateSpace

# The loop's feedback when the same action keeps failing; a policy may react to it (policy.moe resamples).
STUCK_WARNING = ("You repeated the same action {n} times and the screen {how}. "
                 "That action is not working; try a different element, key or approach.")
STUCK_MARK = STUCK_WARNING.split(" {n}")[0]  # "You repeated the same action"


def is_stuck(entry: "HistoryEntry | None") -> bool:
    """Whether the loop flagged this past step as a repeat that got nowhere."""
    return entry is not None and STUCK_MARK in (entry.feedback or "")


@dataclass
class HistoryEntry:
    """One past step as a policy may use it.

    ``response`` is the policy's text for that step in UI-TARS syntax (``actions.to_uitars``), so
    every backend shares one history format; ``feedback`` is the error message the loop fed back
    (model errors), empty when the step went fine.
    """

    index: int
    thought: str
    actions: list  # list[Action], viewport pixels
    response: str
    feedback: str = ""
    observation: Observation | None = None  # kept for the last few steps only (memory pruning)


@dataclass
class Episode:
    """What a policy is told when an episode starts.

    ``task`` is the task object (a TaskSpec or a suite episode) — opaque to most policies; the
    scripted policy reads its ``script``, oracle teachers read its state. ``driver`` is given to
    policies that read the page to decide (oracle teachers only).
    """

    instruction: str
    task: Any = None
    driver: Any = None
    seed: int | None = None
    extra: dict = field(default_factory=dict)


class ScreenshotNeeded(Exception):
    """Raised by ``act`` of a policy whose ``needs_screenshot`` was False when, after all, it has to
    see the screen (a cache replay whose recorded step no longer matches). The loop captures the
    screenshot and calls ``act`` again with the full observation."""


@runtime_checkable
class Policy(Protocol):
    name: str

    def coordinate_space(self, width: int, height: int, dpr: float = 1.0) -> CoordinateSpace:
        """The coordinate convention this policy answers in, for a viewport of this size."""
        ...

    def reset(self, episode: Episode) -> None:
        """Called once before the first step of each episode."""
        ...

    def act(self, task: str, observation: Observation, history: Sequence[HistoryEntry]) -> Step:
        """Decide the next step. Raises ActionParseError (or another ModelError) for bad output."""
        ...


class BasePolicy:
    """Sensible defaults: absolute coordinates of the screenshot, nothing to reset.

    ``needs_screenshot`` is read by the loop before each capture: a policy that will not look at the
    pixels of the next step (a cache replay checks elements) sets it False and gets an
    Observation whose ``screenshot`` is None, unless it raises ScreenshotNeeded.
    """

    name = "base"
    needs_screenshot = True

    def coordinate_space(self, width: int, height: int, dpr: float = 1.0) -> CoordinateSpace:
        return CoordinateSpace.absolute(width, height, dpr)

    def reset(self, episode: Episode) -> None:
        self.episode = episode

    def act(self, task: str, observation: Observation, history: Sequence[HistoryEntry]) -> Step:
        raise NotImplementedError

    def close(self) -> None:
        pass
