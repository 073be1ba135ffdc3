"""The eval runner and demonstration collection, on real headless Chromium.

The main checks run the real MiniWoB++ suite with its oracle teacher; a tiny task-file suite
defined here (local pages, scripted teacher) covers what the real suites cannot show on demand:
a browser that crashes in the middle of an episode.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from actions.errors import ConfigError
from agent.evaluate import (EpisodeRecord, EvalReport, evaluate, parse_suite_ref, plan_jobs, read_records,
                            summarize)

CONTRACT_KEYS = {"suite", "policy", "episodes", "mean_success", "mean_strict_success", "per_task"}
TASK_KEYS = {"success", "strict_success", "episodes", "mean_steps", "seconds_per_episode"}


# -- a tiny suite of local pages (picklable, so spawned workers can rebuild it) ------------------

PAGE = """<!doctype html><html><body style="margin:0">
<button id="b" style="position:absolute;left:40px;top:40px;width:120px;height:40px"
 onclick="document.getElementById('out').textContent='done'">Go</button>
<div id="out" style="position:absolute;left:40px;top:120px"></div></body></html>"""


class PagesSuite:
    """``press``: click a button (scripted teacher). ``crash``: the browser dies during setup."""

    name = "pages"

    def __init__(self, root: str):
        self.root = root

    def task_ids(self) -> list[str]:
        return ["press", "crash", "die"]

    def default_task_ids(self) -> list[str]:
        return ["press"]

    def episode(self, task_id: str, seed: int, split: str = "test"):
        from tasks.spec import FileTask, load_task_file

        task = load_task_file(Path(self.root) / "press.yaml")
        task.seed = seed
        if task_id == "crash":
            class CrashTask(FileTask):
                def setup(self, driver) -> None:
                    # Close the real browser under the agent, as a Chromium crash would.
                    driver.page.context.browser.close()
                    super().setup(driver)

            task = CrashTask(task.spec, task.path)
            task.id = "crash"
        if task_id == "die":
            class DieTask(FileTask):
                def setup(self, driver) -> None:
                    os._exit(3)  # the whole worker process dies, as on an OOM kill

            task = DieTask(task.spec, task.path)
            task.id = "die"
        return task

    def oracle(self, task_id: str):
        from policy.scripted import ScriptedPolicy

        return ScriptedPolicy()


def scripted_factory():
    from policy.scripted import ScriptedPolicy

    return ScriptedPolicy()


@pytest.fixture(scope="module")
def pages_suite(tmp_path_factory) -> PagesSuite:
    root = tmp_path_factory.mktemp("pages")
    (root / "page.html").write_text(PAGE)
    task = {"id": "press", "instruction": "Press Go.", "start": {"page": "page.html"},
            "viewport": {"width": 400, "height": 300}, "max_steps": 3,
            "success": [{"text": "done"}], "script": ["click(start_box='(100,60)')"]}
    (root / "press.yaml").write_text(json.dumps(task))
    return PagesSuite(str(root))


def cli_app() -> typer.Typer:
    from agent.cli_eval import register

    app = typer.Typer()
    register(app)
    return app


def last_json_line(text: str) -> dict:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return json.loads(lines[-1])


# -- pure parts ---------------------------------------------------------------------------------

def test_parse_suite_ref():
    assert parse_suite_ref("miniwob") == ("miniwob", None)
    assert parse_suite_ref("miniwob:click-button, click-link") == ("miniwob", ["click-button", "click-link"])
    for bad in (":click-button", "miniwob:,"):
        with pytest.raises(ConfigError):
            parse_suite_ref(bad)


def test_summarize_macro_average_and_errors():
    recs = [EpisodeRecord(task="a", seed=0, success=True, strict_success=True, steps=2, seconds=1.0),
            EpisodeRecord(task="a", seed=1, success=True, strict_success=False, steps=4, seconds=3.0),
            EpisodeRecord(task="b", seed=0, success=False, error="browser crashed", steps=1, seconds=2.0)]
    r = summarize(recs, suite="s", policy="p", task_ids=["a", "b"])
    assert r.per_task["a"].success == 1.0 and r.per_task["a"].strict_success == 0.5
    assert r.per_task["a"].mean_steps == 3.0 and r.per_task["a"].seconds_per_episode == 2.0
    assert r.mean_success == 0.5 and r.mean_strict_success == 0.25  # mean over tasks, not episodes
    assert r.episodes == 3 and r.errors == 1
    assert CONTRACT_KEYS <= set(r.summary()) and "records" not in r.summary()


def test_plan_jobs_is_seed_major_and_skips_done():
    jobs = plan_jobs(["a", "b"], [0, 1], done={("a", 0)})
    assert jobs == [("b", 0), ("a", 1), ("b", 1)]


def test_read_records_ignores_a_torn_last_line(tmp_path):
    f = tmp_path / "episodes.jsonl"
    f.write_text(EpisodeRecord(task="a", seed=0, success=True).model_dump_json() + "\n{\"task\": \"a\", \"se")
    assert [r.key for r in read_records(f)] == [("a", 0)]


def test_bad_arguments_are_config_errors(pages_suite):
    with pytest.raises(ConfigError, match="unknown task"):
        evaluate(pages_suite, ["nope"], scripted_factory, episodes=1, workers=0)
    with pytest.raises(ConfigError, match="episodes"):
        evaluate(pages_suite, None, scripted_factory, episodes=0, workers=0)
    with pytest.raises(ConfigError, match="split"):
        evaluate(pages_suite, None, scripted_factory, episodes=1, workers=0, split="dev")


# -- real browser, local pages --------------------------------------------------------------------

def test_browser_crash_is_an_error_and_the_worker_recovers(pages_suite, tmp_path):
    # One in-process worker runs crash, then press: the crash must not count as a success, and the
    # relaunched browser must solve the next episode.
    report = evaluate(pages_suite, ["crash", "press"], scripted_factory, episodes=1, workers=0,
                      out_dir=tmp_path)
    assert report.per_task["crash"].success == 0.0
    assert report.per_task["press"].success == 1.0
    assert report.errors == 1
    recs = {r.task: r for r in read_records(tmp_path / "episodes.jsonl")}
    assert recs["crash"].error and not recs["press"].error


@pytest.mark.slow
def test_a_dead_worker_is_replaced_and_its_episode_is_an_error(pages_suite, tmp_path):
    report = evaluate(pages_suite, ["die", "press"], scripted_factory, episodes=2, workers=1,
                      out_dir=tmp_path)
    recs = read_records(tmp_path / "episodes.jsonl")
    assert len(recs) == 4
    assert all("worker process died" in r.error and not r.success for r in recs if r.task == "die")
    assert report.per_task["press"].success == 1.0 and report.errors == 2


def test_resume_skips_finished_and_retries_errors(pages_suite, tmp_path):
    log = tmp_path / "episodes.jsonl"
    evaluate(pages_suite, ["press"], scripted_factory, episodes=2, workers=0, out_dir=tmp_path,
             save_runs=True)
    assert [r.seed for r in read_records(log)] == [0, 1]
    assert all(Path(r.run_dir) == tmp_path / "runs" / f"press-{r.seed}" for r in read_records(log))
    assert (tmp_path / "runs" / "press-1" / "steps.jsonl").read_text().count("\n") == 1
    # Mark seed 0 as crashed (the last record of a (task, seed) wins): a resume must retry it.
    with open(log, "a") as f:
        f.write(EpisodeRecord(task="press", seed=0, error="browser crashed").model_dump_json() + "\n")
    report = evaluate(pages_suite, ["press"], scripted_factory, episodes=3, workers=0, out_dir=tmp_path,
                      save_runs=True)
    assert report.skipped == 1  # seed 1; seed 0 (error) and seed 2 (new) ran
    assert sorted(r.seed for r in read_records(log)[3:]) == [0, 2]
    assert report.episodes == 3 and report.per_task["press"].success == 1.0 and report.errors == 0
    with pytest.raises(ConfigError, match="another configuration"):
        evaluate(pages_suite, ["press"], scripted_factory, episodes=1, workers=0, out_dir=tmp_path,
                 split="train", save_runs=True)
    # The retried seed 0 got a fresh trajectory, not the failed try's steps plus its own.
    assert (tmp_path / "runs" / "press-0" / "steps.jsonl").read_text().count("\n") == 1


# -- the real MiniWoB++ suite with its oracle ------------------------------------------------------

def test_eval_cli_miniwob_oracle_two_workers_json_and_resume(tmp_path):
    out = tmp_path / "eval"
    args = ["eval", "miniwob:click-button", "--policy", "oracle", "--episodes", "3", "--workers", "2",
            "--seed", "0", "--json", "--out", str(out)]
    res = CliRunner().invoke(cli_app(), args)
    assert res.exit_code == 0, res.output
    summary = last_json_line(res.stdout)
    assert CONTRACT_KEYS <= set(summary)
    assert summary["suite"] == "miniwob" and summary["policy"] == "oracle" and summary["episodes"] == 3
    assert summary["mean_success"] == 1.0 and summary["mean_strict_success"] == 1.0
    assert set(summary["per_task"]) == {"click-button"}
    assert TASK_KEYS <= set(summary["per_task"]["click-button"])
    recs = read_records(out / "episodes.jsonl")
    assert sorted(r.seed for r in recs) == [0, 1, 2] and all(r.success and not r.error for r in recs)
    assert len({r.worker for r in recs}) >= 1

    # Resume with 4 episodes (in this process): 3 are skipped, only seed 3 runs.
    args[5], args[7] = "4", "0"
    res = CliRunner().invoke(cli_app(), args)
    assert res.exit_code == 0, res.output
    summary = last_json_line(res.stdout)
    assert summary["episodes"] == 4 and summary["skipped"] == 3 and summary["mean_success"] == 1.0
    assert len(read_records(out / "episodes.jsonl")) == 4


def test_eval_cli_unknown_task_exits_2():
    res = CliRunner().invoke(cli_app(), ["eval", "miniwob:no-such-task", "--policy", "oracle", "--json"])
    assert res.exit_code == 2
    assert "unknown task" in res.output


def test_collect_writes_loadable_demonstrations(tmp_path):
    from actions.parse import parse_response
    from perception.space import CoordinateSpace
    from policy.train.data import load_demos

    out = tmp_path / "data"
    res = CliRunner().invoke(cli_app(), ["collect", "miniwob:click-button", "--policy", "oracle",
                                         "--episodes", "2", "--workers", "0", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = last_json_line(res.stdout)
    assert summary["kept_episodes"] == 2 and summary["steps_written"] >= 2
    demos = load_demos(out)  # validates every line and checks every image exists
    assert len(demos) == summary["steps_written"]
    assert {d.seed for d in demos} == {0, 1} and all(d.success for d in demos)
    for d in demos:
        assert d.instruction and d.task == "miniwob:click-button"
        assert (out / d.image).stat().st_size > 0
        step = parse_response(d.target, CoordinateSpace.relative(d.width, d.height, 1000))
        assert step.actions
        assert len(d.history) == d.step  # history = the previous targets of the episode
    first = [d for d in demos if d.step == 0]
    assert all(d.history == [] for d in first)

    # Resumable: the same command runs nothing new.
    res = CliRunner().invoke(cli_app(), ["collect", "miniwob:click-button", "--episodes", "2",
                                         "--workers", "0", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    again = last_json_line(res.stdout)
    assert again["episodes_run"] == 0 and again["skipped"] == 2
    assert len(load_demos(out)) == len(demos)


def test_collect_ends_widget_episodes_with_finished(tmp_path):
    """A successful episode whose final screen shows the result ends with a finished() step on that
    screen (after the step that succeeded); MiniWoB's START cover gets none; --no-finish-step drops it."""
    from actions.parse import parse_response
    from perception.space import CoordinateSpace
    from policy.train.data import load_demos

    out = tmp_path / "w"
    res = CliRunner().invoke(cli_app(), ["collect", "widgets:type-field", "--episodes", "2", "--workers", "0",
                                         "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    demos = load_demos(out)
    for seed in (0, 1):
        ep = sorted((d for d in demos if d.seed == seed), key=lambda d: d.step)
        kinds = [[a.kind for a in parse_response(d.target, CoordinateSpace.relative(d.width, d.height, 1000)).actions]
                 for d in ep]
        assert kinds[-1] == ["finished"] and all("finished" not in k for k in kinds[:-1]), kinds
        assert ep[-1].history == [d.target for d in ep[:-1]]
        assert (out / ep[-1].image).read_bytes() != (out / ep[-2].image).read_bytes()  # the screen after

    res = CliRunner().invoke(cli_app(), ["collect", "widgets:type-field", "--episodes", "1", "--workers", "0",
                                         "--out", str(tmp_path / "n"), "--no-finish-step"])
    assert res.exit_code == 0, res.output
    assert all("finished" not in d.target for d in load_demos(tmp_path / "n"))
    res = CliRunner().invoke(cli_app(), ["collect", "miniwob:click-button", "--episodes", "1", "--workers", "0",
                                         "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert all("finished" not in d.target for d in load_demos(tmp_path / "m"))
