"""The `galago` console script, run as a user runs it (a subprocess), on real Chromium."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GALAGO = Path(sys.executable).parent / "galago"


def galago(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(GALAGO), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_run_json_success(tmp_path):
    p = galago("run", "tasks/examples/login.yaml", "--policy", "scripted", "--json", "--out", str(tmp_path))
    assert p.returncode == 0, p.stderr
    result = last_json(p.stdout)
    assert list(result) == ["task", "success", "reward", "steps", "seconds", "run_dir", "error"]
    assert result["task"] == "login-basic" and result["success"] is True and result["error"] is None
    run_dir = Path(result["run_dir"])
    assert run_dir.parent == tmp_path and (run_dir / "steps.jsonl").is_file()
    assert len((run_dir / "steps.jsonl").read_text().splitlines()) == result["steps"] == 5


def test_run_that_fails_exits_1_and_table_without_json(tmp_path):
    p = galago("run", "tasks/examples/login.yaml", "--policy", "scripted", "--max-steps", "2",
               "--out", str(tmp_path))
    assert p.returncode == 1, p.stderr
    assert "FAILED" in p.stdout and "max_steps" in p.stdout and "click(start_box" in p.stdout


@pytest.mark.parametrize("args, message", [
    (["run", "{bad}", "--policy", "scripted"], "bad.yaml: success.0.js: "),
    (["run", "tasks/examples/nope.yaml", "--policy", "scripted"], "no such task file"),
    (["run", "tasks/examples/login.yaml", "--policy", "gpt5"], "unknown policy 'gpt5'"),
    (["run", "tasks/examples/login.yaml", "--policy", "oracle"], "needs a suite task"),
    (["run", "tasks/examples/login.yaml", "--max-steps", "0"], "--max-steps"),
    (["run", "nosuite:task", "--policy", "scripted"], "unknown suite 'nosuite'"),
])
def test_bad_input_exits_2_with_a_clear_message(tmp_path, args, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\ninstruction: x\nstart: {url: 'http://127.0.0.1:9/'}\nsuccess:\n  - js:\n")
    args = [a.replace("{bad}", str(bad)) for a in args]
    p = galago(*args, "--out", str(tmp_path / "runs"))
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert message in " ".join(p.stderr.split()), p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.slow  # eleven browser runs in a subprocess: ~40 s idle, far more on a loaded machine
def test_demo_runs_every_example_then_the_model_on_held_out_episodes(tmp_path):
    from agent.cli import DEMO_HELD_OUT
    from policy.moe import CHECKPOINT_DIR

    p = galago("demo", "--out", str(tmp_path), timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    summaries = [json.loads((d / "summary.json").read_text()) for d in tmp_path.iterdir()]
    examples = {s["task"]: s for s in summaries if s["policy"] == "scripted"}
    assert sorted(examples) == ["login-basic", "settings-digest", "todo-add-and-tick"]
    assert all(s["success"] for s in examples.values())
    held_out = [s for s in summaries if s["policy"] != "scripted"]
    assert len(held_out) == (len(DEMO_HELD_OUT) if (CHECKPOINT_DIR / "model.safetensors").is_file() else 0)
    assert all(s["error"] is None for s in summaries)
