"""``openai:MODEL@BASE_URL`` — any OpenAI-compatible chat server (vLLM, TGI, SGLang, ``galago serve``)
as a galago policy.

Messages follow policy/prompts.py (the hf: layout): screenshots go as base64 PNG ``image_url`` parts,
one per user message, the last 5 in context. The coordinate convention comes from, in order:
the server's ``/v1/models`` entry when it advertises one (``galago serve`` puts
``{"galago": {"coordinate_space": ...}}`` there), the model name (``ui-tars-1.5*``/``qwen2.5-vl*``:
smart-resize pixels; ``qwen3-vl*``, ``ui-tars-1.0``/``-7b``/``qwen2-vl``: relative 0..1000), else
UI-TARS-1.5's (with a warning).

The key is ``OPENAI_API_KEY`` ("EMPTY" when unset, which local servers accept). Requests time
out (``timeout``, 120 s) and are retried with exponential backoff on 429, 5xx, timeouts and refused
connections; other HTTP errors, and exhausted retries, end the run (EnvironmentFailure). A response
that does not parse is asked again once at temperature 1, then the ActionParseError goes back to
the loop. ``last_usage`` / ``total_usage`` hold the servers' token counts.
"""
from __future__ import annotations

import base64
import io
import json
import logging
import os
import time
import urllib.error
import urllib.request
from typing import Sequence

from PIL import Image

from actions.errors import ActionParseError, ConfigError, EnvironmentFailure
from actions.schema import Step
from perception.observation import Observation
from perception.space import CoordinateSpace
from policy import register
from policy.base import BasePolicy, Episode, HistoryEntry
from policy.prompts import (HISTORY_IMAGES, UITARS_15, Family, Message, answer_messages, build_messages,
                            extract_answer, family_for_model_name, family_from_params)

log = logging.getLogger(__name__)


def parse_spec(spec: str) -> tuple[str, str]:
    """``MODEL@BASE_URL`` -> (model, base_url); the model name may itself contain '@'."""
    model, sep, url = spec.rpartition("@")
    if not sep or not model.strip() or not url.strip():
        raise ConfigError(f"openai policy {spec!r}: write it as MODEL@BASE_URL, "
                          f"e.g. ui-tars-1.5-7b@http://127.0.0.1:8000/v1")
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"openai policy {spec!r}: BASE_URL must start with http:// or https://")
    return model.strip(), url


def image_data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def to_openai_messages(messages: Sequence[Message]) -> list[dict]:
    out = []
    for m in messages:
        if m.role == "user":
            parts = [{"type": "image_url", "image_url": {"url": image_data_url(p)}} if isinstance(p, Image.Image)
                     else {"type": "text", "text": p} for p in m.parts]
            out.append({"role": "user", "content": parts})
        else:
            out.append({"role": m.role, "content": m.text})
    return out


