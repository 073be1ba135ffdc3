"""GRPO for the built-in MoE policy: whole multi-turn episodes, rule-based rewards, no value model.

The objective (DeepSeekMath / DeepSeek-R1, shared/notes/models.md §2.1), maximised::

    J = mean_i [ (1/|o_i|) sum_t ( min(rho_t A_i, clip(rho_t, 1-eps, 1+eps) A_i) - beta KL_t ) ]

* ``o_i`` is rollout i: every generated token of every step of the episode (|o_i| tokens in all);
* ``rho_t = pi_theta(tok) / pi_old(tok)``, pi_old's log-probs are stored at sampling time;
* ``A_i = (r_i - mean(r)) / (std(r) + adv_eps)`` over the G rollouts of one (task, seed) group,
  ``std`` the sample standard deviation (Bessel-corrected, as TRL); groups whose rewards all tie
  carry no signal and are skipped (DAPO's dynamic sampling, without resampling);
* ``KL_t = exp(ref - new) - (ref - new) - 1`` (the non-negative "k3" estimator) against a frozen
  copy of the initial policy.

For an MoE the ratio only means something if the same experts serve a token at sampling and at
update time: ``prepare_for_rl`` freezes the balancing bias, turns router noise off and drops the
capacity limit (rollout.py). The router weights still learn; they change like any other weight.

``train_grpo`` is the loop (sample -> reward -> update -> log -> checkpoint); it is given the task
ids and an ``episode_fn`` (see rollout.py) so it needs nothing from agent/ or tasks/.
"""
from __future__ import annotations

import copy
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from safetensors.torch import load_file, save_file

from actions.errors import ConfigError
from policy.moe.generate import sequence_logprobs
from policy.moe.model import MoEModel
from policy.moe.pretrained import build_model, from_pretrained
from policy.moe.tokenizer import GalagoTokenizer
from policy.train.distill import load_checkpoint, make_optimizer, save_checkpoint
from policy.train.rollout import (EpisodeFn, PoolSpec, RewardConfig, Rollout, RolloutJob, RolloutPool,
                                  StepSample, assign_rewards, prepare_for_rl, restrict_vocabulary,
                                  rollout_seed, write_weights)

STATE_DIR = "train_state"
LOG_FILE = "grpo.jsonl"
REFERENCE_FILE = "reference.safetensors"


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------
class GRPOConfig(BaseModel):
    """Hyper-parameters of a GRPO run (saved in train_state/state.json; a resume must match)."""

    model_config = ConfigDict(extra="forbid")

    group: int = Field(8, ge=2, description="rollouts per (task, seed) group (G)")
    iterations: int = Field(50, ge=1)
    seeds_per_task: int = Field(1, ge=1, description="groups per task per iteration")
    beta: float = Field(0.02, ge=0, description="KL penalty to the reference policy")
    clip_eps: float = Field(0.2, gt=0, lt=1, description="epsilon of the clipped ratio")
    adv_eps: float = Field(1e-4, gt=0, description="added to the group std of rewards")
    tie_tol: float = Field(1e-9, ge=0, description="a group whose rewards span <= this is skipped")
    lr: float = Field(2e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(1.0, ge=0, description="0 = no clipping")
    epochs: int = Field(1, ge=1, description="passes over an iteration's rollouts")
    minibatches: int = Field(2, ge=1, description="optimiser steps per pass (rollouts split evenly)")
    micro_batch: int = Field(16, ge=1, description="step samples per forward pass (gradient accumulation)")
    format_reward: float = 0.1
    step_cost: float = Field(0.0, ge=0)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int | None = Field(None, ge=1)
    allowed_tokens: list[int] | None = Field(None, description="restrict outputs to these token ids")
    split: str = "train"
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> "GRPOConfig":
        if self.split not in ("train", "test"):
            raise ValueError(f"split must be train or test, got {self.split!r}")
        return self

    @property
    def rewards(self) -> RewardConfig:
        return RewardConfig(format_reward=self.format_reward, step_cost=self.step_cost)


# ---------------------------------------------------------------------------------------------
# advantages and the loss (pure functions; tests check them against hand-computed numbers)
# ---------------------------------------------------------------------------------------------
def group_advantages(rewards: Sequence[float], adv_eps: float = 1e-4, tie_tol: float = 1e-9) -> list[float] | None:
    """(r - mean) / (std + adv_eps) with the sample std; None when the rewards tie (no signal)."""
    n = len(rewards)
    if n < 2 or max(rewards) - min(rewards) <= tie_tol:
        return None
    mean = sum(rewards) / n
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / (n - 1))
    return [(r - mean) / (std + adv_eps) for r in rewards]


