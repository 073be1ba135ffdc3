"""The Playwright driver: captures a (cropped) viewport and executes actions with real input events.

Coordinates: every point given to ``execute`` is in CSS pixels relative to the observed area's
top-left (the viewport unless ``set_observed_area`` names an element); the driver adds the
area's offset. Screenshots come through CDP (one call, no Playwright screenshot bookkeeping) and
elements through one ``page.evaluate`` of ``elements.js``.

Errors: a point off the area, a refused navigation or an unknown <select> option are the
*model's* mistakes and come back as ``ActionResult(ok=False, error=...)``; a closed or crashed
browser raises ``EnvironmentFailure``.
"""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal
from urllib.parse import urljoin, urlsplit

from PIL import Image

from actions.drivers.base import Frame
from actions.errors import BrowserNotFound, EnvironmentFailure
from actions.schema import (Action, ActionResult, Back, CallUser, Click, DoubleClick, Drag, Finished, Hotkey,
                            Hover, Navigate, RightClick, Scroll, Select, Type, Wait, action_points)

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-features=OverscrollHistoryNavigation"]  # a sideways wheel never goes back
_CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/snap/bin/chromium"]
# Called through a wrapper that returns JSON text: Playwright's own result serialisation costs
# ~60 ms for 200 elements, JSON.stringify + json.loads about 1 ms.
_ELEMENTS_JS = ("(args) => JSON.stringify((" + (Path(__file__).with_name("elements.js")).read_text().strip()
                + ")(args))")
# A capture waits this long at most for pictures, fonts and style sheets in flight, requested in the
# last _PICTURE_STALE_S (one that hangs longer does not hold every capture back).
PICTURE_WAIT_S = 1.0
_PICTURE_STALE_S = 10.0
_PICTURE_TYPES = frozenset({"image", "font", "stylesheet"})
_SCREENSHOT_RETRY_S = (0.05, 0.15, 0.4, 1.0)  # waits between "Unable to capture screenshot" retries

# An init script on every document (installed lazily too, for pages that loaded before we wrapped
# them) keeps two things for the settle check:
#   - the time of the last DOM change (a MutationObserver);
#   - the work an input event started: setTimeout (<= 1 s), setInterval and requestAnimationFrame
#     callbacks registered inside a trusted input event's handler, and, transitively, inside those
#     callbacks. Each carries the time of the input that started its chain, and blocks the settle
#     for at most CHAIN ms after it (a clock or a poll started by a click does not block forever).
# The settle check waits one animation frame (input handlers have run, layout is current), then
# resolves once no such work is pending, the DOM has been quiet for ``quiet`` ms and no finite
# animation runs (CSS transitions are not DOM mutations), or at ``timeout`` ms. So an action that
# changes the page synchronously costs about a frame, and one whose handler defers its work to a
# timer or an animation loop waits for it and for the changes it makes.
_MARK_JS = """(() => {
  if (window.__galagoMO) return;
  const CHAIN = 1000;
  window.__galagoLastMutation = -1e9;
  window.__galagoMO = new MutationObserver(() => { window.__galagoLastMutation = performance.now(); });
  window.__galagoMO.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  const INPUT = /^(click|dblclick|auxclick|contextmenu|mouse|pointer|key|input|beforeinput|change|submit|wheel|touch|focus|blur|select|drag|drop)/;
  const pending = new Map();  // timer / frame id -> birth time of its chain
  let chain = null;  // birth time while an action-born callback runs
  const born = () => {
    if (chain !== null) return chain;
    const e = window.event;
    return e && e.isTrusted && INPUT.test(e.type) ? performance.now() : null;
  };
  const wrap = (key, fn, birth) => function () {
    pending.delete(key.id);
    const prev = chain;
    chain = birth;
    try { return fn.apply(this, arguments); } finally { chain = prev; }
  };
  const st = window.setTimeout, ct = window.clearTimeout, si = window.setInterval, ci = window.clearInterval;
  const raf = window.requestAnimationFrame, caf = window.cancelAnimationFrame;
  window.__galagoSetTimeout = st;
  window.__galagoPending = () => {
    const now = performance.now();
    let n = 0;
    for (const b of pending.values()) if (now - b < CHAIN) n++;
    return n;
  };
  window.setTimeout = function (fn, delay, ...rest) {
    const b = typeof fn === "function" && Number(delay || 0) <= CHAIN ? born() : null;
    if (b === null) return st.call(this, fn, delay, ...rest);
    const key = {};
    key.id = st.call(this, wrap(key, fn, b), delay, ...rest);
    pending.set(key.id, b);
    return key.id;
  };
  window.clearTimeout = function (id) { pending.delete(id); return ct.call(this, id); };
  window.setInterval = function (fn, delay, ...rest) {
    const b = typeof fn === "function" ? born() : null;
    const id = si.call(this, fn, delay, ...rest);
    if (b !== null) pending.set(id, b);  // pending until cleared (or CHAIN ms old)
    return id;
  };
  window.clearInterval = function (id) { pending.delete(id); return ci.call(this, id); };
  window.requestAnimationFrame = function (fn) {
    const b = typeof fn === "function" ? born() : null;
    if (b === null) return raf.call(this, fn);
    const key = {};
    key.id = "f" + raf.call(this, wrap(key, fn, b));
    pending.set(key.id, b);
    return Number(key.id.slice(1));
  };
  window.cancelAnimationFrame = function (id) { pending.delete("f" + id); return caf.call(this, id); };
  // The keyboard focus inside a list box (<select multiple>, or with a size): Chrome draws a ring
  // round it but the DOM keeps no trace, so it is followed here for the element list (an option's
  // "focused"): a press on an option puts it there, arrows move it (with Ctrl too), Home and End.
  document.addEventListener("mousedown", (e) => {
    const o = e.target && e.target.closest ? e.target.closest("option") : null;
    const s = o && o.closest("select");
    if (s) s.__galagoFocus = o.index;
  }, true);
  document.addEventListener("keydown", (e) => {
    const s = e.target;
    if (!s || s.tagName !== "SELECT" || !(s.multiple || s.size > 1) || !s.options.length) return;
    const n = s.options.length, i = s.__galagoFocus ?? Math.max(0, s.selectedIndex);
    const to = {ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: n - 1}[e.key];
    if (to !== undefined) s.__galagoFocus = Math.max(0, Math.min(n - 1, to));
  }, true);
})()"""

