"""The loop that ties everything together: Agent.run, trajectories, the CLI.

``from agent import Agent, RunResult, load_run``. Names are imported lazily so that
``import agent.task`` (which suites and task files need) stays light and cycle-free.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Agent", "RunResult", "StepRecord", "RunSummary", "load_run"]

_WHERE = {"Agent": "agent.loop", "RunResult": "agent.loop", "StepRecord": "agent.trajectory",
          "RunSummary": "agent.trajectory", "load_run": "agent.trajectory"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'agent' has no attribute {name!r}")
