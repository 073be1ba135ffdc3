"""hf:DIR on tiny random Qwen2.5-VL and Qwen3-VL-MoE checkpoints: loading, prompts, real steps on a
local page in headless Chromium, and SFT on one demonstration that makes the model click right."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from actions.errors import ActionParseError, ConfigError
from actions.schema import Click
from perception.observation import Observation
from policy.base import HistoryEntry
from policy.prompts import (FEEDBACK_PREFIX, QWEN3_VL, UITARS_15, add_box_tokens, build_messages,
                            family_for_model_name, instruction_from_prompt, system_prompt)
from tests.tiny_models import build_tiny_qwen25vl, build_tiny_qwen3vl_moe

pytest.importorskip("transformers")

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
VIEWPORT = (320, 240)
BUTTON = (100, 100, 120, 40)  # x, y, w, h in CSS px
PAGE = f"""<!doctype html><html><body style="margin:0;background:#fff">
<button id="b" style="position:absolute;left:{BUTTON[0]}px;top:{BUTTON[1]}px;width:{BUTTON[2]}px;height:{BUTTON[3]}px"
 onclick="document.title='clicked'">Submit</button></body></html>"""
INSTRUCTION = "Click the Submit button."


@pytest.fixture(scope="module")
def q25(tmp_path_factory) -> Path:
    return build_tiny_qwen25vl(tmp_path_factory.mktemp("q25"))


@pytest.fixture(scope="module")
def q3moe(tmp_path_factory) -> Path:
    return build_tiny_qwen3vl_moe(tmp_path_factory.mktemp("q3moe"))


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A real headless Chromium page showing PAGE, served from 127.0.0.1."""
    from actions.drivers.browser import acquire_playwright, find_chromium, release_playwright
    from tasks.server import PageServer

    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text(PAGE)
    pw = acquire_playwright()  # one sync Playwright per thread, shared with other fixtures in this worker
    try:
        with PageServer(root) as server:
            browser = pw.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS)
            pg = browser.new_page(viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]})
            pg.goto(server.url("index.html"))
            pg.url_root = server.url("index.html")  # type: ignore[attr-defined]
            yield pg
            browser.close()
    finally:
        release_playwright(pw)


def observe(pg, policy) -> Observation:
    img = Image.open(io.BytesIO(pg.screenshot())).convert("RGB")
    w, h = VIEWPORT
    return Observation(screenshot=img, width=w, height=h, url=pg.url, space=policy.coordinate_space(w, h, 1.0))


# -- loading -----------------------------------------------------------------------------------

def test_missing_files_are_named(tmp_path):
    from policy.hf import HFPolicy

    with pytest.raises(ConfigError, match="no such directory"):
        HFPolicy(tmp_path / "nope")
    with pytest.raises(ConfigError) as e:
        HFPolicy(tmp_path)
    for what in ("config.json", "weights", "tokenizer", "preprocessor_config.json"):
        assert what in str(e.value)
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match="only safetensors"):
        HFPolicy(tmp_path)


def test_unsupported_model_type_and_spec(q25, tmp_path):
    import shutil

    from policy import load

    bad = tmp_path / "bad"
    shutil.copytree(q25, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["model_type"] = "llama"
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="model_type 'llama' is not supported"):
        load(f"hf:{bad}")
    assert load(f"hf:{q25}").family.coords == "smart_resize"


def test_coordinate_conventions(q25, q3moe):
    from policy.hf import HFPolicy

    p25, p3 = HFPolicy(q25), HFPolicy(q3moe)
    s = p25.coordinate_space(320, 240)
    # smart_resize with the model's own image processor (factor 28, its min/max pixels)
    assert (s.kind, s.model_width, s.model_height) == ("smart_resize", 308, 252)
    assert p25.coordinate_params == {"coordinate_space": "smart_resize", "factor": 28, "min_pixels": 3136,
                                     "max_pixels": 336 * 280}
    s3 = p3.coordinate_space(320, 240)
    assert (s3.kind, s3.model_width, s3.model_height) == ("relative", 1000, 1000)
    assert s3.to_viewport(500, 500) == (160, 120)


# -- prompts -----------------------------------------------------------------------------------

