"""The ``galago`` command line: ``run`` and ``demo`` here; other subcommands plug in.

Exit codes: 0 the task succeeded, 1 it ran but failed (or the environment failed), 2 bad input
(task file, policy spec, options). With ``--json`` the last line on stdout is one JSON object.

Other modules add subcommands: each module in ``PLUGIN_MODULES`` exposes ``register(app)``. A
plugin that fails to import is skipped, so ``galago run`` keeps working whatever state they are in.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from actions.errors import ConfigError, GalagoError

# `galago demo`: the example task files with their scripts (they must pass), then the built-in policy
# on held-out (test-split) episodes of tasks it handles often (bench numbers in the README), fixed
# seeds never seen in training; its results are shown as they are.
DEMO_POLICY = "scripted"
DEMO_MODEL = "builtin"
DEMO_HELD_OUT = ("widgets:click-button@3", "widgets:type-field@3", "widgets:select-option@3",
                 "miniwob:click-test@3", "miniwob:focus-text@3", "miniwob:click-dialog@3", "miniwob:enter-text@3",
                 "miniwob:enter-password@3")
DEFAULT_RUNS_DIR = "runs"
PLUGIN_MODULES = ("agent.cli_eval", "agent.cli_collect", "agent.cli_train", "agent.cli_serve",
                  "agent.cli_report")

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="galago: a GUI-automation agent that reads screenshots and acts in the browser.")
out = Console()
err = Console(stderr=True)
_plugin_errors: dict[str, str] = {}


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _step_line(rec: Any) -> str:
    status = "[green]ok[/]" if rec.ok else f"[red]{escape(_short(rec.error or rec.feedback, 40))}[/]"
    if rec.warning:
        status += " [yellow](stuck)[/]"
    what = escape(_short(rec.response or "(no response)", 44))
    return f"  {rec.index:>3} {what}  {status}"


def _steps_table(result: Any) -> Table:
    table = Table(title=f"{result.task}", title_justify="left", show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("action")
    table.add_column("result")
    table.add_column("policy s", justify="right")
    table.add_column("env s", justify="right")
    for rec in result.records:
        res = "ok" if rec.ok else (rec.error or rec.feedback)
        table.add_row(str(rec.index), escape(_short(rec.response, 70)), escape(_short(res, 50)),
                      f"{rec.policy_s:.2f}", f"{rec.env_s:.2f}")
    return table


def _verdict(result: Any) -> str:
    if result.error:
        return f"[bold red]ERROR[/] {escape(result.error)}"
    return "[bold green]SUCCESS[/]" if result.success else f"[bold red]FAILED[/] ({result.stop_reason})"


def _run_one(task_ref: str, policy_spec: str, out_dir: Path, max_steps: int | None, headless: bool,
             progress: Console | None):
    """Resolve, run and return (task, RunResult). ConfigError propagates (exit 2)."""
    from agent.loop import Agent, RunResult
    from policy import load
    from tasks import resolve_task

    task = resolve_task(task_ref)
    policy = load(policy_spec)
    agent = Agent(policy, out_dir=out_dir, max_steps=max_steps, headless=headless)
    if progress is not None:
        progress.print(f"[bold]{escape(task.id)}[/] [dim]({escape(policy_spec)})[/] {escape(task.instruction)}",
                       highlight=False)
    result = None
    for item in agent.stream(task):
        if isinstance(item, RunResult):
            result = item
        elif progress is not None:
            progress.print(_step_line(item), highlight=False)
    return task, result


@app.command()
def run(
    task: str = typer.Argument(..., help="A task file (tasks/examples/login.yaml) or SUITE:TASK[@SEED]."),
    policy: str = typer.Option("builtin", "--policy", "-p",
                               help="builtin, moe:DIR, hf:DIR, openai:MODEL@BASE_URL, scripted, oracle, replay:RUN_DIR"),
    out_dir: Path = typer.Option(Path(DEFAULT_RUNS_DIR), "--out", "-o", help="Parent folder of run directories."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="Override the task's step budget."),
    headed: bool = typer.Option(False, "--headed", help="Show the browser window (needs a display)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object as the last stdout line."),
) -> None:
    """Run one task and save its run directory."""
    progress = err if as_json else out
    try:
        _, result = _run_one(task, policy, out_dir, max_steps, not headed, progress)
    except ConfigError as e:
        raise _fail(str(e), 2)
    except GalagoError as e:  # e.g. no Chromium: the environment, not the input
        raise _fail(str(e), 1)
    if as_json:
        err.print(_verdict(result), highlight=False)
        print(json.dumps(result.to_json()), flush=True)
    else:
        out.print(_steps_table(result))
        out.print(f"{_verdict(result)}  {result.steps} steps in {result.seconds:.1f}s  run: {result.run_dir}",
                  highlight=False)
        if result.finished_answer:
            out.print(f"answer: {escape(result.finished_answer)}", highlight=False)
    raise typer.Exit(0 if result.success else 1)


@app.command()
def demo(
    out_dir: Path = typer.Option(Path(DEFAULT_RUNS_DIR), "--out", "-o", help="Parent folder of run directories."),
    policy: str = typer.Option(DEMO_POLICY, "--policy", "-p", help="Policy spec for every example."),
    model: str = typer.Option(DEMO_MODEL, "--model", "-m",
                              help="Policy for the held-out suite episodes ('none' skips them)."),
    headed: bool = typer.Option(False, "--headed", help="Show the browser window (needs a display)."),
) -> None:
    """Run the example tasks (tasks/examples), then the built-in policy on held-out suite episodes,
    and show a table of results. Exit 1 when an example fails or anything errors; the model's
    held-out results are shown as they are (it is not perfect)."""
    from policy.moe import CHECKPOINT_DIR
    from tasks import example_task_files

    files = example_task_files()
    if not files:
        raise _fail("no example tasks found under tasks/examples", 2)
    runs = [(str(p), policy, True) for p in files]
    if model != "none" and not (model == "builtin" and not (CHECKPOINT_DIR / "model.safetensors").is_file()):
        runs += [(ref, model, False) for ref in DEMO_HELD_OUT]
    table = Table(title="galago demo", title_justify="left")
    for col, justify in (("task", "left"), ("policy", "left"), ("result", "left"), ("steps", "right"),
                         ("seconds", "right"), ("run directory", "left")):
        table.add_column(col, justify=justify)
    all_ok = True
    for ref, spec, must_pass in runs:
        try:
            task, result = _run_one(ref, spec, out_dir, None, not headed, out)
        except ConfigError as e:
            raise _fail(str(e), 2)
        except GalagoError as e:
            raise _fail(str(e), 1)
        all_ok &= result.success or not (must_pass or result.error)
        verdict = "[green]success[/]" if result.success else ("[red]error[/]" if result.error else "[red]failed[/]")
        name, label = (task.id, spec) if must_pass else (ref, f"{spec}, held out")
        table.add_row(name, label, verdict, str(result.steps), f"{result.seconds:.1f}", str(result.run_dir))
    out.print(table)
    raise typer.Exit(0 if all_ok else 1)


def _load_plugins() -> None:
    for name in PLUGIN_MODULES:
        try:
            module = importlib.import_module(name)
            module.register(app)
        except ModuleNotFoundError as e:
            if e.name != name:  # the plugin exists but something it imports is missing
                _plugin_errors[name] = f"{type(e).__name__}: {e}"
        except Exception as e:  # a broken plugin must not take `galago run` down with it
            _plugin_errors[name] = f"{type(e).__name__}: {e}"


_load_plugins()


def main() -> None:
    """Console-script entry point (``galago``)."""
    if _plugin_errors and os.environ.get("GALAGO_DEBUG"):
        for name, msg in _plugin_errors.items():
            err.print(f"[yellow]warning:[/] subcommands from {name} unavailable: {msg}", highlight=False)
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