_SETTLE_JS = """({quiet, timeout}) => new Promise((resolve) => {
  const t0 = performance.now();
  if (!window.__galagoMO) { MARK }
  const later = window.__galagoSetTimeout || window.setTimeout;
  const animating = () => {
    try {
      return document.getAnimations().some((a) => a.playState === "running" &&
        a.effect && a.effect.getTiming().iterations !== Infinity);
    } catch (e) { return false; }
  };
  const check = () => {
    const now = performance.now();
    if (now - t0 >= timeout || (now - window.__galagoLastMutation >= quiet && !window.__galagoPending() &&
        !animating())) resolve(now - t0);
    else later(check, 4);
  };
  requestAnimationFrame(check);
})""".replace("MARK", _MARK_JS)

# Where a wheel in ``dir`` does something: null when something under (x, y) (or the page) can still
# scroll that way; else the centre of the visible part of the nearest container inside the observed
# area that can (a "scroll right in the list" aimed beside the list would move nothing).
_SCROLL_AIM_JS = """([x, y, dir, ax, ay, aw, ah]) => {
  const root = document.scrollingElement || document.documentElement;
  const horizontal = dir === "left" || dir === "right";
  const can = (el) => {
    if (el !== root) {
      const s = getComputedStyle(el);
      if (!/(auto|scroll|overlay)/.test(horizontal ? s.overflowX : s.overflowY)) return false;
    }
    if (dir === "down") return el.scrollTop + el.clientHeight < el.scrollHeight - 1;
    if (dir === "up") return el.scrollTop > 0;
    if (dir === "right") return el.scrollLeft + el.clientWidth < el.scrollWidth - 1;
    return el.scrollLeft > 0;
  };
  for (let n = document.elementFromPoint(x, y); n; n = n.parentElement) if (can(n)) return null;
  if (can(root)) return null;
  let best = null, bd = Infinity;
  for (const el of document.body ? document.body.querySelectorAll("*") : []) {
    if ((horizontal ? el.scrollWidth - el.clientWidth : el.scrollHeight - el.clientHeight) < 2 || !can(el)) continue;
    const r = el.getBoundingClientRect();
    const x1 = Math.max(r.left, ax), y1 = Math.max(r.top, ay), x2 = Math.min(r.right, ax + aw), y2 = Math.min(r.bottom, ay + ah);
    if (x2 - x1 < 8 || y2 - y1 < 8) continue;
    const d = Math.hypot(x - Math.min(Math.max(x, x1), x2), y - Math.min(Math.max(y, y1), y2));
    if (d < bd) { bd = d; best = [(x1 + x2) / 2, (y1 + y2) / 2]; }
  }
  return best;
}"""

