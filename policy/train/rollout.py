"""Rollouts for GRPO: sample whole episodes from the current policy and keep what the learner needs.

A *rollout* is one episode played by ``SamplingPolicy`` (temperature 1, top-p 1 by default): for
every step it records the exact prompt the model saw, the token ids it generated (``<|eos|>``
included when it ended the response) and their log-probabilities at sampling time (the "old"
log-probs of the importance ratio). The episode's verdict comes from the task's own check.

Rollouts run in worker processes (``RolloutPool``, multiprocessing *spawn*; each worker keeps its
own browser across iterations). Before each iteration the trainer writes the current weights to a
safetensors file and every job names that file; a worker reloads its model when the name changes.

This module knows nothing about browsers or suites (policy/ may not import agent/ or tasks/): the
caller hands in ``episode_fn(state, policy, task_id, seed, options) -> EpisodeOutcome``, a
picklable top-level function that runs one episode with the given policy (agent/cli_train_grpo.py
has the one that runs a suite episode through the agent loop in Chromium).
"""
from __future__ import annotations

import dataclasses
import hashlib
import queue
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from safetensors.torch import load_file

from actions.errors import ActionParseError, GalagoError
from actions.schema import Step
from policy.moe.config import MoEConfig
from policy.moe.model import MoEModel
from policy.moe.policy import MoEPolicy
from policy.moe.prompt import EncodedPrompt
from policy.moe.tokenizer import EOS, GalagoTokenizer

DEFAULT_EPISODE_TIMEOUT_S = 600.0


# ---------------------------------------------------------------------------------------------
# what a rollout holds
# ---------------------------------------------------------------------------------------------
@dataclass
class StepSample:
    """One policy step of a rollout: the prompt, the generated ids and their old log-probs."""

    prompt: EncodedPrompt
    tokens: list[int]  # generated ids; <|eos|> included when the model ended the response
    logprobs: list[float]  # log pi_old(token), same length as ``tokens``
    parsed: bool  # the response parsed into actions (the format reward's test)
    text: str = ""

    def __post_init__(self):
        if len(self.tokens) != len(self.logprobs) or not self.tokens:
            raise ValueError(f"a step sample needs one log-prob per token (got {len(self.tokens)} tokens, "
                             f"{len(self.logprobs)} log-probs)")


@dataclass
class EpisodeOutcome:
    """What ``episode_fn`` reports: the task's verdict and how the episode ended."""

    success: bool
    strict_success: bool = False
    steps: int = 0
    error: str = ""  # non-empty: the environment (or our code) failed; the rollout is not trained on
    seconds: float = 0.0


@dataclass
class Rollout:
    """One sampled episode. ``(task_id, seed)`` is its group; ``reward`` is set by ``assign_rewards``."""

    task_id: str
    seed: int
    sample: int  # index within the group
    iteration: int
    steps: list[StepSample] = field(default_factory=list)
    success: bool = False
    strict_success: bool = False
    n_steps: int = 0  # agent steps (a step whose policy call crashed has no sample)
    error: str = ""
    seconds: float = 0.0
    reward: float = 0.0
    worker: int = 0

    @property
    def group(self) -> tuple[str, int]:
        return (self.task_id, self.seed)

    @property
    def parsed_all(self) -> bool:
        return bool(self.steps) and all(s.parsed for s in self.steps)

    @property
    def n_tokens(self) -> int:
        return sum(len(s.tokens) for s in self.steps)

    # Tensors are sent between processes as numpy arrays: plain pickling, no shared-memory handles
    # that would tie a rollout's lifetime to the worker that produced it.
    def to_wire(self) -> "Rollout":
        steps = [dataclasses.replace(s, prompt=dataclasses.replace(s.prompt, image=s.prompt.image.numpy()))
                 for s in self.steps]
        return dataclasses.replace(self, steps=steps)

    def from_wire(self) -> "Rollout":
        steps = [dataclasses.replace(s, prompt=dataclasses.replace(s.prompt, image=torch.from_numpy(
            np.ascontiguousarray(s.prompt.image)))) if isinstance(s.prompt.image, np.ndarray) else s
            for s in self.steps]
        return dataclasses.replace(self, steps=steps)


@dataclass(frozen=True)
class RewardConfig:
    """Episode reward = success + format_reward * [every step parsed] - step_cost * steps."""

    format_reward: float = 0.1
    step_cost: float = 0.0
    success_reward: float = 1.0