@dataclass
class Advantages:
    """Advantages of the rollouts that carry signal, by position in the input list."""

    values: dict[int, float]
    groups_used: int
    groups_skipped: int  # tied rewards (or fewer than 2 usable rollouts)
    errored: int  # rollouts dropped because the environment failed


def compute_advantages(rollouts: Sequence[Rollout], adv_eps: float = 1e-4, tie_tol: float = 1e-9) -> Advantages:
    """Group by (task, seed); rollouts with an environment error, or no policy step, are left out."""
    groups: dict[tuple[str, int], list[int]] = {}
    errored = 0
    for i, r in enumerate(rollouts):
        if r.error or not r.steps:
            errored += bool(r.error)
            continue
        groups.setdefault(r.group, []).append(i)
    values: dict[int, float] = {}
    used = skipped = 0
    for idx in groups.values():
        adv = group_advantages([rollouts[i].reward for i in idx], adv_eps, tie_tol)
        if adv is None:
            skipped += 1
            continue
        used += 1
        values.update(zip(idx, adv))
    return Advantages(values, used, skipped, errored)


@dataclass
class LossOutput:
    loss: torch.Tensor  # scalar, to minimise (= -J)
    kl: float  # token-weighted mean k3 KL
    clip_frac: float  # token-weighted fraction of tokens whose clipped term was the active one
    ratio: float  # token-weighted mean ratio
    weight: float  # sum of the token weights (the denominator used for the stats)


