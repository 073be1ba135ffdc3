"""The eval runner: many seeded episodes of a suite, in worker processes, with resumable records.

``evaluate(suite, tasks, policy_spec, episodes, workers, seed)`` runs ``episodes`` seeds per task
(``seed .. seed+episodes-1``) and returns an ``EvalReport``. Each worker is a *spawned* process
with its own browser and its own policy loaded from the spec (policies hold models and page state;
sharing one across processes is neither safe nor faster). The parent only hands out (task, seed)
jobs, appends each finished episode to ``OUT/episodes.jsonl`` the moment it arrives, and draws the
progress bar — so an interrupted eval resumes where it stopped.

The same pool runs demonstration collection (agent/collect.py): it differs only in the function a
worker runs per episode and in what the parent does with the result.
"""
from __future__ import annotations

import functools
import json
import os
import queue
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from actions.errors import ConfigError, GalagoError

EPISODES_FILE = "episodes.jsonl"
CONFIG_FILE = "eval.json"
DEFAULT_EPISODE_TIMEOUT_S = 900.0


# ---------------------------------------------------------------------------------------------
# Records and report (the boundary types)
# ---------------------------------------------------------------------------------------------

class EpisodeRecord(BaseModel):
    """One finished episode, one line of episodes.jsonl."""

    model_config = ConfigDict(extra="ignore")

    task: str
    seed: int
    split: str = "test"
    success: bool = False
    strict_success: bool = False
    reward: float = 0.0
    steps: int = 0
    seconds: float = 0.0
    error: str = ""  # non-empty: the episode did not run to a verdict (browser crash, our bug)
    run_dir: str | None = None
    worker: int = 0

    @property
    def key(self) -> tuple[str, int]:
        return (self.task, self.seed)


class TaskSummary(BaseModel):
    success: float
    strict_success: float
    episodes: int
    mean_steps: float
    seconds_per_episode: float


class EvalReport(BaseModel):
    """The result of an eval. ``summary()`` is the documented JSON object of `galago eval --json`."""

    suite: str
    policy: str
    episodes: int
    mean_success: float
    mean_strict_success: float
    per_task: dict[str, TaskSummary]
    split: str = "test"
    seed: int = 0
    errors: int = 0  # episodes that ended in an environment error (counted as failures)
    skipped: int = 0  # episodes found finished in episodes.jsonl and not re-run
    wall_seconds: float = 0.0
    episodes_per_minute: float = 0.0  # episodes run in this call / wall minutes
    records: list[EpisodeRecord] = Field(default_factory=list, repr=False)

    def summary(self) -> dict:
        """The JSON line: the contract's keys first, then a few extras (added keys only)."""
        return self.model_dump(exclude={"records"})


def summarize(records: Iterable[EpisodeRecord], *, suite: str, policy: str, task_ids: Sequence[str],
              split: str = "test", seed: int = 0) -> EvalReport:
    """Aggregate episode records into a report. Success rates are means over episodes per task;
    the mean row is the macro average over tasks (the way MiniWoB++ papers report)."""
    by_task: dict[str, list[EpisodeRecord]] = {t: [] for t in task_ids}
    for r in records:
        by_task.setdefault(r.task, []).append(r)
    per_task: dict[str, TaskSummary] = {}
    for t, rs in by_task.items():
        if not rs:
            continue
        n = len(rs)
        per_task[t] = TaskSummary(
            success=sum(r.success for r in rs) / n,
            strict_success=sum(r.strict_success for r in rs) / n,
            episodes=n,
            mean_steps=sum(r.steps for r in rs) / n,
            seconds_per_episode=sum(r.seconds for r in rs) / n,
        )
    k = len(per_task)
    all_records = [r for rs in by_task.values() for r in rs]
    return EvalReport(
        suite=suite, policy=policy, episodes=len(all_records),
        mean_success=sum(s.success for s in per_task.values()) / k if k else 0.0,
        mean_strict_success=sum(s.strict_success for s in per_task.values()) / k if k else 0.0,
        per_task=per_task, split=split, seed=seed,
        errors=sum(bool(r.error) for r in all_records), records=all_records,
    )