def episode_reward(r: Rollout, cfg: RewardConfig) -> float:
    """Rule-based: the task's own success check, a small bonus when every response parsed, and an
    optional cost per step (prefers short solutions). Errored episodes get 0 (they are not trained on)."""
    if r.error:
        return 0.0
    return (cfg.success_reward * float(r.success) + cfg.format_reward * float(r.parsed_all)
            - cfg.step_cost * r.n_steps)


def assign_rewards(rollouts: Sequence[Rollout], cfg: RewardConfig) -> None:
    for r in rollouts:
        r.reward = episode_reward(r, cfg)


# ---------------------------------------------------------------------------------------------
# the sampling policy
# ---------------------------------------------------------------------------------------------
def restrict_vocabulary(model: MoEModel, allowed: Sequence[int] | None) -> None:
    """Constrain the model to a set of output tokens (an action vocabulary), for sampling *and*
    for the learner's log-probs, so the importance ratio compares the same distributions.

    Disallowed tokens get logit -inf. ``None`` removes the restriction. Implemented by shadowing
    ``model.logits`` on this instance (generate and the teacher-forced forward both call it); the
    weights are unchanged, so a checkpoint saved from this model loads as a plain MoE policy.
    """
    if "logits" in vars(model):
        del model.logits
    if allowed is None:
        return
    ids = sorted({int(i) for i in allowed})
    if not ids or ids[0] < 0 or ids[-1] >= model.cfg.vocab_size:
        raise ValueError(f"allowed token ids must be a non-empty subset of 0..{model.cfg.vocab_size - 1}")
    bias = torch.full((model.cfg.vocab_size,), float("-inf"))
    bias[ids] = 0.0
    plain = type(model).logits

    def logits(h: torch.Tensor, table: torch.Tensor | None = None, source=None) -> torch.Tensor:
        return plain(model, h, table, source) + bias.to(h.device)

    model.logits = logits  # an instance attribute: nn.Module stores plain callables as-is


def prepare_for_rl(model: MoEModel) -> MoEModel:
    """Routing that is a function of the token alone, identical at sampling and update time:
    router noise off, the balancing bias frozen, dropless (no capacity limit). Without this the
    expert set behind pi_old and pi_new could differ and the ratio would measure routing noise."""
    model.cfg.router_jitter = 0.0
    model.cfg.capacity_factor = None
    model.freeze_router_bias(True)
    return model


class SamplingPolicy(MoEPolicy):
    """A MoEPolicy that samples (temperature 1, top-p 1 by default) and records every step.

    ``begin(rng_seed)`` starts a rollout (fresh generator, empty record); ``samples`` then holds a
    StepSample per ``act`` call, including calls whose text did not parse (their tokens are
    trained on too: that is how the format reward reaches the tokens that broke it).
    """

    name = "moe-sampling"

    def __init__(self, model: MoEModel, tokenizer: GalagoTokenizer, *, temperature: float = 1.0,
                 top_p: float = 1.0, max_new_tokens: int | None = None, seed: int | None = None):
        # No grounding: the executed action must be the one the sampled tokens say (their log-probs are
        # trained); no grammar or box-state steering either, so the tokens are drawn from the model's
        # own distribution (on-policy) and the format reward still sees an unparseable point.
        super().__init__(model, tokenizer, max_new_tokens=max_new_tokens, temperature=temperature,
                         top_p=top_p, seed=seed if seed is not None else 0, ground=False, constrain=False,
                         verify=False)
        self.samples: list[StepSample] = []
        self._prompt: EncodedPrompt | None = None

    def begin(self, rng_seed: int) -> None:
        self.generator = torch.Generator().manual_seed(int(rng_seed))
        self.samples = []

    def encode(self, task, observation, history) -> EncodedPrompt:
        self._prompt = super().encode(task, observation, history)
        return self._prompt

    def act(self, task, observation, history) -> Step:
        self._prompt = None
        try:
            step = super().act(task, observation, history)
        except ActionParseError:
            self._record(parsed=False)
            raise
        self._record(parsed=True)
        return step

    def _record(self, parsed: bool) -> None:
        gen = self.last
        if gen is None or self._prompt is None:
            return
        tokens = list(gen.tokens[0]) + ([EOS] if gen.finished[0] else [])
        self.samples.append(StepSample(self._prompt, tokens, list(gen.logprobs[0]), parsed, self.last_text))


