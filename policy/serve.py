"""``galago serve``: an OpenAI-compatible server in front of any galago policy.

``POST /v1/chat/completions`` takes the conversation an ``openai:`` client (or any UI-TARS harness)
sends — the layout of policy/prompts.py — and answers with one step of the served policy:

* the instruction is read from the first user text (after "## User Instruction", or all of it);
* the current screen is the last image; its pixel size is the viewport (dpr 1);
* the history is rebuilt from the assistant messages (their text, the image that preceded each,
  and any feedback message after it);
* ``policy.act`` runs, and the reply is the step as UI-TARS text in the policy's *own* coordinate
  space, which ``GET /v1/models`` advertises as ``{"galago": {"coordinate_space": ...}}`` so
  clients map it back correctly.

Requests are validated with pydantic; bad ones get a 4xx ``{"error": {"message", "type"}}``,
bodies over ``max_body`` bytes a 413, never a crash. A model error (text that does not parse)
returns the model's raw text with status 200, as a model server would, so the client's parser
reports it. The standard library's ThreadingHTTPServer serves; policy calls are serialised.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated, Any, Literal, Union

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from actions.errors import ModelError
from perception.observation import Element, Observation
from policy.base import Episode, HistoryEntry
from policy.prompts import FEEDBACK_PREFIX, Family, instruction_from_prompt

log = logging.getLogger(__name__)

MAX_BODY = 20 * 1024 * 1024
MAX_IMAGE_SIDE = 8192
MAX_MESSAGES = 512
MAX_ELEMENTS = 2000


# ---------------------------------------------------------------------------------------------
# Request models (OpenAI chat-completions subset)
# ---------------------------------------------------------------------------------------------

class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(_Part):
    type: Literal["text"]
    text: str


class ImageURL(BaseModel):
    model_config = ConfigDict(extra="ignore")
    url: str = Field(min_length=1)
    detail: str | None = None


class ImagePart(_Part):
    type: Literal["image_url"]
    image_url: ImageURL


Part = Annotated[Union[TextPart, ImagePart], Field(discriminator="type")]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "developer"]
    content: Union[str, list[Part], None] = None

    def parts(self) -> list:
        if self.content is None:
            return []
        if isinstance(self.content, str):
            return [TextPart(type="text", text=self.content)]
        return list(self.content)

    def text(self) -> str:
        return "".join(p.text for p in self.parts() if isinstance(p, TextPart))


class WireElement(BaseModel):
    """One UI element as ``openai:`` clients send it (perception.observation.Element.to_dict)."""

    model_config = ConfigDict(extra="ignore")
    index: int = Field(ge=0)
    role: str = Field(max_length=64)
    text: str = Field(default="", max_length=2000)
    box: tuple[float, float, float, float]
    tag: str = Field(default="", max_length=64)
    value: str = Field(default="", max_length=2000)
    checked: bool | None = None
    disabled: bool = False
    focused: bool = False
    interactive: bool = True


class GalagoExtras(BaseModel):
    """The request's ``galago`` field: what a screenshot alone does not carry. ``openai:`` clients
    send it only to servers whose /v1/models entry says ``"elements": true`` (galago serve with a
    policy that reads the element list, e.g. builtin); other servers never see it."""

    model_config = ConfigDict(extra="ignore")
    elements: list[WireElement] = Field(default_factory=list, max_length=MAX_ELEMENTS)
    viewport: tuple[int, int] | None = None  # CSS px of the screenshot (it may be dpr x larger)
    dpr: float = Field(default=1.0, gt=0, le=8)


class ChatRequest(BaseModel):
    # Sampling knobs clients send (top_p, frequency_penalty, ...) are accepted and ignored: the
    # served policy decides how it decodes.
    model_config = ConfigDict(extra="ignore")
    model: str = ""
    galago: GalagoExtras | None = None
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    n: int = Field(default=1, ge=1, le=1)


class RequestError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.type = status, message, type_


def decode_image(url: str) -> Image.Image:
    """A ``data:image/...;base64,`` URL -> RGB image; remote URLs are refused (no fetching)."""
    if not url.startswith("data:"):
        raise RequestError(400, "image_url must be a data: URL (data:image/png;base64,...); remote URLs are not fetched")
    header, sep, data = url.partition(",")
    if not sep or ";base64" not in header or not header[5:].startswith("image/"):
        raise RequestError(400, "image_url must look like data:image/png;base64,<data>")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, "image_url data is not valid base64") from None
    try:
        img = Image.open(io.BytesIO(raw))
        if max(img.size) > MAX_IMAGE_SIDE or min(img.size) < 1:
            raise RequestError(400, f"image is {img.size[0]}x{img.size[1]}; each side must be 1..{MAX_IMAGE_SIDE}")
        img.load()
    except RequestError:
        raise
    except Exception as e:  # PIL raises many kinds for a bad file; all mean the same to the client
        raise RequestError(400, f"image_url data is not a readable image ({type(e).__name__})") from None
    return img.convert("RGB")


# ---------------------------------------------------------------------------------------------
# Conversation -> (instruction, observation, history)
# ---------------------------------------------------------------------------------------------

def space_params(policy: Any) -> dict:
    """The policy's coordinate convention as advertised JSON, plus ``"elements": true`` when it
    reads the page's element list (clients then send it in the request's ``galago`` field)."""
    extra = {"elements": True} if getattr(policy, "uses_elements", False) else {}
    return {**_coordinate_params(policy), **extra}


def _coordinate_params(policy: Any) -> dict:
    params = getattr(policy, "coordinate_params", None)
    if isinstance(params, dict):
        return params
    fam = getattr(policy, "family", None)
    if isinstance(fam, Family):
        return fam.params()
    space = policy.coordinate_space(1280, 720, 1.0)
    if space.kind == "relative":
        return {"coordinate_space": "relative", "scale": int(space.model_width)}
    if space.kind == "smart_resize":  # parameters unknown: the UI-TARS constants are the convention's default
        return Family("served", "smart_resize").params()
    return {"coordinate_space": "absolute"}


def read_conversation(req: ChatRequest, policy: Any) -> tuple[str, Observation, list[HistoryEntry]]:
    from actions.parse import parse_response

    instruction = ""
    for m in req.messages:
        if m.role == "user" and m.text().strip():
            instruction = instruction_from_prompt(m.text())
            break
    if not instruction:
        raise RequestError(400, "no instruction: the first user message with text must hold the task")

    history: list[HistoryEntry] = []
    images: list[Image.Image | None] = []  # the screenshot that preceded each assistant turn
    pending_image: Image.Image | None = None  # the last image not yet tied to an assistant turn
    current: Image.Image | None = None
    for m in req.messages:
        if m.role == "assistant":
            # clients re-insert UI-TARS box markers into past responses; the policy gets its own text back
            response = m.text().replace("<|box_start|>", "").replace("<|box_end|>", "")
            history.append(HistoryEntry(index=len(history), thought="", actions=[], response=response))
            images.append(pending_image)
            pending_image = None
            continue
        if m.role != "user":
            continue
        for p in m.parts():
            if isinstance(p, ImagePart):
                pending_image = current = decode_image(p.image_url.url)
            elif p.text.startswith(FEEDBACK_PREFIX) and history:
                history[-1].feedback = p.text[len(FEEDBACK_PREFIX):]
    if current is None or pending_image is None:
        raise RequestError(400, "no current screenshot: the last user message(s) after the last assistant "
                                "message must carry an image_url")
    w, h = current.size
    space = policy.coordinate_space(w, h, 1.0)
    for entry, img in zip(history, images):
        if img is not None:
            entry.observation = Observation(screenshot=img, width=img.size[0], height=img.size[1],
                                            space=policy.coordinate_space(img.size[0], img.size[1], 1.0))
        try:
            step = parse_response(entry.response, entry.observation.space if entry.observation else space)
            entry.thought, entry.actions = step.thought, list(step.actions)
        except ModelError:
            pass  # a past response that did not parse stays text only, as the client saw it
    obs = Observation(screenshot=current, width=w, height=h, space=space, instruction=instruction)
    extras = req.galago
    if extras is not None:
        if extras.viewport is not None:
            obs.width, obs.height = extras.viewport
            obs.dpr = extras.dpr
            obs.space = policy.coordinate_space(obs.width, obs.height, obs.dpr)
        obs.elements = [Element.from_dict(e.model_dump()) for e in extras.elements]
    return instruction, obs, history


def step_text(step: Any, space: Any) -> str:
    from actions.format import format_step

    if step.raw and (not step.thought or step.thought in step.raw):
        return step.raw  # the policy's own words, in the coordinate space /v1/models advertises
    if not step.actions:
        return f"Thought: {step.thought}"
    return format_step(step.thought or "", list(step.actions), space)


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------

class PolicyServer(ThreadingHTTPServer):
    """``with PolicyServer(policy) as srv: srv.start(); ... srv.url``"""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, policy: Any, host: str = "127.0.0.1", port: int = 0, *, model_name: str | None = None,
                 max_body: int = MAX_BODY):
        super().__init__((host, port), _Handler)
        self.policy = policy
        self.model_name = model_name or getattr(policy, "name", "galago")
        self.max_body = max_body
        self.lock = threading.Lock()
        # Clients retry a response that does not parse (at temperature 1, as OSWorld's UI-TARS
        # agent does); a served model retrying too would double the work and hide the request's
        # temperature, so the served policy answers once, at the temperature asked for.
        if hasattr(policy, "retry_temperature"):
            policy.retry_temperature = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "PolicyServer":
        """Serve in a daemon thread (tests, notebooks); ``serve_forever`` blocks instead."""
        self._thread = threading.Thread(target=self.serve_forever, name="galago-serve", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self.stop()
        else:
            self.server_close()

    # -- endpoints -------------------------------------------------------------------------------

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": self.model_name, "object": "model", "created": 0,
                                            "owned_by": "galago", "galago": space_params(self.policy)}]}

    def chat(self, body: bytes) -> dict:
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise RequestError(400, f"body is not valid JSON ({e})") from None
        try:
            req = ChatRequest.model_validate(payload)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first.get("loc", ()))
            raise RequestError(400, f"invalid request: {where}: {first.get('msg')} ({e.error_count()} error(s))") from None
        if req.stream:
            raise RequestError(400, "stream=true is not supported")
        if req.model and req.model != self.model_name:
            raise RequestError(404, f"model {req.model!r} is not served here; this server serves {self.model_name!r}",
                               "model_not_found")
        with self.lock:
            instruction, obs, history = read_conversation(req, self.policy)
            if not history:  # a new conversation is a new episode
                self.policy.reset(Episode(instruction=instruction))
            default_t = getattr(self.policy, "temperature", None)
            if req.temperature is not None and isinstance(default_t, (int, float)):
                self.policy.temperature = req.temperature
            try:
                text, usage = self._act(instruction, obs, history)
            finally:
                if isinstance(default_t, (int, float)):
                    self.policy.temperature = default_t
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
                "model": self.model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": usage}

    def _act(self, instruction: str, obs: Observation, history: list[HistoryEntry]) -> tuple[str, dict]:
        try:
            step = self.policy.act(instruction, obs, history)
            if getattr(self.policy, "grounded", False):  # the point moved (policy.grounding): say where to
                step = dataclasses.replace(step, raw="")
            text = step_text(step, obs.space)
        except ModelError as e:
            # The model said something unusable: hand its text to the client, whose parser will
            # report it to the model, as with any model server.
            text = str(getattr(e, "raw", "") or getattr(self.policy, "last_raw", "") or f"Thought: {e}")
        u = dict(getattr(self.policy, "last_usage", None) or {})
        usage = {k: int(u.get(k, 0)) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
        return text, usage


class _Handler(BaseHTTPRequestHandler):
    server: PolicyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        log.info("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, obj: dict) -> None:
        body = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, type_: str) -> None:
        self._send(status, {"error": {"message": message, "type": type_, "code": status}})

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            self._send(200, self.server.models())
        elif path in ("/health", "/v1/health"):
            self._send(200, {"status": "ok"})
        else:
            self._error(404, f"no such endpoint: GET {path}", "not_found")

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._drain()
            self._error(404, f"no such endpoint: POST {path}", "not_found")
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self.close_connection = True
            self._error(411, "a Content-Length header is required", "invalid_request_error")
            return
        n = int(length)
        if n > self.server.max_body:
            self.close_connection = True  # do not read what we refuse
            self._error(413, f"request body is {n} bytes; the limit is {self.server.max_body}", "request_too_large")
            return
        body = self.rfile.read(n)
        try:
            self._send(200, self.server.chat(body))
        except RequestError as e:
            self._error(e.status, e.message, e.type)
        except Exception as e:  # our bug or the policy's crash: a 500, and the server lives on
            log.exception("chat completion failed")
            self._error(500, f"{type(e).__name__}: {e}", "server_error")

    def _drain(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= self.server.max_body:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def do_PUT(self) -> None:  # noqa: N802
        self._drain()
        self._error(405, "method not allowed", "invalid_request_error")

    do_DELETE = do_PATCH = do_PUT


def serve(policy: Any, host: str = "127.0.0.1", port: int = 8000, *, model_name: str | None = None) -> None:
    """Serve until interrupted."""
    with PolicyServer(policy, host, port, model_name=model_name) as srv:
        log.info("serving %s at %s", srv.model_name, srv.url)
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            pass