# ---------------------------------------------------------------------------------------------
# Resolving what to run
# ---------------------------------------------------------------------------------------------

def parse_suite_ref(ref: str) -> tuple[str, list[str] | None]:
    """``"miniwob:click-button,click-link"`` -> ("miniwob", [...]); ``"widgets"`` -> ("widgets", None)."""
    name, _, rest = ref.partition(":")
    name = name.strip()
    if not name:
        raise ConfigError(f"bad suite reference {ref!r}: expected SUITE or SUITE:task1,task2")
    if not rest.strip():
        return name, None
    tasks = [t.strip() for t in rest.split(",") if t.strip()]
    if not tasks:
        raise ConfigError(f"bad suite reference {ref!r}: no task ids after ':'")
    return name, tasks


def _get_suite(suite: Any):
    """A suite object from a name (via tasks.get_suite) or the object itself."""
    if not isinstance(suite, str):
        return suite
    import tasks as _tasks  # agent/ composes everything; imported lazily to keep startup light

    getter = getattr(_tasks, "get_suite", None)
    if getter is None:
        raise ConfigError("no suite registry: tasks.get_suite is not available")
    return getter(suite)


def resolve_tasks(suite_obj: Any, tasks: Sequence[str] | None) -> list[str]:
    """The task ids to run: the given ones (checked against the suite) or its default set."""
    if not tasks:
        return list(suite_obj.default_task_ids())
    known = set(suite_obj.task_ids())
    unknown = [t for t in tasks if t not in known]
    if unknown:
        sample = ", ".join(sorted(known)[:12])
        raise ConfigError(f"unknown task(s) {', '.join(unknown)} in suite {suite_obj.name!r}; "
                          f"known tasks include: {sample}")
    return list(dict.fromkeys(tasks))  # keep order, drop repeats


def _policy_label(policy_spec: Any) -> str:
    if isinstance(policy_spec, str):
        return policy_spec
    return getattr(policy_spec, "__name__", type(policy_spec).__name__)


def _load_policy(policy_spec: Any):
    """A fresh policy from a spec string (policy.load) or a zero-argument factory (tests, API use)."""
    if callable(policy_spec) and not isinstance(policy_spec, str):
        return policy_spec()
    import policy as _policy

    return _policy.load(policy_spec)


# ---------------------------------------------------------------------------------------------
# Per-worker state: one browser, one policy, reused across episodes
# ---------------------------------------------------------------------------------------------

@dataclass
class WorkerContext:
    """What one worker holds across its episodes. The browser is launched lazily and relaunched
    after a crash, so one bad episode costs one episode, not the rest of the eval."""

    suite: Any
    policy: Any
    split: str = "test"
    max_steps: int | None = None
    runs_dir: Path | None = None  # where per-episode trajectories go (--save-runs); None: nowhere
    headless: bool = True
    worker_id: int = 0
    driver: Any = None
    restarts: int = 0
    options: dict = field(default_factory=dict)

    def ensure_driver(self, viewport: tuple[int, int]):
        if self.driver is None:
            from actions.drivers.browser import BrowserDriver

            self.driver = BrowserDriver.launch(headless=self.headless, viewport=tuple(viewport))
        else:
            page = self.driver.page
            size = page.viewport_size or {}
            if (size.get("width"), size.get("height")) != tuple(viewport):
                page.set_viewport_size({"width": int(viewport[0]), "height": int(viewport[1])})
        return self.driver

    def driver_alive(self) -> bool:
        if self.driver is None:
            return True
        try:
            page = self.driver.page
            if page.is_closed():
                return False
            page.evaluate("1")
            return True
        except Exception:  # any failure to talk to the page means it is gone
            return False

    def restart_driver(self) -> None:
        self.close_driver()
        self.restarts += 1

    def close_driver(self) -> None:
        if self.driver is not None:
            try:
                self.driver.close()
            except Exception:  # a crashed browser may fail to close; it is being dropped anyway
                pass
            self.driver = None

    def make_task(self, task_id: str, seed: int) -> Any:
        """The suite's seeded episode, with ``oracle()`` bound to the suite's teacher.

        The `oracle` policy binds at reset() through ``episode.task.oracle()``; suites whose
        episodes don't carry it themselves get it here, so `--policy oracle` works on any suite.
        """
        task = self.suite.episode(task_id, seed, self.split)
        if not callable(getattr(task, "oracle", None)) and callable(getattr(self.suite, "oracle", None)):
            try:
                task.oracle = functools.partial(self.suite.oracle, task_id)
            except (AttributeError, TypeError):  # a frozen/slotted task: the oracle policy will say so
                pass
        return task

    def run_dir_for(self, task_id: str, seed: int) -> Path | None:
        if self.runs_dir is None:
            return None
        return self.runs_dir / f"{task_id}-{seed}"

    def close(self) -> None:
        self.close_driver()
        close = getattr(self.policy, "close", None)
        if callable(close):
            close()


