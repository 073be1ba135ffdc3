"""Oracle success per widget family over N seeds, in real headless Chromium.

    .venv/bin/python bench/oracle_widgets.py                 # 50 test seeds per family, a table
    .venv/bin/python bench/oracle_widgets.py -n 10 --split train --families click-button,menu-item --json

A family below 100% means a generator or oracle bug: the oracle reads the goal, so every
episode is solvable by construction. With --json the last stdout line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tasks.suites.widgets import FAMILIES, WidgetSuite  # noqa: E402
from actions.drivers.browser import BrowserDriver  # noqa: E402
from tasks.suites.widgets.rollout import run_oracle  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--seeds", type=int, default=50, help="episodes (seeds) per family")
    ap.add_argument("--start", type=int, default=0, help="first seed")
    ap.add_argument("--split", choices=("train", "test"), default="test")
    ap.add_argument("--families", default="", help="comma-separated subset (default: all)")
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = ap.parse_args(argv)
    families = [f for f in args.families.split(",") if f] or list(FAMILIES)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or args.seeds < 1:
        ap.error(f"unknown families {unknown}" if unknown else "--seeds must be >= 1")

    suite, console = WidgetSuite(), Console(stderr=args.json)
    driver = BrowserDriver.launch(headless=True, viewport=(1024, 768))
    rows: dict[str, dict] = {}
    try:
        for fam in families:
            ok, steps, t0, failures = 0, 0, time.perf_counter(), []
            for seed in range(args.start, args.start + args.seeds):
                run = run_oracle(driver, suite.episode(fam, seed, args.split))
                ok += run.success
                steps += run.steps
                if not run.success:
                    failures.append({"seed": seed, "detail": run.detail})
            dt = time.perf_counter() - t0
            rows[fam] = {"success": ok / args.seeds, "episodes": args.seeds, "mean_steps": steps / args.seeds,
                         "seconds_per_episode": dt / args.seeds, "failures": failures[:5]}
            console.log(f"{fam}: {ok}/{args.seeds}")
    finally:
        driver.close()

    table = Table(title=f"widgets oracle, {args.split} seeds {args.start}..{args.start + args.seeds - 1}")
    for col in ("family", "success", "mean steps", "s/episode"):
        table.add_column(col, justify="left" if col == "family" else "right")
    for fam, r in rows.items():
        table.add_row(fam, f"{r['success']:.0%}", f"{r['mean_steps']:.1f}", f"{r['seconds_per_episode']:.2f}")
    mean = sum(r["success"] for r in rows.values()) / len(rows)
    table.add_row("[b]mean[/b]", f"[b]{mean:.1%}[/b]", "", "")
    console.print(table)
    if args.json:
        print(json.dumps({"suite": "widgets", "policy": "oracle", "split": args.split, "mean_success": mean,
                          "per_task": rows}))
    return 0 if mean == 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
