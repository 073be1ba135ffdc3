"""``replay:RUN_DIR`` — plays back the steps a past run recorded, without a model.

Each recorded step's actions (already in viewport CSS pixels) are replayed as they were; steps
whose response could not be parsed did nothing to the page, so they are skipped. When the
recording ends, the policy answers ``finished()`` with the recorded answer.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from actions.errors import ConfigError
from actions.schema import Step, action_from_dict
from perception.observation import Observation
from policy import register
from policy.base import BasePolicy, Episode, HistoryEntry
from policy.scripted import finished_step


class ReplayPolicy(BasePolicy):
    name = "replay"

    def __init__(self, run_dir: str | Path):
        # Read steps.jsonl directly: policy/ must not import agent/ (dependency direction).
        steps_file = Path(run_dir) / "steps.jsonl"
        if not steps_file.is_file():
            raise ConfigError(f"{run_dir}: not a run directory (no steps.jsonl)")
        self.run_dir = Path(run_dir)
        self.steps: list[Step] = []
        lines = steps_file.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                actions = [action_from_dict(a) for a in rec.get("actions") or []]
            except (json.JSONDecodeError, ValueError, AttributeError) as e:
                if n == len(lines) - 1:
                    break  # a torn last line: the recorded run was killed mid-write
                raise ConfigError(f"{steps_file}:{n + 1}: not a valid step record: {e}") from None
            if actions:
                self.steps.append(Step(thought=str(rec.get("thought", "")), actions=actions,
                                       raw=str(rec.get("response", ""))))
        if not self.steps:
            raise ConfigError(f"{self.run_dir}: the run has no steps with actions to replay")
        self.position = 0

    def reset(self, episode: Episode) -> None:
        super().reset(episode)
        self.position = 0

    def act(self, task: str, observation: Observation, history: Sequence[HistoryEntry]) -> Step:
        if self.position >= len(self.steps):
            return finished_step(f"Replayed all {len(self.steps)} recorded steps.")
        step = self.steps[self.position]
        self.position += 1
        return Step(thought=step.thought, actions=list(step.actions), raw=step.raw)


def _factory(arg: str | None = None, **_: object) -> ReplayPolicy:
    if not arg or not Path(arg).is_dir():
        raise ConfigError(f"replay:{arg}: no such run directory")
    return ReplayPolicy(arg)


register("replay", _factory)
