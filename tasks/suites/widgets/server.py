"""One local HTTP server per process, serving generated pages from memory (path -> bytes)."""
from __future__ import annotations

import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_pages: dict[str, bytes] = {}
_lock = threading.Lock()
_server: ThreadingHTTPServer | None = None
_counter = itertools.count(1)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = _pages.get(self.path.split("?", 1)[0])
        if body is None:
            self.send_error(404, "no such widget page (was the episode torn down?)")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # keep test output quiet
        pass


def _ensure_server() -> ThreadingHTTPServer:
    global _server
    with _lock:
        if _server is None:
            _server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            _server.daemon_threads = True
            threading.Thread(target=_server.serve_forever, name="galago-widgets-http", daemon=True).start()
        return _server


def publish(name: str, html: str) -> tuple[str, str]:
    """Serve ``html`` under a fresh path; returns (url, path). The path is unique per call, so two
    episodes with the same seed (e.g. parallel workers in one process) never clash."""
    server = _ensure_server()
    path = f"/widgets/{next(_counter)}/{name}.html"
    _pages[path] = html.encode("utf-8")
    return f"http://127.0.0.1:{server.server_address[1]}{path}", path


def unpublish(path: str) -> None:
    _pages.pop(path, None)
