"""What an episode wants (the rule-based check) and how an oracle gets there (the plan).

The goal never reaches the page: the page only records what the user did (runtime.js) and
``Goal.check`` compares that record with the goal.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

Value = Union[str, bool, None]


@dataclass(frozen=True)
class Goal:
    """Success = the episode was ended by the ``commit`` element, and at that moment every field
    in ``values`` held its expected value (text compared without surrounding whitespace)."""

    commit: str
    values: dict[str, Value] = field(default_factory=dict)

    def check(self, state: dict | None) -> tuple[bool, str]:
        """(success, reason) for a ``window.__galago`` record."""
        if not isinstance(state, dict):
            return False, "the page has no __galago state (not a widget page, or it failed to load)"
        if not state.get("done"):
            return False, "not finished yet"
        got_commit = state.get("commit")
        if got_commit != self.commit:
            return False, f"ended by {got_commit!r}, expected {self.commit!r}"
        values = state.get("values") or {}
        for key, want in self.values.items():
            got = values.get(key)
            if isinstance(want, str):
                ok = isinstance(got, str) and got.strip() == want.strip()
            else:
                ok = got == want
            if not ok:
                return False, f"field {key!r} is {got!r}, expected {want!r}"
        return True, "goal reached"


# -- the oracle's plan: typed steps over element ids -------------------------------------------


@dataclass(frozen=True)
class Press:
    """Click an element. With ``until`` (an element id) the step holds once that element shows;
    without it the step is done after one click."""

    id: str
    what: str  # how a person names it: 'the "Save" button'
    why: str = ""
    until: str | None = None
    reach: int = 0  # extra steps the budget allows to scroll to it (an item deep in a scroll list)
    seen: tuple[str, ...] = ()  # clauses the thought states before the click: why it is time for it


@dataclass(frozen=True)
class Fill:
    id: str
    text: str
    label: str


@dataclass(frozen=True)
class SetChecked:
    """Tick (``want``) or untick a box. In a group of boxes, ``ticked`` names the wanted boxes
    before this one (ticked by the time it is reached; all of them for an ``unasked`` box, one the
    task does not ask for); the oracle's thought goes through them one claim each, so it shows how
    the state was read."""

    id: str
    want: bool
    label: str
    ticked: tuple[str, ...] = ()
    unasked: bool = False


@dataclass(frozen=True)
class PickOption:
    id: str
    option: str
    label: str


@dataclass(frozen=True)
class Slide:
    id: str
    value: int
    label: str


@dataclass(frozen=True)
class EnterDate:
    id: str
    iso: str  # YYYY-MM-DD
    label: str
    said: str = ""  # the date as the instruction writes it ("March 5, 1995"); default: iso


PlanStep = Union[Press, Fill, SetChecked, PickOption, Slide, EnterDate]