EpisodeFn = Callable[[WorkerContext, str, int], tuple[EpisodeRecord, Any]]


def _agent_run(ctx: WorkerContext, task: Any, run_dir: Path | None, policy: Any = None, callbacks: Sequence = ()):
    from agent.loop import Agent

    agent = Agent(policy or ctx.policy, driver=ctx.driver, max_steps=ctx.max_steps, callbacks=callbacks)
    return agent.run(task, run_dir=run_dir)  # None: nothing written (eval keeps only its records)


def run_eval_episode(ctx: WorkerContext, task_id: str, seed: int) -> tuple[EpisodeRecord, Any]:
    """One eval episode in this worker: build the seeded task, run the agent, record the verdict."""
    t0 = time.perf_counter()
    record = EpisodeRecord(task=task_id, seed=seed, split=ctx.split, worker=ctx.worker_id)
    try:
        task = ctx.make_task(task_id, seed)
        ctx.ensure_driver(tuple(task.viewport))
        run_dir = ctx.run_dir_for(task_id, seed)
        if run_dir is not None and run_dir.exists():
            shutil.rmtree(run_dir)  # a retried episode: don't append to the failed try's steps
        result = _agent_run(ctx, task, run_dir)
        record.success = bool(result.success)
        record.strict_success = bool(getattr(result, "strict_success", result.success))
        record.reward = float(result.reward or 0.0)
        record.steps = int(result.steps)
        record.seconds = float(result.seconds)
        record.error = str(result.error or "")
        rd = getattr(result, "run_dir", None)
        record.run_dir = str(rd) if (rd and run_dir is not None) else None
    except ConfigError:
        raise  # the user's mistake (a policy that can't run this suite, a bad seed): stop the eval
    except Exception as e:  # the agent ends model errors itself; what reaches here is ours or the env's
        record.error = f"{type(e).__name__}: {e}"
        record.seconds = time.perf_counter() - t0
    return _finish_record(ctx, record), None


def _finish_record(ctx: WorkerContext, record: EpisodeRecord) -> EpisodeRecord:
    """Restart a dead browser and make sure an errored episode never counts as a success."""
    if not ctx.driver_alive():
        ctx.restart_driver()
        record.error = record.error or "browser crashed during the episode"
        if "browser" not in record.error.lower():
            record.error = f"browser crashed: {record.error}"
    if record.error:
        record.success = record.strict_success = False
    return record


# ---------------------------------------------------------------------------------------------
# Worker process
# ---------------------------------------------------------------------------------------------

@dataclass
class PoolConfig:
    """Everything a worker needs; pickled into each spawned process."""

    suite: Any  # a suite name (str) or a picklable suite object
    policy_spec: Any
    split: str
    max_steps: int | None
    runs_dir: str | None
    episode_fn: EpisodeFn
    headless: bool = True
    threads: int = 1
    options: dict = field(default_factory=dict)


