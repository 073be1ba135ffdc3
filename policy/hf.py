"""``hf:DIR`` — a transformers vision-language model (UI-TARS, Qwen2.5-VL, Qwen3-VL, Qwen3-VL-MoE)
from a local directory, in the galago loop; plus ``hf_sft``, supervised fine-tuning on
``galago collect`` demonstrations.

Loading is local only (``local_files_only``, safetensors only): a directory that lacks
config.json, safetensors weights, a tokenizer, an image processor or a chat template is a
ConfigError naming what is missing; nothing is ever downloaded.

Inputs are built here rather than by the model's ``*Processor`` class: the processor classes need
torchvision (their video processor does), which a CPU-only torch cannot have (shared/notes/models.md
§3.1, §3.4b). So one code path serves every install: the image processor (``*ImageProcessorPil``
without torchvision) gives ``pixel_values`` and ``image_grid_thw``, the chat template renders the
conversation with one ``<|image_pad|>`` per image, and each is expanded to
``grid_t*grid_h*grid_w / merge_size**2`` copies; ``mm_token_type_ids`` marks them (Qwen3-VL needs
it for M-RoPE).
"""
from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from actions.errors import ActionParseError, ConfigError
from actions.schema import Step
from perception.observation import Observation
from perception.space import CoordinateSpace
from policy import register
from policy.base import BasePolicy, Episode, HistoryEntry
from policy.prompts import (HISTORY_IMAGES, Family, Message, answer_messages, build_messages, extract_answer,
                            family_for_model_type, MODEL_TYPE_FAMILIES)

log = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model")
CHAT_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


def check_model_dir(model_dir: str | Path) -> Path:
    """The directory, or a ConfigError naming every missing file (before transformers is touched)."""
    path = Path(model_dir).expanduser()
    if not path.is_dir():
        raise ConfigError(f"hf:{model_dir}: no such directory (hf: loads local files only; download the model "
                          f"first, e.g. `huggingface-cli download ByteDance-Seed/UI-TARS-1.5-7B --local-dir DIR`)")
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    safetensors = list(path.glob("*.safetensors")) + list(path.glob("*.safetensors.index.json"))
    if not safetensors:
        other = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt*"))
        hint = f" (found {', '.join(other[:3])}: only safetensors weights are loaded)" if other else ""
        missing.append("weights (model.safetensors or model.safetensors.index.json)" + hint)
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        missing.append("tokenizer (tokenizer.json)")
    if not (path / "preprocessor_config.json").is_file():
        missing.append("image processor (preprocessor_config.json)")
    if missing:
        raise ConfigError(f"hf:{model_dir} is not a usable model directory; missing: {'; '.join(missing)}")
    return path


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _resolve_dtype(dtype: Any, device: str):
    import torch

    if dtype is None:
        dtype = os.environ.get("GALAGO_HF_DTYPE") or ("bfloat16" if device.startswith("cuda") else "float32")
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
             "half": torch.float16, "fp32": torch.float32, "float32": torch.float32, "float": torch.float32}
    if str(dtype).lower() not in table:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of bfloat16, float16, float32")
    return table[str(dtype).lower()]


def _size_param(image_processor: Any, key: str, legacy: str, default: int) -> int:
    size = getattr(image_processor, "size", None)
    value = None
    if size is not None:
        value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    if value is None:
        value = getattr(image_processor, legacy, None)
    return int(value) if value else default


