"""Distillation (SFT) of the built-in MoE policy on oracle demonstrations.

``train_distill(data_dirs, out_dir, ...)``: loss on the target text only (next-token cross-entropy
over the response + <|eos|>) plus the MoE balance losses; AdamW, linear warm-up then cosine decay,
gradient clipping, the router-bias sign rule after every optimiser step; periodic checkpoints that
can be resumed (``resume=True``) and an optional evaluation callback.

Checkpoint layout (OUT is also a loadable policy directory at every save)::

    OUT/config.json  OUT/model.safetensors  OUT/tokenizer.json      the policy (save_pretrained)
    OUT/train_state/optimizer.safetensors                           AdamW moments + RNG state
    OUT/train_state/state.json                                      step, hyper-parameters, losses
    OUT/metrics.jsonl                                               one line per log / eval

Nothing is pickled: tensors go to safetensors, scalars to JSON, so a checkpoint from elsewhere can
be loaded without running its code.
"""
from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

from actions.errors import ConfigError
from perception.observation import Element
from policy.moe.config import MoEConfig
from policy.moe.generate import generate
from policy.moe.model import MoEModel
from policy.moe.policy import MoEPolicy
from policy.moe.pretrained import build_model, from_pretrained, save_pretrained
from policy.moe.prompt import EncodedPrompt, collate, encode_observation, encode_target
from policy.moe.tokenizer import GalagoTokenizer
from policy.train.data import DemoStep, load_demos
from policy.train.relabel import relabel

EvalFn = Callable[[int, MoEPolicy], "dict | None"]
STATE_DIR = "train_state"
FOCUS_FILE = "focus.safetensors"  # train_state/: which examples count as learned (--focus)


@dataclass
class TrainResult:
    out_dir: Path
    steps: int  # optimiser steps done in total (including resumed ones)
    final_loss: float
    samples_per_s: float
    skipped: int  # demonstrations dropped because prompt + target exceed max_seq_len
    n_examples: int


