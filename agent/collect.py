"""Demonstration collection: run a teacher (the oracle by default) and keep what it saw and did.

Each step becomes one training example in policy/train/data.py's format: the observation (the
screenshot, its elements, the instruction, the previous responses) and the target text, the
teacher's thought and actions in UI-TARS syntax in the relative-1000 space — the same syntax every
backend reads and writes, so a student trained on it can be run by any of them.

The episodes run on the eval pool (agent/evaluate.py): worker processes, one browser each,
resumable through ``OUT/collect.jsonl``.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel

from actions.errors import ConfigError
from agent.trajectory import safe_name
from agent.evaluate import (EpisodeRecord, PoolConfig, RecordLog, WorkerContext, _Progress, _agent_run,
                            _finish_record, check_resume_config, plan_episodes, plan_jobs, read_records,
                            run_pool)

COLLECT_LOG = "collect.jsonl"
COLLECT_CONFIG = "collect.json"
TARGET_SCALE = 1000  # targets and history use UI-TARS-1.0's relative 0..1000 grid
FINISH_THOUGHT = "The task is complete."  # the thought of the terminal finished() step


class CollectReport(BaseModel):
    """What `galago collect` did. ``--json`` prints it as the last line."""

    suite: str
    policy: str
    out_dir: str
    split: str
    episodes: int  # episodes asked for (tasks × seeds)
    episodes_run: int  # run in this call
    skipped: int  # found done in collect.jsonl
    kept_episodes: int  # written as demonstrations in this call
    steps_written: int
    success_rate: float  # the teacher's success over the episodes run in this call
    errors: int
    wall_seconds: float


class _RecordingPolicy:
    """Wraps a policy and keeps (instruction, observation, step) for every step it decides.

    Wrapping the policy, rather than reading the agent's internals, sees exactly what the teacher
    saw; steps where the policy raised a ModelError are not recorded (they have no target).
    """

    def __init__(self, inner: Any):
        self.inner = inner
        self.calls: list[tuple[str, Any, Any]] = []

    @property
    def name(self) -> str:
        return getattr(self.inner, "name", type(self.inner).__name__)

    def coordinate_space(self, width: int, height: int, dpr: float = 1.0):
        return self.inner.coordinate_space(width, height, dpr)

    def reset(self, episode: Any) -> None:
        self.calls = []
        self.inner.reset(episode)

    def act(self, task: str, observation: Any, history: Sequence[Any]):
        step = self.inner.act(task, observation, history)
        self.calls.append((task, observation, step))
        return step

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


def demo_steps(calls: Sequence[tuple[str, Any, Any]], *, episode: str, task: str, seed: int,
               success: bool) -> list[tuple[dict, Any]]:
    """(DemoStep fields, screenshot) per recorded step. The target is the teacher's thought and
    actions in UI-TARS syntax over the relative-1000 grid; the history is the previous targets,
    so the student learns to continue its own kind of text. Images travel as PIL images and are
    written by the parent's single DemoWriter."""
    from actions.format import format_step
    from perception.space import CoordinateSpace
    from policy.train.data import IMAGES_DIR

    out = []
    history: list[str] = []
    for i, (instruction, obs, step) in enumerate(calls):
        space = CoordinateSpace.relative(obs.width, obs.height, TARGET_SCALE, obs.dpr)
        target = format_step(step.thought, list(step.actions), space)
        fields = dict(episode=episode, task=task, seed=seed, step=i, instruction=instruction,
                      image=f"{IMAGES_DIR}/{episode}-{i}.png", width=obs.width, height=obs.height,
                      dpr=obs.dpr, elements=[e.to_dict() for e in obs.elements], history=list(history),
                      target=target, success=success)
        out.append((fields, obs.screenshot))
        history.append(target)
    return out


def _finish_step_recorder(ctx: WorkerContext, recorder: _RecordingPolicy):
    """An agent callback that, on the step the task first judges a success, observes the screen that
    step left and records a ``finished()`` step on it: the teacher's plan ends on success, and the
    student must learn to say so itself (Session.act ends on finished(), not on a task verdict).
    Tasks whose final screen is not the result (``final_screen_shows_result = False``) get none."""
    from actions.schema import Finished, Step
    from perception.observe import observe

    def callback(rec: Any, agent: Any) -> None:
        if not rec.success or not recorder.calls or recorder.calls[-1][2].is_terminal:
            return
        frame = ctx.driver.capture()
        obs = observe(frame, recorder.coordinate_space(frame.width, frame.height, frame.dpr))
        recorder.calls.append((recorder.calls[-1][0], obs, Step(thought=FINISH_THOUGHT, actions=[Finished()])))

    return callback