def k3_kl(new_logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token KL(pi_theta || pi_ref) estimate: exp(ref - new) - (ref - new) - 1 (>= 0)."""
    d = ref_logp - new_logp
    return torch.exp(d) - d - 1


def grpo_loss(new_logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor | None,
              advantages: torch.Tensor, mask: torch.Tensor, *, clip_eps: float = 0.2, beta: float = 0.0,
              token_weights: torch.Tensor | None = None) -> LossOutput:
    """The clipped GRPO loss over a batch of sequences.

    Tensors are [B, T] (``mask`` True on real tokens), ``advantages`` is [B]. Without
    ``token_weights`` each row's tokens are averaged and the rows averaged (DeepSeekMath's
    1/G sum_i 1/|o_i| sum_t). With them the loss is -sum(w * objective): the learner uses this to
    weight each step of a multi-step rollout by 1/(tokens of the whole rollout * rollouts), which
    keeps gradient accumulation over micro-batches exact.
    """
    mask = mask.to(new_logp.dtype)
    if token_weights is None:
        per_row = mask.sum(1, keepdim=True).clamp(min=1)
        token_weights = mask / per_row / max(1, new_logp.shape[0])
    w = token_weights * mask
    adv = advantages.to(new_logp.dtype)[:, None]
    ratio = torch.exp(new_logp - old_logp)
    unclipped = ratio * adv
    clipped = ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv
    surrogate = torch.minimum(unclipped, clipped)
    objective = surrogate
    kl = torch.zeros_like(new_logp)
    if beta > 0 and ref_logp is not None:
        kl = k3_kl(new_logp, ref_logp)
        objective = objective - beta * kl
    elif ref_logp is not None:
        kl = k3_kl(new_logp, ref_logp).detach()  # reported even when it is not penalised
    loss = -(w * objective).sum()
    with torch.no_grad():
        total = float(w.sum())
        denom = total if total > 0 else 1.0
        # the clipped branch is the active (gradient-free) one
        is_clipped = (clipped < unclipped).to(w.dtype)
        stats = (float((w * kl).sum()) / denom, float((w * is_clipped).sum()) / denom,
                 float((w * ratio).sum()) / denom)
    return LossOutput(loss, *stats, weight=total)


# ---------------------------------------------------------------------------------------------
# the learner
# ---------------------------------------------------------------------------------------------
@dataclass
class UpdateStats:
    groups_used: int = 0
    groups_skipped: int = 0
    errored: int = 0
    rollouts_trained: int = 0
    samples: int = 0  # step samples trained on (per pass)
    tokens: int = 0
    optimizer_steps: int = 0
    loss: float = 0.0
    kl: float = 0.0
    clip_frac: float = 0.0
    ratio: float = 1.0
    first_ratio_dev: float = 0.0  # max |ratio - 1| before the first step: ~0 when rollout == update
    aux: float = 0.0
    grad_norm: float = 0.0
    seconds: float = 0.0


@dataclass
class _Item:
    sample: StepSample
    rollout: int  # index into the selected rollouts
    advantage: float
    ref_logp: torch.Tensor | None = None


class GRPOLearner:
    """Holds the trainable policy, the frozen reference and the optimiser; ``update(rollouts)`` does
    one iteration's policy-gradient steps on rollouts that already carry rewards."""

    def __init__(self, model: MoEModel, cfg: GRPOConfig, reference: MoEModel | None = None,
                 optimizer: torch.optim.Optimizer | None = None):
        self.cfg = cfg
        self.reference = None
        if cfg.beta > 0 or reference is not None:
            restrict_vocabulary(model, None)  # deepcopy must not carry a mask bound to `model`
            ref = reference if reference is not None else copy.deepcopy(model)
            self.reference = prepare_for_rl(ref).eval().requires_grad_(False)
            restrict_vocabulary(self.reference, cfg.allowed_tokens)
        self.model = prepare_for_rl(model)
        restrict_vocabulary(self.model, cfg.allowed_tokens)
        self.opt = optimizer or make_optimizer(self.model, cfg.lr, cfg.weight_decay)
        self._rng = random.Random(cfg.seed)

    def _ref_logprobs(self, items: list[_Item]) -> None:
        if self.reference is None:
            return
        with torch.no_grad():
            for s in range(0, len(items), self.cfg.micro_batch):
                chunk = items[s:s + self.cfg.micro_batch]
                lp, _ = sequence_logprobs(self.reference, [it.sample.prompt for it in chunk],
                                          [it.sample.tokens for it in chunk], self.cfg.temperature)
                for it, row in zip(chunk, lp):
                    it.ref_logp = row[:len(it.sample.tokens)].clone()

    def update(self, rollouts: Sequence[Rollout]) -> UpdateStats:
        t0 = time.perf_counter()
        cfg = self.cfg
        adv = compute_advantages(rollouts, cfg.adv_eps, cfg.tie_tol)
        st = UpdateStats(groups_used=adv.groups_used, groups_skipped=adv.groups_skipped, errored=adv.errored)
        chosen = sorted(adv.values)
        st.rollouts_trained = len(chosen)
        if not chosen:
            st.seconds = time.perf_counter() - t0
            return st
        # one item per step sample; every token of rollout i is weighted by 1/|o_i|
        per_rollout: list[list[_Item]] = []
        for k, i in enumerate(chosen):
            per_rollout.append([_Item(s, k, adv.values[i]) for s in rollouts[i].steps])
        all_items = [it for its in per_rollout for it in its]
        self._ref_logprobs(all_items)
        n_tok = [sum(len(it.sample.tokens) for it in its) for its in per_rollout]
        st.samples, st.tokens = len(all_items), sum(n_tok)

        self.model.train()
        sums = dict(loss=0.0, kl=0.0, clip=0.0, ratio=0.0, w=0.0, aux=0.0, gn=0.0)
        first = True
        for _ in range(cfg.epochs):
            order = list(range(len(per_rollout)))
            self._rng.shuffle(order)
            n_mb = min(cfg.minibatches, len(order))
            for m in range(n_mb):
                mb = order[m::n_mb]
                items = [it for k in mb for it in per_rollout[k]]
                self.opt.zero_grad(set_to_none=True)
                for s in range(0, len(items), cfg.micro_batch):
                    chunk = items[s:s + cfg.micro_batch]
                    out, aux = self._micro_step(chunk, n_tok, len(mb), len(items))
                    if first:
                        st.first_ratio_dev = max(st.first_ratio_dev, self._last_ratio_dev)
                    for k, v in (("loss", float(out.loss.detach())), ("kl", out.kl * out.weight),
                                 ("clip", out.clip_frac * out.weight), ("ratio", out.ratio * out.weight),
                                 ("w", out.weight), ("aux", aux)):
                        sums[k] += v
                first = False
                if cfg.grad_clip > 0:
                    sums["gn"] += float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip))
                self.opt.step()
                self.model.update_router_bias()  # bias frozen: this only resets the per-step load
                st.optimizer_steps += 1
        self.model.eval()
        w = sums["w"] or 1.0
        st.loss = sums["loss"] / max(1, st.optimizer_steps)
        st.kl, st.clip_frac, st.ratio = sums["kl"] / w, sums["clip"] / w, sums["ratio"] / w
        st.aux = sums["aux"] / max(1, st.optimizer_steps)
        st.grad_norm = sums["gn"] / max(1, st.optimizer_steps)
        st.seconds = time.perf_counter() - t0
        return st

    def _micro_step(self, chunk: list[_Item], n_tok: list[int], n_rollouts: int, n_items: int):
        prompts = [it.sample.prompt for it in chunk]
        targets = [it.sample.tokens for it in chunk]
        new_lp, mask = sequence_logprobs(self.model, prompts, targets, self.cfg.temperature)
        B, T = new_lp.shape
        old = torch.zeros(B, T)
        ref = torch.zeros(B, T) if self.reference is not None else None
        weights = torch.zeros(B, T)
        for b, it in enumerate(chunk):
            n = len(it.sample.tokens)
            old[b, :n] = torch.tensor(it.sample.logprobs, dtype=old.dtype)
            if ref is not None:
                ref[b, :n] = it.ref_logp
            weights[b, :n] = 1.0 / (n_tok[it.rollout] * n_rollouts)
        advantages = torch.tensor([it.advantage for it in chunk])
        out = grpo_loss(new_lp, old, ref, advantages, mask, clip_eps=self.cfg.clip_eps, beta=self.cfg.beta,
                        token_weights=weights)
        with torch.no_grad():
            self._last_ratio_dev = float(((new_lp - old).exp() - 1).abs().masked_fill(~mask, 0).max())
        aux = self.model.aux_loss() * (len(chunk) / n_items)  # the balance loss of this forward pass
        (out.loss + aux).backward()
        return out, float(aux.detach())


