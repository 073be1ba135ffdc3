"""A widget-world episode as the agent loop's Task."""
from __future__ import annotations

from dataclasses import dataclass, field

from agent.task import Outcome
from tasks.suites.widgets import server
from tasks.suites.widgets.generator import GeneratedEpisode, generate

STATE_JS = "() => (window.__galago ? JSON.parse(JSON.stringify(window.__galago)) : null)"


@dataclass
class WidgetEpisode:
    """Implements agent.task.Task for one generated page. ``spec`` holds the goal and the plan
    (read by the oracle only); ``max_steps`` defaults to a budget sized to the plan."""

    spec: GeneratedEpisode
    max_steps: int = 0
    observe_selector: str | None = None
    script: list[str] = field(default_factory=list)
    stop_on_success: bool = True
    url: str = ""
    _path: str = ""

    def __post_init__(self):
        if self.max_steps <= 0:
            # each plan step may need a scroll, a click and a keystroke or two, plus slack, and
            # an item deep in a scroll list a scroll for each listful before it
            reach = sum(getattr(step, "reach", 0) for step in self.spec.plan)
            self.max_steps = max(5, 4 * len(self.spec.plan) + 4 + reach)

    @classmethod
    def create(cls, family: str, seed: int, split: str = "test", max_steps: int = 0) -> "WidgetEpisode":
        return cls(generate(family, seed, split), max_steps=max_steps)

    @property
    def id(self) -> str:
        return f"widgets:{self.spec.family}@{self.spec.seed}"

    @property
    def instruction(self) -> str:
        return self.spec.instruction

    @property
    def viewport(self) -> tuple[int, int]:
        return self.spec.viewport

    @property
    def goal(self):
        return self.spec.goal

    def oracle(self):
        """This episode's teacher (what ``--policy oracle`` binds to)."""
        from tasks.suites.widgets.oracle import WidgetOracle

        return WidgetOracle(self.spec.family)

    def setup(self, driver) -> None:
        self.teardown()
        self.url, self._path = server.publish(f"{self.spec.family}-{self.spec.seed}", self.spec.html)
        page = driver.page
        w, h = self.spec.viewport
        if page.viewport_size != {"width": w, "height": h}:
            page.set_viewport_size({"width": w, "height": h})
        goto = getattr(driver, "goto", None)
        if goto is not None:
            goto(self.url)
        else:
            page.goto(self.url, wait_until="load")
        page.wait_for_function("() => window.__galago !== undefined", timeout=10_000)

    def state(self, driver) -> dict | None:
        return driver.page.evaluate(STATE_JS)

    def evaluate(self, driver) -> Outcome:
        state = self.state(driver)
        success, detail = self.spec.goal.check(state)
        done = bool(state and state.get("done"))
        return Outcome(done=done, success=success, reward=1.0 if success else 0.0, detail=detail)

    def teardown(self) -> None:
        if self._path:
            server.unpublish(self._path)
            self._path = ""
