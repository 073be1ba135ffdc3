"""The oracle teacher: solves widget episodes from the episode's own plan and DOM reads.

It never changes the page from JS: every read goes through ``page.evaluate`` of a side-effect-free
function, and every change is an action (Click, Type, Select, Drag, Hotkey, Scroll) that the
driver executes, one per step, in viewport CSS pixels. It is reactive: each ``act`` re-reads the
page, so a click that missed or a scroll that fell short is simply retried.
"""
from __future__ import annotations

import math
from typing import Sequence

from actions.format import format_step
from actions.schema import Click, Drag, Finished, Hotkey, Point, Scroll, Select, Step, Type
from policy.base import BasePolicy, Episode, HistoryEntry
from perception.observation import Observation
from perception.space import CoordinateSpace
from tasks.suites.widgets.goal import EnterDate, Fill, PickOption, PlanStep, Press, SetChecked, Slide

THUMB = 16  # Chromium's default range-thumb width in CSS px (clicks map through it)
MAX_TRIES = 4  # per plan step, before the oracle gives up on it

# Reads one element: its box, the part of it that is actually visible (clipped by scrolling
# ancestors and the viewport), the scroll container that hides it, and its form state.
PROBE_JS = r"""
(id) => {
  const el = document.getElementById(id);
  if (!el) return null;
  const W = document.documentElement.clientWidth, H = document.documentElement.clientHeight;
  // a link wrapped over two lines has two boxes; aim at the larger one, not their union
  let r = el.getBoundingClientRect();
  const rects = [...el.getClientRects()];
  if (rects.length > 1) r = rects.reduce((a, b) => (b.width * b.height > a.width * a.height ? b : a));
  const cs = getComputedStyle(el);
  let v = {l: r.left, t: r.top, r: r.right, b: r.bottom};
  let clipper = null;
  for (let p = el.parentElement; p && p !== document.body && p !== document.documentElement; p = p.parentElement) {
    const ps = getComputedStyle(p);
    if (ps.overflowX === 'visible' && ps.overflowY === 'visible') continue;
    const pr = p.getBoundingClientRect();
    const scrolls = p.scrollHeight > p.clientHeight + 1 || p.scrollWidth > p.clientWidth + 1;
    const inside = r.left >= pr.left - 1 && r.right <= pr.right + 1 && r.top >= pr.top - 1 && r.bottom <= pr.bottom + 1;
    if (!clipper && scrolls && !inside) clipper = {l: pr.left, t: pr.top, r: pr.right, b: pr.bottom};
    v = {l: Math.max(v.l, pr.left), t: Math.max(v.t, pr.top), r: Math.min(v.r, pr.right), b: Math.min(v.b, pr.bottom)};
  }
  v = {l: Math.max(v.l, 0), t: Math.max(v.t, 0), r: Math.min(v.r, W), b: Math.min(v.b, H)};
  // a point of the page where a wheel scrolls the page itself, not an inner scroll box
  let pagePoint = null;
  for (const [x, y] of [[W / 2, H / 2], [W - 8, H / 2], [8, H / 2], [W / 2, H - 8], [W / 2, 8]]) {
    let e = document.elementFromPoint(x, y), ok = true;
    for (; e && e !== document.body; e = e.parentElement) {
      const s = getComputedStyle(e);
      if ((s.overflowY === 'auto' || s.overflowY === 'scroll' || s.overflowX === 'auto' || s.overflowX === 'scroll')
          && (e.scrollHeight > e.clientHeight + 1 || e.scrollWidth > e.clientWidth + 1)) { ok = false; break; }
    }
    if (ok) { pagePoint = [x, y]; break; }
  }
  let hidden = cs.visibility === 'hidden' || r.width === 0 || r.height === 0;
  const cx = (r.left + r.right) / 2, cy = (r.top + r.bottom) / 2;
  let covered = false;
  if (!hidden && cx >= 0 && cy >= 0 && cx < W && cy < H) {
    const top = document.elementFromPoint(cx, cy);  // covered by an overlay or a menu?
    covered = !!top && top !== el && !el.contains(top) && !(el.labels && [...el.labels].some(l => l.contains(top)));
  }
  const order = new Intl.DateTimeFormat(undefined, {year: 'numeric', month: '2-digit', day: '2-digit'})
      .formatToParts(new Date(2024, 2, 15)).filter(p => p.type !== 'literal').map(p => p.type);
  return {x: r.left, y: r.top, w: r.width, h: r.height, vis: v, clipper, W, H, hidden, covered: !!covered, pagePoint,
          value: el.value === undefined ? null : String(el.value), checked: !!el.checked,
          focused: document.activeElement === el, min: Number(el.min || 0), max: Number(el.max || 100),
          step: Number(el.step || 1), padLeft: parseFloat(cs.paddingLeft) + parseFloat(cs.borderLeftWidth),
          options: el.tagName === 'SELECT' ? [...el.options].map(o => o.text) : null, dateOrder: order};
}
"""
DONE_JS = "() => !!(window.__galago && window.__galago.done)"


