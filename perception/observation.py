"""What a policy sees at one step."""
from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from perception.space import CoordinateSpace


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in viewport CSS pixels."""

    x: float
    y: float
    width: float
    height: float

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2

    def contains(self, px: float, py: float) -> bool:
        return self.x <= px <= self.x + self.width and self.y <= py <= self.y + self.height


@dataclass(frozen=True)
class Range:
    """A slider's scale: ``lo``..``hi`` in steps of ``step`` (None: any), drawn along ``track``
    (viewport CSS px) with the thumb's centre ``inset`` px in from each end."""

    lo: float
    hi: float
    step: float | None
    track: Box
    inset: float = 0.0

    @property
    def vertical(self) -> bool:
        return self.track.height > 2 * self.track.width

    def point_of(self, value: float) -> tuple[float, float]:
        """Where the thumb's centre is at ``value`` (clamped to the scale); a vertical slider's
        ``lo`` is at the bottom."""
        t = self.track
        f = (min(max(value, self.lo), self.hi) - self.lo) / (self.hi - self.lo)
        if self.vertical:
            return t.x + t.width / 2, t.y + t.height - self.inset - f * (t.height - 2 * self.inset)
        return t.x + self.inset + f * (t.width - 2 * self.inset), t.y + t.height / 2

    def to_dict(self) -> dict:
        return {"min": self.lo, "max": self.hi, "step": self.step,
                "track": [self.track.x, self.track.y, self.track.width, self.track.height], "inset": self.inset}

    @classmethod
    def from_dict(cls, d: dict) -> "Range":
        return cls(lo=float(d["min"]), hi=float(d["max"]), step=None if d.get("step") is None else float(d["step"]),
                   track=Box(*d["track"]), inset=float(d.get("inset", 0.0)))


@dataclass(frozen=True)
class Element:
    """A visible UI element: interactive controls and text, in reading order.

    ``role`` is an ARIA-like role (button, link, textbox, checkbox, radio, combobox, option,
    tab, menuitem, slider, heading, text, image, ...). ``text`` is what a user would read or call
    it (label, value, placeholder, aria-label). ``box`` is in viewport CSS pixels.
    """

    index: int
    role: str
    text: str
    box: Box
    tag: str = ""
    value: str = ""
    checked: bool | None = None
    disabled: bool = False
    focused: bool = False
    interactive: bool = True
    selector: str = ""  # a CSS path, for humans and for replay checks; never sent to a model
    range: Range | None = None  # a slider's scale (grounding aims drags with it); not in prompts

    def to_dict(self) -> dict:
        d = {"index": self.index, "role": self.role, "text": self.text,
             "box": [round(self.box.x, 1), round(self.box.y, 1), round(self.box.width, 1), round(self.box.height, 1)]}
        for k in ("tag", "value", "selector"):
            if getattr(self, k):
                d[k] = getattr(self, k)
        if self.checked is not None:
            d["checked"] = self.checked
        if self.disabled:
            d["disabled"] = True
        if self.focused:
            d["focused"] = True
        if not self.interactive:
            d["interactive"] = False
        if self.range is not None:
            d["range"] = self.range.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Element":
        x, y, w, h = d["box"]
        return cls(index=d["index"], role=d["role"], text=d.get("text", ""), box=Box(x, y, w, h),
                   tag=d.get("tag", ""), value=d.get("value", ""), checked=d.get("checked"),
                   disabled=d.get("disabled", False), focused=d.get("focused", False),
                   interactive=d.get("interactive", True), selector=d.get("selector", ""),
                   range=Range.from_dict(d["range"]) if d.get("range") else None)


@dataclass
class Observation:
    """One screen as the policy receives it.

    ``screenshot`` is the viewport (or the task area, for suites that crop) at ``dpr`` scale;
    ``width``/``height`` are its CSS size; ``space`` is the coordinate space the policy answers in;
    ``offset`` is where the observed area's top-left lies in the page viewport (CSS px), so a crop
    can be mapped back. Element boxes are relative to the observed area. ``screenshot`` is None
    only for a policy that said it would not look (``needs_screenshot`` False).
    """

    screenshot: Image.Image | None
    width: int
    height: int
    url: str = ""
    title: str = ""
    elements: list[Element] = field(default_factory=list)
    space: CoordinateSpace | None = None
    dpr: float = 1.0
    offset: tuple[float, float] = (0.0, 0.0)
    instruction: str = ""  # set by suites whose instruction is read off the page

    def element_at(self, x: float, y: float) -> Element | None:
        """The smallest interactive element whose box contains (x, y), else the smallest of any."""
        hits = [e for e in self.elements if e.box.contains(x, y)]
        if not hits:
            return None
        inter = [e for e in hits if e.interactive] or hits
        return min(inter, key=lambda e: e.box.width * e.box.height)