_FOCUS_JS = """() => {
  let a = document.activeElement;
  while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
  while (a && a.tagName === "IFRAME") {
    try { a = a.contentDocument.activeElement; } catch (e) { break; }
  }
  if (!a) return false;
  if (a.isContentEditable) return true;
  if (a.tagName === "TEXTAREA") return !a.readOnly && !a.disabled;
  if (a.tagName === "INPUT") {
    const t = (a.type || "text").toLowerCase();
    return !["checkbox", "radio", "button", "submit", "reset", "image", "range", "color", "file", "hidden"].includes(t)
      && !a.readOnly && !a.disabled;
  }
  return false;
}"""

# What is under the point, for ``select``: a native <select> (with its options) or an ARIA
# listbox/combobox option set (with option centres in viewport px).
_SELECT_PROBE_JS = """([x, y]) => {
  let el = document.elementFromPoint(x, y);
  while (el && el.shadowRoot) { const inner = el.shadowRoot.elementFromPoint(x, y); if (!inner || inner === el) break; el = inner; }
  if (!el) return {kind: "none"};
  if (el.tagName === "OPTION") el = el.closest("select") || el;
  const sel = el.closest("select");
  if (sel) {
    return {kind: "native", multiple: sel.multiple || sel.size > 1, selectedIndex: sel.selectedIndex,
      options: Array.from(sel.options).map((o) => ({text: o.text.trim(), value: o.value, disabled: o.disabled || (o.parentElement && o.parentElement.disabled) || false}))};
  }
  const box = el.closest("[role=listbox],[role=combobox],[role=option]");
  return {kind: box ? "aria" : "none", tag: el.tagName.toLowerCase()};
}"""

_ARIA_OPTIONS_JS = """([x, y]) => {
  const el = document.elementFromPoint(x, y);
  let scope = el && el.closest("[role=listbox]");
  const combo = el && el.closest("[role=combobox]");
  if (!scope && combo) {
    const id = combo.getAttribute("aria-controls") || combo.getAttribute("aria-owns");
    scope = (id && document.getElementById(id)) || document;
  }
  scope = scope || document;
  return Array.from(scope.querySelectorAll("[role=option]")).map((o) => {
    const r = o.getBoundingClientRect();
    return {text: (o.getAttribute("aria-label") || o.innerText || "").replace(/\\s+/g, " ").trim(),
      x: r.left + r.width / 2, y: r.top + r.height / 2, visible: r.width > 0 && r.height > 0};
  });
}"""

_KEYS = {
    "ctrl": "Control", "control": "Control", "shift": "Shift", "alt": "Alt", "option": "Alt",
    "meta": "Meta", "cmd": "Meta", "command": "Meta", "win": "Meta", "super": "Meta",
    "enter": "Enter", "return": "Enter", "tab": "Tab", "space": "Space", "backspace": "Backspace",
    "delete": "Delete", "del": "Delete", "escape": "Escape", "esc": "Escape", "insert": "Insert",
    "home": "Home", "end": "End", "pageup": "PageUp", "pagedown": "PageDown",
    "up": "ArrowUp", "down": "ArrowDown", "left": "ArrowLeft", "right": "ArrowRight",
    "arrowup": "ArrowUp", "arrowdown": "ArrowDown", "arrowleft": "ArrowLeft", "arrowright": "ArrowRight",
    "capslock": "CapsLock", **{f"f{i}": f"F{i}" for i in range(1, 13)},
}
_MODIFIERS = {"Control", "Shift", "Alt", "Meta"}
_CLOSED_MARKERS = ("has been closed", "Target closed", "Target crashed", "Connection closed",
                   "Browser closed", "browser has disconnected", "Page crashed")


def find_chromium() -> str:
    """The Chromium binary to launch: $GALAGO_CHROMIUM, then the usual install paths, then $PATH."""
    env = os.environ.get("GALAGO_CHROMIUM")
    if env:
        if os.path.isfile(env) and os.access(env, os.X_OK):
            return env
        raise BrowserNotFound(f"GALAGO_CHROMIUM={env!r} is not an executable file")
    for path in _CANDIDATES:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserNotFound("no Chromium found; install it (Debian/Ubuntu: `sudo apt-get install chromium`) "
                          "or set GALAGO_CHROMIUM=/path/to/chromium")


