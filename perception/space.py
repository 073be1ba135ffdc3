"""Coordinate spaces: how a model's numbers map to viewport CSS pixels and back.

Three conventions exist in the field (see shared/notes/ui-tars.md §3):

* ``absolute``  — pixels of the screenshot the model was shown (physical pixels: CSS × DPR).
* ``relative``  — a 0..scale grid over the screenshot (UI-TARS-1.0, Doubao: scale 1000).
* ``smart_resize`` — pixels of the Qwen2.5-VL smart-resized image (UI-TARS-1.5, Qwen2.5-VL).

Every action that reaches a driver carries viewport CSS pixels; ``to_viewport`` is the one place
that conversion happens.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

IMAGE_FACTOR = 28
MIN_PIXELS = 100 * 28 * 28  # 78,400 — the UI-TARS constants
MAX_PIXELS = 16384 * 28 * 28  # 12,845,056
MAX_RATIO = 200


def smart_resize(width: int, height: int, factor: int = IMAGE_FACTOR, min_pixels: int = MIN_PIXELS,
                 max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """Qwen2.5-VL's resize rule. Returns (width, height), both multiples of ``factor``."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max(width, height) / min(width, height) > MAX_RATIO:
        raise ValueError(f"aspect ratio of {width}x{height} exceeds {MAX_RATIO}")
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return w, h


@dataclass(frozen=True)
class CoordinateSpace:
    """The space a policy's coordinates live in, tied to one viewport.

    ``width``/``height`` are the viewport in CSS pixels; ``dpr`` its devicePixelRatio;
    ``model_width``/``model_height`` the extent of the model's coordinate grid (the image it sees,
    or the relative scale). ``to_viewport`` maps model numbers to CSS pixels; ``from_viewport``
    is its inverse (returns floats; formatters round).
    """

    kind: Literal["absolute", "relative", "smart_resize"]
    width: int
    height: int
    model_width: float
    model_height: float
    dpr: float = 1.0

    @classmethod
    def absolute(cls, w: int, h: int, dpr: float = 1.0) -> "CoordinateSpace":
        """Pixels of the screenshot as captured (CSS size × DPR)."""
        return cls("absolute", w, h, w * dpr, h * dpr, dpr)

    @classmethod
    def relative(cls, w: int, h: int, scale: int = 1000, dpr: float = 1.0) -> "CoordinateSpace":
        """A 0..scale grid on both axes, independent of the image size."""
        return cls("relative", w, h, float(scale), float(scale), dpr)

    @classmethod
    def smart_resize(cls, w: int, h: int, factor: int = IMAGE_FACTOR, min_pixels: int = MIN_PIXELS,
                     max_pixels: int = MAX_PIXELS, dpr: float = 1.0) -> "CoordinateSpace":
        """Pixels of the Qwen2.5-VL-resized screenshot (the screenshot is w·dpr × h·dpr)."""
        mw, mh = smart_resize(round(w * dpr), round(h * dpr), factor, min_pixels, max_pixels)
        return cls("smart_resize", w, h, float(mw), float(mh), dpr)

    @property
    def image_size(self) -> tuple[int, int]:
        """The size of the image a policy in this space should be shown."""
        if self.kind == "relative":
            return round(self.width * self.dpr), round(self.height * self.dpr)
        return round(self.model_width), round(self.model_height)

    def to_viewport(self, x: float, y: float) -> tuple[float, float]:
        return x * self.width / self.model_width, y * self.height / self.model_height

    def from_viewport(self, x: float, y: float) -> tuple[float, float]:
        return x * self.model_width / self.width, y * self.model_height / self.height

    def contains_model_point(self, x: float, y: float) -> bool:
        return 0 <= x <= self.model_width and 0 <= y <= self.model_height

    def with_viewport(self, w: int, h: int, dpr: float | None = None) -> "CoordinateSpace":
        """The same convention over another viewport (e.g. after a resize)."""
        dpr = self.dpr if dpr is None else dpr
        if self.kind == "absolute":
            return CoordinateSpace.absolute(w, h, dpr)
        if self.kind == "relative":
            return CoordinateSpace.relative(w, h, round(self.model_width), dpr)
        return CoordinateSpace.smart_resize(w, h, dpr=dpr)
