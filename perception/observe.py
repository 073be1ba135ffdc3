"""Turn a driver's raw Frame into the Observation a policy sees, and elements into prompt text."""
from __future__ import annotations

from typing import Sequence

from actions.drivers.base import Frame
from perception.observation import Element, Observation
from perception.space import CoordinateSpace


def observe(frame: Frame, space: CoordinateSpace | None = None, max_elements: int = 200) -> Observation:
    """Build an Observation from ``frame``; element dicts become ``Element`` objects, order kept.

    ``space`` defaults to the absolute pixels of the captured screenshot (CSS size × DPR).
    """
    if space is None:
        space = CoordinateSpace.absolute(frame.width, frame.height, frame.dpr)
    elements: list[Element] = []
    for i, d in enumerate(frame.elements[:max_elements]):
        try:
            el = Element.from_dict({**d, "index": i})
        except (KeyError, TypeError, ValueError) as e:
            # A malformed dict is a driver bug; say which one instead of a bare KeyError.
            raise ValueError(f"bad element #{i} from the driver: {d!r} ({e})") from e
        elements.append(el)
    return Observation(screenshot=frame.image, width=frame.width, height=frame.height, url=frame.url,
                       title=frame.title, elements=elements, space=space, dpr=frame.dpr,
                       offset=tuple(frame.offset))


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_elements(elements: Sequence[Element], space: CoordinateSpace | None = None,
                    max_elements: int = 100, max_chars: int = 6000) -> str:
    """A compact listing for policies, one element a line: ``[3] button "Submit" (120,80)``.

    Centres are in ``space`` (the policy's own coordinates; viewport CSS px when None). State
    shows after the centre: ``value="…"``, ``checked``/``unchecked``, ``disabled``, ``focused``.
    Capped by count and characters; a last line says how many were left out.
    """
    lines: list[str] = []
    used = 0
    for n, el in enumerate(elements):
        if n >= max_elements:
            break
        cx, cy = el.box.center
        if space is not None:
            cx, cy = space.from_viewport(cx, cy)
        parts = [f"[{el.index}]", el.role]
        if el.text:
            parts.append(_quote(el.text))
        parts.append(f"({round(cx)},{round(cy)})")
        if el.value:
            parts.append(f"value={_quote(el.value)}")
        if el.checked is not None:
            parts.append("checked" if el.checked else "unchecked")
        if el.disabled:
            parts.append("disabled")
        if el.focused:
            parts.append("focused")
        line = " ".join(parts)
        if used + len(line) + 1 > max_chars:
            break
        lines.append(line)
        used += len(line) + 1
    if len(lines) < len(elements):
        lines.append(f"... {len(elements) - len(lines)} more elements not shown")
    return "\n".join(lines)
