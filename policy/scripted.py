"""Policies that need no model: ``scripted`` (the task file's script) and ``oracle`` (a suite's teacher).

The scripted policy plays a task's ``script:`` lines one per step through the same parser a model's
text goes through, so a bad script line is a model error the loop feeds back, exactly as a bad
model response would be. Script coordinates are absolute viewport CSS pixels.
"""
from __future__ import annotations

from typing import Sequence

from actions.errors import ConfigError, ModelError
from actions.schema import Finished, Step
from perception.observation import Observation
from perception.space import CoordinateSpace
from policy import register
from policy.base import BasePolicy, Episode, HistoryEntry, Policy


def finished_step(thought: str, answer: str = "") -> Step:
    return Step(thought=thought, actions=[Finished(answer=answer)], raw="finished()")


class ScriptedPolicy(BasePolicy):
    """Plays ``task.script`` (UI-TARS action strings), one per step, then ``finished()``."""

    name = "scripted"

    def __init__(self, script: Sequence[str] | None = None):
        self._fixed = list(script) if script is not None else None
        self.script: list[str] = list(script or [])
        self.position = 0

    def coordinate_space(self, width: int, height: int, dpr: float = 1.0) -> CoordinateSpace:
        # Scripts are written in CSS pixels whatever the device pixel ratio.
        return CoordinateSpace.absolute(width, height, 1.0)

    def reset(self, episode: Episode) -> None:
        super().reset(episode)
        self.position = 0
        if self._fixed is not None:
            self.script = list(self._fixed)
            return
        script = getattr(episode.task, "script", None)
        if not script:
            task_id = getattr(episode.task, "id", "this task")
            raise ConfigError(f"the scripted policy needs script: steps, and task {task_id!r} has none; "
                              f"add a script: list to the task file or use another --policy")
        self.script = list(script)

    def act(self, task: str, observation: Observation, history: Sequence[HistoryEntry]) -> Step:
        from actions.parse import parse_response

        if self.position >= len(self.script):
            return finished_step(f"All {len(self.script)} script steps are done.")
        line = self.script[self.position]
        self.position += 1  # advance even if the line is bad, or a bad line would repeat forever
        space = CoordinateSpace.absolute(observation.width, observation.height, 1.0)
        try:
            step = parse_response(line, space)
        except ModelError as e:
            e.raw = line  # the loop records the text that failed (any backend may set .raw)
            raise
        if not step.thought:
            step.thought = f"Script step {self.position} of {len(self.script)}."
        return step


class OraclePolicy(BasePolicy):
    """Delegates to the task's own oracle teacher (suite episodes expose ``task.oracle()``)."""

    name = "oracle"

    def __init__(self):
        self.inner: Policy | None = None

    def coordinate_space(self, width: int, height: int, dpr: float = 1.0) -> CoordinateSpace:
        if self.inner is not None:
            return self.inner.coordinate_space(width, height, dpr)
        return CoordinateSpace.absolute(width, height, dpr)

    def reset(self, episode: Episode) -> None:
        super().reset(episode)
        make = getattr(episode.task, "oracle", None)
        if not callable(make):
            task_id = getattr(episode.task, "id", "this task")
            raise ConfigError(f"the oracle policy needs a suite task (SUITE:TASK, e.g. miniwob:click-button); "
                              f"task {task_id!r} has no oracle. For a task file with a script: use --policy scripted")
        self.inner = make()
        self.inner.reset(episode)

    def act(self, task: str, observation: Observation, history: Sequence[HistoryEntry]) -> Step:
        if self.inner is None:
            raise RuntimeError("OraclePolicy.act called before reset()")
        return self.inner.act(task, observation, history)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


register("scripted", lambda arg=None, **_: ScriptedPolicy())
register("oracle", lambda arg=None, **_: OraclePolicy())
