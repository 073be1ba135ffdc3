"""Model text -> ``Step``: the UI-TARS-1/1.5 / Doubao call syntax and a JSON form.

Accepted text (see shared/notes/ui-tars.md §2.3-2.4 for where each variant comes from)::

    <think>...</think>                       optional, thinking models
    Reflection: ... / Action_Summary: ...    optional headers
    Thought: ...
    Action: click(start_box='<|box_start|>(235,512)<|box_end|>')

    type(content='hello\\n')                 several actions, one per paragraph

Coordinates may be ``(x,y)``, ``(x1,y1,x2,y2)`` (the box centre is used), ``[x1, y1, x2, y2]``,
``<point>x y</point>`` or ``<bbox>x1 y1 x2 y2</bbox>``, with or without box tokens, passed as
``start_box=`` / ``point=`` / ``start_point=`` (``end_box=`` / ``end_point=`` for drags). They are in the
policy's model space and are mapped to viewport CSS pixels with ``space.to_viewport``.

JSON form (the whole response, or the text after ``Action:``); coordinates are model-space too::

    {"thought": "...", "actions": [{"action": "click", "point": [235, 512]},
                                   {"action": "type", "text": "hi", "submit": true}]}

An action object names its kind with ``"action"`` (or ``"kind"``), UI-TARS or schema names alike,
and takes the same argument names as the call syntax (``point``/``start_box``, ``end_box``,
``content``/``text``, ``key``/``keys``, ``direction``, ``amount``, ``seconds``, ``url``, ``option``,
``answer``/``question``) or ``"x"``/``"y"``; a bare action object or a list of them also works.

The call syntax is read by the small hand-written tokenizer below: model text is never given to
``eval``, ``exec`` or ``ast``. Anything malformed raises ``ActionParseError`` whose message is
written to be shown to the model; no other exception leaves ``parse_response``.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, runtime_checkable

from pydantic import ValidationError

from actions.errors import ActionParseError
from actions.schema import (Back, CallUser, Click, DoubleClick, Drag, Finished, Hotkey, Hover, Navigate,
                            Point, RightClick, Scroll, Select, Step, Type, Wait, TERMINAL_KINDS)

MAX_ACTIONS = 20  # per step; more is a runaway generation, not a plan
MAX_MARKER_TRIES = 5  # "Action:" markers tried from each end of a response
POINT_TOLERANCE = 0.01  # models answer 0..1000 on a 0..999 grid, or a pixel past the edge


@runtime_checkable
class ModelSpace(Protocol):
    """What the parser needs of a coordinate space (``perception.CoordinateSpace`` is one)."""

    model_width: float
    model_height: float

    def to_viewport(self, x: float, y: float) -> tuple[float, float]: ...

    def from_viewport(self, x: float, y: float) -> tuple[float, float]: ...


# The syntax each action is shown with in error messages (UI-TARS-1.5 start_box form).
SYNTAX = {
    "click": "click(start_box='(x,y)')",
    "left_double": "left_double(start_box='(x,y)')",
    "right_single": "right_single(start_box='(x,y)')",
    "hover": "hover(start_box='(x,y)')",
    "drag": "drag(start_box='(x1,y1)', end_box='(x2,y2)')",
    "scroll": "scroll(start_box='(x,y)', direction='down or up or right or left')",
    "type": "type(content='text')  (end content with \\n to submit)",
    "hotkey": "hotkey(key='ctrl c')",
    "press": "press(key='enter')",
    "select_option": "select_option(start_box='(x,y)', option='visible option text')",
    "wait": "wait()",
    "navigate": "navigate(url='https://...')",
    "navigate_back": "navigate_back()",
    "finished": "finished(content='answer or summary')",
    "call_user": "call_user()",
}
EXPECTED_FORMAT = "Thought: ...\nAction: click(start_box='(x,y)')"


# ---------------------------------------------------------------------------------------------
# Tokenizer: text -> [Call]
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    """One parsed call before validation. Values are str (quoted or bare), or, from JSON, numbers,
    bools and lists."""

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    source: str = ""


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KWARG = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)")
_ACTION_MARK = re.compile(r"(?<![A-Za-z0-9_])Action[ \t*]*[:：][ \t*]*")
# Between two calls: blank lines, markdown fences/backticks, ';' and repeated "Action:" markers.
_BETWEEN = re.compile(r"\s+|```(?:[A-Za-z0-9_+-]+(?=[ \t]*(?:\n|$)))?|`|;|(?<![A-Za-z0-9_])Action[ \t*]*[:：]")
# A closing quote is trusted when what follows ends the argument: ", next_kw=" or ")" then the
# end of the call. Anything else means the quote is part of the text (models leave quotes in
# type(content=...) unescaped; the reference parser re-escapes them for the same reason).
_CLOSES_WELL = re.compile(
    r"\s*(?:,\s*[A-Za-z_][A-Za-z0-9_]*\s*=|\)[ \t`;]*(?:$|\n|[A-Za-z_][A-Za-z0-9_]*\s*\(|Action[ \t*]*[:：]))")
_CLOSES_SOMEHOW = re.compile(r"\s*(?:[,)]|$)")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r"}


def _snip(s: str, i: int, n: int = 40) -> str:
    part = s[i:i + n]
    return repr(part + ("..." if len(s) > i + n else ""))


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i].isspace():
        i += 1
    return i


def _skip_between(s: str, i: int) -> int:
    while i < len(s):
        m = _BETWEEN.match(s, i)
        if not m or m.end() == i:
            break
        i = m.end()
    return i


def _parse_string(s: str, i: int, name: str) -> tuple[str, int]:
    quote, j, buf = s[i], i + 1, []
    fallback: tuple[str, int] | None = None
    while j < len(s):
        ch = s[j]
        if ch == "\\" and j + 1 < len(s):
            nxt = s[j + 1]
            buf.append(_ESCAPES.get(nxt, "\\" + nxt))  # unknown escapes stay literal, as in Python
            j += 2
            continue
        if ch == quote:
            if _CLOSES_WELL.match(s, j + 1):
                return "".join(buf), j + 1
            if fallback is None and _CLOSES_SOMEHOW.match(s, j + 1):
                fallback = ("".join(buf), j + 1)
        buf.append(ch)
        j += 1
    if fallback is not None:
        return fallback
    raise ActionParseError(
        f"unterminated string in {name}(...): the quote {quote} opened at {_snip(s, i)} is never closed; "
        f"close every string and escape quotes inside it as \\{quote}")


def _parse_bare(s: str, i: int, name: str) -> tuple[str, int]:
    """An unquoted value: a number, a word, (x,y), [..] or <point>..</point>, up to ',' or ')'."""
    depth, j = 0, i
    while j < len(s):
        ch = s[j]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif ch == "," and depth == 0:
            break
        j += 1
    raw = s[i:j].strip()
    if not raw:
        raise ActionParseError(f"empty argument in {name}(...) at {_snip(s, i)}; expected e.g. {_syntax(name)}")
    return raw, j


def _parse_args(s: str, i: int, name: str, start: int) -> tuple[Call, int]:
    args: list = []
    kwargs: dict = {}
    unclosed = (f"{name}(...) is missing its closing ')': {_snip(s, start, 60)}; "
                f"expected e.g. {_syntax(name)}")
    while True:
        i = _skip_ws(s, i)
        if i >= len(s):
            raise ActionParseError(unclosed)
        if s[i] == ")":
            return Call(name, tuple(args), kwargs, s[start:i + 1]), i + 1
        key = None
        m = _KWARG.match(s, i)
        if m:
            key = m.group(1).lower()
            i = _skip_ws(s, m.end())
            if i >= len(s):
                raise ActionParseError(unclosed)
        if s[i] in "'\"":
            value, i = _parse_string(s, i, name)
        else:
            value, i = _parse_bare(s, i, name)
        if key is None:
            if kwargs:
                raise ActionParseError(f"in {name}(...) a value without a name follows named ones; "
                                       f"write it as name='value', e.g. {_syntax(name)}")
            args.append(value)
        elif key in kwargs:
            raise ActionParseError(f"{name}(...) gives {key}= twice")
        else:
            kwargs[key] = value
        i = _skip_ws(s, i)
        if i >= len(s):
            raise ActionParseError(unclosed)
        if s[i] == ",":
            i += 1
        elif s[i] != ")":
            raise ActionParseError(f"in {name}(...) expected ',' or ')' but found {_snip(s, i)}; "
                                   f"expected e.g. {_syntax(name)}")


def _parse_calls(block: str) -> list[Call]:
    calls: list[Call] = []
    i = _skip_between(block, 0)
    while i < len(block):
        m = _IDENT.match(block, i)
        j = _skip_ws(block, m.end()) if m else i
        if not m or j >= len(block) or block[j] != "(":
            where = "after the last action" if calls else "after 'Action:'"
            raise ActionParseError(
                f"unexpected text {_snip(block, i)} {where}; write only action calls there, one per "
                f"paragraph, e.g. {SYNTAX['click']}")
        call, i = _parse_args(block, j + 1, m.group(0).lower(), m.start())
        calls.append(call)
        if len(calls) > MAX_ACTIONS:
            raise ActionParseError(f"too many actions in one step (more than {MAX_ACTIONS})")
        i = _skip_between(block, i)
    if not calls:
        raise ActionParseError(f"'Action:' is empty; write one action after it, e.g. {SYNTAX['click']}")
    return calls


# ---------------------------------------------------------------------------------------------
# JSON form -> [Call]
# ---------------------------------------------------------------------------------------------

JSON_HINT = '{"thought": "...", "actions": [{"action": "click", "point": [x, y]}]}'
_NAME_KEYS = ("action", "kind", "action_type")
_NESTED_ARG_KEYS = ("args", "arguments", "action_inputs", "params")
_TOP_KEYS = {"thought", "reflection", "summary", "action_summary", "actions", "action"}


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number")


def _load_json(text: str) -> tuple[Any, str]:
    """Decode the JSON value at the start of ``text``; return it and what follows."""
    try:
        value, end = json.JSONDecoder(parse_constant=_reject_constant).raw_decode(text)
    except (ValueError, RecursionError) as e:
        msg = getattr(e, "msg", None) or str(e)
        raise ActionParseError(f"invalid JSON ({msg}); expected e.g. {JSON_HINT}") from None
    return value, text[end:]


def _json_action(obj: Any) -> Call:
    if not isinstance(obj, dict):
        raise ActionParseError(f"each JSON action must be an object like {{\"action\": \"click\", "
                               f"\"point\": [x, y]}}, got {type(obj).__name__}")
    obj = dict(obj)
    names = [k for k in _NAME_KEYS if k in obj]
    if len(names) != 1 or not isinstance(obj[names[0]], str):
        raise ActionParseError('a JSON action needs exactly one "action" (or "kind") naming it, e.g. '
                               '{"action": "click", "point": [x, y]}')
    name = obj.pop(names[0]).strip().lower()
    obj.pop("thought", None)  # a bare action object may carry the step's thought
    for k in _NESTED_ARG_KEYS:
        nested = obj.pop(k, None)
        if nested is None:
            continue
        if not isinstance(nested, dict):
            raise ActionParseError(f'"{k}" of a JSON action must be an object')
        for nk, nv in nested.items():
            obj.setdefault(nk, nv)
    if "x" in obj or "y" in obj:
        if "point" in obj:
            raise ActionParseError('give either "point" or "x"/"y" in a JSON action, not both')
        obj["point"] = [obj.pop("x", None), obj.pop("y", None)]
    return Call(name, (), {str(k).lower(): v for k, v in obj.items()}, json.dumps(obj)[:200])


def _json_step(value: Any) -> tuple[dict, list[Call]]:
    """A decoded JSON response -> (header fields, calls)."""
    header: dict = {}
    if isinstance(value, list):
        items = value
    elif isinstance(value, dict) and isinstance(value.get("action", value.get("kind")), str):
        items = [value]
        if isinstance(value.get("thought"), str):
            header["thought"] = value["thought"]
    elif isinstance(value, dict):
        unknown = set(value) - _TOP_KEYS
        if unknown:
            raise ActionParseError(f"unknown JSON keys {sorted(unknown)}; expected {JSON_HINT}")
        for k in ("thought", "reflection", "summary", "action_summary"):
            if k in value:
                if not isinstance(value[k], str):
                    raise ActionParseError(f'JSON "{k}" must be a string')
                header["summary" if k == "action_summary" else k] = value[k]
        if "actions" in value and "action" in value:
            raise ActionParseError('give either "actions" (a list) or "action" (one object), not both')
        items = value.get("actions", [value["action"]] if "action" in value else None)
        if not isinstance(items, list):
            raise ActionParseError(f'JSON "actions" must be a list of action objects; expected {JSON_HINT}')
    else:
        raise ActionParseError(f"a JSON response must be an object; expected {JSON_HINT}")
    if not items:
        raise ActionParseError(f"the JSON response has no actions; expected {JSON_HINT}")
    if len(items) > MAX_ACTIONS:
        raise ActionParseError(f"too many actions in one step (more than {MAX_ACTIONS})")
    return header, [_json_action(o) for o in items]


def _calls_from_block(block: str) -> tuple[dict, list[Call]]:
    """The text after 'Action:' (or a response that is only actions): calls or JSON."""
    stripped = _strip_fence(block)
    if stripped[:1] in "{[":
        try:
            value, rest = _load_json(stripped)
        except ActionParseError:
            if stripped[:1] == "{":
                raise
        else:  # a '[' that is valid JSON is a list of actions
            if rest.strip(" \t\r\n`"):
                raise ActionParseError(f"unexpected text {_snip(rest.strip(), 0)} after the JSON actions")
            return _json_step(value)
    return {}, _parse_calls(block)


def _strip_fence(text: str) -> str:
    t = text.strip()
    m = re.match(r"```[A-Za-z0-9_+-]*[ \t]*\n?", t)
    if m:
        t = t[m.end():]
        if t.rstrip().endswith("```"):
            t = t.rstrip()[:-3]
    return t.strip()


# ---------------------------------------------------------------------------------------------
# Calls -> Actions
# ---------------------------------------------------------------------------------------------

def _syntax(name: str) -> str:
    canon = _CANONICAL.get(name, name)
    return SYNTAX.get(canon, SYNTAX["click"])


class _Args:
    """Pops a call's arguments by name (with aliases), positional values in order."""

    def __init__(self, call: Call, space: ModelSpace):
        self.call, self.space, self.name = call, space, call.name
        self.pos = list(call.args)
        self.kw = dict(call.kwargs)

    def fail(self, what: str) -> ActionParseError:
        return ActionParseError(f"{self.name}: {what}; expected {_syntax(self.name)}")

    def take(self, *keys: str, need: str | None = None, positional: bool = True) -> Any:
        found = [k for k in keys if k in self.kw]
        if len(found) > 1:
            raise self.fail(f"give only one of {', '.join(k + '=' for k in found)}")
        if found:
            return self.kw.pop(found[0])
        if positional and self.pos:
            return self.pos.pop(0)
        if need:
            raise ActionParseError(f"{self.name} needs {need}; expected {_syntax(self.name)}")
        return None

    def done(self) -> None:
        extra = [f"{k}=" for k in self.kw] + [repr(v)[:40] for v in self.pos]
        if extra:
            raise self.fail(f"unexpected argument(s) {', '.join(extra)}")

    # -- typed getters --

    def point(self, *keys: str, need: str | None = None) -> Point | None:
        value = self.take(*keys, need=need)
        if value is None:
            return None
        # click(100, 200): two bare numbers given positionally
        if not any(k in self.call.kwargs for k in keys) and _is_number(value) and self.pos \
                and _is_number(self.pos[0]):
            value = [value, self.pos.pop(0)]
        key = next((k for k in keys if k in self.call.kwargs), keys[0])
        return _map_point(_coords(value, self.name, key), self.space, self.name, key)

    def text(self, *keys: str, need: str | None = None, default: str | None = None) -> str | None:
        value = self.take(*keys, need=need)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(f"{keys[0]} must be text")
        return value if isinstance(value, str) else _fmt(value)

    def number(self, *keys: str, integer: bool = False) -> float | int | None:
        value = self.take(*keys, positional=False)
        if value is None:
            return None
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(f"{keys[0]} must be a number, got {value!r}"[:200])
        if integer:
            if value != int(value):
                raise self.fail(f"{keys[0]} must be a whole number, got {_fmt(value)}")
            return int(value)
        return float(value)

    def flag(self, *keys: str) -> bool | None:
        value = self.take(*keys, positional=False)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.strip().lower() in ("true", "1", "yes")
        raise self.fail(f"{keys[0]} must be true or false, got {value!r}"[:200])


