"""The action schema: one pydantic model per action kind, joined in the discriminated union ``Action``.

Every point here is in viewport CSS pixels — the only coordinate system a driver ever sees. Models
speak their own coordinate spaces; ``parse_response`` maps them before an action is built.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator


class Point(BaseModel):
    """A point in viewport CSS pixels."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    x: float
    y: float

    def __iter__(self):  # allows `x, y = point`
        yield self.x
        yield self.y


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Click(_Action):
    kind: Literal["click"] = "click"
    point: Point


class DoubleClick(_Action):
    kind: Literal["double_click"] = "double_click"
    point: Point


class RightClick(_Action):
    kind: Literal["right_click"] = "right_click"
    point: Point


class Hover(_Action):
    kind: Literal["hover"] = "hover"
    point: Point


class Drag(_Action):
    kind: Literal["drag"] = "drag"
    start: Point
    end: Point


Direction = Literal["up", "down", "left", "right"]


class Scroll(_Action):
    kind: Literal["scroll"] = "scroll"
    point: Point
    direction: Direction = "down"
    amount: int = Field(default=5, ge=1, le=100, description="wheel notches; one notch = 100 CSS px")


class Type(_Action):
    kind: Literal["type"] = "type"
    text: str
    submit: bool = False  # press Enter after typing (UI-TARS: content ending in "\n")


KEY_NAMES = {
    # canonical lowercase names the parser accepts; drivers map them to their own key codes
    "ctrl", "control", "shift", "alt", "meta", "cmd", "command", "win", "super", "option",
    "enter", "return", "tab", "space", "backspace", "delete", "del", "escape", "esc", "insert",
    "home", "end", "pageup", "pagedown", "up", "down", "left", "right",
    "arrowup", "arrowdown", "arrowleft", "arrowright", "capslock",
    *[f"f{i}" for i in range(1, 13)],
}


class Hotkey(_Action):
    kind: Literal["hotkey"] = "hotkey"
    keys: tuple[str, ...] = Field(min_length=1, max_length=4)

    @field_validator("keys")
    @classmethod
    def _known_keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for k in keys:
            k = k.strip().lower()
            if not k:
                raise ValueError("empty key name")
            if len(k) > 1 and k not in KEY_NAMES:
                raise ValueError(f"unknown key {k!r}; use names like ctrl, shift, enter, tab, a, f5")
            out.append(k)
        return tuple(out)


class Select(_Action):
    """Choose an option of the <select> (or listbox) under ``point`` by its visible text.

    Native <select> popups do not render in headless screenshots, so this is the one way a policy
    can operate them; drivers perform it with real keyboard events on the focused control.
    """

    kind: Literal["select"] = "select"
    point: Point
    option: str


class Wait(_Action):
    kind: Literal["wait"] = "wait"
    seconds: float = Field(default=1.0, ge=0, le=60)


class Navigate(_Action):
    kind: Literal["navigate"] = "navigate"
    url: str = Field(min_length=1)


class Back(_Action):
    kind: Literal["back"] = "back"


class Finished(_Action):
    kind: Literal["finished"] = "finished"
    answer: str = ""


class CallUser(_Action):
    kind: Literal["call_user"] = "call_user"
    question: str = ""


Action = Annotated[
    Union[Click, DoubleClick, RightClick, Hover, Drag, Scroll, Type, Hotkey, Select, Wait,
          Navigate, Back, Finished, CallUser],
    Field(discriminator="kind"),
]
ACTION_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)
ACTION_KINDS = ("click", "double_click", "right_click", "hover", "drag", "scroll", "type", "hotkey",
                "select", "wait", "navigate", "back", "finished", "call_user")
TERMINAL_KINDS = ("finished", "call_user")


def action_from_dict(data: dict) -> Action:
    """Validate a plain dict (e.g. one line of steps.jsonl) into an Action."""
    return ACTION_ADAPTER.validate_python(data)


def action_points(action: Action) -> list[Point]:
    """The viewport points an action touches (empty for keyboard/navigation actions)."""
    if isinstance(action, Drag):
        return [action.start, action.end]
    p = getattr(action, "point", None)
    return [p] if p is not None else []


@dataclass
class Step:
    """One parsed model response: what it thought and what it wants done, in viewport pixels."""

    thought: str
    actions: list  # list[Action]
    raw: str = ""
    reflection: str = ""
    summary: str = ""

    @property
    def is_terminal(self) -> bool:
        return any(a.kind in TERMINAL_KINDS for a in self.actions)


@dataclass
class ActionResult:
    """What a driver reports after executing one action."""

    ok: bool
    error: str = ""
    info: dict = field(default_factory=dict)  # e.g. {"navigated": true, "url": ...}
