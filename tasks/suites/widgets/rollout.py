"""Run the oracle on one episode without the agent loop (for the suite's tests and bench).

The agent loop (agent/loop.py) is the real path; this short version keeps the suite checkable on
its own and makes oracle sweeps cheap (no screenshots).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from policy.base import Episode
from tasks.suites.widgets.episode import WidgetEpisode
from tasks.suites.widgets.oracle import OracleGaveUp, WidgetOracle


@dataclass
class OracleRun:
    success: bool
    done: bool
    steps: int
    detail: str
    thoughts: list[str] = field(default_factory=list)
    actions: list = field(default_factory=list)


def run_oracle(driver, task: WidgetEpisode, max_steps: int | None = None, settle_ms: int = 30) -> OracleRun:
    oracle = WidgetOracle(task.spec.family)
    task.setup(driver)
    try:
        oracle.reset(Episode(instruction=task.instruction, task=task, driver=driver, seed=task.spec.seed))
        thoughts, actions = [], []
        budget = max_steps or task.max_steps
        for _ in range(budget):
            try:
                step = oracle.act(task.instruction, None, [])
            except OracleGaveUp as e:
                out = task.evaluate(driver)
                return OracleRun(False, out.done, len(actions), f"oracle gave up: {e}", thoughts, actions)
            thoughts.append(step.thought)
            if step.is_terminal:
                break
            for a in step.actions:
                actions.append(a)
                res = driver.execute(a)
                if not res.ok:
                    return OracleRun(False, False, len(actions), f"action failed: {res.error}", thoughts, actions)
            driver.page.wait_for_timeout(settle_ms)  # let handlers and smooth scrolling settle
            out = task.evaluate(driver)
            if out.done:
                break
        out = task.evaluate(driver)
        return OracleRun(out.success, out.done, len(actions), out.detail, thoughts, actions)
    finally:
        task.teardown()
