"""A training recipe in one file: the demonstrations to collect and the distillation to run on them.

    galago train recipe two-hours --out ckpt/mine                  # the built-in recipe (recipes/two-hours.yaml)
    galago train recipe my-recipe.yaml --out ckpt/mine --data-dir data/mine

``run_recipe`` makes each collection in DATA/NAME with the oracle teachers (resumable, as
``galago collect`` is: episodes already logged are skipped), then one ``train_distill`` run from
scratch over all of them, a collection listed ``repeat`` times. A second call continues where the
first stopped: the collections skip what is done and training resumes from OUT/train_state.

A recipe file (YAML, validated; unknown keys are errors)::

    description: what it is for
    collections:
      - {name: widgets, suite: widgets, episodes: 100, seed: 4000}
      - {name: weak, suite: "miniwob:click-tab-2,book-flight", episodes: 40, seed: 2100, repeat: 2}
    train: {minutes: 70, relabel: 0.5, max_elements: 48}
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from actions.errors import ConfigError
from tasks.spec import config_error

RECIPES_DIR = Path(__file__).with_name("recipes")


class Collection(BaseModel):
    """One ``galago collect`` run: ``episodes`` train-split seeds from ``seed`` of each task in ``suite``."""
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="its folder under the data directory")
    suite: str = Field(min_length=1, description="SUITE or SUITE:task1,task2")
    episodes: int = Field(ge=1, description="seeds per task")
    seed: int = Field(0, ge=0, description="the first seed")
    repeat: int = Field(1, ge=1, description="times its demonstrations are listed for training (a weight)")


class Training(BaseModel):
    """The ``galago train distill`` run over every collection (from scratch; resumed if stopped)."""
    model_config = ConfigDict(extra="forbid")

    minutes: float | None = Field(None, gt=0, description="time budget; the learning rate decays over it")
    steps: int = Field(100_000, ge=1, description="the most optimiser steps")
    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-3, gt=0)
    warmup: int = Field(100, ge=0)
    preset: str = "default"
    vocab_size: int = Field(4096, ge=300, description="the tokenizer's size")
    seed: int = 0
    relabel: float = Field(0.0, ge=0.0, le=1.0)
    focus: float | None = Field(None, gt=0.0, le=1.0, description="share of learned examples kept in later epochs")
    mark_named: bool = Field(False, description="mark the elements the instruction names (new runs)")
    max_elements: int | None = Field(None, ge=1)
    max_instruction_tokens: int | None = Field(None, ge=1)
    max_new_tokens: int | None = Field(None, ge=1, description="the trained policy's response length")
    save_every: int = Field(1000, ge=1)
    threads: int = Field(2, ge=1)


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    collections: list[Collection] = Field(min_length=1)
    train: Training = Training()

    @model_validator(mode="after")
    def _unique_names(self) -> "Recipe":
        names = [c.name for c in self.collections]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"collection names must be unique; given twice: {', '.join(twice)}")
        return self


def recipe_path(ref: str | Path) -> Path:
    """A recipe file, or the name of a built-in one (``two-hours`` -> policy/train/recipes/two-hours.yaml)."""
    p = Path(ref)
    if p.is_file():
        return p
    builtin = RECIPES_DIR / f"{ref}.yaml"
    if builtin.is_file():
        return builtin
    names = ", ".join(sorted(f.stem for f in RECIPES_DIR.glob("*.yaml")))
    raise ConfigError(f"no recipe file {ref} (built-in recipes: {names})")


def load_recipe(ref: str | Path) -> Recipe:
    path = recipe_path(ref)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: not a readable YAML recipe: {e}") from e
    try:
        return Recipe.model_validate(raw)
    except ValidationError as e:
        raise config_error(path, e) from e


def run_recipe(recipe: Recipe, out_dir: str | Path, data_dir: str | Path, *, workers: int = 2,
               scale: float = 1.0, minutes: float | None = None, steps: int | None = None,
               preset: str | None = None, progress: bool = True,
               say: Callable[[str], Any] = lambda s: None) -> dict:
    """Collect every collection (``episodes * scale`` seeds each, at least one) into ``data_dir``,
    then train from scratch (or resume) into ``out_dir``; ``minutes`` overrides the recipe's time
    budget, ``steps`` its step count (and drops its time budget unless ``minutes`` is given: the
    ablation's dense models train the MoE's steps), ``preset`` its model config. Every suite is
    checked before anything runs. Returns a summary (JSON-able)."""
    from agent.collect import collect
    from agent.evaluate import plan_episodes
    from policy.train.distill import STATE_DIR, config_preset, train_distill

    if scale <= 0:
        raise ConfigError(f"scale must be positive, not {scale}")
    if minutes is not None and minutes <= 0:
        raise ConfigError(f"the time budget must be positive, not {minutes} minutes")
    if steps is not None and steps < 1:
        raise ConfigError(f"steps must be at least 1, not {steps}")
    update = {k: v for k, v in (("preset", preset), ("steps", steps)) if v is not None}
    if steps is not None and minutes is None:
        update["minutes"] = None  # a step count replaces the recipe's time budget
    t = recipe.train.model_copy(update=update)
    cfg = config_preset(t.preset, mark_named=t.mark_named)  # an unknown preset fails here, before any collection
    if t.max_new_tokens:
        cfg = dataclasses.replace(cfg, max_new_tokens=t.max_new_tokens)
    episodes = {c.name: max(1, round(c.episodes * scale)) for c in recipe.collections}
    for c in recipe.collections:
        try:
            plan_episodes(c.suite, None, "oracle", episodes[c.name], workers, c.seed, "train")
        except ConfigError as e:
            raise ConfigError(f"collection {c.name!r}: {e}") from e

    data, out, t0 = Path(data_dir), Path(out_dir), time.perf_counter()
    made = []
    for i, c in enumerate(recipe.collections, 1):
        say(f"[{i}/{len(recipe.collections)}] collect {c.suite} x {episodes[c.name]} from seed {c.seed} -> {data / c.name}")
        rep = collect(c.suite, None, "oracle", episodes=episodes[c.name], out_dir=data / c.name, workers=workers,
                      seed=c.seed, progress=progress)
        made.append({"name": c.name, "episodes_run": rep.episodes_run, "skipped": rep.skipped,
                     "steps_written": rep.steps_written, "teacher_success": rep.success_rate,
                     "errors": rep.errors, "seconds": round(rep.wall_seconds, 1)})
    collect_s = time.perf_counter() - t0

    resume = (out / STATE_DIR / "state.json").is_file()
    budget = minutes if minutes is not None else t.minutes
    say(f"train {'(resumed) ' if resume else ''}-> {out}" + (f", {budget:g} min" if budget else ""))
    t1 = time.perf_counter()
    res = train_distill([data / c.name for c in recipe.collections for _ in range(c.repeat)], out, cfg,
                        steps=t.steps, batch_size=t.batch_size, lr=t.lr, warmup=t.warmup, seed=t.seed,
                        resume=resume, save_every=t.save_every, num_threads=t.threads, progress=progress,
                        relabel_p=t.relabel, minutes=budget, vocab_size=t.vocab_size, focus=t.focus,
                        prompt_limits={"max_elements": t.max_elements,
                                       "max_instruction_tokens": t.max_instruction_tokens})
    train_s = time.perf_counter() - t1
    return {"out_dir": str(res.out_dir), "collections": made, "collect_seconds": round(collect_s, 1),
            "train_seconds": round(train_s, 1), "steps": res.steps, "final_loss": res.final_loss,
            "samples_per_s": res.samples_per_s, "examples": res.n_examples, "resumed": resume}
