"""``galago train distill``: supervised distillation of the built-in MoE policy on demonstrations.

    galago train distill --data runs/demos --out runs/distill --steps 3000 --batch-size 16
    galago train distill --data runs/demos --out runs/distill --steps 4000 --resume
    galago train distill --data runs/demos --out runs/distill --eval-suite miniwob:click-button --eval-every 500
    galago train recipe two-hours --out ckpt/mine        # collect and train in one command (policy/train/recipe.py)

``register(app)`` adds the ``train`` group (or reuses it) with ``distill`` and ``recipe``; it also registers
``train grpo`` from agent/cli_train_grpo.py when that module is importable.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn, Optional

import typer

from actions.errors import ConfigError, GalagoError


def _train_group(app: typer.Typer) -> typer.Typer | None:
    for info in getattr(app, "registered_groups", []):
        name = info.name or getattr(getattr(info.typer_instance, "info", None), "name", None)
        if name == "train":
            return info.typer_instance
    return None


def _exit(e: GalagoError) -> NoReturn:
    """Print the error; exit 2 for bad arguments or files, 1 for anything else."""
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(2 if isinstance(e, ConfigError) else 1)


def _eval_fn(suite: str, episodes: int, max_steps: int | None):
    def run(step: int, policy) -> dict:
        from agent.evaluate import evaluate

        report = evaluate(suite, policy_spec=lambda: policy, episodes=episodes, workers=0, split="test",
                          max_steps=max_steps)
        return {"suite": suite, "mean_success": report.mean_success,
                "mean_strict_success": report.mean_strict_success}
    return run


def distill(
    data: list[Path] = typer.Option(..., "--data", help="demonstration directory (repeatable)"),
    out: Path = typer.Option(..., "--out", help="output policy directory (also holds train_state/)"),
    steps: int = typer.Option(3000, help="total optimiser steps"),
    batch_size: int = typer.Option(16, "--batch-size"),
    lr: float = typer.Option(1e-3),
    warmup: int = typer.Option(100),
    preset: str = typer.Option("default", help="model size: default, tiny; ablations: dense-active, dense-total"),
    vocab_size: int = typer.Option(4096, "--vocab-size", help="tokenizer size (new runs only)"),
    seed: int = typer.Option(0),
    resume: bool = typer.Option(False, "--resume", help="continue from OUT/train_state"),
    init: Optional[str] = typer.Option(None, "--init", help="start from a trained policy (builtin, moe:DIR or DIR): "
                                       "its weights and tokenizer, a fresh optimiser and schedule"),
    upgrade_tokenizer: bool = typer.Option(False, "--upgrade-tokenizer",
                                           help="resumed runs: switch the checkpoint's tokenizer to the current "
                                                "number and quote rules (policy/moe/tokenizer.py)"),
    save_every: int = typer.Option(500, "--save-every"),
    minutes: Optional[float] = typer.Option(None, "--minutes", min=0.01,
                                            help="time budget: the learning rate decays over it and training stops "
                                                 "when it is spent (or at --steps, whichever comes first)"),
    bucket: bool = typer.Option(True, "--bucket/--no-bucket",
                                help="batch examples of like length together (less padding; new runs only)"),
    threads: int = typer.Option(2, help="torch CPU threads"),
    include_failed: bool = typer.Option(False, "--include-failed", help="also train on failed episodes"),
    relabel: float = typer.Option(0.0, "--relabel", min=0.0, max=1.0,
                                  help="share of examples whose quoted labels become fresh pseudo-words"),
    focus: Optional[float] = typer.Option(None, "--focus", min=0.0, max=1.0,
                                          help="after the first epoch, keep an example the model already "
                                               "reproduces with this probability (the rest always)"),
    mark_named: bool = typer.Option(False, "--mark-named",
                                    help="mark each element whose text or value the instruction names with "
                                         "the word 'named' (new runs; kept in the model's config)"),
    max_elements: Optional[int] = typer.Option(None, "--max-elements", min=1,
                                               help="elements per prompt (new or resumed runs; default: the config's)"),
    max_instruction_tokens: Optional[int] = typer.Option(None, "--max-instruction-tokens", min=1,
                                                         help="instruction tokens per prompt (likewise)"),
    eval_suite: Optional[str] = typer.Option(None, "--eval-suite", help="e.g. miniwob:click-button"),
    eval_every: int = typer.Option(0, "--eval-every", help="evaluate every N steps (and at the end)"),
    eval_episodes: int = typer.Option(5, "--eval-episodes"),
    eval_max_steps: Optional[int] = typer.Option(None, "--eval-max-steps"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON object as the last line"),
) -> None:
    """Distil oracle demonstrations into the MoE policy (loss on the response text only)."""
    from policy.moe import policy_dir
    from policy.train.distill import config_preset, train_distill

    try:
        init_dir = None if init is None else policy_dir(init)
        res = train_distill(data, out, config_preset(preset, mark_named=mark_named), steps=steps,
                            batch_size=batch_size, lr=lr, warmup=warmup, seed=seed, resume=resume,
                            save_every=save_every,
                            eval_every=eval_every if eval_suite else 0,
                            eval_fn=_eval_fn(eval_suite, eval_episodes, eval_max_steps) if eval_suite else None,
                            only_success=not include_failed, vocab_size=vocab_size, num_threads=threads,
                            progress=not json_out, relabel_p=relabel, upgrade_tokenizer=upgrade_tokenizer,
                            init=init_dir, bucket=bucket, minutes=minutes, focus=focus,
                            prompt_limits={"max_elements": max_elements, "max_instruction_tokens": max_instruction_tokens})
    except GalagoError as e:
        _exit(e)
    summary = {"out_dir": str(res.out_dir), "steps": res.steps, "final_loss": res.final_loss,
               "samples_per_s": res.samples_per_s, "examples": res.n_examples, "skipped": res.skipped}
    if json_out:
        print(json.dumps(summary))
    else:
        typer.echo(f"trained {res.steps} steps on {res.n_examples} steps of demonstrations "
                   f"(loss {res.final_loss:.4f}, {res.samples_per_s:.1f} samples/s) -> {res.out_dir}")


def recipe(
    recipe_ref: str = typer.Argument(..., metavar="RECIPE", help="a recipe file, or a built-in one's name (two-hours)"),
    out: Path = typer.Option(..., "--out", help="output policy directory (a rerun resumes it)"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="where the collections go (default: data/NAME)"),
    workers: int = typer.Option(2, "--workers", "-w", min=0, help="collection worker processes"),
    scale: float = typer.Option(1.0, "--scale", min=0.0001, help="multiply every collection's episodes (a quick try: 0.05)"),
    minutes: Optional[float] = typer.Option(None, "--minutes", min=0.01, help="override the recipe's training time budget"),
    steps: Optional[int] = typer.Option(None, "--steps", min=1,
                                        help="train this many steps (instead of the recipe's time budget, unless --minutes)"),
    preset: Optional[str] = typer.Option(None, "--preset", help="override the model config preset (dense-active, dense-total: "
                                         "the ablation's dense models)"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON object as the last line"),
) -> None:
    """Collect a recipe's demonstrations and train a policy on them from scratch, in one command."""
    from policy.train.recipe import load_recipe, recipe_path, run_recipe

    try:
        path = recipe_path(recipe_ref)
        data = data_dir or Path("data") / path.stem
        summary = run_recipe(load_recipe(path), out, data, workers=workers, scale=scale, minutes=minutes, steps=steps,
                             preset=preset, progress=not json_out,
                             say=(lambda s: None) if json_out else typer.echo)
    except GalagoError as e:
        _exit(e)
    if json_out:
        print(json.dumps(summary))
    else:
        typer.echo(f"collected in {summary['collect_seconds'] / 60:.1f} min, trained {summary['steps']} steps in "
                   f"{summary['train_seconds'] / 60:.1f} min (loss {summary['final_loss']:.4f}) -> {summary['out_dir']}\n"
                   f"evaluate it: galago eval widgets --policy moe:{summary['out_dir']} --episodes 10 --workers 2")


def register(app: typer.Typer) -> None:
    group = _train_group(app)
    if group is None:
        group = typer.Typer(no_args_is_help=True, help="Train the built-in policy (distill, grpo).")
        app.add_typer(group, name="train")
    group.command("distill")(distill)
    group.command("recipe")(recipe)
    try:  # agent/cli.py lists only this module; bring `train grpo` along when it exists
        from agent import cli_train_grpo
    except ImportError:
        return
    if not any(getattr(c, "name", None) == "grpo" or getattr(getattr(c, "callback", None), "__name__", "") == "grpo"
               for c in group.registered_commands):
        cli_train_grpo.register(app)
