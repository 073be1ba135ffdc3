"""``galago train grpo``: GRPO over whole episodes of a suite, in real Chromium.

    galago train grpo --init moe:runs/distill --suite miniwob:click-button,click-link --out runs/grpo \\
        --group 8 --iterations 20 --workers 2

This module composes the parts (agent/ may import everything): the suite's episodes and the agent
loop supply ``suite_episode`` (the episode function GRPO's rollout workers run), policy/train/grpo.py
the learner. ``register(app)`` adds ``grpo`` to the ``train`` command group (creating the group when
no other module has).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer

from actions.errors import ConfigError, GalagoError
from policy.train.rollout import EpisodeOutcome


# ---------------------------------------------------------------------------------------------
# the episode function rollout workers run (top level: it is pickled into spawned processes)
# ---------------------------------------------------------------------------------------------
@dataclass
class SuiteEpisodeOptions:
    suite: Any  # a suite name ("miniwob") or a picklable Suite object
    split: str = "train"
    max_steps: int | None = None
    headless: bool = True


def suite_episode(state: dict, policy: Any, task_id: str, seed: int, options: SuiteEpisodeOptions) -> EpisodeOutcome:
    """One seeded suite episode through the agent loop, in this worker's browser (kept in ``state``
    across episodes and relaunched after a crash, as the eval runner does)."""
    from agent.evaluate import WorkerContext, _get_suite, run_eval_episode

    ctx = state.get("ctx")
    if ctx is None:
        ctx = WorkerContext(suite=_get_suite(options.suite), policy=policy, split=options.split,
                            max_steps=options.max_steps, headless=options.headless)
        state["ctx"] = ctx
        state["close"] = ctx.close_driver
    ctx.policy = policy
    rec, _ = run_eval_episode(ctx, task_id, seed)
    return EpisodeOutcome(success=rec.success, strict_success=rec.strict_success, steps=rec.steps,
                          error=rec.error, seconds=rec.seconds)


# ---------------------------------------------------------------------------------------------
# Python API
# ---------------------------------------------------------------------------------------------
def _tokenizer(path: str | None):
    from policy.moe import CHECKPOINT_DIR, GalagoTokenizer

    p = Path(path).expanduser() if path else CHECKPOINT_DIR
    if p.is_dir():
        p = p / "tokenizer.json"
    if not p.is_file():
        raise ConfigError(f"no tokenizer at {p}: a random init needs --tokenizer DIR (a policy directory "
                          "or a tokenizer.json), or the built-in checkpoint")
    return GalagoTokenizer.load(p)


def run_grpo(suite: str | Any, out_dir: str | Path, *, init: str | None = None, tokenizer: str | None = None,
             preset: str = "tiny", cfg: Any = None, workers: int = 1, max_steps: int | None = None,
             resume: bool = False, tasks: list[str] | None = None, on_iteration=None, on_rollout=None,
             episode_timeout_s: float = 600.0, threads: int | None = None):
    """GRPO on a suite (``"miniwob:click-button"``, ``"widgets"`` or a Suite object). Returns GRPOResult.

    ``init``: ``builtin``, ``moe:DIR`` or a directory; None = a random ``preset`` model with the
    ``tokenizer`` (default: the built-in checkpoint's).
    """
    from agent.evaluate import _get_suite, parse_suite_ref, resolve_tasks
    from policy.moe import policy_dir
    from policy.train.grpo import GRPOConfig, random_init, train_grpo

    cfg = cfg or GRPOConfig()
    if isinstance(suite, str):
        name, ref_tasks = parse_suite_ref(suite)
        suite_obj, suite_arg = _get_suite(name), name
        tasks = tasks or ref_tasks
    else:
        suite_obj = suite_arg = suite
    task_ids = resolve_tasks(suite_obj, tasks)
    options = SuiteEpisodeOptions(suite=suite_arg, split=cfg.split, max_steps=max_steps)
    model = tok = None
    init_dir = None
    if not resume:
        if init is not None:
            init_dir = policy_dir(init)
            if not (init_dir / "model.safetensors").is_file():
                raise ConfigError(f"--init {init}: no policy in {init_dir} (model.safetensors missing)")
        else:
            tok = _tokenizer(tokenizer)
            model = random_init(tok, preset, seed=cfg.seed)
    return train_grpo(out_dir, task_ids, suite_episode, options, init=init_dir, model=model, tokenizer=tok,
                      cfg=cfg, workers=workers, resume=resume, on_iteration=on_iteration, on_rollout=on_rollout,
                      episode_timeout_s=episode_timeout_s, threads=threads)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def grpo(
    suite: str = typer.Option(..., "--suite", help="SUITE or SUITE:task1,task2 (e.g. miniwob:click-button)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Output policy directory (loadable as moe:OUT)."),
    init: Optional[str] = typer.Option(None, "--init", help="Start policy: builtin, moe:DIR or DIR. "
                                       "Omit for a random init."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="Tokenizer for a random init "
                                            "(policy dir or tokenizer.json; default: the builtin's)."),
    preset: str = typer.Option("tiny", "--config", help="Model size for a random init: tiny or default."),
    group: int = typer.Option(8, "--group", "-g", min=2, help="Rollouts per (task, seed) group."),
    iterations: int = typer.Option(20, "--iterations", "-n", min=1, help="Total iterations (a resume continues)."),
    seeds_per_task: int = typer.Option(1, "--seeds-per-task", min=1, help="Groups per task per iteration."),
    workers: int = typer.Option(1, "--workers", "-w", min=0, help="Rollout processes (0 = in this process)."),
    beta: float = typer.Option(0.02, "--beta", min=0.0, help="KL penalty to the initial policy."),
    eps: float = typer.Option(0.2, "--eps", min=0.0, help="Clip range of the importance ratio."),
    lr: float = typer.Option(2e-5, "--lr", help="AdamW learning rate."),
    epochs: int = typer.Option(1, "--epochs", min=1, help="Passes over each iteration's rollouts."),
    minibatches: int = typer.Option(2, "--minibatches", min=1, help="Optimiser steps per pass."),
    micro_batch: int = typer.Option(16, "--micro-batch", min=1, help="Step samples per forward (grad accumulation)."),
    step_cost: float = typer.Option(0.0, "--step-cost", min=0.0, help="Reward subtracted per step."),
    format_reward: float = typer.Option(0.1, "--format-reward", help="Reward when every response parsed."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", min=1, help="Override the tasks' step budget."),
    seed: int = typer.Option(0, "--seed", help="First training seed; sampling seeds derive from it."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out."),
    threads: int = typer.Option(1, "--threads", min=1, help="Torch threads of the learner (tiny matrices: "
                                "1 is usually fastest; rollout workers use 1 each)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object as the last stdout line."),
) -> None:
    """Improve a policy with GRPO on a suite's train seeds (rewards: the task's own success check)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from pydantic import ValidationError

    from policy.train.grpo import GRPOConfig

    con = Console(stderr=True)
    try:
        cfg = GRPOConfig(group=group, iterations=iterations, seeds_per_task=seeds_per_task, beta=beta,
                         clip_eps=eps, lr=lr, epochs=epochs, minibatches=minibatches, micro_batch=micro_batch,
                         step_cost=step_cost, format_reward=format_reward, seed=seed)
    except ValidationError as e:
        con.print(f"[bold red]error:[/] {escape(str(e))}")
        raise typer.Exit(2)
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                   TimeElapsedColumn(), console=con, transient=False)
    logs = []

    def on_rollout(r) -> None:
        bar.update(ep_task, advance=1)

    def on_iteration(log) -> None:
        logs.append(log)
        bar.update(it_task, completed=log.iteration + 1,
                   info=f"reward {log.mean_reward:.2f} success {log.success:.2f} kl {log.kl:.4f}")
        bar.reset(ep_task)
        bar.console.print(
            f"iter {log.iteration:>4}  reward {log.mean_reward:6.3f}  success {log.success:.2f}  "
            f"parsed {log.parsed:.2f}  kl {log.kl:.4f}  clip {log.clip_frac:.3f}  "
            f"groups {log.groups_used}/{log.groups_used + log.groups_skipped}  "
            f"load max/mean {log.routing_max_over_mean:.2f}  {log.episodes_per_min:.1f} ep/min  "
            f"learner {log.learner_s:.1f}s", highlight=False)

    try:
        with bar:
            it_task = bar.add_task("iterations", total=iterations, info="")
            ep_task = bar.add_task("episodes", total=None, info="")
            result = run_grpo(suite, out_dir, init=init, tokenizer=tokenizer, preset=preset, cfg=cfg,
                              workers=workers, max_steps=max_steps, resume=resume, threads=threads,
                              on_iteration=on_iteration, on_rollout=on_rollout)
    except ConfigError as e:
        con.print(f"[bold red]error:[/] {escape(str(e))}")
        raise typer.Exit(2)
    except GalagoError as e:
        con.print(f"[bold red]error:[/] {escape(str(e))}")
        raise typer.Exit(1)
    summary = {"out_dir": str(result.out_dir), "iterations": result.iterations,
               "first_success": logs[0].success if logs else None,
               "last_success": logs[-1].success if logs else None,
               "last_reward": logs[-1].mean_reward if logs else None,
               "log": str(Path(out_dir) / "grpo.jsonl")}
    con.print(f"policy saved to {escape(str(result.out_dir))} (use --policy moe:{escape(str(result.out_dir))})")
    if as_json:
        print(json.dumps(summary), flush=True)


def _train_group(app: typer.Typer) -> typer.Typer | None:
    for info in getattr(app, "registered_groups", []):
        name = info.name or getattr(getattr(info.typer_instance, "info", None), "name", None)
        if name == "train":
            return info.typer_instance
    return None


def register(app: typer.Typer) -> None:
    """Add ``train grpo`` to ``app`` (under the existing ``train`` group when there is one)."""
    group = _train_group(app)
    if group is None:
        group = typer.Typer(no_args_is_help=True, help="Train the built-in policy (distill, grpo).")
        app.add_typer(group, name="train")
    group.command("grpo")(grpo)


__all__ = ["SuiteEpisodeOptions", "suite_episode", "run_grpo", "register", "grpo"]
