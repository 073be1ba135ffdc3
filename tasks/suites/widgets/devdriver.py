"""A minimal Playwright executor for the widget suite's own tests and bench.

It is used only when ``actions.drivers.browser.BrowserDriver`` (the real driver) cannot be
imported, so the suite can be checked on its own. It performs the same real mouse and keyboard
events, has ``.page``, ``.goto``, ``.execute`` and ``.close``, and nothing else.
"""
from __future__ import annotations

from actions.schema import ActionResult, Click, Drag, Hotkey, Scroll, Select, Type

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
_KEYS = {"ctrl": "Control", "control": "Control", "enter": "Enter", "tab": "Tab", "left": "ArrowLeft",
         "right": "ArrowRight", "up": "ArrowUp", "down": "ArrowDown", "shift": "Shift", "escape": "Escape"}


class DevDriver:
    def __init__(self, pw, browser, page):
        self._pw, self._browser, self.page = pw, browser, page

    @classmethod
    def launch(cls, headless: bool = True, viewport: tuple[int, int] = (1024, 768), dpr: float = 1.0) -> "DevDriver":
        from playwright.sync_api import sync_playwright

        pw = sync_playwright().start()
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=headless)
        page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=dpr)
        return cls(pw, browser, page)

    def goto(self, url: str) -> None:
        self.page.goto(url, wait_until="load")

    def execute(self, a) -> ActionResult:
        m, k = self.page.mouse, self.page.keyboard
        if isinstance(a, Click):
            m.click(a.point.x, a.point.y)
        elif isinstance(a, Type):
            k.type(a.text)
            if a.submit:
                k.press("Enter")
        elif isinstance(a, Hotkey):
            k.press("+".join(_KEYS.get(x, x) for x in a.keys))
        elif isinstance(a, Scroll):
            m.move(a.point.x, a.point.y)
            d = 100 * a.amount
            m.wheel({"left": -d, "right": d}.get(a.direction, 0), {"up": -d, "down": d}.get(a.direction, 0))
            self.page.wait_for_timeout(50)
        elif isinstance(a, Drag):
            m.move(a.start.x, a.start.y)
            m.down()
            m.move(a.end.x, a.end.y, steps=8)
            m.up()
        elif isinstance(a, Select):
            handle = self.page.evaluate_handle("([x, y]) => document.elementFromPoint(x, y)", [a.point.x, a.point.y])
            el = handle.as_element()
            if el is None:
                return ActionResult(False, "nothing at that point")
            el.select_option(label=a.option)
        else:
            return ActionResult(False, f"unsupported here: {a.kind}")
        return ActionResult(True)

    def close(self) -> None:
        self._browser.close()
        self._pw.stop()


def launch_driver(viewport: tuple[int, int] = (1024, 768)):
    """The real BrowserDriver when available, else DevDriver."""
    try:
        from actions.drivers.browser import BrowserDriver
    except ImportError:
        return DevDriver.launch(viewport=viewport)
    return BrowserDriver.launch(headless=True, viewport=viewport, dpr=1.0)