_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_BOX_MARKUP = re.compile(r"<\|box_start\|>|<\|box_end\|>|<\|point_start\|>|<\|point_end\|>|</?point>|</?bbox>")
_COORD_SPLIT = re.compile(r"[\s,()\[\]]+")


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, (int, float)) or (isinstance(v, str) and bool(_NUMBER.fullmatch(v.strip())))


def _fmt(v: float) -> str:
    """Shortest text that reads back as the same float (2, 2.5, 1e-05)."""
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _coords(value: Any, name: str, key: str) -> tuple[float, float]:
    """'(x,y)', '(x1,y1,x2,y2)', '[..]', '<point>x y</point>', '<bbox>..</bbox>', [x, y] -> (x, y)."""
    bad = ActionParseError(f"{name}: {key} must be a point like '(x,y)' or a box like '(x1,y1,x2,y2)' "
                           f"in screenshot coordinates, got {str(value)[:60]!r}; expected {_syntax(name)}")
    if isinstance(value, (list, tuple)):
        nums = list(value)
        if not all(_is_number(v) for v in nums):
            raise bad
        nums = [float(v) for v in nums]
    elif isinstance(value, str):
        parts = [p for p in _COORD_SPLIT.split(_BOX_MARKUP.sub(" ", value)) if p]
        if not all(_NUMBER.fullmatch(p) for p in parts):
            raise bad
        nums = [float(p) for p in parts]
    else:
        raise bad
    if not all(math.isfinite(v) for v in nums):
        raise bad
    if len(nums) == 2:
        return nums[0], nums[1]
    if len(nums) == 4:
        return (nums[0] + nums[2]) / 2, (nums[1] + nums[3]) / 2
    raise bad