class DemoDataset:
    """Demonstrations encoded for the model; encodings are cached (about image_size² * 3 bytes each)."""

    def __init__(self, items: Sequence[tuple[Path, DemoStep]], tok: GalagoTokenizer, cfg: MoEConfig,
                 cache: bool = True):
        self.tok, self.cfg, self.cache = tok, cfg, cache
        self.items: list[tuple[Path, DemoStep, list[int]]] = []
        self.skipped = 0
        self._enc: dict[int, EncodedPrompt] = {}
        self.lengths: list[int] = []
        for d, s in items:
            self.items.append((d, s, encode_target(tok, s.target)))

    def __len__(self) -> int:
        return len(self.items)

    def prompt(self, i: int) -> EncodedPrompt:
        if i in self._enc:
            return self._enc[i]
        d, s, _ = self.items[i]
        with Image.open(s.image_path(d)) as im:
            p = encode_observation(self.tok, self.cfg, s.instruction, im, s.width, s.height,
                                   s.element_objects(), s.history)
        if self.cache:
            self._enc[i] = p
        return p

    def target(self, i: int) -> list[int]:
        return self.items[i][2]

    def example(self, i: int, relabel_p: float = 0.0, salt: int = 0) -> tuple[EncodedPrompt, list[int]]:
        """(prompt, target) of item ``i``; with probability ``relabel_p`` its quoted labels are renamed
        (policy/train/relabel.py), decided and drawn from ``salt`` and ``i`` so a resumed run repeats it."""
        p = self.prompt(i)
        if relabel_p <= 0:
            return p, self.target(i)
        rng = random.Random(salt * 1_000_003 + i)
        if rng.random() >= relabel_p:
            return p, self.target(i)
        _, s, _ = self.items[i]
        instruction, elements, history, target = relabel(s.instruction, s.elements, s.history, s.target, rng)
        if target == s.target and instruction == s.instruction:
            return p, self.target(i)
        q = encode_observation(self.tok, self.cfg, instruction, None, s.width, s.height,
                               [Element.from_dict(e) for e in elements], history)
        q.image = p.image
        t = encode_target(self.tok, target)
        if len(q) + len(t) > self.cfg.max_seq_len - self.cfg.n_patches:
            return p, self.target(i)
        return q, t

    def drop_too_long(self) -> None:
        keep, lengths = [], []
        room = self.cfg.max_seq_len - self.cfg.n_patches
        for i in range(len(self.items)):
            n = len(self.prompt(i)) + len(self.target(i))
            if n <= room:
                keep.append(i)
                lengths.append(n)
        self.skipped = len(self.items) - len(keep)
        enc = {n: self._enc[i] for n, i in enumerate(keep) if i in self._enc}
        self.items = [self.items[i] for i in keep]
        self._enc = enc
        self.lengths = lengths  # text tokens of each example (prompt + target), for length bucketing


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int, bucket: bool,
                  subset: Sequence[int] | None = None) -> list[list[int]]:
    """One epoch's batches: a deterministic shuffle per epoch (resuming needs no sampler state).

    With ``bucket`` the shuffled examples are cut into pools of 64 batches, each pool sorted by length
    and cut into batches, and the batches shuffled: a batch is padded to its longest example, so
    examples of like length waste less of it (random batches of the demonstrations are about half
    padding). Every example (of ``subset``, when given) is used once per epoch either way (the last
    partial batch is left out).
    """
    rng = random.Random(seed * 100003 + epoch)
    idx = list(range(len(lengths))) if subset is None else list(subset)
    rng.shuffle(idx)
    idx = idx[:len(idx) // batch_size * batch_size]
    if bucket:
        pool = 64 * batch_size
        idx = [i for s in range(0, len(idx), pool) for i in sorted(idx[s:s + pool], key=lengths.__getitem__)]
    batches = [idx[s:s + batch_size] for s in range(0, len(idx), batch_size)]
    if bucket:
        rng.shuffle(batches)
    return batches


LEARNED_P = 0.5  # an example is learned when every target token has at least this probability


def focus_subset(learned: Sequence[bool], keep: float, seed: int, epoch: int, batch_size: int) -> list[int]:
    """The examples of a focused epoch: every one not yet learned, and each learned one with
    probability ``keep`` (drawn from ``seed`` and ``epoch``), topped up with learned ones to a batch."""
    rng = random.Random(seed * 100019 + epoch)
    idx = [i for i, done in enumerate(learned) if not done or rng.random() < keep]
    if len(idx) < batch_size:
        rest = sorted(set(range(len(learned))) - set(idx))
        idx = sorted(idx + rng.sample(rest, min(len(rest), batch_size - len(idx))))
    return idx


def tokenizer_texts(items: Sequence[tuple[Path, DemoStep]]):
    """The text the tokenizer is trained on: everything the prompt and the response contain."""
    for _, s in items:
        yield s.instruction
        yield s.target
        yield from s.history
        for e in s.elements:
            yield str(e.get("role", ""))
            yield str(e.get("text", ""))
            if e.get("value"):
                yield str(e["value"])


def lr_at(step: int, total: int, lr: float, warmup: int, min_ratio: float, done: float | None = None) -> float:
    """Linear warm-up to ``lr`` over ``warmup`` steps, then cosine decay to ``min_ratio * lr`` by step
    ``total``, or by the share ``done`` of a time budget when one is given (whichever is further)."""
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    if done is not None:
        t = max(t, done)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def make_optimizer(model: MoEModel, lr: float, weight_decay: float) -> torch.optim.AdamW:
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95), eps=1e-8)


# ---- checkpoints --------------------------------------------------------------------------------
def save_checkpoint(out_dir: Path, model: MoEModel, tok: GalagoTokenizer, opt: torch.optim.Optimizer,
                    state: dict) -> None:
    save_pretrained(model, tok, out_dir)
    sd = out_dir / STATE_DIR
    sd.mkdir(parents=True, exist_ok=True)
    names = {id(p): n for n, p in model.named_parameters()}
    tensors = {"rng.torch": torch.get_rng_state()}
    for group in opt.param_groups:
        for p in group["params"]:
            for k, v in opt.state.get(p, {}).items():
                t = v if torch.is_tensor(v) else torch.tensor(float(v))
                tensors[f"{names[id(p)]}::{k}"] = t.detach().cpu().contiguous().reshape(t.shape)
    tmp = sd / "optimizer.safetensors.tmp"
    save_file(tensors, str(tmp))
    tmp.replace(sd / "optimizer.safetensors")
    (sd / "state.json.tmp").write_text(json.dumps(state, indent=2) + "\n")
    (sd / "state.json.tmp").replace(sd / "state.json")


