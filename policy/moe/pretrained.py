"""Save / load a policy directory: config.json, model.safetensors, tokenizer.json (never pickle)."""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from actions.errors import ConfigError
from policy.moe.config import MoEConfig
from policy.moe.model import MoEModel
from policy.moe.tokenizer import GalagoTokenizer

CONFIG, WEIGHTS, TOKENIZER = "config.json", "model.safetensors", "tokenizer.json"


def save_pretrained(model: MoEModel, tokenizer: GalagoTokenizer, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.cfg.save(out / CONFIG)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    tmp = out / (WEIGHTS + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt", "galago": "moe-policy"})
    tmp.replace(out / WEIGHTS)  # atomic: a crash mid-save never leaves a torn checkpoint
    tokenizer.save(out / TOKENIZER)
    return out


def from_pretrained(model_dir: str | Path, device: str = "cpu") -> tuple[MoEModel, GalagoTokenizer]:
    d = Path(model_dir)
    missing = [n for n in (CONFIG, WEIGHTS, TOKENIZER) if not (d / n).is_file()]
    if missing:
        raise ConfigError(f"{d} is not a galago MoE policy directory (missing {', '.join(missing)})")
    cfg = MoEConfig.load(d / CONFIG)
    tok = GalagoTokenizer.load(d / TOKENIZER)
    if tok.vocab_size > cfg.vocab_size:
        raise ConfigError(f"{d}: tokenizer has {tok.vocab_size} tokens but the model only {cfg.vocab_size}")
    model = MoEModel(cfg)
    try:
        state = load_file(str(d / WEIGHTS), device=device)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, OSError, ValueError, SafetensorError) as e:
        raise ConfigError(f"cannot load weights from {d / WEIGHTS}: {e}") from None
    model.to(device).eval()
    return model, tok


def build_model(cfg: MoEConfig, tokenizer: GalagoTokenizer, seed: int = 0) -> MoEModel:
    """A fresh model whose vocabulary fits ``tokenizer`` (vocab rounded up to a multiple of 64)."""
    import dataclasses
    vocab = -(-tokenizer.vocab_size // 64) * 64
    cfg = dataclasses.replace(cfg, vocab_size=vocab)
    torch.manual_seed(seed)
    return MoEModel(cfg)
