"""The configuration of the built-in MoE vision-language policy (saved as config.json).

One dataclass, as nanoGPT's GPTConfig and DeepSeek-V3's ModelArgs: everything that fixes the shapes
of the weights, the routing and the prompt layout. The defaults are sized for a policy step of
<= ~50 ms on two CPU cores (see bench/moe.py); ``MoEConfig.tiny()`` is for tests.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from actions.errors import ConfigError

# Token ids the tokenizer guarantees (policy/moe/tokenizer.py checks it): specials first, then the
# coordinate/number tokens <|n0|>..<|n1000|>, then the byte-level BPE vocabulary.
N_SPECIAL = 8
NUM_MAX = 1000

# Segment ids: what part of the prompt a token belongs to (a learned embedding per segment).
SEG_IMAGE, SEG_INSTRUCTION, SEG_ELEMENT, SEG_HISTORY, SEG_RESPONSE, SEG_OTHER = range(6)
N_SEGMENTS = 6


@dataclass
class MoEConfig:
    # vocabulary: set from the tokenizer when a model is built for training
    vocab_size: int = 4096
    # image: the screenshot is resized (aspect not kept) to image_size², so a patch covers a fixed
    # slice of the 0..1000 relative grid the policy answers in
    image_size: int = 128
    patch_size: int = 16
    n_vision_layers: int = 1
    # decoder
    d_model: int = 192
    n_layers: int = 4
    n_heads: int = 6
    d_ff: int = 512  # hidden size of dense SwiGLU FFNs (the first_k_dense layers and vision layers)
    first_k_dense: int = 1
    max_seq_len: int = 1024
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6
    n_fourier: int = 16  # frequencies of the box / number features
    tie_embeddings: bool = True  # lets the head "copy" an element's coordinate tokens
    # pointer-generator copying (See et al., 2017): the next token is a mixture of the vocabulary
    # softmax and an attention over the prompt's tokens, so quoting a label or an element's
    # coordinates is one attention step rather than something each layer has to learn
    copy_head: bool = False
    # mixture of experts (DeepSeek-V3 style; see shared/notes/models.md §1.6)
    n_routed: int = 8
    n_shared: int = 1
    top_k: int = 2
    d_expert: int = 128
    score_func: Literal["sigmoid", "softmax"] = "sigmoid"
    norm_topk: bool = True
    route_scale: float = 1.0
    balance: Literal["aux_free", "switch_aux", "none"] = "aux_free"
    bias_update_speed: float = 1e-3  # gamma of the sign rule
    seq_aux_alpha: float = 1e-4
    switch_aux_alpha: float = 1e-2
    z_loss_coef: float = 0.0
    capacity_factor: float | None = None  # None = dropless (the default; no train/infer mismatch)
    router_jitter: float = 0.0
    # > 0: an ablation without experts: layers >= first_k_dense get a dense SwiGLU of this hidden size
    # (presets dense-active / dense-total: the MoE's active / total FFN width)
    dense_ff: int = 0
    # prompt layout (policy/moe/prompt.py)
    # where an element's centre tokens go: "last" (after its role and text, so in a causal decoder the
    # coordinate tokens have read the label they belong to and pointing is copying them) or "first"
    coords_last: bool = False
    # mark an element whose text or value the instruction names with the word "named" (prompt.names)
    mark_named: bool = False
    max_elements: int = 32
    max_element_tokens: int = 10
    max_instruction_tokens: int = 48
    max_history: int = 3
    max_history_tokens: int = 32
    max_new_tokens: int = 64
    extra: dict = field(default_factory=dict)  # free-form notes (e.g. training provenance)

    def __post_init__(self):
        problems = []
        if self.d_model % self.n_heads:
            problems.append(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        elif (self.d_model // self.n_heads) % 2:
            problems.append("head_dim must be even (rotary embeddings)")
        if self.image_size % self.patch_size:
            problems.append(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if not 1 <= self.top_k <= self.n_routed:
            problems.append(f"top_k {self.top_k} must be in 1..n_routed ({self.n_routed})")
        if not 0 <= self.first_k_dense <= self.n_layers:
            problems.append(f"first_k_dense {self.first_k_dense} must be in 0..n_layers")
        if self.vocab_size <= N_SPECIAL + NUM_MAX + 1:
            problems.append(f"vocab_size {self.vocab_size} leaves no room for text tokens")
        if self.score_func not in ("sigmoid", "softmax"):
            problems.append(f"score_func {self.score_func!r} must be sigmoid or softmax")
        if self.balance not in ("aux_free", "switch_aux", "none"):
            problems.append(f"balance {self.balance!r} must be aux_free, switch_aux or none")
        if self.capacity_factor is not None and self.capacity_factor <= 0:
            problems.append("capacity_factor must be positive or None")
        if self.dense_ff < 0:
            problems.append(f"dense_ff {self.dense_ff} must be >= 0")
        if problems:
            raise ConfigError("bad MoEConfig: " + "; ".join(problems))

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def n_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @classmethod
    def tiny(cls, **overrides) -> "MoEConfig":
        """A model of ~0.3M parameters for tests: trains in seconds on one CPU core."""
        base = dict(d_model=64, n_layers=2, n_heads=4, d_ff=128, n_routed=4, top_k=2, d_expert=32,
                    image_size=64, patch_size=16, n_vision_layers=1, max_seq_len=512)
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MoEConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown MoEConfig keys: {', '.join(unknown)}")
        return cls(**d)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "MoEConfig":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"cannot read MoE config {path}: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        return cls.from_dict(data)