def rollout_seed(iteration: int, task_id: str, seed: int, sample: int, base: int = 0) -> int:
    """A sampling seed per (iteration, task, seed, sample): reproducible, distinct across a group."""
    h = hashlib.blake2b(f"{base}/{iteration}/{task_id}/{seed}/{sample}".encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little") & 0x7FFF_FFFF_FFFF


# ---------------------------------------------------------------------------------------------
# running one rollout
# ---------------------------------------------------------------------------------------------
EpisodeFn = Callable[[dict, SamplingPolicy, str, int, Any], EpisodeOutcome]


@dataclass(frozen=True)
class RolloutJob:
    iteration: int
    task_id: str
    seed: int
    sample: int
    rng_seed: int
    weights: str  # safetensors file holding the weights to sample from


def run_rollout(policy: SamplingPolicy, episode_fn: EpisodeFn, state: dict, options: Any,
                job: RolloutJob, worker: int = 0) -> Rollout:
    """Play one episode with ``policy`` and package it. Exceptions from ``episode_fn`` become
    ``Rollout.error`` (an errored rollout is logged, never trained on)."""
    policy.begin(job.rng_seed)
    t0 = time.perf_counter()
    r = Rollout(job.task_id, job.seed, job.sample, job.iteration, worker=worker)
    try:
        out = episode_fn(state, policy, job.task_id, job.seed, options)
        r.success, r.strict_success = bool(out.success), bool(out.strict_success)
        r.n_steps, r.error = int(out.steps), str(out.error or "")
    except Exception as e:  # the environment or our code; the pool goes on with the next job
        r.error = f"{type(e).__name__}: {e}"
    r.seconds = time.perf_counter() - t0
    r.steps = list(policy.samples)
    if r.error:
        r.success = r.strict_success = False
    return r


# ---------------------------------------------------------------------------------------------
# the worker pool
# ---------------------------------------------------------------------------------------------
@dataclass
class PoolSpec:
    """What a worker needs (pickled into each spawned process)."""

    config: dict  # MoEConfig.to_dict()
    tokenizer_path: str
    episode_fn: EpisodeFn
    options: Any = None  # passed to episode_fn
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int | None = None
    allowed_tokens: list[int] | None = None
    threads: int = 1


class _Worker:
    """A policy whose weights follow the jobs' weight files, plus the episode function's state."""

    def __init__(self, spec: PoolSpec, worker_id: int):
        self.spec, self.worker_id = spec, worker_id
        cfg = MoEConfig.from_dict(dict(spec.config))
        self.model = prepare_for_rl(MoEModel(cfg)).eval()
        restrict_vocabulary(self.model, spec.allowed_tokens)
        tok = GalagoTokenizer.load(spec.tokenizer_path)
        self.policy = SamplingPolicy(self.model, tok, temperature=spec.temperature, top_p=spec.top_p,
                                     max_new_tokens=spec.max_new_tokens)
        self.weights = ""
        self.state: dict = {}

    def run(self, job: RolloutJob) -> Rollout:
        if job.weights != self.weights:
            self.model.load_state_dict(load_file(job.weights), strict=True)
            self.weights = job.weights
        return run_rollout(self.policy, self.spec.episode_fn, self.state, self.spec.options, job, self.worker_id)

    def close(self) -> None:
        close = self.state.get("close")
        if callable(close):
            try:
                close()
            except Exception:  # closing a crashed browser may fail; the process ends anyway
                pass


def _worker_main(spec: PoolSpec, worker_id: int, jobs, results) -> None:
    torch.set_num_threads(max(1, spec.threads))
    try:
        w = _Worker(spec, worker_id)
    except BaseException as e:  # noqa: BLE001 - any setup failure goes to the parent, then exit
        results.put(("fatal", worker_id, f"rollout worker setup failed: {type(e).__name__}: {e}"))
        return
    results.put(("ready", worker_id, None))
    try:
        while True:
            job = jobs.get()
            if job is None:
                break
            results.put(("start", worker_id, job))
            try:
                r = w.run(job)
            except Exception as e:  # e.g. an unreadable weights file: report it as this job's error
                traceback.print_exc()
                r = Rollout(job.task_id, job.seed, job.sample, job.iteration, worker=worker_id,
                            error=f"{type(e).__name__}: {e}")
            results.put(("done", worker_id, r.to_wire()))
    finally:
        w.close()


class RolloutPool:
    """Runs rollout jobs in ``workers`` spawned processes that live across iterations (a browser
    launch costs seconds; an iteration's rollouts should not). ``workers=0`` runs in this process.

    Use as a context manager, or call ``close()``. A worker that dies or overruns the episode
    timeout is replaced and its job recorded as an errored rollout.
    """

    def __init__(self, spec: PoolSpec, workers: int = 1, episode_timeout_s: float = DEFAULT_EPISODE_TIMEOUT_S):
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.spec, self.workers, self.timeout = spec, workers, episode_timeout_s
        self._local: _Worker | None = None
        self._procs: dict[int, Any] = {}
        self._next_id = 0
        if workers > 0:
            import multiprocessing as mp

            self._mp = mp.get_context("spawn")  # fork would copy live Playwright/torch threads
            self._jobs = self._mp.Queue()
            self._results = self._mp.SimpleQueue()  # synchronous puts: see agent.evaluate._run_processes
            for _ in range(workers):
                self._spawn()

    def _spawn(self) -> None:
        p = self._mp.Process(target=_worker_main, args=(self.spec, self._next_id, self._jobs, self._results),
                             daemon=True, name=f"galago-rollout-{self._next_id}")
        p.start()
        self._procs[self._next_id] = p
        self._next_id += 1

    def run(self, jobs: Sequence[RolloutJob], on_done: Callable[[Rollout], None] | None = None) -> list[Rollout]:
        """Run ``jobs``; returns their rollouts in job order. ``on_done`` sees each as it arrives."""
        from agent.evaluate import poll_queue  # the same worker-pool plumbing as the eval runner
        if self.workers == 0:
            if self._local is None:
                torch_threads = torch.get_num_threads()
                self._local = _Worker(self.spec, 0)
                torch.set_num_threads(torch_threads)
            out = []
            for j in jobs:
                r = self._local.run(j)
                out.append(r)
                if on_done:
                    on_done(r)
            return out
        key = lambda j: (j.task_id, j.seed, j.sample)  # noqa: E731
        for j in jobs:
            self._jobs.put(j)
        results: dict[tuple, Rollout] = {}
        inflight: dict[int, tuple[RolloutJob, float]] = {}
        while len(results) < len(jobs):
            try:
                kind, wid, data = poll_queue(self._results, 1.0)
            except queue.Empty:
                for r in self._reap(inflight):
                    results[key(r)] = r
                    if on_done:
                        on_done(r)
                if not self._procs:
                    raise GalagoError("every rollout worker exited")
                continue
            if kind == "fatal":
                raise GalagoError(data)
            if kind == "start":
                inflight[wid] = (data, time.monotonic())
            elif kind == "done":
                inflight.pop(wid, None)
                r = data.from_wire()
                results[key(r)] = r
                if on_done:
                    on_done(r)
        return [results[key(j)] for j in jobs]

    def _reap(self, inflight: dict) -> list[Rollout]:
        lost = []
        now = time.monotonic()
        for wid, p in list(self._procs.items()):
            stuck = wid in inflight and now - inflight[wid][1] > self.timeout
            if p.is_alive() and not stuck:
                continue
            if stuck:
                p.terminate()
                p.join(timeout=5)
            del self._procs[wid]
            if wid in inflight:
                job, t0 = inflight.pop(wid)
                why = (f"episode exceeded {self.timeout:.0f} s" if stuck
                       else f"rollout worker died (exit code {p.exitcode})")
                lost.append(Rollout(job.task_id, job.seed, job.sample, job.iteration, worker=wid, error=why,
                                    seconds=now - t0))
            self._spawn()
        return lost

    def close(self) -> None:
        if self._local is not None:
            self._local.close()
            self._local = None
        if self.workers == 0:
            return
        for _ in self._procs:
            self._jobs.put(None)
        for p in self._procs.values():
            p.join(timeout=15)
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
        self._procs.clear()
        self._jobs.cancel_join_thread()

    def __enter__(self) -> "RolloutPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_weights(model: MoEModel, path: str | Path) -> Path:
    """The model's weights as a safetensors file (atomically), for the workers to load."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(path)
    return path