def run_collect_episode(ctx: WorkerContext, task_id: str, seed: int) -> tuple[EpisodeRecord, Any]:
    """One teacher episode; the payload is the list of DemoSteps to keep (None: keep nothing)."""
    t0 = time.perf_counter()
    record = EpisodeRecord(task=task_id, seed=seed, split=ctx.split, worker=ctx.worker_id)
    recorder = _RecordingPolicy(ctx.policy)
    try:
        task = ctx.make_task(task_id, seed)
        finish = ctx.options.get("finish_step", True) and getattr(task, "final_screen_shows_result", True)
        callbacks = [_finish_step_recorder(ctx, recorder)] if finish else []
        ctx.ensure_driver(tuple(task.viewport))
        result = _agent_run(ctx, task, None, policy=recorder, callbacks=callbacks)
        record.success = bool(result.success)
        record.strict_success = bool(getattr(result, "strict_success", result.success))
        record.reward = float(result.reward or 0.0)
        record.steps = int(result.steps)
        record.seconds = float(result.seconds)
        record.error = str(result.error or "")
    except ConfigError:
        raise  # the user's mistake: stop the whole collection (see run_eval_episode)
    except Exception as e:  # our bug or the environment's; the episode is lost, the worker goes on
        record.error = f"{type(e).__name__}: {e}"
        record.seconds = time.perf_counter() - t0
    record = _finish_record(ctx, record)
    keep = not record.error and (record.success or not ctx.options.get("only_success", True))
    if not keep or not recorder.calls:
        return record, None
    suite_name = getattr(ctx.suite, "name", "suite")
    episode = safe_name(f"{suite_name}-{task_id}-{seed}")
    demos = demo_steps(recorder.calls, episode=episode, task=f"{suite_name}:{task_id}", seed=seed,
                       success=record.success)
    return record, demos


def collect(suite: Any, tasks: Sequence[str] | None = None, policy_spec: Any = "oracle",
            episodes: int = 10, out_dir: str | Path = "data", workers: int = 1, seed: int = 0, *,
            split: str = "train", only_success: bool = True, max_steps: int | None = None,
            progress: bool = False, headless: bool = True, finish_step: bool = True) -> CollectReport:
    """Run ``episodes`` seeded episodes per task with ``policy_spec`` and write demonstrations to
    ``out_dir`` with policy.train.data.DemoWriter. Episodes already logged in
    ``out_dir/collect.jsonl`` (without an error) are skipped, so an interrupted collection resumes.
    ``finish_step`` ends every successful episode with a ``finished()`` step on its final screen.
    """
    from policy.train.data import DemoWriter

    plan = plan_episodes(suite, tasks, policy_spec, episodes, workers, seed, split, max_steps)
    suite_arg, suite_name, label = plan.suite_arg, plan.suite_name, plan.label
    task_ids, seeds = plan.task_ids, plan.seeds

    out = Path(out_dir)
    check_resume_config(out, {"kind": "collect", "suite": suite_name, "policy": label, "split": split,
                              "max_steps": max_steps, "only_success": only_success,
                              "finish_step": finish_step}, COLLECT_CONFIG)
    previous = {r.key: r for r in read_records(out / COLLECT_LOG)}
    done = {k for k, r in previous.items() if not r.error}
    jobs = plan_jobs(task_ids, seeds, done)
    skipped = len({(t, s) for t in task_ids for s in seeds} & done)



    cfg = PoolConfig(suite=suite_arg, policy_spec=policy_spec, split=split, max_steps=max_steps,
                     runs_dir=None, episode_fn=run_collect_episode, headless=headless,
                     threads=max(1, (os.cpu_count() or 1) // max(1, workers)),
                     options={"only_success": only_success, "finish_step": finish_step})
    stats = {"run": 0, "ok": 0, "kept": 0, "steps": 0, "errors": 0}
    writer = DemoWriter(out)
    bar = _Progress(len(jobs), f"collect {suite_name}", progress)
    t0 = time.perf_counter()
    with RecordLog(out / COLLECT_LOG) as log:
        def sink(record: EpisodeRecord, demos: Any) -> None:
            # Demonstrations first, then the log line: a kill in between re-collects the episode
            # rather than marking it done with its steps missing.
            if demos:
                _write_episode(writer, demos)
                stats["kept"] += 1
                stats["steps"] += len(demos)
            log.append(record)
            stats["run"] += 1
            stats["ok"] += record.success
            stats["errors"] += bool(record.error)
            bar.advance(record)

        try:
            run_pool(cfg, jobs, workers, sink)
        finally:
            bar.close()
            close = getattr(writer, "close", None)
            if callable(close):
                close()
    return CollectReport(suite=suite_name, policy=label, out_dir=str(out), split=split,
                         episodes=len(task_ids) * len(seeds), episodes_run=stats["run"], skipped=skipped,
                         kept_episodes=stats["kept"], steps_written=stats["steps"],
                         success_rate=stats["ok"] / stats["run"] if stats["run"] else 0.0,
                         errors=stats["errors"], wall_seconds=round(time.perf_counter() - t0, 3))


def _write_episode(writer: Any, demos: list[tuple[dict, Any]]) -> None:
    from policy.train.data import DemoStep

    for fields, image in demos:
        writer.write(DemoStep(**fields), image=image)