def load_checkpoint(out_dir: Path, model: MoEModel, opt: torch.optim.Optimizer) -> dict:
    sd = out_dir / STATE_DIR
    try:
        state = json.loads((sd / "state.json").read_text())
        tensors = load_file(str(sd / "optimizer.safetensors"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot resume from {out_dir}: {e}") from None
    params = dict(model.named_parameters())
    for key, t in tensors.items():
        if key == "rng.torch":
            torch.set_rng_state(t)
            continue
        name, _, k = key.partition("::")
        if name not in params:
            raise ConfigError(f"cannot resume from {out_dir}: optimizer state for unknown parameter {name}")
        opt.state[params[name]][k] = t
    return state


# ---- evaluation helper ----------------------------------------------------------------------------
@torch.no_grad()
def exact_match(model: MoEModel, tok: GalagoTokenizer, dataset: DemoDataset, limit: int | None = None,
                batch_size: int = 16) -> float:
    """Fraction of demonstrations whose greedy response equals the target text exactly."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    hits = 0
    for s in range(0, n, batch_size):
        idx = list(range(s, min(n, s + batch_size)))
        gen = generate(model, [dataset.prompt(i) for i in idx], max_new_tokens=max(len(dataset.target(i)) for i in idx) + 2)
        hits += sum(tok.decode(g) == dataset.items[i][1].target for g, i in zip(gen.tokens, idx))
    return hits / max(1, n)


# ---- the loop -----------------------------------------------------------------------------------
PROMPT_LIMITS = ("max_elements", "max_instruction_tokens")


def train_distill(data_dirs: str | Path | Sequence[str | Path], out_dir: str | Path,
                  config: MoEConfig | None = None, steps: int = 3000, batch_size: int = 16,
                  lr: float = 1e-3, warmup: int = 100, *, weight_decay: float = 0.1,
                  grad_clip: float = 1.0, min_lr_ratio: float = 0.1, seed: int = 0, resume: bool = False,
                  save_every: int = 500, log_every: int = 10, eval_every: int = 0,
                  eval_fn: EvalFn | None = None, only_success: bool = True, vocab_size: int = 4096,
                  tokenizer: GalagoTokenizer | None = None, num_threads: int | None = 2,
                  cache: bool = True, progress: bool = True, relabel_p: float = 0.0,
                  prompt_limits: dict[str, int] | None = None, upgrade_tokenizer: bool = False,
                  init: str | Path | None = None, bucket: bool = True,
                  minutes: float | None = None, focus: float | None = None) -> TrainResult:
    """Train (or resume training) a MoE policy on the demonstrations in ``data_dirs``.

    ``steps`` is the total number of optimiser steps (a resumed run continues up to it).
    ``eval_fn(step, policy)`` is called every ``eval_every`` steps and at the end; a dict it returns
    is logged to metrics.jsonl. ``relabel_p`` is the share of examples whose quoted labels are
    renamed to pseudo-words (policy/train/relabel.py). ``prompt_limits`` sets prompt-layout limits
    (``max_elements``, ``max_instruction_tokens``: no weight depends on them), also when resuming.
    ``upgrade_tokenizer`` switches a resumed checkpoint's tokenizer from its first number and quote
    rules to the current ones (policy/moe/tokenizer.py; new runs always get the current ones).
    ``init`` starts a new run from a saved policy directory (its weights, config and tokenizer; a
    fresh optimiser and schedule): fine-tuning, e.g. the built-in checkpoint on new demonstrations.
    ``bucket`` batches examples of like length together (``epoch_batches``; a resumed run keeps the
    choice it started with). ``minutes`` is a time budget: the cosine decay follows the share of it
    spent (or of ``steps``, whichever is further) and training stops when it is spent, at a
    checkpoint; a resumed run counts the time already spent.
    ``focus`` spends the later epochs on what is not learned yet: an example counts as learned when,
    the last time it was trained on, every target token had probability >= 0.5 (teacher-forced, so
    greedy decoding reproduces it); each epoch after the first keeps every example not learned and
    each learned one with probability ``focus`` (``focus_subset``). A resumed run starts a new epoch.
    Returns a TrainResult; the trained policy is in ``out_dir``.
    """
    if num_threads:
        torch.set_num_threads(num_threads)
    dirs = [Path(data_dirs)] if isinstance(data_dirs, (str, Path)) else [Path(d) for d in data_dirs]
    if not dirs:
        raise ConfigError("no data directories given")
    if minutes is not None and minutes <= 0:
        raise ConfigError(f"the time budget must be positive, not {minutes} minutes")
    if focus is not None and not 0.0 < focus <= 1.0:
        raise ConfigError(f"focus is the share of learned examples kept in an epoch, in (0, 1], not {focus}")
    out = Path(out_dir)
    items = [(d, s) for d in dirs for s in load_demos(d, only_success=only_success)]
    if not items:
        raise ConfigError(f"no {'successful ' if only_success else ''}demonstrations in {', '.join(map(str, dirs))}")
    resuming = resume and (out / STATE_DIR / "state.json").is_file()
    if resume and not resuming:
        raise ConfigError(f"--resume: no checkpoint in {out} ({STATE_DIR}/state.json missing)")
    if init is not None and not resuming and not (Path(init) / "model.safetensors").is_file():
        raise ConfigError(f"init: no policy in {init} (model.safetensors missing)")

    if resuming or init is not None:
        model, tok = from_pretrained(out if resuming else Path(init))
        if upgrade_tokenizer:
            tok = tok.upgraded()
            if tok.vocab_size > model.cfg.vocab_size:
                raise ConfigError(f"{out}: no room in the model's vocabulary for the tokenizer's rule tokens")
    else:
        tok = tokenizer or GalagoTokenizer.train(tokenizer_texts(items), vocab_size=vocab_size)
        model = build_model(config or MoEConfig(), tok, seed=seed)
    limits = {k: v for k, v in (prompt_limits or {}).items() if v is not None}
    unknown = sorted(set(limits) - set(PROMPT_LIMITS))
    if unknown or any(v < 1 for v in limits.values()):
        raise ConfigError(f"prompt limits must be positive and among {', '.join(PROMPT_LIMITS)}: {limits}")
    if limits:
        model.cfg = dataclasses.replace(model.cfg, **limits)
    cfg = model.cfg
    data = DemoDataset(items, tok, cfg, cache=cache)
    data.drop_too_long()
    if len(data) == 0:
        raise ConfigError("every demonstration is longer than max_seq_len")

    opt = make_optimizer(model, lr, weight_decay)
    start, state = 0, {}
    learned = torch.zeros(len(data), dtype=torch.bool)  # focus: examples reproduced when last trained on
    focus_file = out / STATE_DIR / FOCUS_FILE
    if resuming:
        state = load_checkpoint(out, model, opt)
        start = int(state["step"])
        bucket = bool(state.get("bucket", False))  # checkpoints from before bucketing trained without it
        if minutes is None and state.get("minutes") is not None:
            minutes = float(state["minutes"])
        if focus is None and state.get("focus") is not None:
            focus = float(state["focus"])
        if focus is not None and focus_file.is_file():
            saved = load_file(str(focus_file)).get("learned")
            if saved is not None and saved.numel() == len(data):  # the same demonstrations
                learned = saved.bool()
    else:
        out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(seed)
    model.train()
    metrics = open(out / "metrics.jsonl", "a", encoding="utf-8")

    bs = min(batch_size, len(data))
    per_epoch = max(1, len(data) // bs)
    epochs: dict[int, list[list[int]]] = {}
    # focused epochs differ in length: (epoch, its first step, its batches); a resumed run starts a new one
    cursor: list = [int(state.get("focus_epoch", -1)) if focus is not None else -1, start, []]

    def batch_at(step: int) -> tuple[int, list[int]]:
        if focus is not None:
            if step - cursor[1] >= len(cursor[2]):
                epoch = cursor[0] + 1
                subset = None if epoch == 0 else focus_subset(learned.tolist(), focus, seed, epoch, bs)
                cursor[:] = [epoch, step, epoch_batches(data.lengths, bs, seed, epoch, bucket, subset)]
            return cursor[0], cursor[2][step - cursor[1]]
        epoch, k = divmod(step, per_epoch)
        if epoch not in epochs:
            epochs.clear()
            epochs[epoch] = epoch_batches(data.lengths, bs, seed, epoch, bucket)
        return epoch, epochs[epoch][k]

    loss_ema, last_loss, t0, seen = None, float("nan"), time.perf_counter(), 0
    spent0 = float(state.get("seconds", 0.0))  # training time of the earlier runs of a resumed one
    budget = None if minutes is None else minutes * 60.0
    hparams = dict(lr=lr, warmup=warmup, weight_decay=weight_decay, grad_clip=grad_clip, min_lr_ratio=min_lr_ratio,
                   batch_size=bs, seed=seed, total_steps=steps, data=[str(d) for d in dirs], n_examples=len(data),
                   relabel_p=relabel_p, init=None if init is None else str(init), bucket=bucket, minutes=minutes,
                   focus=focus)

    def spent() -> float:
        return spent0 + time.perf_counter() - t0

    def save(step: int):
        save_checkpoint(out, model, tok, opt, {"step": step, "loss_ema": loss_ema, "seconds": round(spent(), 1),
                                               "focus_epoch": cursor[0], **hparams})
        if focus is not None:
            save_file({"learned": learned.to(torch.uint8)}, str(focus_file))

    def log(rec: dict):
        metrics.write(json.dumps(rec) + "\n")
        metrics.flush()

    def run_eval(step: int):
        if eval_fn is None:
            return
        model.eval()
        try:
            res = eval_fn(step, MoEPolicy(model, tok))
        finally:
            model.train()
        if res:
            log({"step": step, "eval": res})

    bar = _Progress(progress, start, steps)
    end = start
    try:
        for step in range(start, steps):
            if budget is not None and spent() >= budget:
                break
            epoch, idx = batch_at(step)
            examples = [data.example(i, relabel_p, salt=seed * 7919 + epoch) for i in idx]
            batch, labels = collate([p for p, _ in examples], [t for _, t in examples])
            for g in opt.param_groups:
                g["lr"] = lr_at(step, steps, lr, warmup, min_lr_ratio,
                                None if budget is None else min(1.0, spent() / budget))
            logits, lab, aux = model(batch, labels)
            token_ce = F.cross_entropy(logits.float(), lab, reduction="none")
            ce = token_ce.mean()
            loss = ce + aux
            if focus is not None:  # learned: every target token at probability >= LEARNED_P
                rows = (labels != -100).nonzero()[:, 0]
                worst = torch.zeros(len(idx)).scatter_reduce(0, rows, token_ce.detach(), "amax")
                learned[idx] = worst <= -math.log(LEARNED_P)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            model.update_router_bias()  # the sign rule, once per optimiser step
            last_loss = float(ce.detach())
            loss_ema = last_loss if loss_ema is None else 0.95 * loss_ema + 0.05 * last_loss
            seen += len(idx)
            done = end = step + 1
            if done % log_every == 0 or done == steps:
                stats = model.routing_stats()
                mm = max((s.max_over_mean for s in stats), default=1.0)
                dead = sum(s.dead for s in stats)
                sps = seen / (time.perf_counter() - t0)
                model.reset_routing_stats()
                rec = {"step": done, "loss": last_loss, "loss_ema": loss_ema, "aux": float(aux.detach()),
                       "lr": opt.param_groups[0]["lr"], "max_over_mean": mm, "dead_experts": dead,
                       "samples_per_s": sps, "epoch": epoch}
                left = "" if budget is None else f"  {max(0.0, budget - spent()) / 60:.0f} min left"
                if focus is not None:
                    rec["learned"] = float(learned.float().mean())
                    left = f"  learned {rec['learned']:.0%}{left}"
                log(rec)
                bar.update(done, f"loss {loss_ema:.3f}  load max/mean {mm:.2f}  dead {dead}  {sps:.1f} samples/s{left}")
            if save_every and done % save_every == 0 and done < steps:
                save(done)
            if eval_every and done % eval_every == 0 and done < steps:
                run_eval(done)
        save(end)
        run_eval(end)
    finally:
        bar.close()
        metrics.close()
    model.eval()
    sps = seen / max(1e-9, time.perf_counter() - t0)
    return TrainResult(out, end, last_loss, sps, data.skipped, len(data))


class _Progress:
    """A rich progress bar (or nothing when disabled)."""

    def __init__(self, enabled: bool, start: int, total: int):
        self.p = None
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.p = Progress(TextColumn("distill"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          TextColumn("{task.fields[info]}"), transient=False)
        self.p.start()
        self.task = self.p.add_task("distill", total=total, completed=start, info="")

    def update(self, done: int, info: str) -> None:
        if self.p is not None:
            self.p.update(self.task, completed=done, info=info)

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()


PRESETS = ("default", "tiny", "dense-active", "dense-total")


def config_preset(name: str, **overrides) -> MoEConfig:
    """Named configs: ``default`` (the shipped size, with the copy head, coordinates after labels), ``tiny`` (tests, smoke
    runs), and the ablations ``dense-active`` / ``dense-total``: the default without experts, each
    MoE layer replaced by a dense SwiGLU as wide as the experts one token uses (top_k + shared) or
    all of them."""
    if name == "tiny":
        return MoEConfig.tiny(**overrides)
    base = MoEConfig(copy_head=True, coords_last=True)
    if name in ("dense-active", "dense-total"):
        experts = base.top_k if name == "dense-active" else base.n_routed
        base = dataclasses.replace(base, dense_ff=(experts + base.n_shared) * base.d_expert)
    elif name != "default":
        raise ConfigError(f"unknown config preset {name!r} ({', '.join(PRESETS)})")
    return dataclasses.replace(base, **overrides) if overrides else base
