"""Record and replay: run an instruction once with the model, then replay it without the model.

The first ``Session.act`` of an instruction records the actions taken and what was under each of
them (the element's role, text and box) into a human-readable YAML file users commit beside their
tests (``.galago-cache/<test-module>.yaml``). Later runs replay those actions without loading or
calling the policy, checking before every step that the screen still matches: each recorded
element (same role and text) must be present near its recorded box. A matching element that moved
a little moves the action with it; anything else is a mismatch, and the model takes over from that
step — the record is then rewritten from the finished run (Stagehand's self-heal write-back).

The key is the instruction plus the page's URL *path* at the start (scheme, host, port, query and
fragment vary between runs — a test server picks a free port). Questions and assertions are never
cached: their answer is the point of asking.

Modes: ``read-write`` (default: replay, record misses, rewrite after a fallback), ``read-only``
(replay only; for CI with committed cache files), ``off``.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Literal, Sequence
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from actions.errors import ConfigError
from actions.schema import TERMINAL_KINDS, Action, Finished, Point, Step, action_points
from perception.observation import Element, Observation
from perception.space import CoordinateSpace
from policy.base import BasePolicy, Episode, HistoryEntry, ScreenshotNeeded

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's safe loader when PyYAML has it: ~10x faster
CacheMode = Literal["read-write", "read-only", "off"]
_MODE_ALIASES = {"rw": "read-write", "read-write": "read-write", "readwrite": "read-write",
                 "ro": "read-only", "read-only": "read-only", "readonly": "read-only",
                 "off": "off", "none": "off", "false": "off"}
FORMAT_VERSION = 1
DEFAULT_TOLERANCE = 48.0  # CSS px an element's centre may move and still count as "the same place"
_HEADER = ("# galago record/replay cache: actions recorded per instruction and URL path, replayed without\n"
           "# the model while the recorded elements are still on screen. Commit it beside your tests;\n"
           "# delete an entry (or the file) to record it again.\n")


def cache_mode(mode: str) -> CacheMode:
    """Normalise ``rw``/``ro``/``off`` (and the long names) or raise ConfigError."""
    m = _MODE_ALIASES.get(str(mode).strip().lower())
    if m is None:
        raise ConfigError(f"unknown cache mode {mode!r}; use read-write (rw), read-only (ro) or off")
    return m  # type: ignore[return-value]


def url_key(url: str) -> str:
    """The part of a URL a cache key uses: its path, without a trailing slash (``/`` for the root)."""
    if not url or url.startswith(("about:", "data:", "blob:")):
        return url.split(":", 1)[0] + ":" if url else ""
    path = urlsplit(url).path or "/"
    return path.rstrip("/") or "/"


# -- the file format ----------------------------------------------------------------------------


class Anchor(BaseModel):
    """What was under an action when it was recorded: role, text and box [x, y, w, h] (CSS px)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    role: str
    text: str = ""
    box: tuple[float, float, float, float]
    focused: bool = False  # the anchor of a keyboard action: the element that had the focus

    @classmethod
    def of(cls, el: Element, focused: bool = False) -> "Anchor":
        b = el.box
        return cls(role=el.role, text=el.text, box=(round(b.x, 1), round(b.y, 1), round(b.width, 1),
                                                   round(b.height, 1)), focused=focused)

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2, y + h / 2

    def describe(self) -> str:
        return f"{self.role} {self.text!r}" if self.text else self.role


class CachedStep(BaseModel):
    model_config = ConfigDict(extra="forbid")
    thought: str = ""
    actions: list[Action] = Field(min_length=1)
    anchors: list[Anchor | None] = Field(default_factory=list)

    @model_validator(mode="after")
    def _aligned(self) -> "CachedStep":
        if self.anchors and len(self.anchors) != len(self.actions):
            raise ValueError(f"{len(self.anchors)} anchors for {len(self.actions)} actions; give one per action "
                             f"(null where nothing is checked)")
        if any(a.kind in TERMINAL_KINDS for a in self.actions):
            raise ValueError("finished/call_user are not recorded as steps (the entry's answer is)")
        return self


class CacheEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instruction: str = Field(min_length=1)
    path: str = ""
    answer: str = ""
    steps: list[CachedStep] = Field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return self.instruction, self.path


class CacheFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = FORMAT_VERSION
    entries: list[CacheEntry] = Field(default_factory=list)

    @field_validator("version")
    @classmethod
    def _known(cls, v: int) -> int:
        if v != FORMAT_VERSION:
            raise ValueError(f"cache format version {v} is not supported (this galago reads {FORMAT_VERSION})")
        return v


def _dump_entry(entry: CacheEntry) -> dict:
    # exclude_defaults keeps the file short: no "focused: false", no "amount: 5" on every line.
    data = entry.model_dump(mode="json", exclude_defaults=True)
    data.setdefault("path", entry.path)
    for step, model in zip(data.get("steps", []), entry.steps):
        step["actions"] = [a.model_dump(mode="json") for a in model.actions]  # keep each kind
        if "anchors" in step:
            step["anchors"] = [None if a is None else a.model_dump(mode="json", exclude_defaults=True)
                               for a in model.anchors]
    return data


class Cache:
    """One cache file (created on the first write). Thread-safe; writes are atomic and merge with
    what is on disk, so parallel workers writing different entries do not lose each other's."""

    def __init__(self, path: str | Path, mode: str = "read-write", tolerance: float = DEFAULT_TOLERANCE):
        self.path = Path(path)
        self.mode: CacheMode = cache_mode(mode)
        self.tolerance = float(tolerance)
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], CacheEntry] = {}
        self.hits = self.misses = self.fallbacks = self.writes = 0
        if self.mode != "off":
            self._entries = self._read()

    def _read(self) -> dict[tuple[str, str], CacheEntry]:
        if not self.path.is_file():
            return {}
        try:
            data = yaml.load(self.path.read_text(encoding="utf-8"), Loader=_Loader)  # never constructs objects
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise ConfigError(f"{self.path}: cannot read the galago cache: {e}") from None
        if data is None:
            return {}
        try:
            parsed = CacheFile.model_validate(data)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise ConfigError(f"{self.path}: not a valid galago cache file: {where}: {first['msg']} "
                              f"(fix it or delete the file to record again)") from None
        return {entry.key: entry for entry in parsed.entries}

    @property
    def entries(self) -> list[CacheEntry]:
        return list(self._entries.values())

    def lookup(self, instruction: str, url: str) -> CacheEntry | None:
        if self.mode == "off":
            return None
        with self._lock:
            return self._entries.get((instruction, url_key(url)))

    def store(self, entry: CacheEntry) -> bool:
        """Record ``entry`` (read-write mode only). Returns whether the file changed."""
        if self.mode != "read-write":
            return False
        with self._lock:
            known = self._entries.get(entry.key)
            if known is not None and _dump_entry(known) == _dump_entry(entry):
                return False  # a clean replay: nothing to write, and no need to re-read the file
            merged = self._read()  # someone else (another worker) may have written meanwhile
            old = merged.get(entry.key)
            if old is not None and _dump_entry(old) == _dump_entry(entry):
                self._entries = merged
                return False
            merged[entry.key] = entry
            self._entries = merged
            self._write(list(merged.values()))
            self.writes += 1
            return True

    def _write(self, entries: Sequence[CacheEntry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {"version": FORMAT_VERSION, "entries": [_dump_entry(e) for e in entries]}
        text = _HEADER + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=110,
                                        default_flow_style=None)
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, self.path)  # atomic: a reader never sees half a file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __repr__(self) -> str:
        return f"Cache({str(self.path)!r}, mode={self.mode!r}, entries={len(self._entries)})"