def server_entry(base_url: str, model: str, api_key: str = "EMPTY", timeout: float = 10.0) -> dict | None:
    """What a galago server advertises for ``model`` in /v1/models (its ``galago`` object: the
    coordinate convention, and ``elements: true`` when the policy reads the element list); None
    for other servers."""
    req = urllib.request.Request(f"{base_url}/models", headers={"Authorization": f"Bearer {api_key}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = json.loads(r.read(1_000_000))
    except (OSError, ValueError, urllib.error.URLError) as e:
        log.debug("no /v1/models from %s: %s", base_url, e)
        return None
    for entry in body.get("data", []) if isinstance(body, dict) else []:
        if isinstance(entry, dict) and entry.get("id") == model and isinstance(entry.get("galago"), dict):
            return entry["galago"]
    return None


class OpenAIPolicy(BasePolicy):
    """A model behind an OpenAI-compatible ``/v1/chat/completions``."""

    def __init__(self, spec: str, *, api_key: str | None = None, family: Family | str | None = None,
                 temperature: float = 0.0, retry_temperature: float | None = 1.0, max_tokens: int = 500,
                 timeout: float = 120.0, max_retries: int = 4, backoff: float = 1.0,
                 history_images: int = HISTORY_IMAGES, language: str = "English", browser: bool = True):
        import openai

        self.model, self.base_url = parse_spec(spec)
        self.name = f"openai:{self.model}@{self.base_url}"
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        # Our own retry loop (max_retries=0 below) so the backoff policy is explicit and testable.
        self.client = openai.OpenAI(base_url=self.base_url, api_key=self.api_key, timeout=timeout, max_retries=0)
        self._family = family_for_model_name(family) if isinstance(family, str) else family
        if isinstance(family, str) and self._family is None:
            raise ConfigError(f"unknown model family {family!r}; use ui-tars-1.5, ui-tars-1.0 or qwen3-vl")
        self.temperature, self.retry_temperature = temperature, retry_temperature
        self.max_tokens, self.max_retries, self.backoff = max_tokens, max_retries, backoff
        self.history_images, self.language, self.browser = history_images, language, browser
        self.last_usage: dict = {}
        self.total_usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "calls": 0}
        self.last_raw = ""
        self._images: dict[int, Image.Image] = {}
        self._server: dict | None = None  # the galago server's /v1/models entry ({} for other servers)

    @property
    def galago_server(self) -> dict:
        """The server's galago entry in /v1/models ({} for other servers; fetched once)."""
        if self._server is None:
            self._server = server_entry(self.base_url, self.model, self.api_key) or {}
        return self._server

    @property
    def sends_elements(self) -> bool:
        """Whether requests carry the page's element list (only to galago servers that ask for it)."""
        return bool(self.galago_server.get("elements"))

    def extra_body(self, observation: Observation) -> dict | None:
        if not self.sends_elements:
            return None
        elements = []
        for e in observation.elements:  # full-precision boxes: the served policy sees what it would in-process
            d = e.to_dict()
            d.pop("selector", None)
            d["box"] = [e.box.x, e.box.y, e.box.width, e.box.height]
            elements.append(d)
        return {"galago": {"elements": elements, "viewport": [observation.width, observation.height],
                           "dpr": observation.dpr}}

    # -- coordinate convention -----------------------------------------------------------------

    @property
    def family(self) -> Family:
        if self._family is None:
            fam = None
            if self.galago_server:
                try:
                    fam = family_from_params(self.model, self.galago_server)
                except (ValueError, TypeError) as e:
                    log.warning("ignoring the coordinate space %s advertises for %s: %s", self.base_url, self.model, e)
            fam = fam or family_for_model_name(self.model)
            if fam is None:
                log.warning("openai:%s: the model name does not say its coordinate convention and the server "
                            "advertises none; assuming UI-TARS-1.5's (smart-resized pixels)", self.model)
                fam = UITARS_15
            self._family = fam
        return self._family

    def coordinate_space(self, width: int, height: int, dpr: float = 1.0) -> CoordinateSpace:
        return self.family.space(width, height, dpr)

    # -- acting ----------------------------------------------------------------------------------

    def reset(self, episode: Episode) -> None:
        super().reset(episode)
        self._images.clear()

    def _model_image(self, screenshot: Image.Image, space: CoordinateSpace) -> Image.Image:
        # Sending the smart-resized image makes the server's own resize a no-op, so the ratio the
        # coordinates are mapped back with is known exactly (ui-tars.md §3.2).
        if space.kind == "smart_resize" and screenshot.size != space.image_size:
            return screenshot.resize(space.image_size, Image.Resampling.BICUBIC)
        return screenshot

    def messages(self, task: str, observation: Observation, history: Sequence[HistoryEntry]) -> tuple[list[dict], CoordinateSpace]:
        space = observation.space or self.coordinate_space(observation.width, observation.height, observation.dpr)
        image = self._model_image(observation.screenshot, space)
        index = history[-1].index + 1 if history else 0
        self._images[index] = image
        for k in [k for k in self._images if k <= index - self.history_images]:
            del self._images[k]
        past = dict(self._images)
        for entry in history:
            seen = entry.observation
            if entry.index not in past and seen is not None and seen.screenshot is not None:
                past[entry.index] = self._model_image(seen.screenshot, space)
        msgs = build_messages(task, image, history, past_images=past, history_images=self.history_images,
                              language=self.language, browser=self.browser, family=self.family)
        return to_openai_messages(msgs), space

    def complete(self, messages: list[dict], temperature: float, extra_body: dict | None = None) -> tuple[str, dict]:
        """One chat completion with retries; returns (text, usage)."""
        import openai

        delay = self.backoff
        for attempt in range(self.max_retries + 1):
            try:
                resp = self.client.chat.completions.create(model=self.model, messages=messages,
                                                           temperature=temperature, max_tokens=self.max_tokens,
                                                           extra_body=extra_body)
                break
            except (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError,
                    openai.APIConnectionError) as e:
                if attempt == self.max_retries:
                    raise EnvironmentFailure(f"{self.name}: no answer after {attempt + 1} tries "
                                             f"({type(e).__name__}: {e})") from e
                log.warning("%s: %s; retrying in %.1fs", self.name, type(e).__name__, delay)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
            except openai.APIStatusError as e:
                raise EnvironmentFailure(f"{self.name}: HTTP {e.status_code}: {e.message}") from e
        choice = resp.choices[0] if resp.choices else None
        text = (choice.message.content or "") if choice is not None and choice.message is not None else ""
        u = resp.usage
        usage = {"prompt_tokens": getattr(u, "prompt_tokens", 0) or 0,
                 "completion_tokens": getattr(u, "completion_tokens", 0) or 0,
                 "total_tokens": getattr(u, "total_tokens", 0) or 0}
        return text, usage

    def act(self, task: str, observation: Observation, history: Sequence[HistoryEntry]) -> Step:
        from actions.parse import parse_response

        messages, space = self.messages(task, observation, history)
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "calls": 0}
        # A galago server's policy already retries (or not) inside its own act: never retry on top.
        retry = self.retry_temperature is not None and not self.galago_server
        temps = [self.temperature] + ([self.retry_temperature] if retry else [])
        error: ActionParseError | None = None
        extra = self.extra_body(observation)
        for temperature in temps:
            text, u = self.complete(messages, temperature, extra)
            for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
                usage[k] += u[k]
                self.total_usage[k] += u[k]
            usage["calls"] += 1
            self.total_usage["calls"] += 1
            self.last_raw, self.last_usage = text, usage
            try:
                step = parse_response(text, space)
                step.raw = text
                return step
            except ActionParseError as e:
                e.raw = text
                error = e
        assert error is not None
        raise error


    def answer(self, question: str, observation: Observation) -> str:
        """Answer a question about the screen (temperature 0; Session.query / assert_ / wait_for)."""
        space = observation.space or self.coordinate_space(observation.width, observation.height, observation.dpr)
        messages = to_openai_messages(answer_messages(question, self._model_image(observation.screenshot, space)))
        text, usage = self.complete(messages, 0.0)
        for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
            self.total_usage[k] += usage[k]
        self.total_usage["calls"] += 1
        self.last_raw, self.last_usage = text, {**usage, "calls": 1}
        return extract_answer(text)


register("openai", lambda arg, **opts: OpenAIPolicy(arg, **opts), form="openai:MODEL@BASE_URL", arg="required")
