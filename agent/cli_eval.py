"""`galago eval` and `galago collect`. The main CLI (agent/cli.py) calls ``register(app)``.

Output discipline: progress bars and tables go to stderr when ``--json`` is given, so the last
stdout line is the one JSON object; errors of the user's making exit with code 2, others with 1.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from actions.errors import ConfigError, GalagoError


def _consoles(as_json: bool):
    from rich.console import Console

    return Console(stderr=True) if as_json else Console()


def _fail(e: Exception) -> None:
    from rich.console import Console

    code = 2 if isinstance(e, ConfigError) else 1
    Console(stderr=True).print(f"[bold red]error:[/] {e}", markup=True, highlight=False)
    raise typer.Exit(code)


def eval_command(
    suite: str = typer.Argument(..., help="SUITE or SUITE:task1,task2 (e.g. miniwob:click-button)"),
    policy: str = typer.Option("builtin", "--policy", "-p", help="policy spec: builtin, moe:DIR, hf:DIR, "
                               "openai:MODEL@URL, scripted, oracle, replay:DIR"),
    episodes: int = typer.Option(10, "--episodes", "-n", min=1, help="episodes (seeds) per task"),
    workers: int = typer.Option(1, "--workers", "-w", min=0, help="worker processes (0: in this process)"),
    seed: int = typer.Option(0, "--seed", help="first seed; seeds are SEED..SEED+episodes-1"),
    split: str = typer.Option("test", "--split", help="test (held out) or train"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="folder for episodes.jsonl; "
                                       "re-running with the same folder resumes"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="step budget per episode "
                                            "(default: the task's)"),
    save_runs: bool = typer.Option(False, "--save-runs", help="keep each episode's trajectory in OUT/runs"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON line last"),
    headed: bool = typer.Option(False, "--headed", help="show the browsers (needs a display)"),
) -> None:
    """Evaluate a policy on a suite: success rates per task over seeded held-out episodes."""
    from agent.evaluate import evaluate, report_table

    console = _consoles(as_json)
    try:
        report = evaluate(suite, None, policy, episodes=episodes, workers=workers, seed=seed, split=split,
                          out_dir=out, max_steps=max_steps, save_runs=save_runs, progress=True,
                          headless=not headed)
    except GalagoError as e:
        _fail(e)
        return
    console.print(report_table(report))
    resumed = f" ({report.skipped} resumed from {out})" if out else ""
    console.print(f"{report.episodes} episodes{resumed}, {report.errors} errors, "
                  f"{report.wall_seconds:.1f} s, {report.episodes_per_minute:.1f} episodes/min",
                  highlight=False)
    if as_json:
        sys.stdout.write(json.dumps(report.summary()) + "\n")
        sys.stdout.flush()


def collect_command(
    suite: str = typer.Argument(..., help="SUITE or SUITE:task1,task2"),
    out: Path = typer.Option(..., "--out", "-o", help="dataset folder (re-running resumes)"),
    policy: str = typer.Option("oracle", "--policy", "-p", help="the teacher's policy spec"),
    episodes: int = typer.Option(10, "--episodes", "-n", min=1, help="episodes (seeds) per task"),
    workers: int = typer.Option(1, "--workers", "-w", min=0, help="worker processes (0: in this process)"),
    seed: int = typer.Option(0, "--seed", help="first seed"),
    split: str = typer.Option("train", "--split", help="train (default) or test"),
    only_success: bool = typer.Option(True, "--only-success/--keep-failures",
                                      help="keep only episodes the task judged successful"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1),
    finish_step: bool = typer.Option(True, "--finish-step/--no-finish-step",
                                     help="end each successful episode with a finished() step on its final screen"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as one JSON line last"),
) -> None:
    """Collect demonstrations (screenshot, elements, history -> UI-TARS target) for training."""
    from agent.collect import collect

    console = _consoles(as_json)
    try:
        report = collect(suite, None, policy, episodes=episodes, out_dir=out, workers=workers, seed=seed,
                         split=split, only_success=only_success, max_steps=max_steps, progress=True,
                         finish_step=finish_step)
    except GalagoError as e:
        _fail(e)
        return
    console.print(f"{report.episodes_run} episodes run ({report.skipped} already done), "
                  f"{report.kept_episodes} kept, {report.steps_written} steps written to {report.out_dir}; "
                  f"teacher success {report.success_rate:.2f}, {report.errors} errors, "
                  f"{report.wall_seconds:.1f} s", highlight=False)
    if as_json:
        sys.stdout.write(report.model_dump_json() + "\n")
        sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add the `eval` and `collect` commands to the main galago app."""
    app.command("eval")(eval_command)
    app.command("collect")(collect_command)