# -- matching the screen against a recorded step ---------------------------------------------------


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def find_anchor(anchor: Anchor, observation: Observation, tolerance: float) -> Element | None:
    """The element matching ``anchor`` (same role and text, centre within ``tolerance`` px), nearest first."""
    ax, ay = anchor.center
    best, best_d = None, None
    for el in observation.elements:
        if el.role != anchor.role or _norm(el.text) != _norm(anchor.text):
            continue
        if anchor.focused and not el.focused:
            continue
        cx, cy = el.box.center
        d = ((cx - ax) ** 2 + (cy - ay) ** 2) ** 0.5
        if d <= tolerance and (best_d is None or d < best_d):
            best, best_d = el, d
    return best


def _moved(action: Action, dx: float, dy: float) -> Action:
    if not (dx or dy):
        return action
    update = {}
    for name in ("point", "start", "end"):
        p = getattr(action, name, None)
        if isinstance(p, Point):
            update[name] = Point(x=p.x + dx, y=p.y + dy)
    return action.model_copy(update=update)


def match_step(step: CachedStep, observation: Observation, tolerance: float) -> tuple[list[Action] | None, str]:
    """The step's actions adapted to this screen, or (None, why) when the screen does not match."""
    out: list[Action] = []
    anchors = step.anchors or [None] * len(step.actions)
    for action, anchor in zip(step.actions, anchors):
        if anchor is None:
            out.append(action)
            continue
        el = find_anchor(anchor, observation, tolerance)
        if el is None:
            return None, (f"recorded {'focused ' if anchor.focused else ''}{anchor.describe()} near "
                          f"({anchor.center[0]:.0f},{anchor.center[1]:.0f}) is not on screen")
        (cx, cy), (ax, ay) = el.box.center, anchor.center
        moved = _moved(action, cx - ax, cy - ay)
        for p in action_points(moved):
            if not (0 <= p.x <= observation.width and 0 <= p.y <= observation.height):
                return None, f"recorded {anchor.describe()} moved off screen"
        out.append(moved)
    return out, ""


def anchors_for(actions: Sequence[Action], observation: Observation) -> list[Anchor | None]:
    """What is under each action on this screen: the element under a pointer action, the focused
    element under a keyboard action that comes before any pointer action of the step."""
    anchors: list[Anchor | None] = []
    pointed = False
    focused = next((e for e in observation.elements if e.focused), None)
    for action in actions:
        points = action_points(action)
        if points:
            pointed = True
            el = observation.element_at(points[0].x, points[0].y)
            anchors.append(Anchor.of(el) if el is not None else None)
        elif action.kind in ("type", "hotkey", "select") and not pointed and focused is not None:
            anchors.append(Anchor.of(focused, focused=True))
        else:
            anchors.append(None)
    return anchors


# -- the replaying policy ------------------------------------------------------------------------------