# ---------------------------------------------------------------------------------------------
# the training loop
# ---------------------------------------------------------------------------------------------
@dataclass
class IterationLog:
    """One line of grpo.jsonl."""

    iteration: int
    episodes: int
    mean_reward: float
    success: float
    strict_success: float
    parsed: float  # fraction of rollouts whose every response parsed
    mean_steps: float
    errors: int
    groups_used: int
    groups_skipped: int
    kl: float
    clip_frac: float
    ratio: float
    first_ratio_dev: float
    loss: float
    grad_norm: float
    routing_max_over_mean: float  # worst MoE layer's max/mean expert load in the update (1 = balanced)
    dead_experts: int
    episodes_per_min: float
    rollout_s: float
    learner_s: float
    per_task: dict = field(default_factory=dict)  # task -> success rate this iteration


@dataclass
class GRPOResult:
    out_dir: Path
    iterations: int
    logs: list[IterationLog]


def random_init(tokenizer: GalagoTokenizer, preset: str = "tiny", seed: int = 0, **overrides) -> MoEModel:
    """A freshly initialised policy sized by a distill config preset (``tiny`` or ``default``)."""
    from policy.train.distill import config_preset

    return build_model(config_preset(preset, **overrides), tokenizer, seed=seed)


def _save_reference(out: Path, model: MoEModel) -> None:
    sd = out / STATE_DIR
    sd.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(sd / REFERENCE_FILE))


