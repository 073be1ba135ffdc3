"""Oracle teachers for MiniWoB++: read the page, act only through the action schema.

How to write an oracle
======================

An oracle is a function ``fn(ctx) -> (thought, actions)`` registered for one or more task ids::

    from tasks.suites.miniwob.oracle import OracleContext, oracle

    @oracle("click-button")                       # several ids: @oracle("a", "b"); budget: max_steps=20
    def click_button(ctx: OracleContext):
        target = ctx.quoted()[0]                  # the first "..." in the instruction
        box = ctx.find_text(target, "#area button")
        return f'The button labelled "{target}" matches the instruction; click it.', ctx.click(box)

It is called once per step (``ctx.step`` = 0, 1, ...) until the page says the episode is done or
the step budget runs out, so it must be *reactive*: re-read the page every call and decide the
next single action from what is there now (a click that missed is simply retried next step).
Keep state across steps of one episode in ``ctx.memory`` (a dict) only when the page cannot tell
you (e.g. which items you already toggled in a listbox).

Rules:

* Read the page with ``ctx.js(...)`` / ``ctx.page.evaluate(...)`` — *side-effect-free* code only.
  Never set values, call task functions, fire events or call ``core.endEpisode`` from JS.
* Change the page only by returning actions built by the helpers: ``ctx.click``,
  ``ctx.double_click``, ``ctx.hover``, ``ctx.type(text, submit=False)``, ``ctx.hotkey("ctrl", "a")``,
  ``ctx.select(target, option)``, ``ctx.scroll(target, "down", amount)``, ``ctx.drag(a, b)``,
  ``ctx.wait(seconds)``. A target is a CSS selector, an ElementHandle, a ``Box``, a ``Point``
  or an ``(x, y)`` pair. Points are observed-area CSS px (the 160x210 task area).
* Return one action per step where possible (demonstrations are one action per step); a list of
  actions is allowed and executed in order.
* The thought is one short sentence or two: what this step does and why, in words a screenshot
  reader could produce ('The "Okay" button matches the instruction; click it.'). Do not mention
  the DOM, selectors or JS.
* When an animation is running (jQuery ``:animated``), return ``ctx.wait(0.3)`` rather than
  clicking a moving target; ``ctx.animating()`` tells.
* If the page is in a state you do not expect, raise ``OracleError`` with a clear message.

Helpers on ``ctx``: ``point(target)`` (where a click reaches it, even when partly covered),
``box(target)`` / ``boxes(selector)`` / ``center(target)`` (observed-area
CSS px), ``find_text(text, selector="*", exact=True)`` (the smallest visible element whose text
matches), ``find_all_text``, ``text(selector)``, ``exists(selector)``, ``visible(target)``,
``quoted()`` (quoted strings of the instruction), ``reveal(target)`` (a Scroll action that brings
a target scrolled out of view into view, or None), ``instruction``, ``utterance`` (raw
``core.getUtterance()``), ``memory``, ``step``, ``task_id``, ``seed``, ``page``, ``driver``.

Register oracles in ``oracles_a.py`` / ``oracles_b.py``; ``load_oracles()`` imports both.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from actions.errors import GalagoError
from actions.schema import (Click, DoubleClick, Drag, Hotkey, Hover, Point, Scroll, Select, Step, Type, Wait)
from perception.observation import Box, Element, Observation
from policy import grounding
from policy.base import BasePolicy, Episode, HistoryEntry


class OracleError(GalagoError):
    """The oracle met a page state it cannot handle (a bug in the oracle, not the model's)."""


OracleFn = Callable[["OracleContext"], tuple]


@dataclass
class OracleSpec:
    task_ids: tuple[str, ...]
    fn: OracleFn
    max_steps: int | None = None


ORACLES: dict[str, OracleSpec] = {}
ORACLE_MODULES = ("tasks.suites.miniwob.oracles_a", "tasks.suites.miniwob.oracles_b")


def oracle(*task_ids: str, max_steps: int | None = None) -> Callable[[OracleFn], OracleFn]:
    """Register ``fn`` as the oracle of ``task_ids`` (optionally with a step budget)."""
    if not task_ids:
        raise ValueError("@oracle needs at least one task id")

    def deco(fn: OracleFn) -> OracleFn:
        spec = OracleSpec(tuple(task_ids), fn, max_steps)
        for t in task_ids:
            if t in ORACLES and ORACLES[t].fn is not fn:
                raise ValueError(f"two oracles registered for {t!r}: {ORACLES[t].fn.__name__} and {fn.__name__}")
            ORACLES[t] = spec
        return fn

    return deco


def load_oracles() -> dict[str, OracleSpec]:
    """Import the oracle modules (each registers its oracles); a missing module is skipped."""
    for mod in ORACLE_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise
    return ORACLES


Target = Any  # str selector | ElementHandle | Box | Point | (x, y)

_RECT_JS = """(e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }"""
_RECTS_JS = """(sel) => [...document.querySelectorAll(sel)].map(e => e.getBoundingClientRect())
    .filter(r => r.width > 0 && r.height > 0).map(r => [r.left, r.top, r.width, r.height])"""
# The smallest visible elements whose normalised text matches; innermost first.
_FIND_TEXT_JS = r"""([sel, text, exact]) => {
  const norm = s => (s || '').replace(/\s+/g, ' ').trim();
  const want = exact ? norm(text) : norm(text).toLowerCase();
  const out = [];
  for (const e of document.querySelectorAll(sel)) {
    if (e.id === 'query' || e.closest('#query')) continue;
    const t = exact ? norm(e.textContent) : norm(e.textContent).toLowerCase();
    if (exact ? t !== want : !t.includes(want)) continue;
    const cs = getComputedStyle(e);
    if (cs.visibility === 'hidden' || cs.display === 'none') continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    out.push([r.left, r.top, r.width, r.height, e.querySelectorAll('*').length]);
  }
  out.sort((a, b) => a[4] - b[4] || a[2] * a[3] - b[2] * b[3]);
  return out.map(r => r.slice(0, 4));
}"""
# Where the element's centre is hidden by a scrolling ancestor: the container's box and how far
# (in CSS px) it must scroll on each axis to bring the element into its visible rect.
_REVEAL_JS = r"""(e) => {
  const r = e.getBoundingClientRect();
  for (let p = e.parentElement; p && p !== document.documentElement; p = p.parentElement) {
    const s = getComputedStyle(p);
    const sy = (s.overflowY === 'auto' || s.overflowY === 'scroll') && p.scrollHeight > p.clientHeight + 1;
    const sx = (s.overflowX === 'auto' || s.overflowX === 'scroll') && p.scrollWidth > p.clientWidth + 1;
    if (!sy && !sx) continue;
    const pr = p.getBoundingClientRect();
    const top = pr.top + p.clientTop, bottom = top + p.clientHeight;
    const left = pr.left + p.clientLeft, right = left + p.clientWidth;
    let dy = 0, dx = 0;
    if (sy && r.top < top) dy = r.top - top - 4;
    else if (sy && r.bottom > bottom) dy = Math.min(r.bottom - bottom + 4, r.top - top - 4);
    if (sx && r.left < left) dx = r.left - left - 4;
    else if (sx && r.right > right) dx = Math.min(r.right - right + 4, r.left - left - 4);
    if (dy || dx) return [pr.left, pr.top, p.clientWidth, p.clientHeight, dx, dy];
  }
  return null;
}"""


# The centre of the element if a click there reaches it, else the most central point that does.
_HIT_JS = r"""(e) => {
  const r = e.getBoundingClientRect();
  const pts = [];
  for (let i = 1; i < 8; i++) for (let j = 1; j < 8; j++)
    pts.push([r.left + r.width * i / 8, r.top + r.height * j / 8]);
  const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
  pts.sort((a, b) => Math.hypot(a[0] - cx, a[1] - cy) - Math.hypot(b[0] - cx, b[1] - cy));
  for (const [x, y] of pts) {
    const hit = document.elementFromPoint(x, y);
    if (hit && (hit === e || e.contains(hit))) return [x, y];
  }
  return null;
}"""


class OracleContext:
    """What an oracle function sees at one step. See the module docstring."""

    def __init__(self, *, task_id: str, driver: Any, task: Any, step: int, memory: dict,
                 instruction: str, observation: Observation | None = None):
        self.task_id = task_id
        self.driver = driver
        self.task = task
        self.page = driver.page
        self.step = step
        self.memory = memory
        self.instruction = instruction
        self.observation = observation
        self.utterance = getattr(task, "utterance", None)
        self.seed = getattr(task, "seed", None)
        self._origin: tuple[float, float] | None = None

    # -- reading ------------------------------------------------------------------------------

    def js(self, script: str, arg: Any = None) -> Any:
        """Evaluate a side-effect-free JS function on the page and return its value."""
        return self.page.evaluate(script, arg)

    def shows(self, name: str) -> bool:
        """Whether the element list shows ``name`` as the policy's checks read it (grounding.shows),
        also cut by a list's edge. A scroll whose thought calls such a name out of view is one the
        check grounding.said_away holds wrong, so a teacher acts on it instead (a click finds the
        part that shows)."""
        return self.observation is not None and grounding.shows(self.observation, name)

    @property
    def origin(self) -> tuple[float, float]:
        """The observed area's top-left in page CSS px (``#wrap`` sits at (0, 0))."""
        if self._origin is None:
            sel = getattr(self.task, "observe_selector", None)
            r = self.page.evaluate("(s) => { const e = s && document.querySelector(s); if (!e) return [0, 0];"
                                   " const r = e.getBoundingClientRect(); return [r.left, r.top]; }", sel)
            self._origin = (float(r[0]), float(r[1]))
        return self._origin

    def _box(self, rect: Sequence[float]) -> Box:
        ox, oy = self.origin
        return Box(rect[0] - ox, rect[1] - oy, rect[2], rect[3])

    def box(self, target: Target) -> Box:
        """The box of a target in observed-area CSS px (a selector means its first match)."""
        if isinstance(target, Box):
            return target
        if isinstance(target, Point):
            return Box(target.x, target.y, 0, 0)
        if isinstance(target, tuple) and len(target) == 2:
            return Box(float(target[0]), float(target[1]), 0, 0)
        if isinstance(target, str):
            handle = self.page.query_selector(target)
            if handle is None:
                raise OracleError(f"{self.task_id}: nothing matches {target!r}")
            target = handle
        return self._box(self.page.evaluate(_RECT_JS, target))

    def boxes(self, selector: str) -> list[Box]:
        """Boxes of every rendered match of ``selector``, in document order."""
        return [self._box(r) for r in self.page.evaluate(_RECTS_JS, selector)]

    def center(self, target: Target) -> Point:
        if isinstance(target, Point):
            return target
        b = self.box(target)
        cx, cy = b.center
        return Point(x=round(cx, 1), y=round(cy, 1))

    def find_all_text(self, text: str, selector: str = "*", exact: bool = True) -> list[Box]:
        """Visible elements (outside the instruction) whose whitespace-normalised text equals
        ``text`` (or contains it, case-insensitively, with ``exact=False``); innermost first."""
        return [self._box(r) for r in self.page.evaluate(_FIND_TEXT_JS, [selector, text, exact])]

    def find_text(self, text: str, selector: str = "*", exact: bool = True) -> Box:
        found = self.find_all_text(text, selector, exact)
        if not found:
            raise OracleError(f"{self.task_id}: no visible {selector!r} with text {text!r}")
        return found[0]

    def listed(self, target: Target) -> Element | None:
        """The observation's element at ``target``'s centre (None when none or unobserved): what a
        policy reading the element list sees there, for a teacher to quote its name."""
        if self.observation is None:
            return None
        p = self.center(target)
        return self.observation.element_at(p.x, p.y)

    def text(self, selector: str) -> str:
        """The whitespace-normalised text of the first match ('' when none)."""
        return self.page.evaluate("(s) => { const e = document.querySelector(s);"
                                  " return e ? e.textContent.replace(/\\s+/g, ' ').trim() : ''; }", selector)

    def exists(self, selector: str) -> bool:
        return bool(self.page.evaluate("(s) => { const e = document.querySelector(s); if (!e) return false;"
                                       " const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; }",
                                       selector))

    def visible(self, target: Target, width: float = 160, height: float = 210) -> bool:
        """Whether the target's centre lies inside the observed area."""
        x, y = self.center(target)
        return 0 <= x < width and 0 <= y < height

    def quoted(self) -> list[str]:
        """The double-quoted strings of the instruction, in order."""
        return re.findall(r'"([^"]*)"', self.instruction)

    def animating(self) -> bool:
        """Whether a jQuery animation is running (then wait rather than click a moving target)."""
        return bool(self.page.evaluate("() => !!(window.jQuery && jQuery(':animated').length)"))

    def reveal(self, target: Target, notch_px: float = 100) -> Scroll | None:
        """A wheel Scroll over the container that hides ``target``, or None when it is in view.

        One notch is 100 CSS px (the schema's unit); the scroll never asks for less than one.
        """
        handle = self.page.query_selector(target) if isinstance(target, str) else target
        if handle is None:
            raise OracleError(f"{self.task_id}: nothing matches {target!r}")
        r = self.page.evaluate(_REVEAL_JS, handle)
        if r is None:
            return None
        x, y, w, h, dx, dy = r
        box = self._box((x, y, w, h))
        point = self.center(box)
        if abs(dy) >= abs(dx):
            direction, dist = ("down" if dy > 0 else "up"), abs(dy)
        else:
            direction, dist = ("right" if dx > 0 else "left"), abs(dx)
        return Scroll(point=point, direction=direction, amount=max(1, min(100, round(dist / notch_px))))

    # -- acting -------------------------------------------------------------------------------

    def point(self, target: Target) -> Point:
        """Where to click ``target``: its centre, or the nearest point of it that no other element
        covers (MiniWoB places widgets at random and they may overlap)."""
        if isinstance(target, (Box, Point, tuple)):
            return self.center(target)
        handle = self.page.query_selector(target) if isinstance(target, str) else target
        if handle is None:
            raise OracleError(f"{self.task_id}: nothing matches {target!r}")
        xy = self.page.evaluate(_HIT_JS, handle)
        if xy is None:
            return self.center(handle)
        ox, oy = self.origin
        return Point(x=round(xy[0] - ox, 1), y=round(xy[1] - oy, 1))

    def click(self, target: Target) -> Click:
        return Click(point=self.point(target))

    def hover(self, target: Target) -> Hover:
        return Hover(point=self.center(target))

    def double_click(self, target: Target) -> DoubleClick:
        return DoubleClick(point=self.center(target))

    def type(self, text: str, submit: bool = False) -> Type:
        return Type(text=text, submit=submit)

    def hotkey(self, *keys: str) -> Hotkey:
        return Hotkey(keys=tuple(keys))

    def select(self, target: Target, option: str) -> Select:
        return Select(point=self.center(target), option=option)

    def scroll(self, target: Target, direction: str = "down", amount: int = 1) -> Scroll:
        return Scroll(point=self.center(target), direction=direction, amount=amount)

    def drag(self, start: Target, end: Target) -> Drag:
        return Drag(start=self.center(start), end=self.center(end))

    def wait(self, seconds: float = 0.3) -> Wait:
        return Wait(seconds=seconds)


def _as_actions(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


class MiniWoBOracle(BasePolicy):
    """A teacher for one MiniWoB++ task: calls the registered oracle function every step."""

    def __init__(self, task_id: str):
        load_oracles()
        if task_id not in ORACLES:
            known = ", ".join(sorted(ORACLES)) or "none"
            raise OracleError(f"no miniwob oracle for {task_id!r}; oracles exist for: {known}")
        self.task_id = task_id
        self.spec = ORACLES[task_id]
        self.name = f"oracle:miniwob/{task_id}"
        self.episode: Episode | None = None
        self.memory: dict = {}
        self._step = 0

    def reset(self, episode: Episode) -> None:
        if episode.driver is None or getattr(episode.driver, "page", None) is None:
            raise OracleError("the miniwob oracle reads the page: reset() needs an Episode with a browser driver")
        self.episode = episode
        self.memory = {}
        self._step = 0

    def act(self, task: str, observation: Observation, history: Sequence[HistoryEntry]) -> Step:
        if self.episode is None:
            raise OracleError("act() called before reset()")
        ep = self.episode
        ctx = OracleContext(task_id=self.task_id, driver=ep.driver, task=ep.task, step=self._step,
                            memory=self.memory, instruction=getattr(ep.task, "instruction", "") or task,
                            observation=observation)
        self._step += 1
        result = self.spec.fn(ctx)
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], str)):
            raise OracleError(f"oracle {self.spec.fn.__name__} must return (thought, actions), got {result!r}")
        thought, actions = result[0], _as_actions(result[1])
        if not actions:
            raise OracleError(f"oracle {self.spec.fn.__name__} returned no action at step {ctx.step}")
        return Step(thought=thought, actions=actions, raw=_format(thought, actions, observation))


