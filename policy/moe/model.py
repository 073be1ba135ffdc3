"""The built-in vision-language MoE transformer, in plain PyTorch.

Reads like nanoGPT's model.py and DeepSeek-V3's inference/model.py: a few small modules
(RMSNorm, Attention, MLP/Expert, Gate, MoE, Block, VisionEncoder, MoEModel), shapes in comments.

Sequence layout (built by policy/moe/prompt.py):

    [image patches (P)] [pads] <|bos|> <|instr|> instruction <|el|> cx cy role text ... <|hist|> ...
    <|resp|> Thought: ... Action: ... <|eos|>

Each token carries, besides its id: a segment id (image, instruction, element, history, response)
and an optional box (x1, y1, x2, y2 in 0..1 of the observed area) — the patch box for image tokens
and the element box for element tokens — embedded with Fourier features. Number tokens (0..1000,
the relative grid) share a Fourier embedding of their value, and the output head is tied to the
token embeddings, so emitting an element's centre is a copy of tokens already in the prompt.

FFNs: layer 0 (``first_k_dense``) is a dense SwiGLU; the others are DeepSeek-V3 MoE layers —
fine-grained routed SwiGLU experts + a shared expert, sigmoid affinities routed in fp32, top-k
selection with a per-expert bias buffer (no gradient; selection only), gates normalised among the
selected experts and scaled by ``route_scale``. Dropless by default.

Output: with ``copy_head`` (the default preset) a pointer-generator head mixes the vocabulary
softmax with an attention over the prompt's text tokens (CopyHead), so quoting an instruction word
or an element's coordinates is one attention step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from policy.moe.config import N_SEGMENTS, N_SPECIAL, NUM_MAX, SEG_RESPONSE, MoEConfig


# ---------------------------------------------------------------------------------------------
# small pieces
# ---------------------------------------------------------------------------------------------
class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def fourier_features(v: torch.Tensor, n_freq: int) -> torch.Tensor:
    """v [..., C] in 0..1 -> [..., C * 2 * n_freq] sin/cos at geometric frequencies 1..~2^(n/2)."""
    freqs = torch.exp2(torch.arange(n_freq, device=v.device, dtype=torch.float32) * 0.5) * math.pi
    ang = v.float().unsqueeze(-1) * freqs  # [..., C, F]
    return torch.cat([ang.sin(), ang.cos()], dim=-1).flatten(-2)


def rope_tables(head_dim: int, max_len: int, theta: float) -> torch.Tensor:
    """Complex rotations [S, hd/2] (DeepSeek-V3 / LLaMA style: channel pairs rotate together)."""
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    ang = torch.outer(torch.arange(max_len, dtype=torch.float32), inv)
    return torch.polar(torch.ones_like(ang), ang)


def apply_rope(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """x [..., hd] real; freqs broadcastable to [..., hd/2] complex. One complex multiply."""
    if x.dtype != torch.float32:
        return apply_rope(x.float(), freqs).to(x.dtype)
    xc = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(xc * freqs).flatten(-2)


class KVCache:
    """Preallocated keys/values for every decoder layer: [B, H, S_max, hd] each."""

    def __init__(self, n_layers: int, batch: int, n_heads: int, max_len: int, head_dim: int,
                 dtype=torch.float32, device="cpu"):
        shape = (batch, n_heads, max_len, head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        self.length = 0  # positions filled so far (same for every row; pads are masked instead)
        self.max_len = max_len


# ---------------------------------------------------------------------------------------------
# attention and feed-forward
# ---------------------------------------------------------------------------------------------
class Attention(nn.Module):
    def __init__(self, cfg: MoEConfig):
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.wqkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.wo = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x, rope=None, mask=None, is_causal=False, cache: KVCache | None = None, layer: int = 0):
        """x [B, T, D]; rope [B, T, 1, 1, hd/2] complex (None: no positions, e.g. vision layers)."""
        B, T, D = x.shape
        qkv = F.linear(x, self.wqkv.weight).view(B, T, 3, self.n_heads, self.head_dim)
        if rope is not None:
            qk = apply_rope(qkv[:, :, :2], rope)  # q and k rotated in one op: [B, T, 2, H, hd]
            q, k = qk[:, :, 0].transpose(1, 2), qk[:, :, 1].transpose(1, 2)  # [B, H, T, hd]
        else:
            q, k = qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2)
        v = qkv[:, :, 2].transpose(1, 2)
        if cache is not None:
            s = cache.length
            cache.k[layer][:, :, s:s + T] = k
            cache.v[layer][:, :, s:s + T] = v
            k, v = cache.k[layer][:, :, :s + T], cache.v[layer][:, :, :s + T]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)  # [B, H, T, hd]
        return F.linear(y.transpose(1, 2).reshape(B, T, D), self.wo.weight)


class MLP(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x), with w1 and w3 fused into one matmul."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w13 = nn.Linear(dim, 2 * hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x):
        a, b = F.linear(x, self.w13.weight).chunk(2, dim=-1)
        return F.linear(F.silu(a) * b, self.w2.weight)


Expert = MLP  # a routed or shared expert is a (small) SwiGLU FFN


@dataclass
class RoutingStats:
    """Load of one MoE layer since the last ``reset_routing_stats``."""

    layer: int
    load: list[int]  # tokens routed to each expert (top-k assignments)
    max_over_mean: float  # 1.0 = perfectly balanced
    dead: int  # experts that got no token
    entropy: float  # of the load distribution, in nats (log(n_routed) = balanced)
    dropped: int  # assignments dropped by the capacity limit (0 when dropless)
    tokens: int


class Gate(nn.Module):
    """Top-k router. The ``bias`` buffer shifts which experts are *selected* (aux-loss-free
    balancing), never the gate weights, and receives no gradient (it is not a Parameter)."""

    def __init__(self, cfg: MoEConfig):
        super().__init__()
        self.cfg = cfg
        self.weight = nn.Parameter(torch.empty(cfg.n_routed, cfg.d_model))
        self.register_buffer("bias", torch.zeros(cfg.n_routed, dtype=torch.float32))
        self.bias_frozen = False

    def forward(self, x: torch.Tensor):
        """x [N, D] -> weights [N, K] fp32, indices [N, K], scores [N, E] fp32, logits [N, E] fp32."""
        cfg = self.cfg
        logits = F.linear(x.float(), self.weight.float())  # routing in fp32
        if self.training and cfg.router_jitter > 0:
            logits = logits * torch.empty_like(logits).uniform_(1 - cfg.router_jitter, 1 + cfg.router_jitter)
        scores = logits.sigmoid() if cfg.score_func == "sigmoid" else logits.softmax(dim=-1)
        select = scores + self.bias if cfg.balance == "aux_free" else scores
        indices = select.topk(cfg.top_k, dim=-1).indices
        weights = scores.gather(1, indices)  # from the UN-biased scores
        if cfg.norm_topk:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        if cfg.route_scale != 1.0:
            weights = weights * cfg.route_scale
        return weights, indices, scores, logits


class MoE(nn.Module):
    def __init__(self, cfg: MoEConfig, layer: int):
        super().__init__()
        self.cfg, self.layer = cfg, layer
        self.gate = Gate(cfg)
        self.experts = nn.ModuleList(Expert(cfg.d_model, cfg.d_expert) for _ in range(cfg.n_routed))
        self._expert_list = list(self.experts)  # plain indexing for the decode path
        self.shared = Expert(cfg.d_model, cfg.n_shared * cfg.d_expert) if cfg.n_shared > 0 else None
        # statistics (not saved): load since the last bias update, and since the last stats reset
        self.load_step = torch.zeros(cfg.n_routed)
        self.load_total = torch.zeros(cfg.n_routed)
        self.dropped_total = 0
        self._py_load = [0] * cfg.n_routed  # counted by the decode path, folded in lazily
        self._zero = torch.zeros(())
        self.aux_loss = self._zero

    def forward(self, x: torch.Tensor, token_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, D], token_mask [B, T] (True = a real token; pads are routed but not counted)."""
        cfg = self.cfg
        B, T, D = x.shape
        flat = x.reshape(-1, D)  # [N, D]
        N, K, E = flat.shape[0], cfg.top_k, cfg.n_routed
        if N * K <= 4 and cfg.capacity_factor is None and not (self.training and torch.is_grad_enabled()):
            return self._decode(flat).view(B, T, D)
        weights, indices, scores, logits = self.gate(flat)
        y = torch.zeros_like(flat)
        dropped = 0
        order = indices.reshape(-1).argsort(stable=True)  # assignments grouped by expert, token order kept
        counts = torch.bincount(indices.reshape(-1), minlength=E).tolist()
        capacity = math.ceil(cfg.capacity_factor * N * K / E) if cfg.capacity_factor else None
        start = 0
        for e, c in enumerate(counts):
            if c == 0:
                continue
            sel = order[start:start + c]
            start += c
            if capacity is not None and c > capacity:  # Switch-style: the overflow skips the layer
                dropped += c - capacity
                sel = sel[:capacity]
            tok, slot = sel // K, sel % K
            w = weights[tok, slot].unsqueeze(-1).to(flat.dtype)
            y.index_add_(0, tok, self.experts[e](flat[tok]) * w)
        if self.shared is not None:
            y = y + self.shared(flat)
        self._record(indices, scores, logits, token_mask, B, T, dropped)
        return y.view(B, T, D)

    def _decode(self, flat: torch.Tensor) -> torch.Tensor:
        """A few tokens (one per row while generating): no sort, no module calls, one sync.
        Same arithmetic as the batched path; load is counted in Python (pads included)."""
        weights, indices, _, _ = self.gate.forward(flat)
        y = self.shared.forward(flat) if self.shared is not None else torch.zeros_like(flat)
        rows = []
        for n, (experts, ws) in enumerate(zip(indices.tolist(), weights.tolist())):
            xn = flat[n:n + 1]
            yn = y[n:n + 1]
            for e, w in zip(experts, ws):
                ex = self._expert_list[e]
                a, b = F.linear(xn, ex.w13.weight).chunk(2, dim=-1)
                yn = yn + F.linear(F.silu(a) * b, ex.w2.weight) * w
                self._py_load[e] += 1
            rows.append(yn)
        y = rows[0] if len(rows) == 1 else torch.cat(rows, 0)
        self.aux_loss = self._zero
        return y

    def _fold_py_load(self) -> None:
        if any(self._py_load):
            load = torch.tensor(self._py_load, dtype=self.load_total.dtype)
            self.load_total += load
            self.load_step += load
            self._py_load = [0] * self.cfg.n_routed

    @torch.no_grad()
    def _count(self, indices: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        idx = indices if valid is None else indices[valid]
        return torch.bincount(idx.reshape(-1), minlength=self.cfg.n_routed).float()

    def _record(self, indices, scores, logits, token_mask, B, T, dropped):
        cfg = self.cfg
        valid = None if token_mask is None else token_mask.reshape(-1)
        load = self._count(indices, valid)
        self.load_step += load
        self.load_total += load
        self.dropped_total += dropped
        if not (self.training and torch.is_grad_enabled()):
            self.aux_loss = self._zero
            return
        E, K = cfg.n_routed, cfg.top_k
        m = (torch.ones(B * T, device=scores.device) if valid is None else valid.float())  # [N]
        one_hot = torch.zeros_like(scores).scatter_(1, indices, 1.0)  # [N, E], no grad
        aux = torch.zeros((), device=scores.device)
        if cfg.balance == "aux_free" and cfg.seq_aux_alpha > 0:
            # sequence-wise balance loss (DeepSeek-V3): f_i, P_i over the tokens of ONE sequence
            s_norm = scores / scores.sum(-1, keepdim=True)
            mb = m.view(B, T, 1)
            n_tok = mb.sum(1).clamp(min=1)  # [B,1]
            f = (one_hot.view(B, T, E) * mb).sum(1) * E / (K * n_tok)  # [B,E]
            p = (s_norm.view(B, T, E) * mb).sum(1) / n_tok  # [B,E]
            aux = aux + cfg.seq_aux_alpha * (f * p).sum(-1).mean()
        elif cfg.balance == "switch_aux" and cfg.switch_aux_alpha > 0:
            probs = logits.softmax(-1) if cfg.score_func == "softmax" else scores / scores.sum(-1, keepdim=True)
            n_tok = m.sum().clamp(min=1)
            f = (one_hot * m[:, None]).sum(0) / (K * n_tok)  # fraction of assignments, sums to 1
            p = (probs * m[:, None]).sum(0) / n_tok
            aux = aux + cfg.switch_aux_alpha * E * (f * p).sum()  # == alpha when balanced
        if cfg.z_loss_coef > 0:
            z = torch.logsumexp(logits, dim=-1) ** 2
            aux = aux + cfg.z_loss_coef * (z * m).sum() / m.sum().clamp(min=1)
        self.aux_loss = aux

    @torch.no_grad()
    def update_bias(self, gamma: float | None = None) -> None:
        """The sign rule: b_i -= gamma if expert i got more than the mean load, += if less."""
        gamma = self.cfg.bias_update_speed if gamma is None else gamma
        self._fold_py_load()
        load = self.load_step
        if self.cfg.balance == "aux_free" and not self.gate.bias_frozen and load.sum() > 0:
            self.gate.bias += gamma * torch.sign(load.mean() - load).to(self.gate.bias)
        self.load_step = torch.zeros_like(load)

    def stats(self) -> RoutingStats:
        self._fold_py_load()
        load = self.load_total
        total = float(load.sum())
        mean = total / len(load) if total else 0.0
        p = load / total if total else load
        ent = float(-(p[p > 0] * p[p > 0].log()).sum()) if total else 0.0
        return RoutingStats(self.layer, [int(v) for v in load.tolist()],
                            float(load.max()) / mean if mean else 0.0, int((load == 0).sum()) if total else 0,
                            ent, self.dropped_total, int(total) // self.cfg.top_k)

    def reset_stats(self) -> None:
        self.load_total = torch.zeros_like(self.load_total)
        self.load_step = torch.zeros_like(self.load_step)
        self.dropped_total = 0
        self._py_load = [0] * self.cfg.n_routed


class CopyHead(nn.Module):
    """Pointer-generator output (See et al., 2017): p(w) = g * softmax(vocab)(w) + (1 - g) * sum of
    the attention on prompt positions holding token w. Keys are the final hidden states of the
    prompt's text tokens (instruction, elements, history; specials excluded); the gate g and the
    query come from the hidden state that predicts. Returns log-probabilities, which every caller
    treats as logits (log_softmax of a normalised log-distribution is the identity)."""

    def __init__(self, cfg: MoEConfig):
        super().__init__()
        self.scale = cfg.d_model ** -0.5
        self.q = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.k = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.gate = nn.Linear(cfg.d_model, 1)

    @staticmethod
    def source_mask(tokens: torch.Tensor, segments: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mask & (segments != SEG_RESPONSE) & (tokens >= N_SPECIAL)

    def mix(self, vocab_logits: torch.Tensor, h: torch.Tensor, scores: torch.Tensor, ids: torch.Tensor,
            valid: torch.Tensor) -> torch.Tensor:
        """vocab_logits [n, V], h [n, D], scores [n, S] (q . k, unmasked), ids/valid [n, S] -> log p [n, V]."""
        scores = scores.float().masked_fill(~valid, float("-inf"))
        has = valid.any(-1, keepdim=True)
        attn = torch.softmax(scores.masked_fill(~has, 0.0), dim=-1) * has  # rows without a source copy nothing
        copy = torch.zeros(vocab_logits.shape, dtype=attn.dtype, device=attn.device).scatter_add_(1, ids, attn)
        g = self.gate(h).float()
        g = torch.where(has, g, torch.full_like(g, 30.0))  # nothing to copy: all mass on the vocabulary
        gen = F.log_softmax(vocab_logits.float(), dim=-1) + F.logsigmoid(g)
        cpy = torch.log(copy.clamp_min(1e-30)) + F.logsigmoid(-g)
        return torch.logaddexp(gen, cpy)


class Block(nn.Module):
    def __init__(self, cfg: MoEConfig, layer: int, moe: bool, d_ff: int | None = None):
        super().__init__()
        self.layer = layer
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.ffn = MoE(cfg, layer) if moe else MLP(cfg.d_model, d_ff or cfg.d_ff)

    def forward(self, x, rope=None, mask=None, is_causal=False, cache=None, token_mask=None):
        # .forward, not __call__: no hooks are used, and the call machinery costs about as much as
        # the small ops of a one-token decoding step (~5% of a policy step)
        x = x + self.attn.forward(self.attn_norm.forward(x), rope, mask, is_causal, cache, self.layer)
        h = self.ffn_norm.forward(x)
        return x + (self.ffn.forward(h, token_mask) if isinstance(self.ffn, MoE) else self.ffn.forward(h))


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------
class VisionEncoder(nn.Module):
    """Linear patch embedding + box (2-D position) embedding + a few bidirectional dense blocks."""

    def __init__(self, cfg: MoEConfig):
        super().__init__()
        self.cfg = cfg
        self.patch = nn.Linear(3 * cfg.patch_size ** 2, cfg.d_model)
        self.layers = nn.ModuleList(Block(cfg, -1, moe=False) for _ in range(cfg.n_vision_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        g = cfg.image_size // cfg.patch_size
        ys, xs = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
        boxes = torch.stack([xs, ys, xs + 1, ys + 1], -1).reshape(-1, 4).float() / g  # [P,4] row-major
        self.register_buffer("patch_boxes", boxes, persistent=False)

    def patchify(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images [B, 3, S, S] -> patches [B, P, 3*ps*ps] in -1..1."""
        ps = self.cfg.patch_size
        B, C, S, _ = images.shape
        x = images.float().div(127.5).sub(1.0)
        x = x.view(B, C, S // ps, ps, S // ps, ps).permute(0, 2, 4, 1, 3, 5)
        return x.reshape(B, (S // ps) ** 2, C * ps * ps)

    def forward(self, images: torch.Tensor, box_embed: nn.Module) -> torch.Tensor:
        x = self.patch(self.patchify(images)) + box_embed(self.patch_boxes)  # [B, P, D]
        for blk in self.layers:
            x = blk(x)  # no rope, no mask: the patches see each other
        return self.norm(x)


class BoxEmbed(nn.Module):
    def __init__(self, cfg: MoEConfig):
        super().__init__()
        self.n_freq = cfg.n_fourier
        self.proj = nn.Linear(4 * 2 * cfg.n_fourier, cfg.d_model, bias=False)

    def forward(self, boxes: torch.Tensor) -> torch.Tensor:
        return self.proj(fourier_features(boxes, self.n_freq))


class MoEModel(nn.Module):
    def __init__(self, cfg: MoEConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.seg_emb = nn.Embedding(N_SEGMENTS, cfg.d_model)
        self.box_emb = BoxEmbed(cfg)
        self.num_proj = nn.Linear(2 * cfg.n_fourier, cfg.d_model, bias=False)
        nums = torch.arange(NUM_MAX + 1, dtype=torch.float32).unsqueeze(-1) / NUM_MAX
        self.register_buffer("num_features", fourier_features(nums, cfg.n_fourier), persistent=False)
        self.vision = VisionEncoder(cfg)
        self.layers = nn.ModuleList(
            Block(cfg, i, moe=i >= cfg.first_k_dense and not cfg.dense_ff,
                  d_ff=cfg.dense_ff if i >= cfg.first_k_dense and cfg.dense_ff else None)
            for i in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.head = None if cfg.tie_embeddings else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.copy = CopyHead(cfg) if cfg.copy_head else None
        self.register_buffer("rope_freqs", rope_tables(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta),
                             persistent=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2: scale residual projections by depth
            if name.endswith("wo.weight") or name.endswith("w2.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m: nn.Module):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
        elif isinstance(m, Gate):
            nn.init.normal_(m.weight, std=0.02)

    # ---- embeddings --------------------------------------------------------------------------
    def embedding_table(self) -> torch.Tensor:
        """Token embeddings [V, D], number tokens plus a Fourier embedding of their value."""
        w = self.tok_emb.weight
        extra = self.num_proj(self.num_features)  # [1001, D]
        return torch.cat([w[:N_SPECIAL], w[N_SPECIAL:N_SPECIAL + NUM_MAX + 1] + extra,
                          w[N_SPECIAL + NUM_MAX + 1:]], dim=0)

    def embed_tokens(self, table, tokens, segments, boxes=None, box_mask=None):
        """tokens/segments [B, L], boxes [B, L, 4], box_mask [B, L] -> [B, L, D]."""
        x = F.embedding(tokens, table) + self.seg_emb(segments)
        if boxes is not None:
            x = x + self.box_emb(boxes) * box_mask.unsqueeze(-1).to(x.dtype)
        return x

    def logits(self, h: torch.Tensor, table: torch.Tensor | None = None,
               source: "CopySource | None" = None) -> torch.Tensor:
        """h [n, D] -> [n, V]: vocabulary logits, or with the copy head and its ``source`` (one row
        of prompt keys per row of h) the log-probabilities of the mixture."""
        out = self.head(h) if self.head is not None else F.linear(h, self.embedding_table() if table is None else table)
        if self.copy is None or source is None:
            return out
        scores = source.scores
        if scores is None:
            scores = torch.einsum("nd,nsd->ns", self.copy.q(h), source.keys) * self.copy.scale
        return self.copy.mix(out, h, scores, source.ids, source.valid)

    def copy_source(self, h_text: torch.Tensor, batch: "PromptBatch") -> "CopySource | None":
        """The copy head's keys over a batch's prompt text (h_text [B, L, D], the text part of the
        decoder output); None without a copy head."""
        if self.copy is None:
            return None
        valid = CopyHead.source_mask(batch.tokens, batch.segments, batch.mask)
        return CopySource(self.copy.k(h_text), batch.tokens, valid)

    # ---- the decoder -------------------------------------------------------------------------
    def decode(self, x, positions, key_mask=None, cache: KVCache | None = None, token_mask=None):
        """Run the decoder on x [B, T, D] at ``positions`` [B, T].

        ``key_mask`` [B, S_total] marks real keys (False = pad) over the whole sequence so far,
        including x (needed only when rows have pads). With a cache, x is appended after
        ``cache.length`` positions. Returns hidden states [B, T, D].
        """
        B, T, _ = x.shape
        start = cache.length if cache is not None else 0
        S = start + T
        if S > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {S} tokens exceeds max_seq_len {self.cfg.max_seq_len}")
        rope = self.rope_freqs[positions][:, :, None, None]  # [B, T, 1, 1, hd/2] complex
        mask, is_causal = None, False
        if key_mask is not None and not bool(key_mask.all()):
            q_pos = torch.arange(start, S, device=x.device)
            allowed = torch.arange(S, device=x.device)[None, :] <= q_pos[:, None]  # [T, S] causal
            allowed = allowed[None] & key_mask[:, None, :S]  # [B, T, S]
            allowed = allowed | (torch.arange(S, device=x.device)[None, None, :] == q_pos[None, :, None])
            mask = allowed.unsqueeze(1)  # [B,1,T,S]; each query may always see itself: no NaN rows
        elif T > 1:
            if start == 0:
                is_causal = True
            else:
                q_pos = torch.arange(start, S, device=x.device)
                mask = (torch.arange(S, device=x.device)[None, :] <= q_pos[:, None])[None, None]
        for blk in self.layers:
            x = blk.forward(x, rope, mask, is_causal, cache, token_mask)  # see Block.forward
        if cache is not None:
            cache.length = S
        return self.norm.forward(x)

    def prefill_inputs(self, batch: "PromptBatch", table: torch.Tensor):
        """Embeddings [B, P+L, D], positions [B, P+L], key mask [B, P+L] of a prompt batch."""
        img = self.vision(batch.images, self.box_emb)  # [B, P, D]
        img = img + self.seg_emb.weight[0]
        txt = self.embed_tokens(table, batch.tokens, batch.segments, batch.boxes, batch.box_mask)
        x = torch.cat([img, txt], dim=1)
        key_mask = torch.cat([torch.ones(img.shape[:2], dtype=torch.bool, device=x.device), batch.mask], dim=1)
        positions = (key_mask.long().cumsum(1) - 1).clamp(min=0)
        return x, positions, key_mask

    def forward(self, batch: "PromptBatch", targets: torch.Tensor | None = None):
        """Teacher-forced pass for training. ``batch`` holds prompt+target tokens, right-padded;
        ``targets`` [B, L] are the next-token labels aligned with batch.tokens (-100 = no loss).

        Returns (logits at the labelled positions [n, V], labels [n], aux loss).
        """
        table = self.embedding_table()
        x, positions, key_mask = self.prefill_inputs(batch, table)
        P = x.shape[1] - batch.tokens.shape[1]
        # right padding: pads come after every real token, so plain causal attention is exact
        h = self.decode(x, positions, None, None, key_mask)
        h = h[:, P:]
        sel = targets != -100 if targets is not None else torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)
        src = self.copy_source(h, batch)
        if src is not None:  # the copy scores of every position at once, then the selected ones
            scores = torch.einsum("bld,bsd->bls", self.copy.q(h), src.keys) * self.copy.scale
            rows = sel.nonzero()[:, 0]
            src = CopySource(None, src.ids[rows], src.valid[rows], scores[sel])
        out = self.logits(h[sel], table, src)
        if targets is None:
            return out.view(*h.shape[:2], -1), None, self.aux_loss()
        return out, targets[sel], self.aux_loss()

    def aux_loss(self) -> torch.Tensor:
        losses = [b.ffn.aux_loss for b in self.layers if isinstance(b.ffn, MoE)]
        return torch.stack(losses).sum() if losses else torch.zeros(())

    # ---- routing control ---------------------------------------------------------------------
    def moe_layers(self) -> list[MoE]:
        return [b.ffn for b in self.layers if isinstance(b.ffn, MoE)]

    @torch.no_grad()
    def update_router_bias(self, gamma: float | None = None) -> None:
        """Call after each optimiser step: applies the sign rule to every MoE layer's bias."""
        for m in self.moe_layers():
            m.update_bias(gamma)

    def freeze_router_bias(self, frozen: bool = True) -> None:
        for m in self.moe_layers():
            m.gate.bias_frozen = frozen

    def routing_stats(self) -> list[RoutingStats]:
        return [m.stats() for m in self.moe_layers()]

    def reset_routing_stats(self) -> None:
        for m in self.moe_layers():
            m.reset_stats()

    def num_params(self) -> dict[str, int]:
        total = sum(p.numel() for p in self.parameters())
        expert = sum(p.numel() for m in self.moe_layers() for p in m.experts.parameters())
        per_expert = expert // max(1, len(self.moe_layers()) * self.cfg.n_routed)
        active = total - expert + per_expert * self.cfg.top_k * len(self.moe_layers())
        return {"total": total, "active": active}


@dataclass
class CopySource:
    """What the copy head attends over, one row per query: keys [n, S, D] (or the scores [n, S]
    already computed from them), token ids [n, S], valid [n, S]."""

    keys: torch.Tensor | None
    ids: torch.Tensor
    valid: torch.Tensor
    scores: torch.Tensor | None = None


@dataclass
class PromptBatch:
    """A padded batch of encoded prompts (see policy/moe/prompt.py)."""

    images: torch.Tensor  # uint8 [B, 3, S, S]
    tokens: torch.Tensor  # long [B, L]
    segments: torch.Tensor  # long [B, L]
    boxes: torch.Tensor  # float [B, L, 4]
    box_mask: torch.Tensor  # bool [B, L]
    mask: torch.Tensor  # bool [B, L]: True = real token