def test_prompt_layout_five_images_all_responses_box_tokens():
    img = Image.new("RGB", (8, 8))
    hist = [HistoryEntry(index=i, thought="t", actions=[], response=f"Thought: t{i}\nAction: click(start_box='({i},{i})')",
                         feedback="no such element" if i == 5 else "") for i in range(7)]
    past = {i: Image.new("RGB", (8, 8), (i, 0, 0)) for i in range(7)}
    msgs = build_messages(INSTRUCTION, img, hist, past_images=past)
    assert [m.role for m in msgs[:2]] == ["system", "user"]
    assert instruction_from_prompt(msgs[1].text) == INSTRUCTION
    assert "call_user()" in msgs[1].text and "## Action Space" in msgs[1].text
    images = [im for m in msgs for im in m.images]
    assert len(images) == 5 and images[-1] is img  # 4 past + current
    assert [im.getpixel((0, 0))[0] for im in images[:4]] == [3, 4, 5, 6]  # the most recent past steps
    assistants = [m.text for m in msgs if m.role == "assistant"]
    assert len(assistants) == 7  # every past response stays
    assert assistants[2] == "Thought: t2\nAction: click(start_box='<|box_start|>(2,2)<|box_end|>')"
    assert add_box_tokens(assistants[2]) == assistants[2]  # idempotent
    fb = [m.text for m in msgs if m.role == "user" and m.text.startswith(FEEDBACK_PREFIX)]
    assert fb == [FEEDBACK_PREFIX + "no such element"]
    assert msgs[-1].images == [img]


def test_family_names_and_qwen3_note():
    assert family_for_model_name("ui-tars-1.5-7b") is UITARS_15
    assert family_for_model_name("ByteDance-Seed/UI-TARS-1.5-7B") is UITARS_15
    assert family_for_model_name("Qwen/Qwen3-VL-30B-A3B-Instruct") is QWEN3_VL
    assert family_for_model_name("ui-tars-7b-sft").coords == "relative"
    assert family_for_model_name("gpt-4o") is None
    assert "1000x1000" in system_prompt("x", family=QWEN3_VL)
    assert "1000x1000" not in system_prompt("x", family=UITARS_15)