def _make_context(cfg: PoolConfig, worker_id: int) -> WorkerContext:
    policy = _load_policy(cfg.policy_spec)
    if "torch" in sys.modules:  # K workers on few cores: keep each one from oversubscribing them
        sys.modules["torch"].set_num_threads(max(1, cfg.threads))
    return WorkerContext(suite=_get_suite(cfg.suite), policy=policy, split=cfg.split,
                         max_steps=cfg.max_steps,
                         runs_dir=Path(cfg.runs_dir) if cfg.runs_dir else None,
                         headless=cfg.headless, worker_id=worker_id, options=dict(cfg.options))


def _worker_main(cfg: PoolConfig, worker_id: int, jobs, results, slot) -> None:
    """Entry point of a spawned worker: pull (index, task, seed) jobs until the None sentinel.

    ``slot`` (shared memory) holds the index of the job in hand. Queue messages go out through a
    feeder thread and die with a killed process; the slot is written synchronously, so the parent
    always knows which episode a dead worker took with it."""
    try:
        ctx = _make_context(cfg, worker_id)
    except BaseException as e:  # noqa: BLE001 - report any setup failure to the parent, then exit
        results.put(("fatal", worker_id, (isinstance(e, ConfigError),
                                          f"worker setup failed: {type(e).__name__}: {e}")))
        return
    results.put(("ready", worker_id, None))
    try:
        while True:
            job = jobs.get()
            if job is None:
                break
            index, task_id, seed = job
            slot.value = index
            results.put(("start", worker_id, index))
            try:
                record, payload = cfg.episode_fn(ctx, task_id, seed)
            except ConfigError as e:
                results.put(("fatal", worker_id, (True, str(e))))
                break
            except Exception as e:  # episode functions catch their own errors; this is a last net
                record = EpisodeRecord(task=task_id, seed=seed, split=cfg.split, worker=worker_id,
                                       error=f"{type(e).__name__}: {e}")
                payload = None
                traceback.print_exc()
            results.put(("done", worker_id, (index, record.model_dump(), payload)))
    finally:
        ctx.close()


# ---------------------------------------------------------------------------------------------
# The pool (parent side)
# ---------------------------------------------------------------------------------------------

Sink = Callable[[EpisodeRecord, Any], None]


def run_pool(cfg: PoolConfig, jobs: Sequence[tuple[str, int]], workers: int, sink: Sink,
             on_start: Callable[[int], None] | None = None,
             episode_timeout_s: float = DEFAULT_EPISODE_TIMEOUT_S) -> None:
    """Run ``jobs`` and call ``sink(record, payload)`` in this process as each one finishes.

    ``workers == 0`` runs in this process (no isolation, easiest to debug); otherwise ``workers``
    spawned processes. A worker that dies or overruns ``episode_timeout_s`` is replaced and its
    episode recorded as an error.
    """
    if not jobs:
        return
    if workers <= 0:
        ctx = _make_context(cfg, 0)
        try:
            for task_id, seed in jobs:
                record, payload = cfg.episode_fn(ctx, task_id, seed)
                sink(record, payload)
        finally:
            ctx.close()
        return
    _run_processes(cfg, list(jobs), min(workers, len(jobs)), sink, episode_timeout_s)