def _map_point(xy: tuple[float, float], space: ModelSpace, name: str, key: str) -> Point:
    x, y = xy
    mw, mh = float(space.model_width), float(space.model_height)
    tx, ty = POINT_TOLERANCE * mw, POINT_TOLERANCE * mh
    if not (-tx <= x <= mw + tx and -ty <= y <= mh + ty):
        raise ActionParseError(
            f"{name}: {key} ({_fmt(x)},{_fmt(y)}) is outside the screen; x must be within 0..{_fmt(mw)} "
            f"and y within 0..{_fmt(mh)}")
    # a point just past the edge means the edge; drivers only accept points on the screen
    x, y = min(max(x, 0.0), mw), min(max(y, 0.0), mh)
    vx, vy = space.to_viewport(x, y)
    return Point(x=vx, y=vy)


def _split_keys(spec: str) -> list[str]:
    """'ctrl c', 'ctrl+c', 'Ctrl-Shift-T', '+' -> key names."""
    keys: list[str] = []
    for token in spec.split():
        if len(token) == 1:
            keys.append(token)
        elif "+" in token:
            parts = token[:-2].split("+") + ["+"] if token.endswith("++") else token.split("+")
            keys.extend(parts)
        elif "-" in token and not token.endswith("-"):
            keys.extend(token.split("-"))
        else:
            keys.append(token)
    if not keys or any(not k for k in keys):
        raise ActionParseError(f"hotkey: cannot read keys from {spec!r}; expected {SYNTAX['hotkey']}")
    return keys


