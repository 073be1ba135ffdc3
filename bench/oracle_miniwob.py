"""How well do the MiniWoB++ oracle teachers solve their tasks?

    .venv/bin/python bench/oracle_miniwob.py --tasks click-button,choose-list --seeds 50
    .venv/bin/python bench/oracle_miniwob.py --seeds 10 --json         # every task with an oracle
    .venv/bin/python bench/oracle_miniwob.py --loop rollout             # the teacher's own fast loop

Runs the oracle on seeds 0..N-1 (split "train") of each task in one headless Chromium and prints
success (raw reward > 0), strict success (raw == 1), mean steps and seconds per episode. The
default loop is the product's agent.loop.Agent (capture + observe every step); ``--loop rollout``
skips the screenshots (about twice as fast) and is what sweeps of many seeds use.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tasks.suites.miniwob import MiniWoBSuite, load_oracles  # noqa: E402
from tasks.suites.miniwob.env import VIEWPORT  # noqa: E402
from tasks.suites.miniwob.oracle import rollout  # noqa: E402


def _launch():
    from actions.drivers.browser import BrowserDriver

    return BrowserDriver.launch(headless=True, viewport=VIEWPORT, dpr=1.0)


def run_task(driver, suite: MiniWoBSuite, task_id: str, seeds: range, loop: str) -> dict:
    ok = strict = steps = 0
    failures: list[dict] = []
    t0 = time.perf_counter()
    for seed in seeds:
        task = suite.episode(task_id, seed, split="train")
        if loop == "agent":
            from agent.loop import Agent

            res = Agent(suite.oracle(task_id), driver=driver).run(task)
            success, strict_success, n, error, reward = res.success, res.strict_success, res.steps, res.error, res.reward
        else:
            r = rollout(driver, task)
            success, strict_success, n, error, reward = r.success, r.strict_success, r.steps, r.error, r.reward
        ok += success
        strict += strict_success
        steps += n
        if not success:
            failures.append({"seed": seed, "reward": reward, "steps": n, "error": error or "",
                             "instruction": task.instruction})
    count = len(seeds)
    return {"success": ok / count, "strict_success": strict / count, "episodes": count, "mean_steps": steps / count,
            "seconds_per_episode": (time.perf_counter() - t0) / count, "failures": failures}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="", help="comma-separated task ids (default: every task with an oracle)")
    ap.add_argument("--seeds", type=int, default=50, help="episodes per task (seeds 0..N-1, train split)")
    ap.add_argument("--loop", choices=("agent", "rollout"), default="agent")
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = ap.parse_args(argv)

    suite = MiniWoBSuite()
    oracles = load_oracles()
    task_ids = [t for t in args.tasks.split(",") if t] or [t for t in suite.task_ids() if t in oracles]
    unknown = [t for t in task_ids if t not in oracles]
    if unknown:
        ap.error(f"no oracle for: {', '.join(unknown)}")
    driver = _launch()
    results: dict[str, dict] = {}
    try:
        for t in task_ids:
            results[t] = run_task(driver, suite, t, range(args.seeds), args.loop)
            if not args.json:
                r = results[t]
                print(f"{t:28s} {r['success']:.2f} {r['strict_success']:.2f} {r['mean_steps']:.1f} "
                      f"{r['seconds_per_episode']:.2f}s", file=sys.stderr)
    finally:
        driver.close()

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"MiniWoB++ oracles, {args.seeds} seeds/task, loop={args.loop}")
    for col in ("task", "success", "strict", "mean steps", "s/episode"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for t, r in results.items():
        style = "" if r["success"] >= 0.95 else "red"
        table.add_row(t, f"{r['success']:.2f}", f"{r['strict_success']:.2f}", f"{r['mean_steps']:.1f}",
                      f"{r['seconds_per_episode']:.2f}", style=style)
    n = len(results) or 1
    table.add_row("mean", f"{sum(r['success'] for r in results.values()) / n:.3f}",
                  f"{sum(r['strict_success'] for r in results.values()) / n:.3f}", "", "", style="bold")
    Console(stderr=args.json).print(table)
    if args.json:
        print(json.dumps({"suite": "miniwob", "policy": "oracle", "episodes": args.seeds, "per_task": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