def test_encode_expands_image_tokens(q3moe):
    from policy.hf import HFModel

    hf = HFModel.load(q3moe)
    img = Image.new("RGB", (320, 240), "white")
    msgs = build_messages(INSTRUCTION, img, [HistoryEntry(0, "", [], "Action: wait()")], past_images={0: img})
    inputs = hf.encode(msgs)
    grid = inputs["image_grid_thw"]
    n_tokens = int((grid.prod(dim=1) // 4).sum())
    assert grid.shape == (2, 3)
    assert int((inputs["input_ids"] == hf.image_token_id).sum()) == n_tokens == int(inputs["mm_token_type_ids"].sum())


# -- real steps on a real page -----------------------------------------------------------------

@pytest.mark.parametrize("which", ["q25", "q3moe"])
def test_random_model_steps_on_a_page(which, request, page):
    """Whatever a random model says is either a Step in viewport pixels or an ActionParseError
    carrying its text (after one retry); both end cleanly, and usage is counted."""
    from policy.base import Episode
    from policy.hf import HFPolicy

    policy = HFPolicy(request.getfixturevalue(which), max_new_tokens=24)
    policy.reset(Episode(instruction=INSTRUCTION))
    history: list[HistoryEntry] = []
    for i in range(2):
        obs = observe(page, policy)
        try:
            step = policy.act(INSTRUCTION, obs, history)
            feedback, response = "", step.raw
            for a in step.actions:
                for p in ([a.point] if hasattr(a, "point") else []):
                    assert isinstance(p.x, float)
            assert policy.last_usage["calls"] == 1
        except ActionParseError as e:
            feedback, response = str(e), e.raw
            assert e.raw == policy.last_raw
            assert policy.last_usage["calls"] == 2  # greedy, then one retry at temperature 1
        assert policy.last_usage["completion_tokens"] >= 1 and policy.last_usage["prompt_tokens"] > 100
        history.append(HistoryEntry(index=i, thought="", actions=[], response=response, feedback=feedback))
    assert len(policy._images) == 2


def test_answer_a_question_about_the_page(q25, page):
    """Session.query/assert_ ask hf: policies questions: one greedy generation over one screenshot."""
    from policy.hf import HFPolicy

    policy = HFPolicy(q25, max_new_tokens=8)
    reply = policy.answer("What does the button say?", observe(page, policy))
    assert isinstance(reply, str) and reply == reply.strip()
    assert policy.last_usage["calls"] == 1 and 1 <= policy.last_usage["completion_tokens"] <= 8
    assert policy.last_usage["prompt_tokens"] > 100  # the image tokens are in the prompt


def test_agent_loop_with_hf_policy(q25, tmp_path):
    """The real loop (agent.loop.Agent + BrowserDriver) with hf:DIR ends cleanly within budget."""
    pytest.importorskip("actions.drivers.browser")
    pytest.importorskip("perception.observe")
    from agent.loop import Agent
    from policy import load
    from tasks import load_task_file

    (tmp_path / "index.html").write_text(PAGE)
    (tmp_path / "task.yaml").write_text(json.dumps({
        "id": "hf-click", "instruction": INSTRUCTION, "start": {"page": "index.html"},
        "viewport": {"width": VIEWPORT[0], "height": VIEWPORT[1]}, "max_steps": 2,
        "success": [{"js": "document.title === 'clicked'"}]}))
    result = Agent(load(f"hf:{q25}", max_new_tokens=24), out_dir=tmp_path / "runs").run(
        load_task_file(tmp_path / "task.yaml"))
    assert result.error is None, result.error
    assert 1 <= result.steps <= 2
    lines = [json.loads(x) for x in (Path(result.run_dir) / "steps.jsonl").read_text().splitlines()]
    assert len(lines) == result.steps
    # token usage per step and in total (summary.json); the screenshot's devicePixelRatio per step
    assert all(x["usage"]["prompt_tokens"] > 100 and x["usage"]["calls"] in (1, 2) and x["dpr"] == 1.0 for x in lines)
    summary = json.loads((Path(result.run_dir) / "summary.json").read_text())
    assert summary["usage"]["total_tokens"] == sum(x["usage"]["total_tokens"] for x in lines)


# -- fine-tuning ---------------------------------------------------------------------------------

def test_sft_on_one_demo_then_clicks_the_button(q25, page, tmp_path):
    """hf_sft on one `galago collect` demonstration (relative-1000 target) teaches the tiny
    Qwen2.5-VL to answer with the click, in its own smart-resize space, that hits the button."""
    from policy.base import Episode
    from policy.hf import HFPolicy, hf_sft
    from policy.train.data import DemoStep, DemoWriter

    page.goto(page.url_root)
    img = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    cx, cy = BUTTON[0] + BUTTON[2] / 2, BUTTON[1] + BUTTON[3] / 2
    target = (f"Thought: Click the Submit button.\nAction: click(start_box='({round(cx / VIEWPORT[0] * 1000)},"
              f"{round(cy / VIEWPORT[1] * 1000)})')")
    data = tmp_path / "data"
    with DemoWriter(data) as w:
        w.write(DemoStep(episode="demo-0", task="t", seed=0, step=0, instruction=INSTRUCTION, image="x.png",
                         width=VIEWPORT[0], height=VIEWPORT[1], target=target, success=True), image=img)
    report = hf_sft(q25, data, tmp_path / "tuned", steps=30, lr=3e-3)
    assert report.examples == 1 and report.last_loss < report.first_loss / 4

    policy = HFPolicy(tmp_path / "tuned", max_new_tokens=40)
    policy.reset(Episode(instruction=INSTRUCTION))
    step = policy.act(INSTRUCTION, observe(page, policy), [])
    assert "<|box_start|>" not in step.raw and "click(start_box=" in step.raw
    [click] = step.actions
    assert isinstance(click, Click)
    x, y, bw, bh = BUTTON
    assert x <= click.point.x <= x + bw and y <= click.point.y <= y + bh
    page.mouse.click(click.point.x, click.point.y)
    assert page.title() == "clicked"
