"""`galago train recipe`: a recipe file's collections made with the oracle teachers on real headless
Chromium, then a tiny model trained on them; resumed by running it again; bad recipes refused
before anything runs."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from actions.errors import ConfigError
from agent.evaluate import plan_episodes
from policy.moe import MoEPolicy, load_dir
from policy.train.data import load_demos
from policy.train.recipe import load_recipe, run_recipe

TINY = """
description: a smoke test
collections:
  - {name: buttons, suite: "widgets:click-button", episodes: 2, seed: 5}
  - {name: mw, suite: "miniwob:click-button", episodes: 1, seed: 3, repeat: 2}
train: {preset: tiny, steps: 4, batch_size: 2, vocab_size: 1200, threads: 1, max_new_tokens: 40, relabel: 0.5,
       focus: 0.5, mark_named: true}
"""


def test_a_recipe_collects_trains_and_resumes(tmp_path):
    from agent.cli import app

    (tmp_path / "r.yaml").write_text(TINY)
    args = ["train", "recipe", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "m"), "--data-dir",
            str(tmp_path / "d"), "--workers", "0", "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout.strip().splitlines()[-1])
    buttons, mw = load_demos(tmp_path / "d" / "buttons"), load_demos(tmp_path / "d" / "mw")
    assert {d.seed for d in buttons} == {5, 6} and {d.seed for d in mw} == {3}
    assert [c["steps_written"] for c in s["collections"]] == [len(buttons), len(mw)]
    assert s["examples"] == len(buttons) + 2 * len(mw)  # repeat: listed twice
    assert s["steps"] == 4 and not s["resumed"]
    assert isinstance(load_dir(tmp_path / "m"), MoEPolicy)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["max_new_tokens"] == 40 and cfg["mark_named"] is True
    assert json.loads((tmp_path / "m" / "train_state" / "state.json").read_text())["focus"] == 0.5

    r = CliRunner().invoke(app, args)  # again: nothing collected twice, training resumed (already done)
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert [c["episodes_run"] for c in s["collections"]] == [0, 0] and [c["skipped"] for c in s["collections"]] == [2, 1]
    assert s["resumed"] and s["steps"] == 4
    r = CliRunner().invoke(app, args + ["--steps", "6"])  # a new step count: resumed to it
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip().splitlines()[-1])["steps"] == 6


@pytest.mark.parametrize("text, problem", [
    (TINY.replace("seed: 5}", "seed: 5, weight: 2}"), "collections.0.weight"),
    (TINY.replace("episodes: 2", "episodes: 0"), "collections.0.episodes"),
    (TINY.replace("name: mw", "name: buttons"), "given twice: buttons"),
    (TINY.replace("steps: 4", "steps: four"), "train.steps"),
    (TINY.replace("focus: 0.5", "focus: 1.5"), "train.focus"),
    (TINY.replace("name: mw", "name: ../mw"), "collections.1.name"),
    ("collections: []\n", "collections"),
    ("- just a list\n", "recipe"),
])
def test_a_bad_recipe_file_is_refused_with_its_problem(tmp_path, text, problem):
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(ConfigError) as e:
        load_recipe(tmp_path / "r.yaml")
    assert str(tmp_path / "r.yaml") in str(e.value) and problem in str(e.value)


def test_an_unknown_task_or_preset_stops_the_recipe_before_anything_runs(tmp_path):
    (tmp_path / "r.yaml").write_text(TINY.replace("miniwob:click-button", "miniwob:click-buton"))
    with pytest.raises(ConfigError, match="collection 'mw'.*click-buton"):
        run_recipe(load_recipe(tmp_path / "r.yaml"), tmp_path / "m", tmp_path / "d", workers=0)
    (tmp_path / "r.yaml").write_text(TINY.replace("preset: tiny", "preset: huge"))
    with pytest.raises(ConfigError, match="huge"):
        run_recipe(load_recipe(tmp_path / "r.yaml"), tmp_path / "m", tmp_path / "d", workers=0)
    assert not (tmp_path / "d").exists() and not (tmp_path / "m").exists()
    with pytest.raises(ConfigError, match="two-hours"):
        load_recipe("no-such-recipe")
    from agent.cli import app
    r = CliRunner().invoke(app, ["train", "recipe", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "m")])
    assert r.exit_code == 2 and "huge" in r.output
    (tmp_path / "r.yaml").write_text(TINY)
    r = CliRunner().invoke(app, ["train", "recipe", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "m"),
                                 "--data-dir", str(tmp_path / "d"), "--preset", "dense-wide"])
    assert r.exit_code == 2 and "dense-wide" in r.output
    assert not (tmp_path / "d").exists() and not (tmp_path / "m").exists()


def test_the_built_in_recipe_names_real_tasks():
    r = load_recipe("two-hours")
    assert r.train.minutes and r.train.preset == "default"
    for c in r.collections:
        plan = plan_episodes(c.suite, None, "oracle", c.episodes, 2, c.seed, "train")
        assert plan.task_ids and len(plan.seeds) == c.episodes
