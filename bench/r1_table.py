"""The R1 table: does GRPO add to distillation, and can it replace it? (DeepSeek-R1 §4.1, in small.)

Three rows, scored on held-out (test-split) seeds with greedy decoding, per task and on average,
lenient and strict success:

    (a) grpo-random      GRPO from a random initialisation (same architecture as the distilled policy)
    (b) distill          the distilled policy alone (the built-in checkpoint, or --init DIR)
    (c) distill+grpo     the distilled policy, then GRPO

(a) and (c) get the same budget of environment episodes (--budget, rounded down to whole
iterations of tasks x group); (b) gets none. With --select-imperfect the tasks are narrowed to
those where (b) is below 100% on the held-out seeds (where RL has something to add).

    .venv/bin/python bench/r1_table.py --suite miniwob:click-button,click-link --budget 256 --eval-episodes 20
    .venv/bin/python bench/r1_table.py --init runs/distill --suite widgets --select-imperfect --json

Everything goes under --out (default runs/r1): a-random-init/, a/, c/ (GRPO runs, resumable: an
interrupted bench picks up where it stopped) and eval-*/ (episodes.jsonl).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from actions.errors import ConfigError  # noqa: E402
from agent.cli_train_grpo import run_grpo  # noqa: E402
from agent.evaluate import evaluate, parse_suite_ref  # noqa: E402
from policy.moe import policy_dir  # noqa: E402
from policy.train.grpo import GRPOConfig  # noqa: E402

ROWS = (("a", "grpo-random"), ("b", "distill"), ("c", "distill+grpo"))


def _eval(suite: str, tasks: list[str], policy_dir: Path, out: Path, episodes: int, workers: int, seed: int,
          max_steps: int | None) -> dict:
    rep = evaluate(suite, tasks, f"moe:{policy_dir}", episodes=episodes, workers=workers, seed=seed, split="test",
                   out_dir=out, max_steps=max_steps, progress=True)
    return {"per_task": {t: {"success": s.success, "strict_success": s.strict_success, "episodes": s.episodes}
                         for t, s in rep.per_task.items()},
            "mean_success": rep.mean_success, "mean_strict_success": rep.mean_strict_success,
            "eval_episodes": rep.episodes, "errors": rep.errors}


def _grpo(suite: str, tasks: list[str], out: Path, init: Path, cfg: GRPOConfig, workers: int,
          max_steps: int | None) -> dict:
    resume = (out / "train_state" / "state.json").is_file()
    t0 = time.perf_counter()
    res = run_grpo(suite, out, init=None if resume else str(init), cfg=cfg, workers=workers, max_steps=max_steps,
                   resume=resume, tasks=tasks, threads=1,
                   on_iteration=lambda l: print(f"  {out.name} iter {l.iteration}: reward {l.mean_reward:.3f} "
                                                f"success {l.success:.2f} kl {l.kl:.4f}", file=sys.stderr))
    lines = [json.loads(x) for x in (out / "grpo.jsonl").read_text().splitlines() if x.strip()]
    return {"rl_episodes": sum(x["episodes"] for x in lines), "iterations": res.iterations,
            "train_success_first": lines[0]["success"] if lines else None,
            "train_success_last": lines[-1]["success"] if lines else None,
            "train_seconds": round(time.perf_counter() - t0, 1)}


def _random_init_like(distilled: Path, out: Path, seed: int) -> Path:
    """A randomly initialised policy with the distilled policy's config and tokenizer."""
    from policy.moe import GalagoTokenizer, MoEConfig, build_model, save_pretrained

    if not (out / "model.safetensors").is_file():
        tok = GalagoTokenizer.load(distilled / "tokenizer.json")
        save_pretrained(build_model(MoEConfig.load(distilled / "config.json"), tok, seed=seed), tok, out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="miniwob:click-button,click-link,click-checkboxes,click-tab",
                    help="SUITE:task1,task2 (default: %(default)s)")
    ap.add_argument("--init", default="builtin", help="the distilled policy: builtin, moe:DIR or DIR")
    ap.add_argument("--out", default="runs/r1", type=Path)
    ap.add_argument("--budget", type=int, default=256, help="environment episodes of GRPO per RL row")
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--eval-episodes", type=int, default=20, help="held-out seeds per task")
    ap.add_argument("--eval-seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--lr-random", type=float, default=1e-3, help="GRPO lr of row (a)")
    ap.add_argument("--lr-distilled", type=float, default=2e-5, help="GRPO lr of row (c)")
    ap.add_argument("--beta", type=float, default=0.02)
    ap.add_argument("--rows", default="a,b,c", help="which rows to run (default: %(default)s)")
    ap.add_argument("--select-imperfect", action="store_true",
                    help="keep only tasks where (b) is below 100%% on the held-out seeds")
    ap.add_argument("--json", action="store_true", help="print the table as one JSON line last")
    args = ap.parse_args(argv)

    name, tasks = parse_suite_ref(args.suite)
    if not tasks:
        from agent.evaluate import _get_suite

        tasks = list(_get_suite(name).default_task_ids())
    distilled = policy_dir(args.init)
    if not (distilled / "model.safetensors").is_file():
        raise ConfigError(f"no distilled policy at {distilled}; train one (galago train distill) or pass --init DIR")
    rows = set(args.rows.split(","))
    out: Path = args.out
    iterations = max(1, args.budget // (len(tasks) * args.group))
    result: dict = {"suite": name, "tasks": tasks, "init": str(distilled), "group": args.group,
                    "iterations": iterations, "budget_episodes": iterations * len(tasks) * args.group,
                    "eval_episodes_per_task": args.eval_episodes, "split": "test", "rows": {}}

    ev = dict(episodes=args.eval_episodes, workers=args.workers, seed=args.eval_seed, max_steps=args.max_steps)
    b = _eval(name, tasks, distilled, out / "eval-b", **ev)
    if args.select_imperfect:
        tasks = [t for t in tasks if b["per_task"].get(t, {}).get("success", 0.0) < 1.0]
        if not tasks:
            print("distillation alone solves every task on the held-out seeds; nothing for RL to add",
                  file=sys.stderr)
            return 0
        result["tasks"] = tasks
        iterations = max(1, args.budget // (len(tasks) * args.group))
        result.update(iterations=iterations, budget_episodes=iterations * len(tasks) * args.group)
        b = _eval(name, tasks, distilled, out / "eval-b", **ev)  # reuses the records: no new episodes
    if "b" in rows:
        result["rows"]["distill"] = {**b, "rl_episodes": 0}
    base = dict(group=args.group, iterations=iterations, beta=args.beta, seed=0)
    if "a" in rows:
        init = _random_init_like(distilled, out / "a-random-init", seed=0)
        train = _grpo(name, tasks, out / "a", init, GRPOConfig(lr=args.lr_random, **base), args.workers,
                      args.max_steps)
        result["rows"]["grpo-random"] = {**_eval(name, tasks, out / "a", out / "eval-a", **ev), **train}
    if "c" in rows:
        train = _grpo(name, tasks, out / "c", distilled, GRPOConfig(lr=args.lr_distilled, **base), args.workers,
                      args.max_steps)
        result["rows"]["distill+grpo"] = {**_eval(name, tasks, out / "c", out / "eval-c", **ev), **train}

    print_table(result, stderr=args.json)
    if args.json:
        print(json.dumps(result))
    return 0


def print_table(result: dict, stderr: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    present = [(k, label) for k, label in ROWS if label in result["rows"]]
    t = Table(title=f"R1 table · {result['suite']} · held-out seeds ({result['eval_episodes_per_task']}/task) · "
                    f"GRPO budget {result['budget_episodes']} episodes",
              caption="  ".join(f"({k}) {label}" for k, label in present))
    t.add_column("task", no_wrap=True)
    for k, label in present:
        t.add_column(f"({k}) success", justify="right", no_wrap=True)
        t.add_column(f"({k}) strict", justify="right", no_wrap=True)
    for task in result["tasks"]:
        cells = []
        for _, label in present:
            s = result["rows"][label]["per_task"].get(task)
            cells += [f"{s['success']:.2f}", f"{s['strict_success']:.2f}"] if s else ["-", "-"]
        t.add_row(task, *cells)
    t.add_section()
    mean = []
    for _, label in present:
        r = result["rows"][label]
        mean += [f"[bold]{r['mean_success']:.2f}", f"[bold]{r['mean_strict_success']:.2f}"]
    t.add_row("[bold]mean", *mean)
    t.add_row("RL episodes", *[x for _, label in present for x in (str(result["rows"][label]["rl_episodes"]), "")])
    con = Console(stderr=stderr)
    con.width = max(con.width, 110)  # seven numeric columns: never squeeze them into ellipses
    con.print(t)


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)
