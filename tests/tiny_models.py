"""Tiny random Qwen2.5-VL and Qwen3-VL-MoE models, saved like real checkpoints, for offline tests.

Each builder writes a directory ``hf:DIR`` loads exactly as it loads UI-TARS-1.5-7B or
Qwen3-VL-30B-A3B: config.json + model.safetensors, a byte-level BPE tokenizer trained with
``tokenizers`` on the prompt and action syntax (so prompts stay a few hundred tokens), the Qwen
special tokens, a Qwen-style chat template, and a ``Qwen2VLImageProcessor`` config with small
pixel limits (so a screenshot is ~100 image tokens). Recipes: shared/notes/models.md §3.3-3.5.
"""
from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>", "<|box_start|>", "<|box_end|>"]

# Qwen's template, reduced to what galago sends: string or list content, {"type": "image"} parts.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "<|im_start|>{{ message['role'] }}\n"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'image' -%}<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif part['type'] == 'text' -%}{{ part['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "<|im_end|>\n"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|im_start|>assistant\n{%- endif -%}"
)


def _corpus() -> list[str]:
    from policy.prompts import FEEDBACK_PREFIX, SYSTEM_PROMPT, system_prompt

    texts = [system_prompt("Click the button.") , SYSTEM_PROMPT, FEEDBACK_PREFIX]
    for x in range(0, 1000, 7):
        texts.append(f"Thought: Click the Submit button.\nAction: click(start_box='({x},{(x * 3) % 1000})')")
    texts += ["Action: type(content='hello')", "finished(content='done')", "scroll(direction='down')",
              "hotkey(key='ctrl c')", "call_user()", "wait()"]
    return texts * 3


def train_tokenizer(vocab_size: int = 700):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(_corpus(), trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    hf.chat_template = CHAT_TEMPLATE
    return hf


def _save(model, tokenizer, image_processor, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    image_processor.save_pretrained(out)
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")
    return out


def _ids(tok) -> dict:
    return {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}


def build_tiny_qwen25vl(out_dir: str | Path, seed: int = 0, max_pixels: int = 336 * 280) -> Path:
    """A ~0.25M-parameter Qwen2.5-VL (UI-TARS-1.5's architecture), patch 14, merge 2."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    torch.manual_seed(seed)
    tok = train_tokenizer()
    ids = _ids(tok)
    cfg = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=64, window_size=56,
                           fullatt_block_indexes=[1]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    model = Qwen2_5_VLForConditionalGeneration(cfg)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    ip = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=max_pixels, patch_size=14, merge_size=2,
                                  temporal_patch_size=2)
    return _save(model, tok, ip, Path(out_dir))


def build_tiny_qwen3vl_moe(out_dir: str | Path, seed: int = 0, max_pixels: int = 320 * 256) -> Path:
    """A ~0.3M-parameter Qwen3-VL-MoE (8 experts, top-2), patch 16, merge 2."""
    import torch
    from transformers import Qwen3VLMoeConfig, Qwen3VLMoeForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    torch.manual_seed(seed)
    tok = train_tokenizer()
    ids = _ids(tok)
    cfg = Qwen3VLMoeConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
                         num_experts=8, num_experts_per_tok=2, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, head_dim=16, decoder_sparse_step=1, max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3],
                                          "mrope_interleaved": True},
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16,
                           spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=64,
                           num_position_embeddings=64, deepstack_visual_indexes=[0, 1]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    model = Qwen3VLMoeForConditionalGeneration(cfg)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    ip = Qwen2VLImageProcessorPil(min_pixels=64 * 64, max_pixels=max_pixels, patch_size=16, merge_size=2,
                                  temporal_patch_size=2)
    return _save(model, tok, ip, Path(out_dir))
