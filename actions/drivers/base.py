"""The Driver protocol: what executes actions and captures the screen."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from PIL import Image

from actions.schema import Action, ActionResult


@dataclass
class Frame:
    """A raw capture, before perception turns it into an Observation.

    ``image`` covers the observed area (the viewport, or ``clip`` when a suite crops) at ``dpr``;
    ``width``/``height`` are that area's CSS size; ``elements`` are plain dicts from the page's
    element extractor ({index, role, text, box:[x,y,w,h], tag, value, checked, ...}) with boxes
    relative to the observed area. ``image`` is None in a capture without a screenshot
    (``capture(screenshot=False)``: the elements only, for a caller that does not look).
    """

    image: Image.Image | None
    width: int
    height: int
    dpr: float = 1.0
    url: str = ""
    title: str = ""
    elements: list[dict] = field(default_factory=list)
    offset: tuple[float, float] = (0.0, 0.0)
    png: bytes | None = None  # the screenshot as the browser encoded it (PNG), written to disk as is


@runtime_checkable
class Driver(Protocol):
    def capture(self, screenshot: bool = True) -> Frame: ...

    def execute(self, action: Action) -> ActionResult: ...

    def close(self) -> None: ...