def _load_reference(out: Path, model: MoEModel) -> MoEModel:
    ref = copy.deepcopy(model)
    path = out / STATE_DIR / REFERENCE_FILE
    if not path.is_file():
        raise ConfigError(f"cannot resume from {out}: {path} is missing")
    ref.load_state_dict(load_file(str(path)), strict=True)
    return ref


def _summarise(it: int, rollouts: list[Rollout], st: UpdateStats, model: MoEModel, rollout_s: float) -> IterationLog:
    n = max(1, len(rollouts))
    per_task: dict[str, list[bool]] = {}
    for r in rollouts:
        per_task.setdefault(r.task_id, []).append(r.success)
    stats = model.routing_stats()
    model.reset_routing_stats()
    return IterationLog(
        iteration=it, episodes=len(rollouts), mean_reward=sum(r.reward for r in rollouts) / n,
        success=sum(r.success for r in rollouts) / n, strict_success=sum(r.strict_success for r in rollouts) / n,
        parsed=sum(r.parsed_all for r in rollouts) / n, mean_steps=sum(r.n_steps for r in rollouts) / n,
        errors=sum(bool(r.error) for r in rollouts), groups_used=st.groups_used, groups_skipped=st.groups_skipped,
        kl=st.kl, clip_frac=st.clip_frac, ratio=st.ratio, first_ratio_dev=st.first_ratio_dev, loss=st.loss,
        grad_norm=st.grad_norm,
        routing_max_over_mean=max((s.max_over_mean for s in stats), default=0.0),
        dead_experts=sum(s.dead for s in stats if s.tokens),
        episodes_per_min=len(rollouts) / rollout_s * 60 if rollout_s > 0 else 0.0,
        rollout_s=rollout_s, learner_s=st.seconds,
        per_task={t: sum(v) / len(v) for t, v in per_task.items()})