class ReplayPolicy(BasePolicy):
    """Plays a cache entry, checking the screen before each step; hands over to the real policy
    (loaded only then, through ``load_policy``) at the first mismatch or when there is no entry.

    While replaying it checks elements, not pixels, so the loop captures no screenshot for those
    steps (``needs_screenshot``; ``screenshots=True`` keeps them, for reports); at a mismatch it
    raises ScreenshotNeeded and the model gets a full observation.

    After the run, ``replayed`` lists the step indices played from the cache, ``fallback_at`` the
    step where the model took over (None: it never did), ``mismatch`` why, ``calls`` how many
    times the real policy was asked, and ``recorded`` the steps (with anchors) to write back.
    """

    def __init__(self, load_policy: Callable[[], Any], entry: CacheEntry | None = None,
                 tolerance: float = DEFAULT_TOLERANCE, screenshots: bool = False):
        self._load = load_policy
        self.screenshots = screenshots
        self.inner: Any = None
        self.entry = entry
        self.tolerance = tolerance
        self.replaying = entry is not None
        self.position = 0
        self.replayed: list[int] = []
        self.fallback_at: int | None = None
        self.mismatch = ""
        self.calls = 0
        self.recorded: dict[int, CachedStep] = {}
        self._episode: Episode | None = None

    @property
    def needs_screenshot(self) -> bool:  # type: ignore[override]
        return self.screenshots or not self.replaying

    @property
    def name(self) -> str:  # type: ignore[override]
        if self.inner is not None:
            return getattr(self.inner, "name", type(self.inner).__name__)
        return "cache"

    def _policy(self) -> Any:
        if self.inner is None:
            self.inner = self._load()
            if self._episode is not None:
                self.inner.reset(self._episode)
        return self.inner

    def coordinate_space(self, width: int, height: int, dpr: float = 1.0) -> CoordinateSpace:
        if self.replaying:  # cached actions are in CSS px; no need to load the policy for this
            return CoordinateSpace.absolute(width, height, 1.0)
        return self._policy().coordinate_space(width, height, dpr)

    def reset(self, episode: Episode) -> None:
        self._episode = episode
        if self.inner is not None:
            self.inner.reset(episode)

    def act(self, task: str, observation: Observation, history: Sequence[HistoryEntry]) -> Step:
        index = len(history)
        if self.replaying:
            step = self._replay(index, observation, history)
            if step is not None:
                return step
            self.replaying, self.fallback_at = False, index
            if observation.screenshot is None:
                raise ScreenshotNeeded  # the loop captures one and asks again, now of the model
        policy = self._policy()
        space = policy.coordinate_space(observation.width, observation.height, observation.dpr)
        if observation.space != space:
            observation = dataclasses.replace(observation, space=space)
            history = [_in_space(h, space) for h in history]
        self.calls += 1
        step = policy.act(task, observation, history)
        self._record(index, step, observation)
        return step

    def _replay(self, index: int, observation: Observation, history: Sequence[HistoryEntry]) -> Step | None:
        assert self.entry is not None
        if history and history[-1].index in self.replayed and history[-1].feedback:
            self.mismatch = f"replayed step {history[-1].index} failed: {history[-1].feedback}"
            return None
        if self.position >= len(self.entry.steps):
            self.replayed.append(index)
            return Step(thought="Every recorded step was replayed.", actions=[Finished(answer=self.entry.answer)],
                        raw="finished()")
        cached = self.entry.steps[self.position]
        actions, why = match_step(cached, observation, self.tolerance)
        if actions is None:
            self.mismatch = f"step {index}: {why}"
            return None
        self.position += 1
        self.replayed.append(index)
        self._record(index, Step(thought=cached.thought, actions=actions), observation)
        from actions.format import format_step

        space = CoordinateSpace.absolute(observation.width, observation.height, 1.0)
        return Step(thought=cached.thought, actions=actions,
                    raw="(replayed from cache)\n" + format_step(cached.thought or "-", actions, space))

    def _record(self, index: int, step: Step, observation: Observation) -> None:
        actions = [a for a in step.actions if a.kind not in TERMINAL_KINDS]
        if actions:
            self.recorded[index] = CachedStep(thought=step.thought, actions=actions,
                                              anchors=anchors_for(actions, observation))

    def entry_from_run(self, instruction: str, url: str, records: Sequence[Any], answer: str | None) -> CacheEntry:
        """The entry to store after a finished run: its recorded steps that went fine, in order."""
        steps = [self.recorded[r.index] for r in records
                 if r.index in self.recorded and not r.feedback and not r.error]
        return CacheEntry(instruction=instruction, path=url_key(url), answer=answer or "", steps=steps)

    def close(self) -> None:
        pass  # the real policy belongs to the session


def _in_space(entry: HistoryEntry, space: CoordinateSpace) -> HistoryEntry:
    """A history entry with its response re-rendered in ``space`` (replayed steps were in CSS px)."""
    if not entry.actions:
        return entry
    from actions.format import format_step

    try:
        response = format_step(entry.thought or "-", entry.actions, space)
    except (ValueError, TypeError):
        return entry
    return dataclasses.replace(entry, response=response)
