"""A model-free test policy that reads the screen's elements: it plays plans by element *text*.

It stands in for a model in session, cache and plugin tests: it finds what to click on the live
observation (so a moved button is still found), gives up (call_user) when an element is missing,
answers questions from the visible text (so assertions can fail), and counts its calls — the
replay tests assert that a cache hit never calls it. Self-contained (the pytester tests copy it).
"""
from __future__ import annotations

import os
import re
from typing import Sequence

from actions.schema import CallUser, Click, Finished, Hotkey, Step, Type
from perception.observation import Observation
from perception.space import CoordinateSpace
from policy.base import BasePolicy, Episode, HistoryEntry

LOGIN_PLAN = [("click", "Username"), ("type", "ada"), ("click", "Password"), ("type", "lovelace"),
              ("click", "Sign in")]
PLANS = {
    'Log in as "ada" with password "lovelace"': LOGIN_PLAN,
    "Type ada and sign in with password lovelace": LOGIN_PLAN,
    "Open the report": [("click", "Load report")],
    "Fill in the username": [("click", "Username"), ("type", "ada")],
}


class PlanPolicy(BasePolicy):
    """``plans`` maps an instruction to steps: ("click", TEXT), ("type", TEXT), ("key", KEY).
    "Click X" instructions without a plan click the element whose text X mentions (for locate)."""

    name = "plan"

    def __init__(self, plans: dict | None = None, count_file: str | None = None):
        self.plans = dict(PLANS if plans is None else plans)
        self.count_file = count_file or os.environ.get("GALAGO_TEST_CALLS")
        self.calls = 0
        self.answers = 0
        self.plan: list | None = None
        self.position = 0

    def coordinate_space(self, width: int, height: int, dpr: float = 1.0) -> CoordinateSpace:
        return CoordinateSpace.absolute(width, height, 1.0)

    def reset(self, episode: Episode) -> None:
        super().reset(episode)
        self.plan, self.position = self.plans.get(episode.instruction), 0

    def _count(self, what: str) -> None:
        if self.count_file:
            with open(self.count_file, "a", encoding="utf-8") as f:
                f.write(what + "\n")

    def act(self, task: str, observation: Observation, history: Sequence[HistoryEntry]) -> Step:
        if observation.screenshot is None:  # like a model, it must always be shown the screen
            raise AssertionError("the policy was asked to act without a screenshot")
        self.calls += 1
        self._count("act")
        if self.plan is None:
            if task.startswith("Click "):
                el = _mentioned(task[6:], observation)
                if el is not None:
                    x, y = el.box.center
                    return Step(thought=f"Click {el.text}.", actions=[Click(point={"x": x, "y": y})],
                                raw=f"click({x:.0f},{y:.0f})")
            return Step(thought="I have no plan for this.", actions=[CallUser(question=f"How do I {task}?")],
                        raw="call_user()")
        self.position = len(history)  # step N plays plan[N]: a take-over after a cache replay goes on from there
        if self.position >= len(self.plan):
            return Step(thought="Done.", actions=[Finished(answer="done")], raw="finished(content='done')")
        kind, arg = self.plan[self.position]
        self.position += 1
        if kind == "type":
            return Step(thought=f"Type {arg}.", actions=[Type(text=arg)], raw=f"type(content='{arg}')")
        if kind == "key":
            return Step(thought=f"Press {arg}.", actions=[Hotkey(keys=(arg,))], raw=f"hotkey(key='{arg}')")
        el = next((e for e in observation.elements if e.interactive and e.text.strip() == arg), None)
        if el is None:
            return Step(thought=f"There is no {arg!r} here.", actions=[CallUser(question=f"Where is {arg!r}?")],
                        raw="call_user()")
        x, y = el.box.center
        return Step(thought=f"Click {arg}.", actions=[Click(point={"x": x, "y": y})], raw=f"click({x:.0f},{y:.0f})")

    def answer(self, question: str, observation: Observation) -> str:
        """Yes/no for a quoted text being on screen; a number for "how many"; else the page title."""
        self.answers += 1
        self._count("answer")
        first = question.splitlines()[0]
        texts = " | ".join(f"{e.text} {e.value}" for e in observation.elements)
        quoted = re.findall(r'"([^"]+)"', first)
        if quoted:
            found = all(q in texts for q in quoted)
            return ("Yes, " if found else "No, ") + f"the screen {'shows' if found else 'does not show'} {quoted}."
        if first.lower().startswith("how many"):
            m = re.search(r"(\d+) unread", texts)
            return m.group(1) if m else "none"
        if "json" in question.lower():
            m = re.search(r"Welcome, (\w+)", texts)
            return '{"user": "%s", "unread": 3}' % (m.group(1) if m else "")
        return observation.title


def _mentioned(description: str, observation: Observation):
    hits = [e for e in observation.elements if e.interactive and e.text.strip() and e.text.strip() in description]
    return max(hits, key=lambda e: len(e.text), default=None)
