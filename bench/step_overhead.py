"""Driver overhead per agent step: capture (screenshot + elements), execute(click), and both.

A 1280x720 page with ~200 visible elements (buttons, links, inputs, text) is served from
127.0.0.1; each step captures, then clicks a button that changes the page (so the settle wait
is exercised). Prints a table (median / p95 ms); ``--json`` prints one JSON object instead.

    .venv/bin/python bench/step_overhead.py --steps 100
    .venv/bin/python bench/step_overhead.py --format jpeg --json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from tempfile import TemporaryDirectory

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actions.drivers.browser import BrowserDriver  # noqa: E402
from actions.schema import Click, Point  # noqa: E402


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def make_page(n: int) -> str:
    """About ``n`` visible elements on 1280x720: a grid of mixed controls and text."""
    cells = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            cells.append(f'<button id="b{i}">Button {i}</button>')
        elif kind == 1:
            cells.append(f'<a href="#a{i}">Link {i}</a>')
        elif kind == 2:
            cells.append(f'<input placeholder="Field {i}" style="width:90px">')
        elif kind == 3:
            cells.append(f'<span>Text {i}</span>')
        else:
            cells.append(f'<label><input type="checkbox"> Box {i}</label>')
    grid = "".join(f'<div class="c">{c}</div>' for c in cells)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>bench</title><style>
body {{ margin: 0; font: 11px sans-serif; }}
#grid {{ display: grid; grid-template-columns: repeat(12, 1fr); gap: 2px; padding: 4px; }}
.c {{ height: 24px; overflow: hidden; }} button, input {{ font-size: 10px; }}
</style></head><body><div id="counter">clicks: 0</div><div id="grid">{grid}</div>
<script>let n = 0; document.getElementById("b0").addEventListener("click",
  () => {{ document.getElementById("counter").textContent = "clicks: " + (++n); }});</script></body></html>"""


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--elements", type=int, default=200)
    ap.add_argument("--format", choices=["png", "jpeg"], default="png")
    ap.add_argument("--dpr", type=float, default=1.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    with TemporaryDirectory() as tmp:
        Path(tmp, "bench.html").write_text(make_page(args.elements))
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=tmp))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/bench.html"
        with BrowserDriver.launch(viewport=(1280, 720), dpr=args.dpr, image_format=args.format) as d:
            d.goto(url)
            frame = d.capture()
            n_elements = len(frame.elements)
            target = next(e for e in frame.elements if e["selector"] == "#b0")
            x, y = target["box"][0] + target["box"][2] / 2, target["box"][1] + target["box"][3] / 2
            click = Click(point=Point(x=x, y=y))
            for _ in range(3):  # warm-up
                d.capture()
                d.execute(click)
            cap, exe, step = [], [], []
            for _ in range(args.steps):
                t0 = time.perf_counter()
                d.capture()
                t1 = time.perf_counter()
                d.execute(click)
                t2 = time.perf_counter()
                cap.append((t1 - t0) * 1000)
                exe.append((t2 - t1) * 1000)
                step.append((t2 - t0) * 1000)
            assert d.page.evaluate("document.getElementById('counter').textContent") == f"clicks: {args.steps + 3}"
        httpd.shutdown()

    result = {"steps": args.steps, "elements": n_elements, "viewport": [1280, 720], "dpr": args.dpr,
              "format": args.format}
    for name, vals in (("capture", cap), ("execute_click", exe), ("step", step)):
        result[name] = {"median_ms": round(statistics.median(vals), 1), "p95_ms": round(pct(vals, 0.95), 1)}
    if args.json:
        print(json.dumps(result))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"step overhead: {args.steps} steps, 1280x720 @ dpr {args.dpr}, "
                            f"{n_elements} elements, {args.format}")
        table.add_column("part")
        table.add_column("median ms", justify="right")
        table.add_column("p95 ms", justify="right")
        for name in ("capture", "execute_click", "step"):
            table.add_row(name, f"{result[name]['median_ms']:.1f}", f"{result[name]['p95_ms']:.1f}")
        Console().print(table)
    return result


if __name__ == "__main__":
    main()