def _keys(a: _Args) -> tuple[str, ...]:
    value = a.take("key", "keys", "hotkey", need="key='...'")
    if isinstance(value, list) and value and all(isinstance(k, str) for k in value):
        return tuple(value)
    if not isinstance(value, str):
        raise a.fail("key must be text like 'ctrl c'")
    return tuple(_split_keys(value))


_START = ("start_box", "point", "start_point")
_END = ("end_box", "end_point")


def _point_action(cls) -> Callable[[_Args], Any]:
    def build(a: _Args):
        return cls(point=a.point(*_START, need="start_box='(x,y)'"))
    return build


def _drag(a: _Args):
    return Drag(start=a.point(*_START, "start", need="start_box='(x1,y1)'"),
                end=a.point(*_END, "end", need="end_box='(x2,y2)'"))


def _select(a: _Args):
    # UI-TARS select(start_box, end_box) selects text by dragging; with option= it is a <select> choice
    if "option" in a.kw:
        return _select_option(a)
    return _drag(a)


def _select_option(a: _Args):
    point = a.point(*_START, need="start_box='(x,y)'")
    return Select(point=point, option=a.text("option", "content", "text", need="option='...'"))


def _scroll(a: _Args):
    point = a.point(*_START)
    if point is None:  # no point given: scroll the middle of the screen
        point = _map_point((a.space.model_width / 2, a.space.model_height / 2), a.space, a.name, "point")
    direction = a.text("direction")
    amount = a.number("amount", integer=True)
    fields: dict = {"point": point}
    if direction is not None:
        direction = direction.strip().lower()
        if direction not in ("up", "down", "left", "right"):
            raise a.fail(f"direction must be one of up, down, left, right, got {direction[:20]!r}")
        fields["direction"] = direction
    if amount is not None:
        fields["amount"] = amount
    return Scroll(**fields)