# MiniWoB++'s grid of shapes (common/shapes.js: click-shape, count-shape, identify-shape)
SHAPES_JS = """() => [...document.querySelectorAll('#area_svg > *')].map((e, i) => {
    const b = e.getBBox();
    return {i, tag: e.tagName, fill: e.getAttribute('fill'), text: e.textContent, w: b.width, h: b.height,
            fs: parseFloat(e.getAttribute('font-size') || '0')}; })"""
_SHAPE_NAMES = {"rect": "rectangle", "circle": "circle", "polygon": "triangle"}
SHAPE_COLORS = ("red", "green", "blue", "aqua", "black", "magenta", "yellow")


def describe_shape(item: dict) -> dict:
    """type (letter/digit/shape), text (the character or shape name), size (large/small), color."""
    if item["tag"] == "text":
        kind = "digit" if item["text"].isdigit() else "letter"
        return {"type": kind, "text": item["text"], "size": "large" if item["fs"] >= 15 else "small",
                "color": item["fill"]}
    return {"type": "shape", "text": _SHAPE_NAMES.get(item["tag"], item["tag"]),
            "size": "large" if max(item["w"], item["h"]) >= 15 else "small", "color": item["fill"]}


def shapes_described(ctx: OracleContext, words: list[str]) -> tuple[tuple[str, str, str], list]:
    """shapes.js's description ``[large|small] [colour] item|letter|digit|shape|<its text>`` read
    from ``words`` as (size, colour, what), and the handles of the grid's shapes it fits."""
    words = list(words)
    size = words.pop(0) if len(words) > 1 and words[0] in ("large", "small") else ""
    color = words.pop(0) if len(words) > 1 and words[0] in SHAPE_COLORS else ""
    what = " ".join(words)
    handles = ctx.page.query_selector_all("#area_svg > *")
    fits = []
    for item in ctx.js(SHAPES_JS):
        d = describe_shape(item)
        if size and d["size"] != size or color and d["color"] != color:
            continue
        if what == "item" or what in (d["type"], d["text"]):
            fits.append(handles[item["i"]])
    return (size, color, what), fits