class OracleGaveUp(RuntimeError):
    """The plan cannot continue (an element is missing); a bug in the generator, not the policy."""


class WidgetOracle(BasePolicy):
    """``oracle(family)`` of the widget suite. Needs ``episode.driver.page`` and ``episode.task``
    to be a WidgetEpisode (its ``spec.plan``)."""

    name = "oracle"

    def __init__(self, family: str | None = None):
        self.family = family
        self.page = None
        self.plan: tuple[PlanStep, ...] = ()

    def reset(self, episode: Episode) -> None:
        super().reset(episode)
        if episode.driver is None or getattr(episode.task, "spec", None) is None:
            raise ValueError("the widget oracle needs episode.driver and a widgets episode as episode.task")
        self.page = episode.driver.page
        self.plan = episode.task.spec.plan
        self._i = 0
        self._tries = 0
        self._pressed = False
        self._typed_date = False

    # -- the loop's entry point ------------------------------------------------------------------

    def act(self, task: str, observation: Observation | None = None, history: Sequence[HistoryEntry] = ()) -> Step:
        if self.page is None:
            raise RuntimeError("WidgetOracle.act called before reset()")
        space = getattr(observation, "space", None)
        if space is None:
            size = self.page.viewport_size or {"width": 1280, "height": 720}
            space = CoordinateSpace.absolute(size["width"], size["height"])
        self._space = space
        if self.page.evaluate(DONE_JS):
            return self._step("The task is complete.", Finished())
        while self._i < len(self.plan):
            step = self.plan[self._i]
            out = self._next(step)
            if out is not None:
                return out
            self._advance()
        return self._step("Every step of the task is done.", Finished())

    def _advance(self) -> None:
        self._i += 1
        self._tries = 0
        self._pressed = False

    def _probe(self, id: str) -> dict:
        p = self.page.evaluate(PROBE_JS, id)
        if p is None:
            raise OracleGaveUp(f"element #{id} is not on the page")
        return p

    def _count_try(self, step: PlanStep) -> None:
        self._tries += 1
        if self._tries > MAX_TRIES * 3 + self._reach_allowance:
            raise OracleGaveUp(f"no progress on {step!r} after {self._tries} actions")

    # -- one plan step -> the next action (None when the step already holds) ---------------------

    def _next(self, step: PlanStep) -> Step | None:
        self._reach_allowance = getattr(step, "reach", 0)  # extra tries for an item deep in a list
        if isinstance(step, Press):
            if step.until is not None:
                if not self._probe(step.until)["hidden"]:
                    return None
            elif self._pressed:
                return None
            p = self._probe(step.id)
            s = self._reach(p, step.what)
            if s:
                return s
            self._count_try(step)
            self._pressed = True
            click = f"{step.what} {step.why}".strip()
            thought = "; ".join(step.seen) + f"; click {click}." if step.seen else f"Click {click}."
            return self._step(thought, Click(point=_center(p)))

        p = self._probe(step.id)
        if isinstance(step, Fill):
            if (p["value"] or "") == step.text:
                return None
            s = self._reach(p, f'the "{step.label}" field')
            if s:
                return s
            self._count_try(step)
            if not p["focused"]:
                state = "is empty" if not p["value"] else "holds other text"
                return self._step(f'The field labelled "{step.label}" {state}; click it to type into it.',
                                  Click(point=_center(p)))
            if p["value"]:
                return self._step(f'"{step.label}" already holds text; select all of it so typing replaces it.',
                                  Hotkey(keys=("ctrl", "a")))
            return self._step(f'"{step.label}" is focused; type "{step.text}".', Type(text=step.text))

        if isinstance(step, SetChecked):
            if p["checked"] == step.want:
                return None
            s = self._reach(p, f'"{step.label}"')
            if s:
                return s
            self._count_try(step)
            # one claim per box, so that a claim's state word can be checked against the page
            done = "".join(f'"{t}" is ticked; ' for t in step.ticked)
            if step.unasked:
                thought = f'{done}"{step.label}" is checked but not asked for; untick it.'
            else:
                verb = "tick" if step.want else "untick"
                thought = f'{done}"{step.label}" is {"unchecked" if step.want else "checked"}; {verb} it.'
            return self._step(thought, Click(point=_center(p)))

        if isinstance(step, PickOption):
            if p["options"] and p["value"] is not None and self._selected_text(step.id) == step.option:
                return None
            s = self._reach(p, f'the "{step.label}" dropdown')
            if s:
                return s
            self._count_try(step)
            return self._step(f'The "{step.label}" dropdown does not show "{step.option}" yet; select it.',
                              Select(point=_center(p), option=step.option))

        if isinstance(step, Slide):
            return self._slide(step, p)
        if isinstance(step, EnterDate):
            return self._date(step, p)
        raise TypeError(f"unknown plan step {step!r}")

    def _selected_text(self, id: str) -> str:
        return self.page.evaluate("(id) => { const s = document.getElementById(id); "
                                  "return s.selectedIndex >= 0 ? s.options[s.selectedIndex].text : ''; }", id)

    def _slide(self, step: Slide, p: dict) -> Step | None:
        value = float(p["value"])
        if value == step.value:
            return None
        s = self._reach(p, f'the "{step.label}" slider')
        if s:
            return s
        self._count_try(step)
        lo, hi, inc = p["min"], p["max"], p["step"] or 1
        y = p["y"] + p["h"] / 2

        def x_of(v: float) -> float:
            return p["x"] + THUMB / 2 + (v - lo) / (hi - lo) * (p["w"] - THUMB)

        notches = round((step.value - value) / inc)
        if abs(notches) > 3 or not p["focused"]:
            return self._step(f'The "{step.label}" slider is at {value:g}; drag its thumb to {step.value}.',
                              Drag(start=Point(x=x_of(value), y=y), end=Point(x=x_of(step.value), y=y)))
        key = "right" if notches > 0 else "left"
        return self._step(f'The "{step.label}" slider is at {value:g}, {abs(notches)} step(s) from {step.value}; '
                          f'press {key} to nudge it.', Hotkey(keys=(key,)))

    def _date(self, step: EnterDate, p: dict) -> Step | None:
        if p["value"] == step.iso:
            return None
        s = self._reach(p, f'the "{step.label}" date field')
        if s:
            return s
        self._count_try(step)
        said = step.said or step.iso
        if not p["focused"] or self._typed_date:
            self._typed_date = False
            # the first segment sits at the left edge; a click in the middle would land on another one
            x = p["vis"]["l"] + p["padLeft"] + 6
            return self._step(f'The "{step.label}" date is not {said} yet; click its first segment to type the date.',
                              Click(point=Point(x=x, y=p["y"] + p["h"] / 2)))
        y, m, d = step.iso.split("-")
        parts = {"year": y, "month": m, "day": d}
        # "/" moves to the next segment, so the date is typed as people write it (03/05/1995), in the
        # input's segment order; month and day keep two digits, since a lone "1" waits for a second.
        # The thought converts in small steps (the date as said, its parts, their order): each is a
        # copy or a twelve-way lookup the model can learn, where one leap to 03/05/1995 is not
        keys = "/".join(parts[k] for k in p["dateOrder"])
        self._typed_date = True
        # the date is copied after the field's name, as at the click before it: a thought that opened
        # with the date made the model start it with a month it had seen often ("March 29, 1996")
        return self._step(f'The "{step.label}" date is to be {said}: year {y}, month {m}, day {d}; '
                          f'as {"/".join(p["dateOrder"])}: {keys}.',
                          Type(text=keys))

    _typed_date = False
    _reach_allowance = 0

    # -- scrolling -------------------------------------------------------------------------------

    def _reach(self, p: dict, what: str) -> Step | None:
        """A Scroll step when the element's centre is not visible; None when it can be clicked."""
        if p["hidden"]:
            raise OracleGaveUp(f"{what} is not displayed")
        v = p["vis"]
        cx, cy = p["x"] + p["w"] / 2, p["y"] + p["h"] / 2
        if v["l"] <= cx <= v["r"] and v["t"] <= cy <= v["b"] and v["r"] - v["l"] >= 2 and v["b"] - v["t"] >= 2 \
                and not p["covered"]:
            return None
        W, H = p["W"], p["H"]
        c = p["clipper"]
        seen = c and {"l": max(c["l"], 0), "t": max(c["t"], 0), "r": min(c["r"], W), "b": min(c["b"], H)}
        if seen and seen["r"] - seen["l"] >= 10 and seen["b"] - seen["t"] >= 10 and not (
                c["l"] <= cx <= c["r"] and c["t"] <= cy <= c["b"]):
            # hidden inside an inner scroll box (a list, a wide table): wheel over its visible part
            box, area = c, "the list" if c["b"] - c["t"] < H else "the scroll area"
            where = Point(x=(seen["l"] + seen["r"]) / 2, y=(seen["t"] + seen["b"]) / 2)
        else:
            box, area = {"l": 0, "t": 0, "r": W, "b": H}, "the page"
            pt = p["pagePoint"] or [W / 2, H / 2]
            where = Point(x=pt[0], y=pt[1])
        # scroll along the axis on which the centre is outside the box; when it is inside on both
        # (the element is covered, e.g. by a sticky bar) move it towards the box's centre
        dx, dy = cx - (box["l"] + box["r"]) / 2, cy - (box["t"] + box["b"]) / 2
        out_y = not (box["t"] <= cy <= box["b"])
        out_x = not (box["l"] <= cx <= box["r"])
        if out_y or (not out_x and abs(dy) >= abs(dx)):
            direction = "down" if dy > 0 else "up"
            delta = abs(dy)
        else:
            direction = "right" if dx > 0 else "left"
            delta = abs(dx)
        if p["covered"] and delta < 1:
            raise OracleGaveUp(f"{what} is covered by another element")
        if box is c:
            # inside a list, scroll by most of what it shows, as a person would: nothing on screen
            # says how far the item is, so the amount must not either (it takes a few scrolls, and
            # the item being listed is what ends them); never more than the box shows, so no item
            # is skipped over
            span = (seen["b"] - seen["t"]) if direction in ("up", "down") else (seen["r"] - seen["l"])
            amount = max(1, min(10, math.floor(0.8 * span / 100)))
        else:
            amount = max(1, min(10, math.floor(delta / 100 + 0.5)))
        self._tries += 1
        if self._tries > MAX_TRIES * 5 + self._reach_allowance:
            raise OracleGaveUp(f"cannot scroll {what} into view")
        return self._step(f"{what[0].upper() + what[1:]} is out of view; scroll {direction} in {area} to reach it.",
                          Scroll(point=where, direction=direction, amount=amount))

    def _step(self, thought: str, action) -> Step:
        # the UI-TARS text of the step, so run logs and distillation targets read like a model's
        return Step(thought=thought, actions=[action], raw=format_step(thought, [action], self._space))


def _center(p: dict) -> Point:
    v = p["vis"]
    return Point(x=(v["l"] + v["r"]) / 2, y=(v["t"] + v["b"]) / 2)