def train_grpo(out_dir: str | Path, task_ids: Sequence[str], episode_fn: EpisodeFn, episode_options: Any = None,
               *, init: str | Path | None = None, model: MoEModel | None = None,
               tokenizer: GalagoTokenizer | None = None, cfg: GRPOConfig | None = None, workers: int = 1,
               resume: bool = False, threads: int | None = None, episode_timeout_s: float = 600.0,
               on_iteration: Callable[[IterationLog], None] | None = None,
               on_rollout: Callable[[Rollout], None] | None = None) -> GRPOResult:
    """Run GRPO and leave a loadable policy (``moe:OUT``) plus train_state/ and grpo.jsonl in ``out_dir``.

    The starting policy is ``init`` (a policy directory) or ``model`` + ``tokenizer`` (e.g.
    ``random_init``); ``resume=True`` continues a run in ``out_dir`` (its config must match).
    Each iteration samples ``cfg.group`` rollouts for ``cfg.seeds_per_task`` seeds of every task
    (seeds ``cfg.seed + iteration * seeds_per_task + j`` of ``cfg.split``) in ``workers`` processes.
    """
    cfg = cfg or GRPOConfig()
    if not task_ids:
        raise ConfigError("no tasks to train on")
    out = Path(out_dir)
    state_file = out / STATE_DIR / "state.json"
    if resume:
        if not state_file.is_file():
            raise ConfigError(f"--resume: no GRPO checkpoint in {out} ({STATE_DIR}/state.json missing)")
        model, tokenizer = from_pretrained(out)
    elif init is not None:
        model, tokenizer = from_pretrained(init)
    elif model is None or tokenizer is None:
        raise ConfigError("give an initial policy directory (init) or a model and its tokenizer")
    elif state_file.is_file():
        raise ConfigError(f"{out} already holds a training run; use resume or another output folder")
    if threads:
        torch.set_num_threads(threads)

    reference = _load_reference(out, model) if resume else None
    learner = GRPOLearner(model, cfg, reference=reference)
    start = 0
    if resume:
        state = load_checkpoint(out, learner.model, learner.opt)
        if state.get("kind") != "grpo":
            raise ConfigError(f"{out} holds a {state.get('kind', 'distill')} checkpoint, not a GRPO run")
        old = GRPOConfig.model_validate(state["config"])
        diff = {k for k in GRPOConfig.model_fields if k != "iterations" and getattr(old, k) != getattr(cfg, k)}
        if diff:
            raise ConfigError(f"cannot resume {out} with different settings: {', '.join(sorted(diff))}")
        if list(state.get("tasks", [])) != list(task_ids):
            raise ConfigError(f"cannot resume {out} on other tasks ({state.get('tasks')} there)")
        start = int(state["iteration"])
    else:
        out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        _save_reference(out, learner.reference if learner.reference is not None else learner.model)

    roll_dir = out / "rollout"
    roll_dir.mkdir(exist_ok=True)
    tokenizer.save(roll_dir / "tokenizer.json")
    spec = PoolSpec(config=learner.model.cfg.to_dict(), tokenizer_path=str(roll_dir / "tokenizer.json"),
                    episode_fn=episode_fn, options=episode_options, temperature=cfg.temperature, top_p=cfg.top_p,
                    max_new_tokens=cfg.max_new_tokens, allowed_tokens=cfg.allowed_tokens,
                    threads=1 if workers > 0 else torch.get_num_threads())
    logs: list[IterationLog] = []
    if start >= cfg.iterations:
        return GRPOResult(out, start, logs)
    with RolloutPool(spec, workers, episode_timeout_s) as pool, open(out / LOG_FILE, "a", encoding="utf-8") as logf:
        for it in range(start, cfg.iterations):
            weights = write_weights(learner.model, roll_dir / f"weights-{it:06d}.safetensors")
            jobs = []
            for j in range(cfg.seeds_per_task):
                seed = cfg.seed + it * cfg.seeds_per_task + j
                for task in task_ids:
                    jobs += [RolloutJob(it, task, seed, k, rollout_seed(it, task, seed, k, cfg.seed), str(weights))
                             for k in range(cfg.group)]
            t0 = time.perf_counter()
            rollouts = pool.run(jobs, on_rollout)
            rollout_s = time.perf_counter() - t0
            assign_rewards(rollouts, cfg.rewards)
            learner.model.reset_routing_stats()
            st = learner.update(rollouts)
            log = _summarise(it, rollouts, st, learner.model, rollout_s)
            logs.append(log)
            logf.write(json.dumps(asdict(log)) + "\n")
            logf.flush()
            save_checkpoint(out, learner.model, tokenizer, learner.opt,
                            {"kind": "grpo", "iteration": it + 1, "step": it + 1, "config": cfg.model_dump(),
                             "tasks": list(task_ids), "init": str(init) if init else None})
            weights.unlink(missing_ok=True)
            if on_iteration:
                on_iteration(log)
    return GRPOResult(out, max(start, cfg.iterations), logs)
