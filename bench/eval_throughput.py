"""Eval throughput: episodes per minute of the oracle on a MiniWoB++ slice, by worker count.

    .venv/bin/python bench/eval_throughput.py                     # 1 and 2 workers, rich table
    .venv/bin/python bench/eval_throughput.py --workers 1,2,4 --episodes 10 --json

Wall time includes spawning the workers and launching their browsers (what a user waits for);
``episode_s`` is the agent's own time per episode, without that start-up.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from agent.evaluate import evaluate  # noqa: E402

DEFAULT_SLICE = "miniwob:click-button,click-link,click-checkboxes,click-dialog,click-tab"


def measure(suite: str, policy: str, episodes: int, workers: int, seed: int) -> dict:
    report = evaluate(suite, None, policy, episodes=episodes, workers=workers, seed=seed, split="test")
    n = report.episodes
    per_ep = sum(s.seconds_per_episode * s.episodes for s in report.per_task.values()) / max(1, n)
    return {"workers": workers, "episodes": n, "wall_s": report.wall_seconds,
            "episodes_per_minute": report.episodes_per_minute, "episode_s": round(per_ep, 3),
            "success": round(report.mean_success, 3), "errors": report.errors}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default=DEFAULT_SLICE, help="SUITE:task1,task2 (default: %(default)s)")
    ap.add_argument("--policy", default="oracle")
    ap.add_argument("--episodes", type=int, default=4, help="episodes per task")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the rows as one JSON line last")
    args = ap.parse_args(argv)

    rows = [measure(args.suite, args.policy, args.episodes, int(w), args.seed)
            for w in args.workers.split(",") if w.strip()]

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"eval throughput · {args.suite} · {args.policy} · {args.episodes} episodes/task")
    for col in ("workers", "episodes", "wall s", "episodes/min", "s/episode", "success", "errors"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["workers"]), str(r["episodes"]), f"{r['wall_s']:.1f}",
                      f"{r['episodes_per_minute']:.1f}", f"{r['episode_s']:.2f}", f"{r['success']:.2f}",
                      str(r["errors"]))
    Console(stderr=args.json).print(table)
    if args.json:
        print(json.dumps({"suite": args.suite, "policy": args.policy, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