def joined(parts: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``: a thought's list."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _format(thought: str, actions: list, observation: Observation | None) -> str:
    """The step in UI-TARS text (what a student is trained to write); '' if formatting is absent."""
    try:
        from actions.format import format_step
        from perception.space import CoordinateSpace

        space = observation.space if observation is not None and observation.space is not None \
            else CoordinateSpace.absolute(160, 210)
        return format_step(thought, actions, space)
    except Exception:  # the formatter belongs to another module; a step without raw text still runs
        return ""


def registered(task_ids: Iterable[str] | None = None) -> list[str]:
    """Task ids that have an oracle (optionally restricted to ``task_ids``)."""
    load_oracles()
    return [t for t in (task_ids if task_ids is not None else sorted(ORACLES)) if t in ORACLES]


@dataclass
class Rollout:
    """The result of one oracle episode run by ``rollout``."""

    task_id: str
    seed: int
    instruction: str
    success: bool
    strict_success: bool
    reward: float
    steps: int
    seconds: float
    done: bool
    thoughts: list[str] = field(default_factory=list)
    error: str = ""


def rollout(driver: Any, task: Any, policy: MiniWoBOracle | None = None, max_steps: int | None = None) -> Rollout:
    """Run one episode with the oracle on an open driver, without the agent loop.

    The agent loop (agent.loop.Agent) is the product path; this is the teacher's own minimal loop
    for tests and sweeps: setup, then act/execute/evaluate until the page says done.
    """
    import time

    t0 = time.perf_counter()
    policy = policy or MiniWoBOracle(task.id)
    task.setup(driver)
    policy.reset(Episode(instruction=task.instruction, task=task, driver=driver, seed=task.seed))
    thoughts: list[str] = []
    outcome, steps, error = None, 0, ""
    try:
        for _ in range(max_steps or task.max_steps):
            step = policy.act(task.instruction, None, [])
            steps += 1
            thoughts.append(step.thought)
            for action in step.actions:
                if action.kind == "wait" and not _driver_waits(driver):
                    time.sleep(action.seconds)
                    continue
                result = driver.execute(action)
                if not result.ok:
                    error = result.error or f"{action.kind} failed"
                    break
            outcome = task.evaluate(driver)
            if outcome.done or error:
                break
    except OracleError as e:
        error = str(e)
    outcome = outcome or task.evaluate(driver)
    return Rollout(task.id, task.seed, task.instruction, bool(outcome.success), bool(outcome.strict_success),
                   float(outcome.reward), steps, time.perf_counter() - t0, bool(outcome.done), thoughts, error)


def _driver_waits(driver: Any) -> bool:
    # the development driver of the widget suite has no Wait; the real BrowserDriver does
    return type(driver).__name__ != "DevDriver"