def _run_processes(cfg: PoolConfig, jobs: list[tuple[str, int]], workers: int, sink: Sink,
                   episode_timeout_s: float) -> None:
    import multiprocessing as mp

    mpc = mp.get_context("spawn")  # fork would copy a live Playwright/torch state: never safe
    job_q = mpc.Queue()
    # Results go through a SimpleQueue: its put writes to the pipe before returning, so a worker that
    # dies right after reporting an episode (os._exit, an OOM kill) cannot take the report with it,
    # as it can with Queue's background feeder thread.
    res_q = mpc.SimpleQueue()
    for i, (task_id, seed) in enumerate(jobs):
        job_q.put((i, task_id, seed))
    for _ in range(workers):
        job_q.put(None)

    procs: dict[int, Any] = {}
    ready: set[int] = set()
    slots: dict[int, Any] = {}
    inflight: dict[int, float] = {}  # worker -> when its current episode started (for timeouts)
    completed: set[int] = set()  # job indices already given to the sink (each exactly once)
    next_id = 0

    def spawn() -> None:
        nonlocal next_id
        slots[next_id] = mpc.Value("q", -1, lock=False)
        p = mpc.Process(target=_worker_main, args=(cfg, next_id, job_q, res_q, slots[next_id]),
                        daemon=True, name=f"galago-worker-{next_id}")
        p.start()
        procs[next_id] = p
        next_id += 1

    for _ in range(workers):
        spawn()
    remaining = len(jobs)
    orphan_rounds = 0
    try:
        while remaining > 0:
            try:
                kind, wid, data = poll_queue(res_q, 1.0)
            except queue.Empty:
                for wid, p in procs.items():
                    if wid not in ready and not p.is_alive() and p.exitcode != 0:
                        raise GalagoError(f"worker {wid} died while starting (exit code {p.exitcode}); "
                                          "run with --workers 0 to see the error in this process")
                remaining -= _reap(cfg, jobs, procs, slots, inflight, completed, sink, spawn,
                                   episode_timeout_s, remaining)
                if not procs and remaining > 0:
                    orphan_rounds += 1  # give results still in the pipe a few seconds to arrive
                    if orphan_rounds > 3:
                        raise GalagoError(f"all workers exited with {remaining} episode(s) left")
                continue
            if kind == "fatal":
                is_config, message = data
                raise (ConfigError if is_config else GalagoError)(message)
            if kind == "ready":
                ready.add(wid)
            elif kind == "start":
                inflight[wid] = time.monotonic()
            elif kind == "done":
                inflight.pop(wid, None)
                index, rec, payload = data
                if index in completed:
                    continue  # already recorded as lost with a worker that died after sending it
                completed.add(index)
                sink(EpisodeRecord.model_validate(rec), payload)
                remaining -= 1
    finally:
        for p in procs.values():
            if p.is_alive():
                p.join(timeout=30 if remaining == 0 else 0.1)  # let it close its browser
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        job_q.cancel_join_thread()


def poll_queue(q: Any, timeout: float) -> Any:
    """``q.get()`` for a multiprocessing SimpleQueue, raising queue.Empty after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while q.empty():
        if time.monotonic() >= deadline:
            raise queue.Empty
        time.sleep(0.01)
    return q.get()


def _reap(cfg: PoolConfig, jobs: list[tuple[str, int]], procs: dict, slots: dict, inflight: dict,
          completed: set[int], sink: Sink, spawn: Callable[[], None], episode_timeout_s: float,
          remaining: int) -> int:
    """Replace dead or stuck workers; returns how many episodes were recorded as errors."""
    lost = 0
    now = time.monotonic()
    for wid, p in list(procs.items()):
        stuck = wid in inflight and now - inflight[wid] > episode_timeout_s
        if p.is_alive() and not stuck:
            continue
        if stuck:
            p.terminate()
            p.join(timeout=5)
        del procs[wid]
        t0 = inflight.pop(wid, now)
        index = slots.pop(wid).value
        if index >= 0 and index not in completed:
            task_id, seed = jobs[index]
            why = (f"episode exceeded {episode_timeout_s:.0f} s" if stuck
                   else f"worker process died (exit code {p.exitcode})")
            completed.add(index)
            sink(EpisodeRecord(task=task_id, seed=seed, split=cfg.split, worker=wid, error=why,
                               seconds=now - t0), None)
            lost += 1
        if (p.exitcode != 0 or stuck) and remaining - lost > 0:
            spawn()  # its share of the queue (and its sentinel) is still there for the new one
    return lost


# ---------------------------------------------------------------------------------------------
# Resumable output folder
# ---------------------------------------------------------------------------------------------

def read_records(path: Path) -> list[EpisodeRecord]:
    """Records from an episodes.jsonl; a torn last line (a killed run) is ignored."""
    out: list[EpisodeRecord] = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(EpisodeRecord.model_validate_json(line))
        except ValidationError:
            continue
    return out


def check_resume_config(out_dir: Path, config: dict, filename: str = CONFIG_FILE) -> None:
    """Refuse to mix episodes of a different suite/policy/split/step budget in one folder."""
    path = out_dir / filename
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path} is not valid JSON ({e}); remove it or use another --out") from e
        diff = {k: (old.get(k), v) for k, v in config.items() if old.get(k) != v}
        if diff:
            detail = "; ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
            raise ConfigError(f"{out_dir} holds episodes of another configuration ({detail}); "
                              "use another --out folder")
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


class RecordLog:
    """Appends records to episodes.jsonl, one flushed line each, so a killed eval loses nothing."""

    def __init__(self, path: Path | None):
        self.path = path
        self._f = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(path, "a", encoding="utf-8")

    def append(self, record: EpisodeRecord) -> None:
        if self._f is not None:
            self._f.write(record.model_dump_json() + "\n")
            self._f.flush()
            os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self) -> "RecordLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def plan_jobs(task_ids: Sequence[str], seeds: Sequence[int], done: set[tuple[str, int]]
              ) -> list[tuple[str, int]]:
    """Jobs in seed-major order, so a partial eval covers every task a little rather than a few
    tasks fully, and workers don't all start on the same task page."""
    return [(t, s) for s in seeds for t in task_ids if (t, s) not in done]