def _type(a: _Args):
    text = a.text("content", "text", need="content='...'")
    submit = a.flag("submit")
    if submit is None:
        # UI-TARS: content ending in a newline means "type, then press Enter"
        submit = text.endswith("\n")
        if submit:
            text = text[:-1]
    return Type(text=text, submit=submit)


def _hotkey(a: _Args):
    return Hotkey(keys=_keys(a))


def _press(a: _Args):
    keys = _keys(a)
    if len(keys) != 1:
        raise a.fail(f"press takes a single key; for a combination use {SYNTAX['hotkey']}")
    return Hotkey(keys=keys)


def _wait(a: _Args):
    seconds = a.number("seconds", "time", "duration")
    return Wait() if seconds is None else Wait(seconds=seconds)


def _navigate(a: _Args):
    url = a.text("url", "content", need="url='...'")
    return Navigate(url=url)


def _back(a: _Args):
    return Back()


def _finished(a: _Args):
    return Finished(answer=a.text("content", "answer", default=""))


def _call_user(a: _Args):
    return CallUser(question=a.text("content", "question", default=""))


_BUILDERS: dict[str, Callable[[_Args], Any]] = {
    "click": _point_action(Click), "left_single": _point_action(Click), "left_click": _point_action(Click),
    "left_double": _point_action(DoubleClick), "double_click": _point_action(DoubleClick),
    "right_single": _point_action(RightClick), "right_click": _point_action(RightClick),
    "hover": _point_action(Hover), "move_to": _point_action(Hover), "mouse_move": _point_action(Hover),
    "drag": _drag, "select": _select, "select_option": _select_option,
    "scroll": _scroll, "type": _type, "hotkey": _hotkey, "press": _press, "wait": _wait,
    "navigate": _navigate, "open_url": _navigate, "goto": _navigate,
    "navigate_back": _back, "back": _back, "go_back": _back, "press_back": _back,
    "finished": _finished, "call_user": _call_user,
}
# schema kind names (used by the JSON form) and aliases -> the UI-TARS name used in messages
_CANONICAL = {
    "left_single": "click", "left_click": "click", "double_click": "left_double",
    "right_click": "right_single", "move_to": "hover", "mouse_move": "hover", "select": "drag",
    "open_url": "navigate", "goto": "navigate", "back": "navigate_back", "go_back": "navigate_back",
    "press_back": "navigate_back",
}


