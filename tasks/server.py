"""A tiny local static server for task pages.

Task pages are served over http://127.0.0.1 rather than file:// because Chromium treats file://
specially (no cookies, no fetch, odd origins), and a real origin makes url checks meaningful.
"""
from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote


class _QuietHandler(SimpleHTTPRequestHandler):
    # Pages must not be cached between runs: a user edits a page and re-runs the task.
    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass  # the agent's own output is what users read; access logs are noise


class PageServer:
    """Serves one folder on 127.0.0.1 at a free port, in a daemon thread.

    >>> with PageServer("tasks/examples") as server:
    ...     server.url("pages/login.html")
    'http://127.0.0.1:PORT/pages/login.html'
    """

    def __init__(self, root: str | Path, host: str = "127.0.0.1", port: int = 0):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"cannot serve {self.root}: not a folder")
        handler = partial(_QuietHandler, directory=str(self.root))
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="galago-page-server",
                                        daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str = "") -> str:
        """The URL of ``path`` (relative to the served folder)."""
        return f"{self.origin}/{quote(path.lstrip('/'), safe='/?=&#%')}"

    def close(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> "PageServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