# ---------------------------------------------------------------------------------------------
# Progress display
# ---------------------------------------------------------------------------------------------

class _Progress:
    """A rich progress bar on stderr (stdout stays clean for --json)."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.enabled = enabled and total > 0
        self.ok = 0
        self.n = 0
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self._p = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                               MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                               TimeElapsedColumn(), TimeRemainingColumn(),
                               console=Console(stderr=True), transient=False)
            self._p.start()
            self._id = self._p.add_task(label, total=total, rate="")

    def advance(self, record: EpisodeRecord) -> None:
        self.n += 1
        self.ok += record.success
        if self.enabled:
            self._p.update(self._id, advance=1, rate=f"success {self.ok}/{self.n}")

    def close(self) -> None:
        if self.enabled:
            self._p.stop()


# ---------------------------------------------------------------------------------------------
# The Python API
# ---------------------------------------------------------------------------------------------

@dataclass
class EpisodePlan:
    """What eval and collect run: the suite (its picklable reference), tasks, seeds."""

    suite_arg: Any  # what workers get: the suite name, or the (picklable) suite object
    suite_name: str
    task_ids: list[str]
    seeds: list[int]
    label: str  # the policy's label in records


def plan_episodes(suite: Any, tasks: Sequence[str] | None, policy_spec: Any, episodes: int, workers: int,
                  seed: int, split: str, max_steps: int | None = None) -> EpisodePlan:
    """Validate the arguments shared by ``evaluate`` and ``collect`` and resolve suite and tasks."""
    if episodes < 1:
        raise ConfigError(f"episodes must be >= 1, got {episodes}")
    if workers < 0:
        raise ConfigError(f"workers must be >= 0, got {workers}")
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"max_steps must be >= 1, got {max_steps}")
    if isinstance(suite, str):
        name, ref_tasks = parse_suite_ref(suite)
        tasks = list(tasks or []) or ref_tasks
        suite_obj, suite_arg = _get_suite(name), name
    else:
        suite_obj = suite_arg = suite
    return EpisodePlan(suite_arg, getattr(suite_obj, "name", str(suite_arg)),
                       resolve_tasks(suite_obj, tasks), list(range(seed, seed + episodes)),
                       _policy_label(policy_spec))


def evaluate(suite: Any, tasks: Sequence[str] | None = None, policy_spec: Any = "builtin",
             episodes: int = 10, workers: int = 1, seed: int = 0, *, split: str = "test",
             out_dir: str | Path | None = None, max_steps: int | None = None,
             save_runs: bool = False, progress: bool = False, headless: bool = True,
             episode_timeout_s: float = DEFAULT_EPISODE_TIMEOUT_S) -> EvalReport:
    """Run ``episodes`` seeded episodes of each task and aggregate them.

    ``suite`` is a suite name (``"miniwob"``), ``"miniwob:t1,t2"``, or a Suite object (must be
    picklable when ``workers > 0``); ``tasks`` narrows it (default: the suite's default set).
    ``policy_spec`` is a spec string for ``policy.load`` or a zero-argument factory. Seeds are
    ``seed .. seed+episodes-1`` in ``split`` ("test" = held out). ``workers=0`` runs in this
    process. With ``out_dir``, records go to ``out_dir/episodes.jsonl`` and episodes already
    there (without an error) are skipped; ``save_runs`` also keeps each trajectory under
    ``out_dir/runs/TASK-SEED``.
    """
    plan = plan_episodes(suite, tasks, policy_spec, episodes, workers, seed, split, max_steps)
    suite_arg, suite_name, label = plan.suite_arg, plan.suite_name, plan.label
    task_ids, seeds = plan.task_ids, plan.seeds

    out = Path(out_dir) if out_dir is not None else None
    previous: dict[tuple[str, int], EpisodeRecord] = {}
    if out is not None:
        check_resume_config(out, {"kind": "eval", "suite": suite_name, "policy": label,
                                  "split": split, "max_steps": max_steps})
        for r in read_records(out / EPISODES_FILE):
            previous[r.key] = r  # the last record of a (task, seed) wins (a retried error)
    done = {k for k, r in previous.items() if not r.error}
    jobs = plan_jobs(task_ids, seeds, done)
    wanted = {(t, s) for t in task_ids for s in seeds}
    skipped = len(wanted & done)

    runs_dir = str(out / "runs") if (save_runs and out is not None) else None
    if save_runs and out is None:
        raise ConfigError("save_runs needs an out_dir to save the runs in")
    cfg = PoolConfig(suite=suite_arg, policy_spec=policy_spec, split=split, max_steps=max_steps,
                     runs_dir=runs_dir, episode_fn=run_eval_episode, headless=headless,
                     threads=max(1, (os.cpu_count() or 1) // max(1, workers)))

    results = dict(previous)
    bar = _Progress(len(jobs), f"eval {suite_name}", progress)
    t0 = time.perf_counter()
    with RecordLog(out / EPISODES_FILE if out is not None else None) as log:
        def sink(record: EpisodeRecord, _payload: Any) -> None:
            log.append(record)
            results[record.key] = record
            bar.advance(record)

        try:
            run_pool(cfg, jobs, workers, sink, episode_timeout_s=episode_timeout_s)
        finally:
            bar.close()
    wall = time.perf_counter() - t0

    report = summarize((results[k] for k in sorted(wanted, key=lambda k: (k[1], k[0])) if k in results),
                       suite=suite_name, policy=label, task_ids=task_ids, split=split, seed=seed)
    report.skipped = skipped
    report.wall_seconds = round(wall, 3)
    report.episodes_per_minute = round(len(jobs) / wall * 60, 2) if jobs and wall > 0 else 0.0
    return report


def report_table(report: EvalReport, title: str | None = None):
    """A rich Table: one row per task, then the mean row."""
    from rich.table import Table

    t = Table(title=title or f"{report.suite} · {report.policy} · {report.split} split")
    t.add_column("task")
    for col in ("success", "strict", "episodes", "mean steps", "s/episode"):
        t.add_column(col, justify="right")
    for task_id, s in report.per_task.items():
        t.add_row(task_id, f"{s.success:.2f}", f"{s.strict_success:.2f}", str(s.episodes),
                  f"{s.mean_steps:.1f}", f"{s.seconds_per_episode:.2f}")
    n = len(report.per_task) or 1
    t.add_section()
    t.add_row("[bold]mean", f"[bold]{report.mean_success:.2f}", f"[bold]{report.mean_strict_success:.2f}",
              str(report.episodes), f"{sum(s.mean_steps for s in report.per_task.values()) / n:.1f}",
              f"{sum(s.seconds_per_episode for s in report.per_task.values()) / n:.2f}")
    return t
