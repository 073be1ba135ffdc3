"""galago serve + openai:MODEL@URL over real loopback HTTP: same steps as in-process, clean 4xx
errors for malformed requests, retries with backoff on 429/5xx."""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from actions.errors import ActionParseError, EnvironmentFailure
from actions.schema import Click, Type
from perception.observation import Observation
from policy.base import Episode, HistoryEntry
from policy.openai import OpenAIPolicy, image_data_url, parse_spec
from policy.scripted import ScriptedPolicy
from policy.serve import PolicyServer

SCRIPT = ["Thought: press it\nAction: click(start_box='(120,80)')", "type(content='ada\\n')"]
INSTRUCTION = "Log in as ada."


def screen(w: int = 320, h: int = 240) -> Image.Image:
    img = Image.new("RGB", (w, h), "white")
    ImageDraw.Draw(img).rectangle([100, 60, 140, 100], fill="blue")
    return img


def obs_for(policy, img: Image.Image) -> Observation:
    w, h = img.size
    return Observation(screenshot=img, width=w, height=h, space=policy.coordinate_space(w, h, 1.0))


@pytest.fixture()
def scripted_server():
    with PolicyServer(ScriptedPolicy(SCRIPT), model_name="scripted") as srv:
        srv.start()
        yield srv


def request(srv, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


def chat_body(messages, **extra) -> bytes:
    return json.dumps({"model": "scripted", "messages": messages, **extra}).encode()


# -- same result over HTTP as in-process -------------------------------------------------------

def test_openai_policy_against_served_scripted_policy(scripted_server):
    status, models = request(scripted_server, "GET", "/v1/models")
    assert status == 200 and models["data"][0]["galago"] == {"coordinate_space": "absolute"}

    local = ScriptedPolicy(SCRIPT)
    remote = OpenAIPolicy(f"scripted@{scripted_server.url}")
    assert remote.family.coords == "absolute"  # learned from /v1/models, not from the name
    for p in (local, remote):
        p.reset(Episode(instruction=INSTRUCTION))
    history_local: list[HistoryEntry] = []
    history_remote: list[HistoryEntry] = []
    for i in range(3):
        img = screen()
        a = local.act(INSTRUCTION, obs_for(local, img), history_local)
        b = remote.act(INSTRUCTION, obs_for(remote, img), history_remote)
        assert b.actions == a.actions and b.thought == a.thought
        for h, s in ((history_local, a), (history_remote, b)):
            h.append(HistoryEntry(index=i, thought=s.thought, actions=s.actions, response=s.raw))
    assert isinstance(history_remote[0].actions[0], Click) and history_remote[0].actions[0].point.x == 120
    assert isinstance(history_remote[1].actions[0], Type) and history_remote[1].actions[0].submit
    assert history_remote[2].actions[0].kind == "finished"
    assert remote.last_usage["calls"] == 1 and remote.total_usage["calls"] == 3


def test_openai_policy_against_served_hf_policy(tmp_path):
    """The tiny Qwen2.5-VL served: the client sees exactly what the in-process policy says."""
    pytest.importorskip("transformers")
    from policy.hf import HFPolicy
    from tests.tiny_models import build_tiny_qwen25vl

    model_dir = build_tiny_qwen25vl(tmp_path / "ui-tars-1.5-tiny")
    served = HFPolicy(model_dir, max_new_tokens=16)
    local = HFPolicy(model_dir, max_new_tokens=16)
    with PolicyServer(served, model_name="ui-tars-1.5-tiny") as srv:
        srv.start()
        remote = OpenAIPolicy(f"ui-tars-1.5-tiny@{srv.url}", retry_temperature=None)
        assert remote.family.params() == served.coordinate_params  # the processor's own limits
        img = screen()
        assert remote.coordinate_space(320, 240) == local.coordinate_space(320, 240)
        outcomes = []
        for p in (local, remote):
            p.reset(Episode(instruction=INSTRUCTION))
            if p is local:
                p.retry_temperature = None  # greedy only, so both sides are deterministic
            try:
                s = p.act(INSTRUCTION, obs_for(p, img), [])
                outcomes.append(("step", s.actions))
            except ActionParseError as e:
                outcomes.append(("error", e.raw))
        assert outcomes[0] == outcomes[1]
        assert remote.last_usage["prompt_tokens"] == local.last_usage["prompt_tokens"] > 100


# -- malformed requests ---------------------------------------------------------------------------

def test_malformed_requests_get_clean_4xx(scripted_server):
    img_part = {"type": "image_url", "image_url": {"url": image_data_url(screen())}}
    good = [{"role": "user", "content": [{"type": "text", "text": INSTRUCTION}]},
            {"role": "user", "content": [img_part]}]
    cases = [
        (b"{not json", 400, "not valid JSON"),
        (json.dumps({"model": "scripted"}).encode(), 400, "messages"),
        (chat_body([{"role": "wizard", "content": "x"}]), 400, "role"),
        (chat_body(good[:1]), 400, "no current screenshot"),
        (chat_body([good[0], {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://example.com/x.png"}}]}]), 400, "data: URL"),
        (chat_body([good[0], {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}]}]), 400, "base64"),
        (chat_body([good[0], {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8="}}]}]), 400, "readable image"),
        (chat_body(good, stream=True), 400, "stream"),
        (json.dumps({"model": "gpt-9", "messages": good}).encode(), 404, "not served"),
    ]
    for body, status, needle in cases:
        got, payload = request(scripted_server, "POST", "/v1/chat/completions", body,
                               {"Content-Type": "application/json"})
        assert got == status, (needle, payload)
        assert needle in payload["error"]["message"] and payload["error"]["type"]
    assert request(scripted_server, "GET", "/v2/nothing")[0] == 404
    assert request(scripted_server, "POST", "/v1/chat/completions", chat_body(good))[0] == 200  # still alive


def test_oversized_body_is_413():
    with PolicyServer(ScriptedPolicy(SCRIPT), max_body=1000) as srv:
        srv.start()
        status, payload = request(srv, "POST", "/v1/chat/completions", b"x" * 5000)
        assert status == 413 and payload["error"]["type"] == "request_too_large"
        assert request(srv, "GET", "/v1/models")[0] == 200


# -- the client's retries ---------------------------------------------------------------------

class _Flaky(BaseHTTPRequestHandler):
    """429, then 503, then a completion; a model named 'bad' always gets a 400."""

    calls = 0

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(n))
        type(self).calls += 1
        if body["model"] == "bad":
            status, payload = 400, {"error": {"message": "context too long", "type": "invalid_request_error"}}
        elif type(self).calls <= 2:
            status, payload = (429 if type(self).calls == 1 else 503), {"error": {"message": "busy"}}
        else:
            status, payload = 200, {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                    "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                        "role": "assistant", "content": "Thought: go\nAction: click(start_box='(500,500)')"}}],
                                    "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_retries_with_backoff_then_usage():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
        p = OpenAIPolicy(f"qwen3-vl-30b-a3b@{url}", backoff=0.01)
        assert p.family.coords == "relative"  # from the name (this server has no /v1/models)
        step = p.act(INSTRUCTION, obs_for(p, screen(400, 300)), [])
        assert _Flaky.calls == 3 and step.actions[0].point.x == 200 and step.actions[0].point.y == 150
        assert p.last_usage == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18, "calls": 1}
        with pytest.raises(EnvironmentFailure, match="HTTP 400"):
            OpenAIPolicy(f"bad@{url}", family="qwen3-vl").act(INSTRUCTION, obs_for(p, screen()), [])
    finally:
        srv.shutdown()
        srv.server_close()


def test_unreachable_server_is_an_environment_failure():
    p = OpenAIPolicy("ui-tars-1.5-7b@http://127.0.0.1:9/v1", max_retries=1, backoff=0.01, timeout=2)
    with pytest.raises(EnvironmentFailure, match="no answer after 2 tries"):
        p.act(INSTRUCTION, obs_for(p, screen()), [])


def test_spec_parsing():
    assert parse_spec("ui-tars-1.5-7b@http://h:8000/v1/") == ("ui-tars-1.5-7b", "http://h:8000/v1")
    from actions.errors import ConfigError

    for bad in ("noat", "@http://x", "m@ftp://x"):
        with pytest.raises(ConfigError):
            parse_spec(bad)


# -- the CLI ------------------------------------------------------------------------------------

def test_galago_serve_cli():
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    bad = subprocess.run([sys.executable, "-c", "from agent.cli import main; main()", "serve", "--policy", "nope"],
                         cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown policy" in bad.stderr
    proc = subprocess.Popen([sys.executable, "-c", "from agent.cli import main; main()", "serve", "--policy",
                             "scripted", "--port", "0"], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving scripted (absolute coordinates) at http://127.0.0.1:"), line
        url = line.split(" at ", 1)[1].strip()
        import urllib.request

        with urllib.request.urlopen(url + "/models", timeout=10) as r:
            assert json.loads(r.read())["data"][0]["id"] == "scripted"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class _Answering(BaseHTTPRequestHandler):
    """Answers any question with finished(content=...), as UI-TARS tends to; keeps the last body."""

    last: dict = {}

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).last = body
        content = "Thought: I count them.\nAction: finished(content='3 items in \\'Cart\\'')"
        payload = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                   "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                   "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_answer_sends_question_and_screenshot_and_unwraps_finished():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Answering)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        p = OpenAIPolicy(f"ui-tars-1.5-7b@http://127.0.0.1:{srv.server_address[1]}/v1")
        assert p.answer("How many items are in the cart?", obs_for(p, screen(400, 300))) == "3 items in 'Cart'"
        user = [m for m in _Answering.last["messages"] if m["role"] == "user"]
        parts = [part for m in user for part in (m["content"] if isinstance(m["content"], list) else [])]
        assert sum(part["type"] == "image_url" for part in parts) == 1
        assert any("How many items are in the cart?" in part.get("text", "") for part in parts)
        assert _Answering.last["temperature"] == 0.0
        assert p.last_usage["calls"] == 1 and p.total_usage["total_tokens"] == 9
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.slow  # a few MiniWoB++ episodes twice
def test_served_builtin_matches_in_process_builtin(tmp_path):
    """`galago serve --policy builtin` over real loopback HTTP: the same episodes end the same way
    (success, steps, actions) as with the built-in policy in-process."""
    from agent.evaluate import evaluate
    from policy.moe import CHECKPOINT_DIR, load_builtin

    if not (CHECKPOINT_DIR / "model.safetensors").is_file():
        pytest.skip("the built-in checkpoint is not in this checkout")
    suite = "miniwob:click-button,click-link,enter-text"
    with PolicyServer(load_builtin(), model_name="builtin") as srv:
        srv.start()
        runs = {}
        for name, spec in (("local", "builtin"), ("remote", f"openai:builtin@{srv.url}")):
            rep = evaluate(suite, None, spec, episodes=2, workers=0, out_dir=tmp_path / name, save_runs=True)
            assert rep.errors == 0
            runs[name] = sorted(rep.records, key=lambda r: r.key)
    assert [(r.key, r.success, r.steps) for r in runs["local"]] == [(r.key, r.success, r.steps) for r in runs["remote"]]
    assert sum(r.success for r in runs["local"]) >= 3  # the policy does solve some of them
    for a, b in zip(runs["local"], runs["remote"]):
        steps_a = [json.loads(x)["actions"] for x in (Path(a.run_dir) / "steps.jsonl").read_text().splitlines()]
        steps_b = [json.loads(x)["actions"] for x in (Path(b.run_dir) / "steps.jsonl").read_text().splitlines()]
        assert steps_a == steps_b, (a.key, steps_a, steps_b)