# Sync Playwright allows one running instance per thread, so drivers (and test fixtures) share
# one, reference-counted, per thread.
_PLAYWRIGHTS: dict[int, list] = {}


def acquire_playwright() -> Any:
    """This thread's sync Playwright, started on first use; pair every call with ``release_playwright``."""
    from playwright.sync_api import sync_playwright

    tid = threading.get_ident()
    entry = _PLAYWRIGHTS.get(tid)
    if entry is None:
        try:
            pw = sync_playwright().start()
        except Exception as e:
            raise EnvironmentFailure(f"could not start Playwright ({str(e).splitlines()[0]}); if this thread "
                                     "already runs its own Playwright, wrap its page: BrowserDriver(page)") from e
        entry = _PLAYWRIGHTS[tid] = [pw, 0]
    entry[1] += 1
    return entry[0]


def release_playwright(pw: Any) -> None:
    for tid, entry in list(_PLAYWRIGHTS.items()):
        if entry[0] is pw:
            entry[1] -= 1
            if entry[1] <= 0:
                del _PLAYWRIGHTS[tid]
                try:
                    pw.stop()
                except Exception:  # stopping after a browser crash may fail; it is dropped anyway
                    pass
            return


def playwright_key(name: str, with_modifier: bool = False) -> str:
    """Our key names (actions.schema.KEY_NAMES or one character) -> a Playwright key."""
    k = name.strip().lower() if len(name) > 1 else name
    if k in _KEYS:
        return _KEYS[k]
    if len(k) == 1:
        # With a modifier held the physical key matters (Ctrl+A is KeyA whatever the layout).
        if with_modifier and k.isalpha() and k.isascii():
            return f"Key{k.upper()}"
        if with_modifier and k.isdigit():
            return f"Digit{k}"
        return k
    raise ValueError(f"unknown key {name!r}")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.netloc else parts.scheme.lower() + ":"


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


