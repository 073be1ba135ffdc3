"""The desktop driver: pyautogui on an X display (or the local desktop), same action schema.

No element extraction here (``Frame.elements`` is empty): a desktop has no DOM. pyautogui's
fail-safe stays on — slamming the mouse into a screen corner stops the run — and surfaces as an
``EnvironmentFailure`` (the user pulled the plug; that is not the model's fault).
"""
from __future__ import annotations

import os
import time
from typing import Any

from actions.drivers.base import Frame
from actions.errors import EnvironmentFailure
from actions.schema import (Action, ActionResult, Back, CallUser, Click, DoubleClick, Drag, Finished, Hotkey, Hover,
                            Navigate, RightClick, Scroll, Select, Type, Wait, action_points)

# Our key names -> pyautogui's.
_KEYS = {
    "control": "ctrl", "cmd": "command", "meta": "win", "super": "win", "option": "alt",
    "return": "enter", "del": "delete", "esc": "escape",
    "arrowup": "up", "arrowdown": "down", "arrowleft": "left", "arrowright": "right",
}


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


class DesktopDriver:
    """Executes actions with pyautogui. ``display`` (e.g. ":99") is set before pyautogui is imported,
    because pyautogui binds its X display at import time."""

    def __init__(self, display: str | None = None, pause: float = 0.05, drag_seconds: float = 0.3,
                 type_interval: float = 0.0):
        if display:
            os.environ["DISPLAY"] = display
        if os.name == "posix" and not os.environ.get("DISPLAY") and not _is_macos():
            raise EnvironmentFailure("no X display: set DISPLAY (or pass display=':99', e.g. under Xvfb)")
        if not os.environ.get("XAUTHORITY") and not os.path.exists(os.path.expanduser("~/.Xauthority")):
            # python-xlib refuses to connect without an auth file, even to an auth-less Xvfb.
            os.environ["XAUTHORITY"] = os.devnull
        try:
            import pyautogui
        except Exception as e:  # pyautogui raises KeyError/Xlib errors when the display is unusable
            raise EnvironmentFailure(f"pyautogui cannot use display {os.environ.get('DISPLAY')!r}: {e!r}") from e
        self._gui = pyautogui
        pyautogui.FAILSAFE = True
        pyautogui.PAUSE = pause
        self.drag_seconds = drag_seconds
        self.type_interval = type_interval
        self._closed = False

    def __enter__(self) -> "DesktopDriver":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True

    def _size(self) -> tuple[int, int]:
        w, h = self._gui.size()
        return int(w), int(h)

    def capture(self, screenshot: bool = True) -> Frame:
        """The screen. Always with its screenshot, whatever ``screenshot`` says: a desktop has no
        element list, so the pixels are all there is to observe."""
        if self._closed:
            raise EnvironmentFailure("cannot capture: the driver was closed")
        try:
            image = self._grab()
        except Exception as e:
            raise EnvironmentFailure(f"screenshot failed on display {os.environ.get('DISPLAY')!r}: {e}") from e
        w, h = self._size()
        # HiDPI desktops give a screenshot larger than the logical size; that ratio is the DPR.
        dpr = image.width / w if w else 1.0
        return Frame(image=image.convert("RGB"), width=w, height=h, dpr=dpr, elements=[])

    def _grab(self) -> Any:
        if os.environ.get("DISPLAY"):
            # Pillow reads X displays over XCB itself; pyscreeze would want gnome-screenshot/scrot.
            from PIL import ImageGrab

            try:
                return ImageGrab.grab(xdisplay=os.environ["DISPLAY"])
            except OSError:
                pass
        return self._gui.screenshot()

    def execute(self, action: Action) -> ActionResult:
        if self._closed:
            raise EnvironmentFailure(f"cannot execute {action.kind}: the driver was closed")
        g = self._gui
        w, h = self._size()
        for p in action_points(action):
            if not (0 <= p.x < w and 0 <= p.y < h):
                return ActionResult(ok=False, error=f"point ({_fmt(p.x)},{_fmt(p.y)}) is outside the {w}x{h} screen")
        try:
            return self._perform(action, g)
        except g.FailSafeException as e:
            raise EnvironmentFailure("pyautogui fail-safe: the mouse is in a screen corner, so the run was "
                                     "stopped (move it away to continue)") from e

    def _perform(self, a: Action, g: Any) -> ActionResult:
        if isinstance(a, Click):
            g.click(a.point.x, a.point.y)
        elif isinstance(a, DoubleClick):
            g.doubleClick(a.point.x, a.point.y)
        elif isinstance(a, RightClick):
            g.rightClick(a.point.x, a.point.y)
        elif isinstance(a, Hover):
            g.moveTo(a.point.x, a.point.y)
        elif isinstance(a, Drag):
            g.moveTo(a.start.x, a.start.y)
            g.mouseDown()
            g.moveTo(a.end.x, a.end.y, duration=self.drag_seconds)
            g.mouseUp()
        elif isinstance(a, Scroll):
            g.moveTo(a.point.x, a.point.y)
            if a.direction in ("up", "down"):
                g.scroll(a.amount if a.direction == "up" else -a.amount)
            else:
                g.hscroll(a.amount if a.direction == "right" else -a.amount)
        elif isinstance(a, Type):
            if not a.text.isascii():
                # xdotool-free pyautogui can only type what the keyboard map has; say so, do not half-type.
                return ActionResult(ok=False, error="the desktop driver can only type ASCII text")
            g.write(a.text, interval=self.type_interval)
            if a.submit:
                g.press("enter")
        elif isinstance(a, Hotkey):
            keys = [_KEYS.get(k, k) for k in a.keys]
            bad = [k for k in keys if k not in g.KEYBOARD_KEYS]
            if bad:
                return ActionResult(ok=False, error=f"unknown key(s) on the desktop: {', '.join(bad)}")
            g.hotkey(*keys)
        elif isinstance(a, Select):
            # No DOM here: open the list and type the option's text, as a keyboard user would.
            if not a.option.isascii():
                return ActionResult(ok=False, error="the desktop driver can only type ASCII text")
            g.click(a.point.x, a.point.y)
            g.write(a.option, interval=self.type_interval)
            g.press("enter")
        elif isinstance(a, Wait):
            time.sleep(a.seconds)
        elif isinstance(a, (Navigate, Back)):
            return ActionResult(ok=False, error=f"{a.kind} is only available in a browser; use clicks and keys here")
        elif isinstance(a, (Finished, CallUser)):
            pass
        else:  # pragma: no cover - the schema is closed
            return ActionResult(ok=False, error=f"unsupported action {a.kind!r}")
        return ActionResult(ok=True)


def _is_macos() -> bool:
    import sys

    return sys.platform == "darwin"
