"""Action -> UI-TARS-1.5 text: the inverse of ``parse_response``.

Training targets and history use this, so every backend shares one syntax. Points are written as
integer model coordinates (rounded) in ``start_box='(x,y)'`` form; strings are single-quoted with
``\\``, ``'``, newline, tab and CR escaped, so ``parse_response(to_uitars(a)) == a`` whenever the
action's points are images of integer model coordinates.
"""
from __future__ import annotations

from actions.parse import ModelSpace, _fmt
from actions.schema import (Back, CallUser, Click, DoubleClick, Drag, Finished, Hotkey, Hover, Navigate,
                            Point, RightClick, Scroll, Select, Type, Wait)

_SCROLL_AMOUNT = Scroll.model_fields["amount"].default
_WAIT_SECONDS = Wait.model_fields["seconds"].default


def quote(text: str) -> str:
    """A single-quoted string literal the parser reads back exactly."""
    escaped = (text.replace("\\", "\\\\").replace("'", "\\'")
               .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
    return f"'{escaped}'"


def _box(point: Point, space: ModelSpace, box_tokens: bool) -> str:
    x, y = space.from_viewport(point.x, point.y)
    xy = f"({round(x)},{round(y)})"
    return quote(f"<|box_start|>{xy}<|box_end|>" if box_tokens else xy)


def to_uitars(action, space: ModelSpace, box_tokens: bool = False) -> str:
    """One action as a UI-TARS call, e.g. ``click(start_box='(235,512)')``.

    ``box_tokens=True`` wraps points in ``<|box_start|>..<|box_end|>``, as UI-TARS models expect in
    their history (servers strip those special tokens from the text they return).
    """
    def box(p: Point) -> str:
        return _box(p, space, box_tokens)

    if isinstance(action, Click):
        return f"click(start_box={box(action.point)})"
    if isinstance(action, DoubleClick):
        return f"left_double(start_box={box(action.point)})"
    if isinstance(action, RightClick):
        return f"right_single(start_box={box(action.point)})"
    if isinstance(action, Hover):
        return f"hover(start_box={box(action.point)})"
    if isinstance(action, Drag):
        return f"drag(start_box={box(action.start)}, end_box={box(action.end)})"
    if isinstance(action, Scroll):
        amount = "" if action.amount == _SCROLL_AMOUNT else f", amount='{action.amount}'"
        return f"scroll(start_box={box(action.point)}, direction='{action.direction}'{amount})"
    if isinstance(action, Type):
        if action.submit:
            return f"type(content={quote(action.text + chr(10))})"
        # text that itself ends in a newline would read back as a submit: say so explicitly
        extra = ", submit='false'" if action.text.endswith("\n") else ""
        return f"type(content={quote(action.text)}{extra})"
    if isinstance(action, Hotkey):
        return f"hotkey(key={quote(' '.join(action.keys))})"
    if isinstance(action, Select):
        return f"select_option(start_box={box(action.point)}, option={quote(action.option)})"
    if isinstance(action, Wait):
        return "wait()" if action.seconds == _WAIT_SECONDS else f"wait(seconds='{_fmt(action.seconds)}')"
    if isinstance(action, Navigate):
        return f"navigate(url={quote(action.url)})"
    if isinstance(action, Back):
        return "navigate_back()"
    if isinstance(action, Finished):
        return f"finished(content={quote(action.answer)})" if action.answer else "finished()"
    if isinstance(action, CallUser):
        return f"call_user(content={quote(action.question)})" if action.question else "call_user()"
    raise TypeError(f"to_uitars: not an action: {action!r}")


def format_step(thought: str, actions: list, space: ModelSpace, box_tokens: bool = False) -> str:
    """A whole response: ``Thought: ...\\nAction: a1\\n\\na2`` (actions one per paragraph)."""
    if not actions:
        raise ValueError("format_step needs at least one action")
    calls = "\n\n".join(to_uitars(a, space, box_tokens) for a in actions)
    return f"Thought: {thought.strip()}\nAction: {calls}"
