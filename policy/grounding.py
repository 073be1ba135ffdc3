"""Textual grounding: a click lands on the element its thought names.

A small model often writes the right target in its thought (``Click the "Upload image" link``) and
then points at a neighbour: it reads better than it points. SeeAct (Zheng et al., 2024) grounds by
the element's description rather than the model's coordinates; this does the same as a check on the
model's own point:

- the step's thought quotes one or more strings (``"…"`` or ``“…”``);
- some elements of the current screen carry a quoted string as their text (equal, after case and
  white-space folding; failing that, containing it as whole words), interactive ones preferred:
  the named elements;
- the step's first pointer action (click, double, right click, hover) is not on one of them;

then that point moves to the centre of the named element nearest to it. Anything else is left as
the model wrote it: no quote, no pointer action, a point already on a named element, or a name no
element on screen carries (a target still to scroll to).
"""
from __future__ import annotations

import dataclasses
import re

from actions.schema import Point, Step
from perception.observation import Element, Observation

POINTER_KINDS = ("click", "double_click", "right_click", "hover")
_QUOTED = re.compile(r'"([^"\n]{1,100})"|\u201c([^\u201d\n]{1,100})\u201d')


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def quoted(thought: str) -> list[str]:
    """The quoted strings of a thought, folded, in order, without repeats or empties."""
    out: list[str] = []
    for m in _QUOTED.finditer(thought or ""):
        q = _fold(m.group(1) or m.group(2) or "")
        if q and q not in out:
            out.append(q)
    return out


def _names(el: Element, names: list[str], whole_word: bool) -> bool:
    text = _fold(el.text)
    if not text:
        return False
    if not whole_word:
        return text in names
    return any(re.search(r"(?<!\w)" + re.escape(n) + r"(?!\w)", text) for n in names)


def named_elements(observation: Observation, names: list[str]) -> list[Element]:
    """Elements on screen whose text is one of ``names`` (or, when none is, contains one as whole
    words), with their centre inside the observed area; interactive ones only, when there are any."""
    def inside(el: Element) -> bool:
        x, y = el.box.center
        return 0 <= x <= observation.width and 0 <= y <= observation.height

    for whole_word in (False, True):
        found = [el for el in observation.elements if inside(el) and _names(el, names, whole_word)]
        if found:
            return [el for el in found if el.interactive] or found
    return []


def ground_step(step: Step, observation: Observation) -> tuple[Step, bool]:
    """``step`` with its first pointer action moved onto the element its thought names (see the
    module docstring), and whether it moved. Points are in viewport CSS px, as parsed steps are."""
    names = quoted(step.thought)
    if not names or not observation.elements:
        return step, False
    for i, action in enumerate(step.actions):
        if action.kind not in POINTER_KINDS:
            continue
        p = action.point
        candidates = named_elements(observation, names)
        if not candidates or observation.element_at(p.x, p.y) in candidates:
            return step, False
        best = min(candidates, key=lambda el: (el.box.center[0] - p.x) ** 2 + (el.box.center[1] - p.y) ** 2)
        x, y = best.box.center
        actions = list(step.actions)
        actions[i] = action.model_copy(update={"point": Point(x=x, y=y)})
        return dataclasses.replace(step, actions=actions), True
    return step, False
