"""The loop, task files, the run directory and policy loading — on real headless Chromium."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from actions.errors import ConfigError
from agent.loop import Agent, RunResult
from agent.trajectory import StepRecord, load_run
from policy import load
from policy.scripted import ScriptedPolicy
from tasks import example_task_files, resolve_task
from tasks.spec import load_task_file

EXAMPLES = {p.stem: p for p in example_task_files()}

PAGE = """<!doctype html><html><head><title>t</title></head><body style="margin:0">
<button id="b" style="position:absolute;left:100px;top:100px;width:200px;height:60px"
 onclick="document.getElementById('out').textContent='clicked ' + (++window.n)">Press me</button>
<div id="out" style="position:absolute;left:100px;top:300px"></div>
<script>window.n = 0;</script></body></html>"""


def write_task(tmp_path: Path, *, script: list[str], success: list[dict] | None = None, max_steps: int = 6,
               page: str = PAGE, extra: str = "") -> Path:
    (tmp_path / "page.html").write_text(page)
    task = {"id": "t", "instruction": "Press the button twice.", "start": {"page": "page.html"},
            "viewport": {"width": 1024, "height": 768}, "max_steps": max_steps,
            "success": success or [{"text": "clicked 2"}], "script": script}
    path = tmp_path / "task.yaml"
    path.write_text(json.dumps(task) + "\n" + extra)  # JSON is valid YAML
    return path


@pytest.fixture
def driver(make_driver):
    """A fresh context of the session's Chromium (tests/conftest.py) at the examples' viewport."""
    return make_driver(viewport=(1024, 768))


# -- task files -------------------------------------------------------------------------------

def test_example_task_files_load():
    assert set(EXAMPLES) >= {"login", "todo", "settings"}
    for path in EXAMPLES.values():
        task = load_task_file(path)
        assert task.script and task.viewport == (1024, 768) and task.stop_on_success


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["success"].__setitem__(0, {"js": None}), "success.0.js"),
    (lambda d: d.update(colour="red"), "colour"),
    (lambda d: d.__setitem__("start", {"page": "../etc/passwd"}), "start.page"),
    (lambda d: d.__setitem__("start", {"page": "p.html", "url": "http://x"}), "start"),
    (lambda d: d["success"].__setitem__(0, {"url": "(("}), "success.0.url"),
    (lambda d: d["success"].__setitem__(0, {"jss": "1"}), "success.0"),
    (lambda d: d.__setitem__("max_steps", 0), "max_steps"),
    (lambda d: d.pop("instruction"), "instruction"),
])
def test_bad_task_file_names_file_and_field(tmp_path, mutate, field):
    data = {"id": "x", "instruction": "i", "start": {"page": "p.html"}, "success": [{"text": "a"}]}
    (tmp_path / "p.html").write_text("<p>a</p>")
    mutate(data)
    path = tmp_path / "x.yaml"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as e:
        load_task_file(path)
    assert str(e.value).startswith(f"{path}: {field}:"), str(e.value)


def test_missing_page_and_bad_yaml(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("id: x\ninstruction: i\nstart: {page: nothere.html}\nsuccess: [{text: a}]\n")
    with pytest.raises(ConfigError, match="start.page: nothere.html not found"):
        load_task_file(path)
    path.write_text("id: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_task_file(path)
    with pytest.raises(ConfigError, match="no such task file"):
        load_task_file(tmp_path / "missing.yaml")


def test_resolve_task_refs():
    assert resolve_task(str(EXAMPLES["login"])).id == "login-basic"
    for ref, msg in [("", "empty"), ("what is this", "neither a task file"), ("nosuchsuite:t", "unknown suite")]:
        with pytest.raises(ConfigError, match=msg):
            resolve_task(ref)


# -- policy specs ------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, msg", [
    ("gpt", "unknown policy 'gpt'; valid forms: builtin, moe:DIR"),
    ("moe", "needs an argument; write it as moe:DIR"),
    ("scripted:x", "takes no argument"),
    ("openai:gpt-4o", "openai:MODEL@BASE_URL"),
    ("replay:/no/such/dir", "no such run directory"),
])
def test_bad_policy_specs(spec, msg):
    with pytest.raises(ConfigError, match=msg.replace("(", r"\(")):
        load(spec)


def test_scripted_policy_does_not_import_torch():
    code = "import sys, policy; p = policy.load('scripted'); assert p.name == 'scripted'; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- the loop ----------------------------------------------------------------------------------

def test_login_example_end_to_end(tmp_path):
    """driver=None: the agent launches and closes its own browser; the run directory is complete."""
    result = Agent("scripted", out_dir=tmp_path).run(resolve_task(str(EXAMPLES["login"])))
    assert result.success and result.strict_success and result.error is None, result
    assert result.stop_reason == "success" and result.steps == 5 and result.reward == 1.0
    run = load_run(result.run_dir)
    assert [r.index for r in run.records] == list(range(5))
    assert run.summary is not None and run.summary.success and run.summary.steps == 5
    assert set(json.loads((Path(result.run_dir) / "summary.json").read_text())) >= {
        "task", "success", "reward", "steps", "seconds", "run_dir", "error"}
    assert all((Path(result.run_dir) / f"step-{i:03d}.png").is_file() for i in range(5))
    assert (Path(result.run_dir) / "final.png").is_file()
    first = run.records[0]
    assert first.actions == [{"kind": "click", "point": {"x": 512.0, "y": 266.0}}]
    assert first.results == [{"ok": True, "error": "", "info": first.results[0]["info"]}]
    assert first.targets and first.targets[0]["role"] == "textbox"
    assert first.url.endswith("/login.html") and run.records[-1].success
    assert first.policy_s >= 0 and first.env_s > 0
    assert result.to_json()["run_dir"] == result.run_dir


@pytest.mark.parametrize("name", ["todo", "settings"])
def test_other_examples_succeed(name, driver):
    task = resolve_task(str(EXAMPLES[name]))
    result = Agent(ScriptedPolicy(), driver=driver).run(task)
    assert result.success, [(r.response, r.feedback, r.outcome_detail) for r in result.records]
    assert result.run_dir is None  # no out_dir: nothing written


def test_step_budget_and_stream(driver, tmp_path):
    path = write_task(tmp_path, script=["click(start_box='(200,130)')"] * 5, success=[{"text": "clicked 9"}],
                      max_steps=3)
    items = list(Agent(ScriptedPolicy(), driver=driver, out_dir=tmp_path / "runs").stream(load_task_file(path)))
    assert [type(i) for i in items] == [StepRecord] * 3 + [RunResult]
    result = items[-1]
    assert not result.success and result.error is None and result.stop_reason == "max_steps"
    assert result.steps == 3 and [r.success for r in result.records] == [False] * 3
    # --max-steps overrides the task's budget
    result = Agent(ScriptedPolicy(), driver=driver, max_steps=2).run(load_task_file(path))
    assert result.steps == 2


def test_bad_script_line_is_fed_back(driver, tmp_path):
    seen, responses = [], []

    class Watching(ScriptedPolicy):
        def act(self, task, observation, history):
            seen.append([h.feedback for h in history])
            responses.append([h.response for h in history])
            return super().act(task, observation, history)

    path = write_task(tmp_path, script=["click(start_box='(200,130)')", "clack(start_box='(1,1)')",
                                        "click(start_box='(200,130)')"])
    result = Agent(Watching(), driver=driver).run(load_task_file(path))
    assert result.success and result.steps == 3
    bad = result.records[1]
    assert bad.feedback and not bad.actions and not bad.error
    assert seen[2][1] == bad.feedback  # the next step saw the error in its history
    # history is rendered in the one shared UI-TARS syntax; a bad response keeps its raw text
    assert responses[2] == ["Thought: Script step 1 of 3.\nAction: click(start_box='(200,130)')",
                            "clack(start_box='(1,1)')"]


def test_finished_ends_run_and_stuck_warning(driver, tmp_path):
    path = write_task(tmp_path, script=["click(start_box='(700,500)')"] * 3 + ["finished(content='done')"],
                      success=[{"text": "clicked 1"}])
    result = Agent(ScriptedPolicy(), driver=driver).run(load_task_file(path))
    assert result.stop_reason == "finished" and result.finished_answer == "done" and not result.success
    assert [bool(r.warning) for r in result.records] == [False, False, True, False]
    assert "repeated the same action 3 times" in result.records[2].warning


def test_stuck_warning_when_a_toggle_only_goes_back_and_forth(driver, tmp_path):
    # a plain div: a <button> repaints under the mouse (hover), so its first screen would differ
    toggle = PAGE.replace("'clicked ' + (++window.n)", "(++window.n % 2) ? 'on' : 'off'").replace(
        'top:300px"></div>', 'top:300px">off</div>').replace("<button", "<div").replace("</button>", "</div>")
    path = write_task(tmp_path, page=toggle, script=["click(start_box='(200,130)')"] * 4,
                      success=[{"text": "never"}], max_steps=4)
    result = Agent(ScriptedPolicy(), driver=driver).run(load_task_file(path))
    assert [bool(r.warning) for r in result.records] == [False, False, True, True]
    assert "went back and forth" in result.records[2].warning


def test_broken_page_is_not_an_agent_error(driver, tmp_path):
    broken = ("<html><body><div><p>unclosed <b>tags <script>throw new Error('boom')</script>"
              "<link rel=stylesheet href=missing.css><img src=missing.png>" + PAGE.split("<body style=\"margin:0\">")[1])
    path = write_task(tmp_path, page=broken, script=["click(start_box='(200,130)')"] * 2,
                      success=[{"js": "window.undefinedThing.length > 0"}], max_steps=2)
    result = Agent(ScriptedPolicy(), driver=driver).run(load_task_file(path))
    assert result.error is None and not result.success and result.steps == 2
    assert "JavaScript error" in result.records[-1].outcome_detail
    assert "clicked 2" in driver.page.evaluate("document.body.innerText")  # the page still worked


def _chromium_browser_pids() -> list[int]:
    """Chromium browser processes that descend from this test process (never anyone else's)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, stack = [], [os.getpid()]
    while stack:
        pid = stack.pop()
        for child in children.get(pid, []):
            try:
                cmd = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"chromium" in cmd[0] and not any(a.startswith(b"--type=") for a in cmd):
                found.append(child)
            stack.append(child)
    return found


def test_killed_browser_ends_run_with_error_and_intact_trajectory(tmp_path):
    from actions.drivers.browser import BrowserDriver

    path = write_task(tmp_path, script=["click(start_box='(200,130)')"] * 5, success=[{"text": "clicked 9"}])
    before = set(_chromium_browser_pids())
    d = BrowserDriver.launch(headless=True, viewport=(1024, 768))
    try:
        ours = [p for p in _chromium_browser_pids() if p not in before]
        assert ours, "could not find the launched Chromium process"

        def kill_after_second(rec, agent):
            if rec.index == 1:
                for pid in ours:
                    os.kill(pid, signal.SIGKILL)

        result = Agent(ScriptedPolicy(), driver=d, out_dir=tmp_path / "runs",
                       callbacks=[kill_after_second]).run(load_task_file(path))
    finally:
        try:
            d.close()
        except Exception:
            pass
    assert result.error and not result.success and result.stop_reason == "error"
    run = load_run(result.run_dir)
    assert [r.index for r in run.records][:2] == [0, 1] and run.records[-1].error
    for line in (Path(result.run_dir) / "steps.jsonl").read_text().splitlines():
        json.loads(line)  # every line is whole
    assert run.summary is not None and run.summary.error == result.error


def test_interrupt_writes_summary(driver, tmp_path):
    path = write_task(tmp_path, script=["click(start_box='(200,130)')"] * 4, success=[{"text": "clicked 9"}])

    def interrupt(rec, agent):
        raise KeyboardInterrupt

    agent = Agent(ScriptedPolicy(), driver=driver, out_dir=tmp_path / "runs", callbacks=[interrupt])
    with pytest.raises(KeyboardInterrupt):
        agent.run(load_task_file(path))
    (run_dir,) = (tmp_path / "runs").iterdir()
    run = load_run(run_dir)
    assert run.summary.error == "interrupted by the user" and run.summary.stop_reason == "interrupted"
    assert len(run.records) == 1


def test_replay_policy_replays_a_run(driver, tmp_path):
    path = write_task(tmp_path, script=["click(start_box='(200,130)')"] * 2)
    first = Agent(ScriptedPolicy(), driver=driver, out_dir=tmp_path / "runs").run(load_task_file(path))
    assert first.success
    again = Agent(load(f"replay:{first.run_dir}"), driver=driver).run(load_task_file(path))
    assert again.success and [r.actions for r in again.records] == [r.actions for r in first.records]


def test_policy_config_errors_propagate(driver, tmp_path):
    path = write_task(tmp_path, script=[])
    with pytest.raises(ConfigError, match="has none"):
        Agent("scripted", driver=driver).run(load_task_file(path))
    with pytest.raises(ConfigError, match="needs a suite task"):
        Agent("oracle", driver=driver).run(load_task_file(path))


def test_load_run_skips_torn_last_line(tmp_path):
    rec = StepRecord(index=0, thought="t", response="click(start_box='(1,1)')")
    (tmp_path / "steps.jsonl").write_text(rec.model_dump_json() + "\n" + '{"index": 1, "tho')
    assert [r.index for r in load_run(tmp_path).records] == [0]
    with pytest.raises(ConfigError, match="not a run directory"):
        load_run(tmp_path / "nope")
