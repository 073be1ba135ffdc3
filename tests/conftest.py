"""Shared fixtures: local page servers, one Chromium for the session, a fresh driver per test."""
from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

PAGES = Path(__file__).parent / "pages"


class _Quiet(SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args) -> None:
        pass


class StaticServer:
    """A threaded static HTTP server on 127.0.0.1 (a free port) serving one directory."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(self.root)))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str = "") -> str:
        return f"{self.origin}/{path.lstrip('/')}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def server():
    s = StaticServer(PAGES)
    yield s
    s.close()


@pytest.fixture(scope="session")
def other_server():
    """A second origin (another port), for allow-list tests."""
    s = StaticServer(PAGES)
    yield s
    s.close()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session (shares the per-thread Playwright with BrowserDriver.launch)."""
    from actions.drivers.browser import CHROMIUM_ARGS, acquire_playwright, find_chromium, release_playwright

    pw = acquire_playwright()
    b = pw.chromium.launch(executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS)
    yield b
    try:
        b.close()
    finally:
        release_playwright(pw)


@pytest.fixture
def make_driver(browser):
    """make_driver(viewport=(w, h), dpr=1.0, **BrowserDriver kwargs) -> a driver on a fresh context."""
    from actions.drivers.browser import BrowserDriver

    contexts = []

    def make(viewport=(800, 600), dpr=1.0, **kwargs):
        ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=dpr)
        contexts.append(ctx)
        return BrowserDriver(ctx.new_page(), **kwargs)

    yield make
    for ctx in contexts:
        try:
            ctx.close()
        except Exception:
            pass


@pytest.fixture
def driver(make_driver):
    """A BrowserDriver on an 800x600 page of its own context."""
    return make_driver()
