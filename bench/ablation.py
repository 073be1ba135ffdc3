"""The ablation table of the built-in policy, on held-out (test-split) seeds, greedy decoding.

Columns (each evaluated with `agent.evaluate` in real Chromium, per task and macro mean):

    full            the policy as shipped (with textual grounding, policy/grounding.py)
    no-grounding    the same weights, clicks exactly where the model points
    no-grammar      the same weights, points decoded without the number grammar (generate.PointGrammar)
    no-verify       the same weights, a click at a name nothing on screen holds is taken as written
    no-copy         the same weights, a quoted name may drift off the text it copies (copyguard.py)
    no-screenshot   the same weights, shown a blank image
    no-elements     the same weights, shown no element list
    dense-active    a dense model with the MoE's active parameters (--dense-active DIR, trained with
                    `galago train distill --preset dense-active` on the same data and steps)
    dense-total     a dense model with the MoE's total parameters (--dense-total DIR)

The default tasks are MiniWoB++'s visual tasks (where the screenshot must matter) plus a few that
the element list alone decides.

    .venv/bin/python bench/ablation.py --episodes 10 --workers 2
    .venv/bin/python bench/ablation.py --column no-copy-head=ckpt/nocopy --only no-copy-head   # one column
    .venv/bin/python bench/ablation.py --policy ckpt/builtin --dense-active ckpt/dense-active \\
        --dense-total ckpt/dense-total --suite miniwob --json

Episodes go under --out (default runs/ablation/<column>/episodes.jsonl); re-running resumes.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from agent.evaluate import evaluate, parse_suite_ref  # noqa: E402
from policy.moe import CHECKPOINT_DIR, load_dir  # noqa: E402

VISUAL = ["click-color", "click-shape", "identify-shape", "count-shape", "click-pie", "grid-coordinate"]
TEXTUAL = ["click-button", "click-link", "click-checkboxes", "enter-text", "click-tab", "login-user"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default=str(CHECKPOINT_DIR), help="the full model's directory (default: builtin)")
    ap.add_argument("--dense-active", type=Path, default=None, help="dense model with equal active parameters")
    ap.add_argument("--dense-total", type=Path, default=None, help="dense model with equal total parameters")
    ap.add_argument("--column", action="append", default=[], metavar="NAME=DIR",
                    help="another trained variant to compare (repeatable), e.g. no-copy-head=ckpt/nocopy")
    ap.add_argument("--only", default=None, help="comma-separated columns to run (default: all)")
    ap.add_argument("--suite", default="miniwob:" + ",".join(VISUAL + TEXTUAL), help="SUITE[:task1,task2]")
    ap.add_argument("--episodes", type=int, default=10, help="held-out seeds per task")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("runs/ablation"))
    ap.add_argument("--json", action="store_true", help="print the table as one JSON line last")
    args = ap.parse_args(argv)

    suite, tasks = parse_suite_ref(args.suite)
    full = Path(args.policy.removeprefix("moe:"))
    columns = {"full": functools.partial(load_dir, full),
               "no-grounding": functools.partial(load_dir, full, ground=False),
               "no-grammar": functools.partial(load_dir, full, constrain=False),
               "no-verify": functools.partial(load_dir, full, verify=False),
               "no-copy": functools.partial(load_dir, full, copy=False),
               "no-screenshot": functools.partial(load_dir, full, no_image=True),
               "no-elements": functools.partial(load_dir, full, no_elements=True)}
    extra = [("dense-active", args.dense_active), ("dense-total", args.dense_total)]
    for spec in args.column:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            ap.error(f"--column wants NAME=DIR, got {spec!r}")
        extra.append((name, Path(path)))
    for name, path in extra:
        if path is not None:
            columns[name] = functools.partial(load_dir, path)
    if args.only:
        keep = [c.strip() for c in args.only.split(",")]
        unknown = [c for c in keep if c not in columns]
        if unknown:
            ap.error(f"unknown columns {unknown}; known: {list(columns)}")
        columns = {k: v for k, v in columns.items() if k in keep}
    results = {}
    for name, factory in columns.items():
        print(f"-- {name}", file=sys.stderr)
        rep = evaluate(suite, tasks, factory, episodes=args.episodes, workers=args.workers, seed=args.seed,
                       split="test", out_dir=args.out / name, progress=True)
        results[name] = {"per_task": {t: s.success for t, s in rep.per_task.items()}, "mean": rep.mean_success,
                         "errors": rep.errors}

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"ablation, {args.suite}, {args.episodes} held-out seeds per task (success)")
    table.add_column("task")
    for name in results:
        table.add_column(name, justify="right")
    task_ids = list(next(iter(results.values()))["per_task"])
    visual = [t for t in task_ids if t in VISUAL]
    for t in task_ids:
        table.add_row(t + (" (visual)" if t in visual else ""), *(f"{r['per_task'][t]:.2f}" for r in results.values()))
    if visual and len(visual) < len(task_ids):
        table.add_row("mean, visual tasks", *(f"{sum(r['per_task'][t] for t in visual) / len(visual):.3f}"
                                             for r in results.values()))
    table.add_row("mean", *(f"{r['mean']:.3f}" for r in results.values()), style="bold")
    Console(stderr=args.json).print(table)
    if args.json:
        print(json.dumps({"suite": args.suite, "episodes": args.episodes, "columns": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