def _unknown(name: str) -> ActionParseError:
    return ActionParseError(f"unknown action {name[:40]!r}; use one of: {', '.join(SYNTAX)}")


def _build(call: Call, space: ModelSpace):
    builder = _BUILDERS.get(call.name)
    if builder is None:
        raise _unknown(call.name)
    a = _Args(call, space)
    try:
        action = builder(a)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid value").removeprefix("Value error, ")
        raise ActionParseError(f"{call.name}: {loc + ': ' if loc else ''}{msg}; expected {_syntax(call.name)}") \
            from None
    a.done()
    return action


# ---------------------------------------------------------------------------------------------
# The response: headers + action block
# ---------------------------------------------------------------------------------------------

_THINK = re.compile(r"^\s*<think>(.*?)</think>", re.S)
_HEADER = re.compile(r"(?m)^[ \t>#*]*(Reflection|Thought|Action_Summary)[ \t*]*[:：][ \t*]*")
_CALL_LINE = re.compile(r"(?m)^[ \t`>]*([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def _split_header(h: str) -> dict:
    marks = list(_HEADER.finditer(h))
    if not marks:
        return {"thought": h.strip()}
    sections: dict[str, str] = {}
    for k, m in enumerate(marks):
        end = marks[k + 1].start() if k + 1 < len(marks) else len(h)
        sections.setdefault(m.group(1), h[m.end():end].strip())
    pre = h[:marks[0].start()].strip()
    summary = sections.get("Action_Summary", "")
    return {"thought": sections.get("Thought") or summary or pre,
            "reflection": sections.get("Reflection", ""), "summary": summary}


def _split_response(text: str) -> tuple[dict, list[Call]]:
    think = ""
    m = _THINK.match(text)
    if m:
        think, text = m.group(1).strip(), text[m.end():]
    elif "</think>" in text and "<think>" not in text:  # servers that drop the opening tag
        think, _, text = text.partition("</think>")
    elif text.lstrip().startswith("<think>"):
        text = text.lstrip()[len("<think>"):]

    header, calls = _locate_actions(text)
    if think and not header.get("thought"):
        header["thought"] = think.strip()
    return header, calls


def _locate_actions(text: str) -> tuple[dict, list[Call]]:
    marks = list(_ACTION_MARK.finditer(text))
    if marks:
        # The first marker whose tail parses wins: a thought may say "Action: click the button" in
        # prose, and a later "Action:" inside a typed string must not cut the first action short.
        if len(marks) > 2 * MAX_MARKER_TRIES:  # each try reads the rest of the text: stay linear
            marks = marks[:MAX_MARKER_TRIES] + marks[-MAX_MARKER_TRIES:]
        error: ActionParseError | None = None
        for m in marks:
            try:
                json_header, calls = _calls_from_block(text[m.end():])
            except ActionParseError as e:
                error = e
                continue
            unknown = next((c.name for c in calls if c.name not in _BUILDERS), None)
            if unknown is not None:  # "Action: A(…" inside a string: select_option(option='Action: A(')
                error = _unknown(unknown)
                continue
            return {**_split_header(text[:m.start()]), **json_header}, calls
        assert error is not None
        # every "Action:" may sit inside a string of a bare call: type(content='Action: ...')
        try:
            return _locate_unmarked(text)
        except ActionParseError:
            raise error from None
    return _locate_unmarked(text)


def _locate_unmarked(text: str) -> tuple[dict, list[Call]]:
    stripped = _strip_fence(text)
    if stripped[:1] in "{[":
        return _calls_from_block(stripped)
    # No "Action:": the response may be just the call(s), or headers then a line with a call.
    lines = [m for m in _CALL_LINE.finditer(text)]
    known = [m for m in lines if m.group(1).lower() in _BUILDERS] or lines
    if not known:
        raise ActionParseError(f"no action found; answer in the form\n{EXPECTED_FORMAT}")
    start = known[0].start()
    json_header, calls = _calls_from_block(text[start:])
    return {**_split_header(text[:start]), **json_header}, calls


def parse_response(text: str, space: ModelSpace) -> Step:
    """Parse one model response into a Step whose actions carry viewport CSS pixels.

    ``space`` maps the model's coordinates to the viewport (a ``perception.CoordinateSpace``).
    Raises ``ActionParseError`` (message fit to show the model) for anything malformed, and nothing
    else; a ``space`` without ``to_viewport``/``model_width``/``model_height`` is a TypeError (ours).
    """
    for attr in ("to_viewport", "model_width", "model_height"):
        if not hasattr(space, attr):
            raise TypeError(f"parse_response needs a coordinate space with .{attr}, got {type(space).__name__}")
    if not isinstance(text, str) or not text.strip():
        raise ActionParseError(f"the response is empty; answer in the form\n{EXPECTED_FORMAT}")
    try:
        header, calls = _split_response(text.replace("[EOS]", "").replace("<|im_end|>", ""))
        actions = [_build(c, space) for c in calls]
    except ActionParseError:
        raise
    except Exception as e:  # a bug of ours must still reach the loop as a parse failure, not a crash
        raise ActionParseError(f"could not parse the response ({type(e).__name__}: {e}); "
                               f"answer in the form\n{EXPECTED_FORMAT}") from e
    for action in actions[:-1]:
        if action.kind in TERMINAL_KINDS:
            raise ActionParseError(f"{action.kind} must be the last action of a step; "
                                   f"nothing can follow it")
    return Step(thought=header.get("thought", ""), actions=actions, raw=text,
                reflection=header.get("reflection", ""), summary=header.get("summary", ""))