class BrowserDriver:
    """Drives one Playwright page. ``BrowserDriver.launch(...)`` owns its browser; ``BrowserDriver(page)``
    wraps a page someone else owns (``close`` then leaves the page alone)."""

    def __init__(self, page: Any, *, allowed_origins: Iterable[str] | None = None, settle_timeout: float = 2.0,
                 quiet_ms: float = 10.0, image_format: Literal["png", "jpeg"] = "png", jpeg_quality: int = 90,
                 max_elements: int = 200, max_text: int = 80, _owned: tuple = ()):
        self.page = page
        self.settle_timeout = settle_timeout
        self.quiet_ms = quiet_ms
        self.image_format = image_format
        self.jpeg_quality = jpeg_quality
        self.max_elements = max_elements
        self.max_text = max_text
        self._owned = _owned  # (playwright, browser, context) when we launched them
        self._closed = False
        self._crashed = False
        self._area_selector: str | None = None
        self._last_size: tuple[float, float] | None = None
        self._last_offset: tuple[float, float] = (0.0, 0.0)
        self._blocked: list[str] = []
        self._inflight: dict[Any, float] = {}
        self.allowed_origins = ({_origin(o) for o in allowed_origins} if allowed_origins is not None else None)
        page.on("crash", self._on_crash)
        page.on("request", self._on_request)
        page.on("requestfinished", self._on_request_done)
        page.on("requestfailed", self._on_request_done)
        if self.allowed_origins is not None:
            page.route("**/*", self._route)
        try:
            page.add_init_script(_MARK_JS)
        except Exception:  # the settle script installs it lazily anyway
            pass
        self._cdp = None
        try:  # CDP screenshots skip Playwright's per-shot setup; only Chromium has CDP
            self._cdp = page.context.new_cdp_session(page)
        except Exception:
            self._cdp = None

    # -- lifecycle ------------------------------------------------------------------------------

    @classmethod
    def launch(cls, headless: bool = True, viewport: tuple[int, int] = (1280, 720), dpr: float = 1.0,
               allowed_origins: Iterable[str] | None = None, settle_timeout: float = 2.0, slow_mo: float = 0,
               **kwargs: Any) -> "BrowserDriver":
        """Start Playwright and Chromium and open one page of ``viewport`` CSS px at ``dpr``."""
        executable = find_chromium()
        pw = acquire_playwright()
        try:
            args = list(CHROMIUM_ARGS) if headless else [a for a in CHROMIUM_ARGS if a != "--headless"]
            browser = pw.chromium.launch(executable_path=executable, headless=headless, args=args,
                                         slow_mo=slow_mo or None)
            context = browser.new_context(viewport={"width": int(viewport[0]), "height": int(viewport[1])},
                                          device_scale_factor=dpr)
            page = context.new_page()
        except Exception as e:
            release_playwright(pw)
            raise EnvironmentFailure(f"could not launch Chromium at {executable}: {e}") from e
        return cls(page, allowed_origins=allowed_origins, settle_timeout=settle_timeout,
                   _owned=(pw, browser, context), **kwargs)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._owned:
            return
        pw, browser, context = self._owned
        for fn in (context.close, browser.close, lambda: release_playwright(pw)):
            try:
                fn()
            except Exception:  # a crashed browser fails to close cleanly; it is gone either way
                pass

    def __enter__(self) -> "BrowserDriver":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def goto(self, url: str, timeout: float = 30.0) -> None:
        """Open ``url`` (not subject to the allow-list: this is the task's own start page)."""
        with self._guard("goto"):
            self.page.goto(url, wait_until="load", timeout=timeout * 1000)

    def set_observed_area(self, selector: str | None) -> None:
        """Observe (and take action points relative to) only this element's box; None: the viewport."""
        self._area_selector = selector or None
        self._last_size = None

    # -- events ---------------------------------------------------------------------------------

    def _on_crash(self, *_: Any) -> None:
        self._crashed = True

    def _on_request(self, request: Any) -> None:
        if request.resource_type not in ("websocket", "eventsource"):
            self._inflight[request] = time.monotonic()

    def _on_request_done(self, request: Any) -> None:
        self._inflight.pop(request, None)

    def _route(self, route: Any) -> None:
        request = route.request
        url = request.url
        if request.is_navigation_request() and not self._allowed(url):
            self._blocked.append(url)
            # A 204 answer makes the browser drop the navigation and keep the current page as it is;
            # aborting would commit an error page instead.
            route.fulfill(status=204, body="")
        else:
            route.continue_()

    def _allowed(self, url: str) -> bool:
        if self.allowed_origins is None:
            return True
        if url.startswith(("about:", "data:", "blob:")):
            return True
        return _origin(url) in self.allowed_origins

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Turn "the browser is gone" into EnvironmentFailure; let other errors through."""
        if self._closed:
            raise EnvironmentFailure(f"cannot {what}: the driver was closed")
        if self._crashed:
            raise EnvironmentFailure(f"cannot {what}: the page crashed")
        try:
            yield
        except EnvironmentFailure:
            raise
        except Exception as e:
            if self._crashed or any(m.lower() in str(e).lower() for m in _CLOSED_MARKERS) or self._page_gone():
                raise EnvironmentFailure(f"browser or page is gone during {what}: {str(e).splitlines()[0]}") from e
            raise

    def _page_gone(self) -> bool:
        try:
            if self.page.is_closed():
                return True
            return bool(self._owned) and not self._owned[1].is_connected()
        except Exception:
            return True

    # -- capture --------------------------------------------------------------------------------

    def _extract(self) -> dict:
        data = json.loads(self.page.evaluate(_ELEMENTS_JS, {"selector": self._area_selector,
                                                            "maxElements": self.max_elements, "maxText": self.max_text}))
        if "error" in data:
            raise EnvironmentFailure(data["error"])
        return data

    def capture(self, screenshot: bool = True) -> Frame:
        """Screenshot of the observed area at the page's DPR, plus its visible elements. With
        ``screenshot=False`` the elements only (``Frame.image`` None), about half the cost."""
        with self._guard("capture"):
            data = self._extract()  # lays the page out: the pictures it shows are requested by now
            if self._await_pictures():
                data = self._extract()
            area, scroll = data["area"], data["scroll"]
            dpr = float(data["dpr"])
            w, h = max(1, round(area["width"])), max(1, round(area["height"]))
            image, raw = self._screenshot(area, scroll, w, h, dpr) if screenshot else (None, None)
            self._last_size = (area["width"], area["height"])
            self._last_offset = (float(area["x"]), float(area["y"]))
            return Frame(image=image, width=w, height=h, dpr=dpr, url=self.page.url, title=data.get("title", ""),
                         elements=data["elements"], offset=self._last_offset,
                         png=raw if self.image_format == "png" else None)

    def _await_pictures(self) -> bool:
        """Wait (at most PICTURE_WAIT_S) for the pictures, fonts and style sheets in flight: an icon
        whose picture is still on its way (a row a script just rendered) has no size yet, so it would
        be missing from the elements and the screenshot. True when it waited."""
        start = time.monotonic()

        def loading() -> bool:
            return any(r.resource_type in _PICTURE_TYPES and start - t < _PICTURE_STALE_S
                       for r, t in list(self._inflight.items()))
        waited = False
        while time.monotonic() < start + PICTURE_WAIT_S and loading():
            self.page.wait_for_timeout(5)
            waited = True
        return waited

    def _screenshot(self, area: dict, scroll: dict, w: int, h: int, dpr: float) -> tuple[Image.Image, bytes]:
        if self._cdp is not None:
            params: dict[str, Any] = {"format": self.image_format, "fromSurface": True, "captureBeyondViewport": False,
                                      "optimizeForSpeed": True}  # fast encoding; the pixels are the same
            if self.image_format == "jpeg":
                params["quality"] = self.jpeg_quality
            # CDP clips are in document CSS px; ``scale`` makes the image dpr × the CSS size.
            params["clip"] = {"x": area["x"] + scroll["x"], "y": area["y"] + scroll["y"], "width": w, "height": h,
                              "scale": dpr}
            raw = self._cdp_screenshot(params)
        else:
            raw = self.page.screenshot(type=self.image_format, clip={"x": area["x"], "y": area["y"], "width": w, "height": h},
                                       quality=self.jpeg_quality if self.image_format == "jpeg" else None)
        image = Image.open(io.BytesIO(raw))
        # Decoded on first use: a policy that never looks (a cached replay, a script) never pays for it.
        return (image if image.mode == "RGB" else image.convert("RGB")), raw

    def _cdp_screenshot(self, params: dict[str, Any]) -> bytes:
        """``Page.captureScreenshot`` with retries: a loaded renderer sometimes has no frame to give yet
        ("Unable to capture screenshot"); it has one a frame or two later."""
        def shot() -> bytes:
            return base64.b64decode(self._cdp.send("Page.captureScreenshot", params)["data"])

        for delay in _SCREENSHOT_RETRY_S:
            try:
                return shot()
            except Exception as e:
                if "unable to capture screenshot" not in str(e).lower() or self._page_gone():
                    raise
                time.sleep(delay)
        return shot()

    def _area(self) -> tuple[float, float, float, float]:
        """(x, y, width, height) of the observed area in viewport px, as of now."""
        if self._area_selector is None:
            size = self.page.viewport_size
            if size is not None:
                return 0.0, 0.0, float(size["width"]), float(size["height"])
            w, h = self.page.evaluate("[innerWidth, innerHeight]")
            return 0.0, 0.0, float(w), float(h)
        box = self.page.evaluate("(s) => { const e = document.querySelector(s); if (!e) return null; "
                                 "const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }",
                                 self._area_selector)
        if box is None:
            raise EnvironmentFailure(f"no element matches the observed-area selector {self._area_selector!r}")
        return tuple(float(v) for v in box)  # type: ignore[return-value]

    # -- execute --------------------------------------------------------------------------------

    def execute(self, action: Action) -> ActionResult:
        """Perform one action with real input events, then wait for the page to settle."""
        with self._guard(f"execute {action.kind}"):
            if isinstance(action, (Finished, CallUser)):
                return ActionResult(ok=True)
            ox, oy, aw, ah = self._area()
            for p in action_points(action):
                if not (0 <= p.x <= aw and 0 <= p.y <= ah):
                    return ActionResult(ok=False, error=f"point ({_fmt(p.x)},{_fmt(p.y)}) is outside the "
                                                        f"{round(aw)}x{round(ah)} screen")
            self._blocked.clear()
            started = time.monotonic()
            result = self._perform(action, (ox, oy, aw, ah))
            if action.kind not in ("wait", "navigate", "back"):
                self._settle(started)
            if self._blocked:
                urls = ", ".join(dict.fromkeys(self._blocked))
                return ActionResult(ok=False, error=f"navigation to {urls} was refused: its origin is not in "
                                                    f"the allowed origins", info={"blocked": list(dict.fromkeys(self._blocked))})
            return result

    def _perform(self, a: Action, area: tuple[float, float, float, float]) -> ActionResult:
        ox, oy = area[0], area[1]
        mouse, keyboard = self.page.mouse, self.page.keyboard
        if isinstance(a, Click):
            mouse.click(a.point.x + ox, a.point.y + oy)
        elif isinstance(a, DoubleClick):
            mouse.dblclick(a.point.x + ox, a.point.y + oy)
        elif isinstance(a, RightClick):
            mouse.click(a.point.x + ox, a.point.y + oy, button="right")
        elif isinstance(a, Hover):
            mouse.move(a.point.x + ox, a.point.y + oy)
        elif isinstance(a, Drag):
            # Several intermediate moves: pointer/mouse listeners and HTML5 drag-and-drop both need them.
            mouse.move(a.start.x + ox, a.start.y + oy)
            mouse.down()
            mouse.move(a.start.x + ox + (a.end.x - a.start.x) * 0.1, a.start.y + oy + (a.end.y - a.start.y) * 0.1,
                       steps=2)
            mouse.move(a.end.x + ox, a.end.y + oy, steps=8)
            mouse.up()
        elif isinstance(a, Scroll):
            x, y = a.point.x + ox, a.point.y + oy
            aim = self.page.evaluate(_SCROLL_AIM_JS, [x, y, a.direction, *area])
            mouse.move(*(aim or (x, y)))
            d = 100.0 * a.amount
            dx = {"left": -d, "right": d}.get(a.direction, 0.0)
            dy = {"up": -d, "down": d}.get(a.direction, 0.0)
            mouse.wheel(dx, dy)
            if aim:
                where = f"({_fmt(aim[0] - ox)},{_fmt(aim[1] - oy)})"
                return ActionResult(ok=True, info={"warning": f"nothing at ({_fmt(a.point.x)},{_fmt(a.point.y)}) "
                                                              f"scrolls {a.direction}; scrolled the nearest area "
                                                              f"that does, at {where}"})
        elif isinstance(a, Type):
            focused = bool(self.page.evaluate(_FOCUS_JS))
            if a.text:
                keyboard.type(a.text)
            if a.submit:
                keyboard.press("Enter")
            if not focused:
                return ActionResult(ok=True, info={"warning": "no focused input"})
        elif isinstance(a, Hotkey):
            names = list(a.keys)
            held_mod = any(_KEYS.get(k) in _MODIFIERS for k in names)
            keys = [playwright_key(k, with_modifier=held_mod) for k in names]
            for k in keys:
                keyboard.down(k)
            for k in reversed(keys):
                keyboard.up(k)
        elif isinstance(a, Select):
            return self._select(a, ox, oy)
        elif isinstance(a, Wait):
            self.page.wait_for_timeout(a.seconds * 1000)
        elif isinstance(a, Navigate):
            return self._navigate(a.url)
        elif isinstance(a, Back):
            before = self.page.url
            response = self.page.go_back(wait_until="load", timeout=max(self.settle_timeout, 5.0) * 1000)
            if response is None and self.page.url == before:
                return ActionResult(ok=False, error="there is no previous page to go back to")
            return ActionResult(ok=True, info={"navigated": True, "url": self.page.url})
        else:  # pragma: no cover - the schema is closed
            return ActionResult(ok=False, error=f"unsupported action {a.kind!r}")
        return ActionResult(ok=True)

    def _navigate(self, url: str) -> ActionResult:
        target = urljoin(self.page.url, url.strip())
        scheme = urlsplit(target).scheme.lower()
        if scheme in ("javascript", "vbscript"):
            return ActionResult(ok=False, error=f"navigation to a {scheme}: URL is not allowed")
        if not self._allowed(target):
            return ActionResult(ok=False, error=f"navigation to {target} was refused: its origin is not in the "
                                                f"allowed origins ({', '.join(sorted(self.allowed_origins or []))})")
        try:
            self.page.goto(target, wait_until="load", timeout=max(self.settle_timeout, 10.0) * 1000)
        except Exception as e:
            if self._crashed or self._page_gone():
                raise
            return ActionResult(ok=False, error=f"could not open {target}: {str(e).splitlines()[0]}")
        return ActionResult(ok=True, info={"navigated": True, "url": self.page.url})

    def _select(self, a: Select, ox: float, oy: float) -> ActionResult:
        x, y = a.point.x + ox, a.point.y + oy
        probe = self.page.evaluate(_SELECT_PROBE_JS, [x, y])
        want = a.option.strip()
        if probe["kind"] == "native":
            options = probe["options"]
            target = _match_option([o["text"] for o in options], want, [o["value"] for o in options])
            if target is None:
                names = ", ".join(repr(o["text"]) for o in options[:20])
                return ActionResult(ok=False, error=f"no option {want!r} in this list; options are: {names}")
            if options[target]["disabled"]:
                return ActionResult(ok=False, error=f"option {options[target]['text']!r} is disabled")
            return self._select_native(x, y, probe, target)
        if probe["kind"] == "aria":
            self.page.mouse.click(x, y)  # opens a combobox; harmless on an open listbox
            self._settle(time.monotonic())
            opts = self.page.evaluate(_ARIA_OPTIONS_JS, [x, y])
            target = _match_option([o["text"] for o in opts], want)
            if target is None or not opts[target]["visible"]:
                names = ", ".join(repr(o["text"]) for o in opts[:20])
                return ActionResult(ok=False, error=f"no visible option {want!r} here; options are: {names}")
            self.page.mouse.click(opts[target]["x"], opts[target]["y"])
            return ActionResult(ok=True)
        return ActionResult(ok=False, error="there is no drop-down list or list box at that point")

    def _select_native(self, x: float, y: float, probe: dict, target: int) -> ActionResult:
        keyboard = self.page.keyboard
        options = probe["options"]
        if probe["multiple"]:
            # A list box draws its options; clicking one is what a user does.
            box = self.page.evaluate("([x, y, i]) => { const s = document.elementFromPoint(x, y).closest('select');"
                                     " const o = s.options[i]; o.scrollIntoView({block: 'nearest'});"
                                     " const r = o.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }",
                                     [x, y, target])
            self.page.mouse.click(box[0], box[1])
        else:
            # The native popup is invisible headless but works: click opens it, arrows move its
            # highlight (skipping disabled options), Enter commits and fires one change event.
            current = probe["selectedIndex"]
            enabled = [i for i, o in enumerate(options) if not o["disabled"]]
            start = current if current in enabled else -1
            self.page.mouse.click(x, y)
            if start == -1:
                keyboard.press("Home")
                start = enabled[0]
            steps = enabled.index(target) - enabled.index(start)
            for _ in range(abs(steps)):
                keyboard.press("ArrowDown" if steps > 0 else "ArrowUp")
            keyboard.press("Enter")
        self._settle(time.monotonic())
        now = self.page.evaluate("([x, y]) => { const e = document.elementFromPoint(x, y); const s = e && e.closest('select');"
                                 " return s ? Array.from(s.options).map((o) => o.selected) : null; }", [x, y])
        if not now or not now[target]:
            return ActionResult(ok=False, error=f"could not select {options[target]['text']!r}")
        return ActionResult(ok=True, info={"selected": options[target]["text"]})

    # -- settle ---------------------------------------------------------------------------------

    def _settle(self, started: float) -> None:
        """Wait (bounded by settle_timeout) until the work the action started is done: its timers and
        animation frames, its requests, and the DOM changes they make."""
        deadline = started + self.settle_timeout
        self._settle_dom(deadline)
        # Network: only requests the action started count (long polls from before do not block).
        waited = False
        while time.monotonic() < deadline and any(t >= started for t in self._inflight.values()):
            self.page.wait_for_timeout(5)
            waited = True
        if waited:
            self._settle_dom(deadline)  # what the responses changed

    def _settle_dom(self, deadline: float) -> None:
        for _ in range(3):  # a navigation destroys the context mid-wait; retry on the new document
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                self.page.evaluate(_SETTLE_JS, {"quiet": self.quiet_ms, "timeout": left * 1000})
                return
            except Exception as e:
                if self._crashed or self._page_gone():
                    raise
                if "context was destroyed" not in str(e) and "navigat" not in str(e).lower():
                    raise
                try:
                    self.page.wait_for_load_state("load", timeout=max(1.0, (deadline - time.monotonic()) * 1000))
                except Exception:
                    if self._crashed or self._page_gone():
                        raise

    @property
    def offset(self) -> tuple[float, float]:
        """Where the observed area's top-left was at the last capture, in viewport CSS px."""
        return self._last_offset


def _match_option(texts: list[str], want: str, values: list[str] | None = None) -> int | None:
    """Exact text, then case-insensitive, then value, then a unique substring match."""
    norm = [" ".join(t.split()) for t in texts]
    w = " ".join(want.split())
    for i, t in enumerate(norm):
        if t == w:
            return i
    for i, t in enumerate(norm):
        if t.lower() == w.lower():
            return i
    if values:
        for i, v in enumerate(values):
            if v == want:
                return i
    subs = [i for i, t in enumerate(norm) if w.lower() in t.lower()]
    return subs[0] if len(subs) == 1 else None
