"""Record/replay speed: the first run of a sign-in form flow (policy loaded and asked every step)
against its replay from the cache (the policy is never loaded), in real headless Chromium.

    .venv/bin/python bench/replay_speed.py                 # builtin policy (scripted if no checkpoint)
    .venv/bin/python bench/replay_speed.py --policy moe:DIR -n 5 --json
    .venv/bin/python bench/replay_speed.py --replay-screenshots  # replayed steps keep their screenshots

The built-in policy is used when its checkpoint exists; otherwise the scripted policy fills the
two fields in 4 steps, and the table says so (then the speed-up shows only the loop's own overhead, since
a scripted policy costs nothing to load or ask). With --json the last stdout line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from agent.cache import Cache  # noqa: E402
from agent.session import Session  # noqa: E402
from tasks.server import PageServer  # noqa: E402

PAGES = Path(__file__).resolve().parents[1] / "tests" / "pages_session"
# Phrased like the widget world's form tasks, which the built-in policy was trained on.
INSTRUCTION = 'Fill out the form with Username "ada" and Password "lovelace", then click Sign in.'


def _scripted(page) -> object:
    from policy.scripted import ScriptedPolicy

    def centre(sel: str) -> str:
        b = page.locator(sel).bounding_box()
        return f"({round(b['x'] + b['width'] / 2)},{round(b['y'] + b['height'] / 2)})"

    return ScriptedPolicy([f"click(start_box='{centre('#user')}')", "type(content='ada')",
                           f"click(start_box='{centre('#pass')}')", "type(content='lovelace')"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="builtin", help="policy spec for the first run (default builtin)")
    ap.add_argument("--instruction", default=INSTRUCTION, help="the flow to record and replay")
    ap.add_argument("--max-steps", type=int, default=10, help="step budget of each act")
    ap.add_argument("--replay-screenshots", action="store_true",
                    help="replayed steps take a screenshot each (Session(replay_screenshots=True))")
    ap.add_argument("-n", "--repeats", type=int, default=3, help="record+replay pairs; medians are shown")
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = ap.parse_args(argv)
    console = Console(stderr=args.json)
    spec, note = args.policy, ""
    if spec == "builtin":
        from policy.moe import CHECKPOINT_DIR

        if not (CHECKPOINT_DIR / "model.safetensors").is_file():
            spec, note = "scripted", f"the builtin checkpoint is missing ({CHECKPOINT_DIR}); used the scripted policy"

    first, replay, rows = [], [], []
    with PageServer(PAGES) as server, tempfile.TemporaryDirectory() as tmp:
        for n in range(args.repeats):
            cache_file = Path(tmp) / f"cache-{n}.yaml"
            with Session.launch(policy="scripted", viewport=(1280, 720), report_dir=Path(tmp) / "runs") as s:
                s.goto(server.url("login.html"))
                policy = _scripted(s.page) if spec == "scripted" else spec
                # The first run: a new session, the policy loaded lazily inside act (its load is timed).
                rec = Session(s.page, policy=policy, report_dir=Path(tmp) / "runs", cache=Cache(cache_file),
                              _driver=s.driver)
                t0 = time.perf_counter()
                r1 = rec.act(args.instruction, max_steps=args.max_steps)
                first.append(time.perf_counter() - t0)
                s.goto(server.url("login.html"))
                play = Session(s.page, policy=spec if spec != "scripted" else policy, report_dir=Path(tmp) / "runs",
                               cache=Cache(cache_file), replay_screenshots=args.replay_screenshots, _driver=s.driver)
                t0 = time.perf_counter()
                r2 = play.act(args.instruction, max_steps=args.max_steps)
                replay.append(time.perf_counter() - t0)
                ok = s.page.locator("#pass").input_value() == "lovelace"
                rows.append((n, r1, r2, ok, str(play.policy_loaded) if isinstance(policy, str) else "given"))
    table = Table(title=f"record vs replay — {args.instruction!r}", title_justify="left",
                  caption=note or None)
    for col in ("#", "first run s", "steps", "policy calls", "replay s", "cache", "policy calls",
                "policy loaded", "page filled"):
        table.add_column(col, justify="right")
    for (n, r1, r2, ok, loaded), a, b in zip(rows, first, replay):
        table.add_row(str(n), f"{a:.2f}", str(r1.steps), str(r1.policy_calls), f"{b:.2f}", r2.cache,
                      str(r2.policy_calls), loaded, str(ok))
    med_first, med_replay = statistics.median(first), statistics.median(replay)
    speedup = med_first / med_replay if med_replay else float("inf")
    console.print(table)
    console.print(f"policy {spec}: first run {med_first:.2f}s, replay {med_replay:.2f}s (medians) -> "
                  f"replay is {speedup:.1f}x faster", highlight=False)
    if args.json:
        print(json.dumps({"policy": spec, "note": note, "first_s": round(med_first, 3),
                          "replay_s": round(med_replay, 3), "speedup": round(speedup, 2), "repeats": args.repeats}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
