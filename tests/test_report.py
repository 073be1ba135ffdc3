"""HTML reports: built from real and synthetic run directories, opened in headless Chromium."""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from actions.errors import ConfigError
from agent.report import IndexEntry, build_index, build_report
from agent.trajectory import RunSummary, StepRecord, TrajectoryWriter


def ui_image(seed: int, size=(1280, 720)) -> Image.Image:
    """A screenshot-like image: a top bar, a card, text lines and buttons that vary with ``seed``."""
    rnd = random.Random(seed)
    img = Image.new("RGB", size, (245, 247, 250))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, size[0], 48], fill=(16, 42, 67))
    d.text((20, 16), f"Acme Portal — page {seed}", fill="white")
    d.rectangle([200, 90, 1080, 660], fill="white", outline=(200, 210, 220))
    for i in range(14):
        y = 120 + i * 34
        d.text((230, y), " ".join(rnd.choice(["alpha", "beta", "report", "ada", "messages", "inbox", "42"])
                                  for _ in range(rnd.randint(3, 12))), fill=(40, 50, 60))
    for i in range(3):
        x = 230 + i * 180 + rnd.randint(0, 30)
        d.rectangle([x, 600, x + 150, 640], fill=(33, 134, 235))
        d.text((x + 20, 612), f"Button {i}", fill="white")
    return img


_BASES: dict[int, Image.Image] = {}


def step_image(n: int) -> Image.Image:
    """A distinct screen per ``n``: one of 8 rendered pages plus a changing region (cheap to make)."""
    base = _BASES.get(n % 8)
    if base is None:
        base = _BASES[n % 8] = ui_image(n % 8)
    img = base.copy()
    d = ImageDraw.Draw(img)
    d.rectangle([900, 120, 1060, 200], fill=(255, 244, 214))
    d.text((910, 130), f"step {n}\nitems {n * 7 % 31}\n{'#' * (n % 17)}", fill=(90, 60, 0))
    return img


def write_run(run_dir: Path, steps: int, *, error: str | None = None, thought: str = "Click the button.",
              same_image_every: int = 0) -> Path:
    w = TrajectoryWriter(run_dir)
    for i in range(steps):
        img = step_image(i // same_image_every if same_image_every else i)
        name = f"step-{i:03d}.png"
        img.save(run_dir / name, compress_level=1)  # fast; the report re-encodes it anyway
        rec = StepRecord(index=i, thought=thought, response=f"click(start_box='({100 + i},{200})')",
                         actions=[{"kind": "click", "point": {"x": 100 + i, "y": 200}}],
                         targets=[{"index": 3, "role": "button", "text": "Go", "box": [90, 190, 40, 20]}],
                         screenshot=name, policy_s=0.5, env_s=0.1, url="http://127.0.0.1/x")
        if i == 1:
            rec.feedback = "point (9999,1) is outside the 1280x720 screen"
        w.append(rec)
    step_image(999).save(run_dir / "final.png", compress_level=1)
    w.summary(RunSummary(task="demo", success=error is None, reward=1.0, steps=steps, seconds=1.5,
                         run_dir=str(run_dir), error=error, stop_reason="finished" if error is None else "error",
                         policy="scripted", instruction="Press the <b>button</b>"))
    w.close()
    return run_dir


@pytest.fixture(scope="module")
def browser():
    from actions.drivers.browser import CHROMIUM_ARGS, acquire_playwright, find_chromium, release_playwright

    pw = acquire_playwright()
    b = pw.chromium.launch(executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()
    release_playwright(pw)


def test_report_renders_steps_markers_and_verdicts_in_chromium(tmp_path, browser):
    ok = write_run(tmp_path / "ok", 4, thought="I see <script>alert(1)</script>", same_image_every=2)
    bad = write_run(tmp_path / "bad", 2, error="EnvironmentFailure: the page crashed")
    (bad / "call.json").write_text(json.dumps({"kind": "act", "instruction": "Log in", "ok": False,
                                               "cache": "partial", "replayed": [0], "mismatch": "button moved",
                                               "policy_calls": 1, "dpr": 1.0}))
    out = build_report([ok, bad], tmp_path / "r" / "report.html")
    html = out.read_text()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html  # model text is escaped
    assert "http://" not in re.sub(r'http://127\.0\.0\.1/x', "", html.split("<main>")[1])  # no external assets
    # ok: screens 0,0,1,1 + final; bad: screens 0,1 + the same final -> 3 distinct, each embedded once
    assert html.count("data:image/jpeg;base64,") == 3

    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto(out.as_uri())  # a report must open from disk, offline
        steps = page.locator(".step")
        assert steps.count() == 6
        for i in range(6):
            assert steps.nth(i).is_visible()
        # Every screenshot decoded, including the ones that reference an earlier copy.
        widths = page.eval_on_selector_all(".step img", "els => els.map(e => e.naturalWidth)")
        assert widths == [640] * 6
        marks = page.locator(".step .mark")
        assert marks.count() == 6
        box, img = marks.first.bounding_box(), page.locator(".step img").first.bounding_box()
        # The click at (100,200) CSS px lands at 100/1280 and 200/720 of the image.
        assert box["x"] + box["width"] / 2 == pytest.approx(img["x"] + img["width"] * 100 / 1280, abs=2)
        assert box["y"] + box["height"] / 2 == pytest.approx(img["y"] + img["height"] * 200 / 720, abs=2)
        assert page.locator("section.run[data-verdict=failed]").count() == 1
        assert "replayed from cache" in page.locator("#run-1 .step").first.inner_text()
        assert "the page crashed" in page.locator("#run-1").inner_text()
        assert "1 of 2 passed" in page.locator("#verdict").inner_text()
        shot = page.screenshot(full_page=False)
        assert len(shot) > 10_000
    finally:
        page.close()


@pytest.mark.parametrize("steps", [pytest.param(300, marks=pytest.mark.slow), 40])
def test_hundreds_of_steps_stay_small(tmp_path, steps):
    """300 distinct screens stay under 5 MB (~14 KB a step with these noisy synthetic screens;
    real pages measured ~7 KB). The 40-step variant checks the same per-step budget quickly."""
    run = write_run(tmp_path / "long", steps)
    out = build_report(run, tmp_path / "report.html")
    size = out.stat().st_size
    assert size < 5_000_000 * steps / 300, f"{size / 1e6:.2f} MB for {steps} steps"
    assert out.read_text().count('class="step') == steps


def test_bad_run_dirs_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such run directory"):
        build_report([tmp_path / "missing"], tmp_path / "r.html")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a run directory"):
        build_report([tmp_path / "empty"], tmp_path / "r.html")


def test_folder_of_runs_and_cli(tmp_path):
    from agent.cli import app

    write_run(tmp_path / "runs" / "a", 2)
    write_run(tmp_path / "runs" / "b", 1)
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(tmp_path / "runs" / "a")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "a" / "report.html").is_file()
    out = tmp_path / "all.html"
    result = runner.invoke(app, ["report", str(tmp_path / "runs"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().count('class="run ') == 2
    result = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no such run directory" in result.output


def test_index_links_reports(tmp_path):
    out = build_index([IndexEntry("t::a", "passed", 1.0, "a/report.html"),
                       IndexEntry("t::b", "failed", 2.0, "b/report.html", "ActFailed: <x>")], tmp_path / "index.html")
    html = out.read_text()
    assert 'href="a/report.html"' in html and "1 of 2 passed" in html and "&lt;x&gt;" in html
