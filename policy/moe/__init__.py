"""The built-in MoE vision-language policy.

``load_builtin()`` loads the shipped checkpoint (``policy/moe/checkpoint/``); ``load_dir(path)`` any
directory written by ``save_pretrained`` / ``galago train distill``. Importing this module registers
the ``builtin`` and ``moe:DIR`` policy specs.
"""
from __future__ import annotations

from pathlib import Path

from actions.errors import ConfigError
from policy.moe.config import MoEConfig
from policy.moe.generate import Generation, generate, sequence_logprobs
from policy.moe.model import MoEModel, PromptBatch, RoutingStats
from policy.moe.policy import MoEPolicy
from policy.moe.pretrained import build_model, from_pretrained, save_pretrained
from policy.moe.prompt import EncodedPrompt, collate, encode_observation, encode_target
from policy.moe.tokenizer import GalagoTokenizer

__all__ = ["MoEConfig", "MoEModel", "MoEPolicy", "GalagoTokenizer", "Generation", "generate",
           "sequence_logprobs", "encode_observation", "encode_target", "collate", "EncodedPrompt",
           "PromptBatch", "RoutingStats", "build_model", "from_pretrained", "save_pretrained",
           "load_builtin", "load_dir", "policy_dir", "CHECKPOINT_DIR"]

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoint"


def policy_dir(spec: str | Path) -> Path:
    """``builtin``, ``moe:DIR`` or a plain directory -> the policy directory."""
    spec = str(spec)
    if spec == "builtin":
        return CHECKPOINT_DIR
    return Path(spec[4:] if spec.startswith("moe:") else spec).expanduser()


_OPTIONS = {"no_image", "no_elements", "max_new_tokens", "temperature", "top_p", "seed", "decode_threads", "ground",
            "constrain", "verify", "copy"}


def _check_options(options: dict) -> dict:
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise ConfigError(f"unknown MoE policy options: {', '.join(unknown)} (known: {', '.join(sorted(_OPTIONS))})")
    return options


def load_dir(path: str | Path, **options) -> MoEPolicy:
    """A MoEPolicy from a directory holding config.json, model.safetensors and tokenizer.json."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise ConfigError(f"MoE policy directory {p} does not exist")
    return MoEPolicy.from_pretrained(p, **_check_options(options))


def load_builtin(**options) -> MoEPolicy:
    """The shipped checkpoint. Raises ConfigError (with what to do) when it has not been trained yet."""
    if not (CHECKPOINT_DIR / "model.safetensors").is_file():
        raise ConfigError(f"the built-in MoE checkpoint is missing ({CHECKPOINT_DIR}); train one with "
                          f"`galago train distill --data DATA --out {CHECKPOINT_DIR}` or use --policy moe:DIR")
    return load_dir(CHECKPOINT_DIR, **options)


def _register() -> None:
    import policy

    policy.register("builtin", lambda arg=None, **o: load_builtin(**o))
    policy.register("moe", lambda arg, **o: load_dir(arg, **o))


_register()
