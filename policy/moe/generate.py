"""Generation (greedy / temperature + top-p, batched, KV cache) and log-probabilities of given targets.

Log-probabilities are those of the distribution the token was drawn from *before* top-p filtering:
``log_softmax(logits / temperature)`` (temperature 1 for greedy). ``sequence_logprobs`` computes the
same quantity for given target tokens with gradients, so GRPO can form ratios pi_new / pi_old.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from policy.moe.model import KVCache, MoEModel
from policy.moe.prompt import EncodedPrompt, collate
from policy.moe.config import NUM_MAX, SEG_RESPONSE
from policy.moe.tokenizer import EOS, NUM_BASE, PAD, PHRASES, GalagoTokenizer


@dataclass
class Generation:
    tokens: list[list[int]]  # generated ids per row, <|eos|> excluded
    logprobs: list[list[float]]  # one per generated token (eos included when it was generated)
    finished: list[bool]  # True when the row ended with <|eos|> (False: ran out of max_new_tokens)
    prompt_tokens: list[int] = field(default_factory=list)  # prompt length per row (patches included)


class PointGrammar:
    """Constrained decoding of the points in an action: after an opening fragment such as
    ``click(start_box='(`` only a number token may follow, then the comma, a number, and a closing
    fragment (``')``, ``', direction='`` …). Outside points nothing is constrained. A small model
    sometimes copies a word into a coordinate (``scroll(start_box='(500, lake)``), which no parser
    can use; here the most likely *number* is taken instead. The log-probabilities reported are the
    model's own (unconstrained), so sampled rollouts stay comparable with ``sequence_logprobs``.

    ``state`` per row: 0 free, 1 first number, 2 comma, 3 second number, 4 closing fragment."""

    def __init__(self, vocab_size: int, openers: Sequence[int], comma: int, closers: Sequence[int]):
        self.openers, self.comma, self.closers = set(openers), comma, set(closers)
        allowed = torch.zeros(5, vocab_size, dtype=torch.bool)
        allowed[0] = True
        allowed[1, NUM_BASE:NUM_BASE + NUM_MAX + 1] = True
        allowed[2, comma] = True
        allowed[3] = allowed[1]
        allowed[4, list(self.closers)] = True
        self.allowed = allowed

    @classmethod
    def from_tokenizer(cls, tok: GalagoTokenizer, vocab_size: int) -> "PointGrammar | None":
        """The grammar of ``tok``'s point fragments; None when they are not single tokens."""
        def one(text: str) -> int | None:
            ids = tok.encode(text)
            return ids[0] if len(ids) == 1 and ids[0] < vocab_size else None
        openers = [one(p) for p in PHRASES if p.endswith("='(")]
        closers = [one(p) for p in PHRASES if p.startswith(")'")]
        comma = one(",")
        if None in openers or None in closers or comma is None or not openers or not closers:
            return None
        return cls(vocab_size, openers, comma, closers)

    def advance(self, state: int, token: int) -> int:
        if state == 4 or state == 0:
            return 1 if token in self.openers else 0
        return state + 1


def _pick(logits: torch.Tensor, temperature: float, top_p: float, generator,
          allowed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """logits [B, V] -> (next ids [B], their log-probabilities [B]); ``allowed`` [B, V] restricts the
    choice (not the reported log-probabilities)."""
    logits = logits.float()
    if temperature <= 0:
        logp = F.log_softmax(logits, dim=-1)
        nxt = (logits if allowed is None else logits.masked_fill(~allowed, float("-inf"))).argmax(dim=-1)
        return nxt, logp.gather(1, nxt[:, None])[:, 0]
    logp = F.log_softmax(logits / temperature, dim=-1)
    probs = logp.exp()
    if allowed is not None:
        probs = probs.masked_fill(~allowed, 0.0)
    if top_p < 1.0:
        sp, si = probs.sort(dim=-1, descending=True)
        drop = sp.cumsum(-1) - sp > top_p  # keep the smallest prefix whose mass reaches top_p
        sp = sp.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter_(1, si, sp)
    nxt = torch.multinomial(probs / probs.sum(-1, keepdim=True), 1, generator=generator)[:, 0]
    return nxt, logp.gather(1, nxt[:, None])[:, 0]


@torch.inference_mode()
def generate(model: MoEModel, prompts: Sequence[EncodedPrompt], max_new_tokens: int | None = None,
             temperature: float = 0.0, top_p: float = 1.0, generator: torch.Generator | None = None,
             use_cache: bool = True, stop_at_eos: bool = True,
             decode_threads: int | None = None, grammar: PointGrammar | None = None,
             steer: Callable[[int, list[int]], tuple[Sequence[int], Sequence[int]] | None] | None = None,
             ) -> Generation:
    """Continue each prompt until <|eos|> or ``max_new_tokens``. ``temperature`` 0 = greedy.

    ``use_cache=False`` recomputes the whole sequence at every step (slow; a reference for tests).
    ``stop_at_eos=False`` always generates ``max_new_tokens`` (benchmarks).
    ``decode_threads``: torch threads for the one-token steps (None: as set), restored afterwards.
    ``grammar`` constrains the points of actions to numbers (PointGrammar). ``steer(row, ids so far)``
    may return (these, those): when the row's most likely next token is one of ``these``, it is
    chosen among ``those`` (the MoE policy's box states: a state word must be the true one). Like
    the grammar it restricts the choice, not the reported log-probabilities.
    """
    cfg = model.cfg
    max_new = cfg.max_new_tokens if max_new_tokens is None else max_new_tokens
    was_training = model.training
    threads = torch.get_num_threads()
    if was_training:  # eval() walks every module: a few ms per call, so only when needed
        model.eval()
    try:
        batch, _ = collate(prompts, pad_left=True)
        table = model.embedding_table()  # computed once: the number-token part is not free
        x, positions, key_mask = model.prefill_inputs(batch, table)
        B, S, _ = x.shape
        if S + max_new > cfg.max_seq_len:
            raise ValueError(f"prompt of {S} tokens + {max_new} new exceeds max_seq_len {cfg.max_seq_len}")
        cache = KVCache(cfg.n_layers, B, cfg.n_heads, S + max_new, cfg.head_dim, x.dtype, x.device) \
            if use_cache else None
        hidden = model.decode(x, positions, key_mask, cache, key_mask)
        h = hidden[:, -1]
        source = model.copy_source(hidden[:, S - batch.tokens.shape[1]:], batch)  # None without a copy head
        out = [[] for _ in range(B)]
        lps = [[] for _ in range(B)]
        done = [False] * B
        finished = [False] * B
        last_pos = positions[:, -1]
        seg = torch.full((B, 1), SEG_RESPONSE, dtype=torch.long, device=x.device)
        if decode_threads:
            torch.set_num_threads(decode_threads)
        states = [0] * B
        for step in range(max_new):
            allowed = grammar.allowed[states] if grammar is not None and any(states) else None
            logits = model.logits(h, table, source)
            if steer is not None:
                for i in range(B):
                    rule = None if done[i] else steer(i, out[i])
                    if rule and int(logits[i].argmax()) in rule[0]:
                        if allowed is None:
                            allowed = torch.ones(B, logits.shape[-1], dtype=torch.bool)
                        allowed[i] = False
                        allowed[i, list(rule[1])] = True
            nxt, lp = _pick(logits, temperature, top_p, generator, allowed)
            for i, (t, l) in enumerate(zip(nxt.tolist(), lp.tolist())):
                if done[i]:
                    continue
                if grammar is not None:
                    states[i] = grammar.advance(states[i], t)
                if t == EOS and stop_at_eos:
                    done[i] = finished[i] = True
                    lps[i].append(l)
                    continue
                out[i].append(t)
                lps[i].append(l)
            if all(done) or step == max_new - 1:
                break
            feed = torch.tensor([PAD if d else t for d, t in zip(done, nxt.tolist())], device=x.device)[:, None]
            e = model.embed_tokens(table, feed, seg)
            last_pos = last_pos + 1
            key_mask = torch.cat([key_mask, torch.ones(B, 1, dtype=torch.bool, device=x.device)], 1)
            if use_cache:
                h = model.decode(e, last_pos[:, None], key_mask, cache, None)[:, -1]
            else:
                x = torch.cat([x, e], 1)
                positions = torch.cat([positions, last_pos[:, None]], 1)
                h = model.decode(x, positions, key_mask, None, None)[:, -1]
        return Generation(out, lps, finished, [int(m.sum()) for m in key_mask[:, :S]])
    finally:
        torch.set_num_threads(threads)
        if was_training:
            model.train()


def sequence_logprobs(model: MoEModel, prompts: Sequence[EncodedPrompt], targets: Sequence[Sequence[int]],
                      temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities of ``targets[i]`` (token ids, e.g. a Generation's tokens + <|eos|>) after
    ``prompts[i]``, with gradients. Returns (logprobs [B, T], mask [B, T]), right-padded with 0."""
    if len(prompts) != len(targets):
        raise ValueError("prompts and targets differ in length")
    if any(len(t) == 0 for t in targets):
        raise ValueError("every target needs at least one token")
    batch, labels = collate(prompts, targets)
    logits, lab, _ = model(batch, labels)
    logp = F.log_softmax(logits.float() / temperature, dim=-1).gather(1, lab[:, None])[:, 0]  # [n]
    T = max(len(t) for t in targets)
    lengths = torch.tensor([len(t) for t in targets])
    mask = torch.arange(T)[None, :] < lengths[:, None]
    out = torch.zeros(len(targets), T, dtype=logp.dtype)
    out = out.masked_scatter(mask, logp)  # rows are contiguous in `lab` (row-major selection)
    return out, mask