@dataclass
class HFModel:
    """A loaded model with what it takes to feed it; shared by HFPolicy and hf_sft."""

    path: Path
    model: Any
    tokenizer: Any
    image_processor: Any
    chat_template: str
    family: Family
    device: str
    dtype: Any
    image_token: str = "<|image_pad|>"

    @classmethod
    def load(cls, model_dir: str | Path, device: str | None = None, dtype: Any = None) -> "HFModel":
        path = check_model_dir(model_dir)
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"hf:{model_dir}: config.json is not valid JSON ({e})") from None
        model_type = config.get("model_type", "")
        family = family_for_model_type(model_type)
        if family is None:
            raise ConfigError(f"hf:{model_dir}: model_type {model_type!r} is not supported; supported: "
                              f"{', '.join(sorted(MODEL_TYPE_FAMILIES))} (UI-TARS-1.0/1.5, Qwen2/2.5-VL, "
                              f"Qwen3-VL, Qwen3-VL-MoE)")
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        device = device or os.environ.get("GALAGO_HF_DEVICE") or _default_device()
        torch_dtype = _resolve_dtype(dtype, device)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            image_processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
            model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True, use_safetensors=True,
                                                                dtype=torch_dtype)
        except (OSError, ValueError) as e:
            raise ConfigError(f"hf:{model_dir}: could not load the model ({type(e).__name__}: {e})") from None
        model.to(device).eval()
        template = _chat_template(path, tokenizer)
        if family.coords == "smart_resize":
            # The model answers in pixels of the image *it* saw: use its own processor's limits.
            factor = int(getattr(image_processor, "patch_size", 14)) * int(getattr(image_processor, "merge_size", 2))
            family = family.with_image_params(
                factor, _size_param(image_processor, "shortest_edge", "min_pixels", family.min_pixels),
                _size_param(image_processor, "longest_edge", "max_pixels", family.max_pixels))
        return cls(path, model, tokenizer, image_processor, template, family, device, torch_dtype)

    # -- inputs ------------------------------------------------------------------------------

    @property
    def image_token_id(self) -> int:
        return int(self.model.config.image_token_id)

    def space(self, width: int, height: int, dpr: float = 1.0) -> CoordinateSpace:
        return self.family.space(width, height, dpr)

    def model_image(self, screenshot: Image.Image, space: CoordinateSpace) -> Image.Image:
        """The screenshot as the model should see it: for smart_resize, exactly the resized image
        whose pixels the model's coordinates count (the processor then leaves it as it is)."""
        img = screenshot.convert("RGB")
        if space.kind == "smart_resize" and img.size != space.image_size:
            img = img.resize(space.image_size, Image.Resampling.BICUBIC)
        return img

    def render(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> tuple[str, list]:
        conv, images = [], []
        for m in messages:
            if m.role == "user":
                content = []
                for p in m.parts:
                    if isinstance(p, Image.Image):
                        content.append({"type": "image"})
                        images.append(p)
                    else:
                        content.append({"type": "text", "text": p})
                conv.append({"role": m.role, "content": content})
            else:
                conv.append({"role": m.role, "content": m.text})
        text = self.tokenizer.apply_chat_template(conv, chat_template=self.chat_template, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt)
        return text, images

    def encode(self, messages: Sequence[Message], target: str | None = None) -> dict:
        """Model inputs for ``messages`` (+ generation prompt). With ``target``, also ``labels``
        that score only the target text and its end-of-turn token (the SFT loss)."""
        import torch

        text, images = self.render(messages)
        pieces = text.split(self.image_token)
        if len(pieces) - 1 != len(images):
            raise ConfigError(f"hf:{self.path}: the chat template produced {len(pieces) - 1} "
                              f"{self.image_token} for {len(images)} images")
        out: dict = {}
        if images:
            vision = self.image_processor(images=images, return_tensors="pt")
            grid = vision["image_grid_thw"]
            merge = int(getattr(self.image_processor, "merge_size", 2))
            counts = [int(g.prod()) // (merge * merge) for g in grid]
            text = pieces[0] + "".join(self.image_token * n + piece for n, piece in zip(counts, pieces[1:]))
            out["pixel_values"] = vision["pixel_values"].to(self.device, self.dtype)
            out["image_grid_thw"] = grid.to(self.device)
        ids = self.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        if target is not None:
            end = self.tokenizer.eos_token or "<|im_end|>"
            tgt = self.tokenizer(target + end, add_special_tokens=False, return_tensors="pt")["input_ids"]
            labels = torch.cat([torch.full_like(ids, -100), tgt], dim=1)
            ids = torch.cat([ids, tgt], dim=1)
            out["labels"] = labels.to(self.device)
        out["input_ids"] = ids.to(self.device)
        out["attention_mask"] = torch.ones_like(out["input_ids"])
        out["mm_token_type_ids"] = (out["input_ids"] == self.image_token_id).long()
        return out

    def generate(self, messages: Sequence[Message], *, max_new_tokens: int = 500,
                 temperature: float = 0.0) -> tuple[str, dict]:
        import torch

        inputs = self.encode(messages)
        n_prompt = inputs["input_ids"].shape[1]
        kwargs: dict = {"max_new_tokens": max_new_tokens, "do_sample": temperature > 0}
        if temperature > 0:
            kwargs.update(temperature=temperature, top_k=0, top_p=1.0)
        with torch.inference_mode():
            out = self.model.generate(**inputs, **kwargs)
        new = out[0, n_prompt:]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        usage = {"prompt_tokens": int(n_prompt), "completion_tokens": int(new.shape[0]),
                 "total_tokens": int(n_prompt + new.shape[0])}
        return text, usage


def _chat_template(path: Path, tokenizer: Any) -> str:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default")
    if template:
        return template
    if (path / "chat_template.jinja").is_file():
        return (path / "chat_template.jinja").read_text(encoding="utf-8")
    if (path / "chat_template.json").is_file():
        try:
            return json.loads((path / "chat_template.json").read_text(encoding="utf-8"))["chat_template"]
        except (ValueError, KeyError) as e:
            raise ConfigError(f"hf:{path}: chat_template.json has no chat_template ({e})") from None
    raise ConfigError(f"hf:{path}: missing chat template (chat_template.jinja, chat_template.json or "
                      f"tokenizer_config.json's chat_template)")


class HFPolicy(BasePolicy):
    """A transformers model as a galago policy.

    Greedy decoding (temperature 0) with at most 500 new tokens by default; when the text does not
    parse, one retry sampled at temperature 1 (OSWorld's UI-TARS agent does the same), then the
    ActionParseError (with ``.raw``, the text) goes back to the loop. ``last_usage`` holds the token
    counts of the latest ``act``; ``last_raw`` its raw text.
    """

    name = "hf"

    def __init__(self, model_dir: str | Path, *, device: str | None = None, dtype: Any = None,
                 max_new_tokens: int = 500, temperature: float = 0.0, retry_temperature: float = 1.0,
                 history_images: int = HISTORY_IMAGES, language: str = "English", browser: bool = True):
        self.hf = HFModel.load(model_dir, device=device, dtype=dtype)
        self.name = f"hf:{model_dir}"
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.retry_temperature = retry_temperature
        self.history_images = history_images
        self.language = language
        self.browser = browser
        self.last_usage: dict = {}
        self.last_raw = ""
        self._images: dict[int, Image.Image] = {}  # step index -> what the model saw (own 5-image window)
        self._lock = threading.Lock()  # one generate at a time (galago serve is threaded)

    @property
    def family(self) -> Family:
        return self.hf.family

    @property
    def coordinate_params(self) -> dict:
        return self.hf.family.params()

    def coordinate_space(self, width: int, height: int, dpr: float = 1.0) -> CoordinateSpace:
        return self.hf.space(width, height, dpr)

    def reset(self, episode: Episode) -> None:
        super().reset(episode)
        self._images.clear()

    def messages(self, task: str, observation: Observation, history: Sequence[HistoryEntry]) -> tuple[list, CoordinateSpace]:
        space = observation.space or self.coordinate_space(observation.width, observation.height, observation.dpr)
        image = self.hf.model_image(observation.screenshot, space)
        index = history[-1].index + 1 if history else 0
        self._images[index] = image
        for k in [k for k in self._images if k <= index - self.history_images]:
            del self._images[k]
        past = dict(self._images)
        for entry in history:  # images the loop kept but this policy did not see (e.g. after a restart)
            seen = entry.observation
            if entry.index not in past and seen is not None and seen.screenshot is not None:
                past[entry.index] = self.hf.model_image(seen.screenshot, space)
        msgs = build_messages(task, image, history, past_images=past, history_images=self.history_images,
                              language=self.language, browser=self.browser, family=self.family)
        return msgs, space

    def act(self, task: str, observation: Observation, history: Sequence[HistoryEntry]) -> Step:
        from actions.parse import parse_response

        msgs, space = self.messages(task, observation, history)
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "calls": 0}
        error: ActionParseError | None = None
        with self._lock:
            for temperature in (self.temperature, self.retry_temperature):
                text, u = self.hf.generate(msgs, max_new_tokens=self.max_new_tokens, temperature=temperature)
                for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
                    usage[k] += u[k]
                usage["calls"] += 1
                self.last_raw, self.last_usage = text, usage
                try:
                    step = parse_response(text, space)
                    step.raw = text
                    return step
                except ActionParseError as e:
                    e.raw = text
                    error = e
                    if self.retry_temperature is None:
                        break
        assert error is not None
        raise error

    def answer(self, question: str, observation: Observation) -> str:
        """Answer a question about the screen (greedy; used by Session.query / assert_ / wait_for)."""
        space = observation.space or self.coordinate_space(observation.width, observation.height, observation.dpr)
        msgs = answer_messages(question, self.hf.model_image(observation.screenshot, space))
        with self._lock:
            text, usage = self.hf.generate(msgs, max_new_tokens=self.max_new_tokens, temperature=0.0)
        self.last_raw, self.last_usage = text, {**usage, "calls": 1}
        return extract_answer(text)


register("hf", lambda arg, **opts: HFPolicy(arg, **opts), form="hf:DIR", arg="required")


# ---------------------------------------------------------------------------------------------
# Supervised fine-tuning on demonstrations
# ---------------------------------------------------------------------------------------------

@dataclass
class SFTReport:
    steps: int
    examples: int
    first_loss: float
    last_loss: float
    out_dir: str
    seconds: float


def _in_space(text: str, src: CoordinateSpace, dst: CoordinateSpace, box_tokens: bool) -> str:
    """A response re-written from one coordinate space to another (demos use relative-1000)."""
    from actions.format import format_step
    from actions.parse import parse_response

    step = parse_response(text, src)
    return format_step(step.thought, step.actions, dst, box_tokens=box_tokens)


def sft_examples(hf: HFModel, demos: Sequence[Any], data_dir: str | Path | None = None,
                 *, history_images: int = HISTORY_IMAGES) -> list[tuple[list[Message], str]]:
    """(messages, target) pairs in the model's own coordinate space and prompt layout.

    A demo is a ``policy.train.data.DemoStep`` (its ``image`` a path relative to ``data_dir``) or
    any object with ``instruction, width, height, dpr, history, target`` and a PIL ``image``.
    Past steps are text only (demos keep one screenshot per step), as in UI-TARS's own training
    data where early steps carry no image.
    """
    from policy.base import HistoryEntry

    out = []
    for d in demos:
        image = d.image
        if not isinstance(image, Image.Image):
            image = Image.open(d.image_path(data_dir) if hasattr(d, "image_path") else Path(data_dir or ".") / image)
            image.load()
        rel = CoordinateSpace.relative(d.width, d.height, 1000, d.dpr)
        space = hf.space(d.width, d.height, d.dpr)
        target = _in_space(d.target, rel, space, box_tokens=True)
        history = [HistoryEntry(index=i, thought="", actions=[], response=_in_space(h, rel, space, True))
                   for i, h in enumerate(d.history)]
        msgs = build_messages(d.instruction, hf.model_image(image, space), history, past_images={},
                              history_images=history_images, family=hf.family)
        out.append((msgs, target))
    return out


def sft_on_examples(hf: HFModel, examples: Sequence[tuple[list[Message], str]], *, steps: int, lr: float,
                    seed: int = 0, log_every: int = 0) -> list[float]:
    """AdamW on the target tokens only (labels are -100 on the prompt); one example per step,
    cycling through ``examples`` in a seeded shuffled order. Returns the loss per step."""
    import random

    import torch

    if not examples:
        raise ConfigError("no demonstrations to train on")
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    batches = [hf.encode(msgs, target) for msgs, target in examples]
    rng = random.Random(seed)
    torch.manual_seed(seed)
    model = hf.model
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    order: list[int] = []
    losses = []
    for step in range(steps):
        if not order:
            order = list(range(len(batches)))
            rng.shuffle(order)
        out = model(**batches[order.pop()])
        loss = out.loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        if log_every and (step + 1) % log_every == 0:
            log.info("sft step %d/%d loss %.4f", step + 1, steps, losses[-1])
    model.eval()
    return losses


def save_model(hf: HFModel, out_dir: str | Path) -> Path:
    """Weights as safetensors plus the tokenizer, image processor and chat template: a directory
    ``hf:OUT`` loads as it loaded the original."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hf.model.save_pretrained(out, safe_serialization=True)
    hf.tokenizer.save_pretrained(out)
    hf.image_processor.save_pretrained(out)
    if not getattr(hf.tokenizer, "chat_template", None):
        (out / "chat_template.jinja").write_text(hf.chat_template, encoding="utf-8")
    return out


def hf_sft(model_dir: str | Path, data_dir: str | Path, out_dir: str | Path, steps: int = 100, lr: float = 1e-5,
           *, device: str | None = None, dtype: Any = None, only_success: bool = True, seed: int = 0) -> SFTReport:
    """Fine-tune ``hf:model_dir`` on the demonstrations in ``data_dir`` (``galago collect``'s
    format) and save the result to ``out_dir``; the loss covers the target text only."""
    import time

    from policy.train.data import load_demos

    t0 = time.perf_counter()
    demos = load_demos(data_dir, only_success=only_success)
    hf = HFModel.load(model_dir, device=device, dtype=dtype or "float32")  # bf16 AdamW state loses updates
    examples = sft_examples(hf, demos, data_dir)
    losses = sft_on_examples(hf, examples, steps=steps, lr=lr, seed=seed, log_every=10)
    save_model(hf, out_dir)
    return SFTReport(steps=steps, examples=len(examples), first_loss=losses[0], last_loss=losses[-1],
                     out_dir=str(out_dir), seconds=round(time.perf_counter() - t0, 3))
