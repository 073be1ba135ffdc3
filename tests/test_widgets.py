"""The widget world: deterministic generation, disjoint splits, phrasings, checks, and oracles
solving every family in real headless Chromium."""
from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest

import tasks
from actions.errors import ConfigError
from actions.schema import Click
from agent.task import Task
from tasks.suites.base import Suite
from tasks.suites.widgets import FAMILIES, TEST_OFFSET, WidgetSuite, canonical_seed, generate, vocabulary
from tasks.suites.widgets.goal import Goal
from tasks.suites.widgets.phrasings import PHRASINGS
from tasks.suites.widgets.rollout import run_oracle
from tasks.suites.widgets.vocab import tokens

REQUIRED = ["click-button", "click-link", "type-field", "fill-form-submit", "check-boxes", "choose-radio",
            "select-option", "toggle-setting", "accordion-open-click", "dialog-confirm", "menu-item", "set-date",
            "set-slider", "table-row-action", "scroll-list-click", "search-open-result"]


def visible_text(html: str) -> str:
    html = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"<[^>]+>", " ", html)


# -- generation (no browser) ----------------------------------------------------------------------


def test_families_and_suite_protocol():
    suite = WidgetSuite()
    assert isinstance(suite, Suite) and suite.name == "widgets"
    assert set(REQUIRED) <= set(suite.task_ids())
    assert suite.default_task_ids() == suite.task_ids()
    task = suite.episode("click-button", 3)
    assert isinstance(task, Task) and task.stop_on_success and task.max_steps >= 5
    assert task.id == f"widgets:click-button@{TEST_OFFSET + 3}"
    with pytest.raises(ConfigError):
        suite.episode("no-such-family", 1)
    with pytest.raises(ConfigError):
        suite.oracle("no-such-family")


def test_registered_with_tasks():
    assert isinstance(tasks.get_suite("widgets"), WidgetSuite)
    t = tasks.resolve_task("widgets:select-option@5", split="train")
    assert t.spec.family == "select-option" and t.spec.seed == 5 and t.spec.split == "train"


@pytest.mark.parametrize("family", REQUIRED)
def test_same_seed_same_episode(family):
    a, b = generate(family, 11, "train"), generate(family, 11, "train")
    assert (a.html, a.instruction, a.goal, a.plan, a.viewport) == (b.html, b.instruction, b.goal, b.plan, b.viewport)
    others = {generate(family, s, "train").html for s in range(12, 20)}
    assert a.html not in others and len(others) == 8


def test_seed_split_is_disjoint():
    assert canonical_seed(7, "train") == 7
    assert canonical_seed(7, "test") == TEST_OFFSET + 7
    assert canonical_seed(TEST_OFFSET + 7, "test") == TEST_OFFSET + 7
    with pytest.raises(ValueError, match="train seeds"):
        canonical_seed(TEST_OFFSET, "train")
    for bad in (-1, 1.5, "3", True):
        with pytest.raises(ValueError):
            canonical_seed(bad, "train")
    with pytest.raises(ValueError, match="split"):
        canonical_seed(1, "dev")
    assert generate("click-button", 7, "train").html != generate("click-button", 7, "test").html


def test_vocabulary_size_and_heldout_fraction():
    v = vocabulary()
    train, test = v.entries("train"), v.entries("test")
    assert len(train) >= 5000 and len(test) > len(train)
    n_words = sum(len(ws) for ws in v.lists.values())
    assert 0.07 <= len(v.heldout_words) / n_words <= 0.13
    assert not any(tokens(e) & v.heldout_words for e in train[:: 37])
    assert set(test) - set(train)


def test_train_pages_never_show_heldout_words():
    v = vocabulary()
    seen_in_test = 0
    for family in REQUIRED:
        for seed in range(25):
            ep = generate(family, seed, "train")
            text = visible_text(ep.html) + " " + ep.instruction
            leak = tokens(text) & v.heldout_words
            assert not leak, (family, seed, leak)
            t = generate(family, seed, "test")
            seen_in_test += bool(tokens(visible_text(t.html) + " " + t.instruction) & v.heldout_words)
    assert seen_in_test > 0.5 * 25 * len(REQUIRED)  # held-out labels really reach the test split


def test_phrasings_at_least_ten_per_family_and_used():
    for family in REQUIRED:
        assert len(set(PHRASINGS[family])) >= 10, family
        used = {generate(family, s, "train").instruction for s in range(60)}
        assert len(used) >= 10
        assert all("{" not in i and "}" not in i for i in used)


def test_viewports_and_styles_vary():
    eps = [generate(f, s, "train") for f in REQUIRED for s in range(10)]
    assert all(320 <= e.viewport[0] <= 1280 and 400 <= e.viewport[1] <= 800 for e in eps)
    assert len({e.viewport for e in eps}) > 30
    assert len({e.style.font for e in eps}) >= 6 and {True, False} <= {e.style.dark for e in eps}
    assert len({e.layout for e in eps}) == 6


def test_goal_check_rules():
    g = Goal("b1", {"f1": "Ada", "c1": True, "r": None})
    assert g.check(None)[0] is False
    assert g.check({"done": False})[1] == "not finished yet"
    assert g.check({"done": True, "commit": "b2", "values": {}})[0] is False
    ok = {"done": True, "commit": "b1", "values": {"f1": " Ada ", "c1": True, "r": None}}
    assert g.check(ok) == (True, "goal reached")
    assert g.check({**ok, "values": {"f1": "Ada", "c1": False, "r": None}})[0] is False
    assert g.check({**ok, "values": {"f1": "ada", "c1": True, "r": None}})[0] is False


# -- real Chromium --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def driver():
    from actions.drivers.browser import BrowserDriver

    d = BrowserDriver.launch(headless=True, viewport=(1024, 768))
    yield d
    d.close()


@pytest.mark.parametrize("family", REQUIRED)
def test_oracle_solves_family(driver, family):
    suite = WidgetSuite()
    for seed, split in ((1, "train"), (2, "test")):
        task = suite.episode(family, seed, split)
        run = run_oracle(driver, task)
        assert run.success, (family, seed, split, run.detail, run.thoughts)
        assert run.thoughts and all(t.strip().endswith(".") for t in run.thoughts)


def test_check_boxes_oracle_reads_the_state_it_leaves(driver):
    """The thoughts go through the boxes asked for in order, one claim each, up to the one to tick,
    untick a ticked box the task does not ask for, and click submit only after the same claims:
    the state a policy must read is in the thought, and every thought starts at the first asked box."""
    suite, thoughts = WidgetSuite(), []
    for seed in range(12):
        run = run_oracle(driver, suite.episode("check-boxes", seed, "train"))
        assert run.success, (seed, run.detail, run.thoughts)
        thoughts += run.thoughts
    claims = r'^("[^"]+" is ticked; )*'
    assert any(re.match(claims[:-1] + '+"[^"]+" is unchecked; tick it\\.$', t) for t in thoughts)
    assert any(re.match(claims + '"[^"]+" is checked but not asked for; untick it\\.$', t) for t in thoughts)
    assert any(re.match(claims[:-1] + '+no other box is checked; click the "[^"]+" button\\.$', t) for t in thoughts)
    assert all(re.match(claims + '"[^"]+" is (unchecked; tick|checked but not asked for; untick) it\\.$', t)
               or re.match(claims[:-1] + '+no other box is checked; click', t) or "out of view" in t
               for t in thoughts), thoughts


def test_scroll_list_oracle_scrolls_by_what_the_list_shows(driver):
    """Nothing on screen says how far down a list an item is, so the oracle's list scrolls do not
    either: every one in an episode has the same amount, and the click comes once the item shows."""
    suite, several = WidgetSuite(), 0
    for seed in range(6):
        task = suite.episode("scroll-list-click", seed, "train")
        run = run_oracle(driver, task)
        assert run.success, (seed, run.detail, run.thoughts)
        amounts = {a.amount for t, a in zip(run.thoughts, run.actions) if a.kind == "scroll" and "in the list to reach" in t}
        assert len(amounts) <= 1, (seed, amounts)
        several += sum(1 for t in run.thoughts if "scroll down in the list" in t) >= 2
    assert several >= 2


def test_evaluate_before_and_after(driver):
    task = WidgetSuite().episode("click-button", 4, "train")
    task.setup(driver)
    try:
        out = task.evaluate(driver)
        assert (out.done, out.success, out.reward) == (False, False, 0.0)
        assert task.state(driver)["log"] == []
    finally:
        task.teardown()
    with pytest.raises(urllib.error.HTTPError):  # torn down: no longer served
        urllib.request.urlopen(task.url, timeout=5)


def _box(driver, id):
    return driver.page.evaluate("(id) => { const r = document.getElementById(id).getBoundingClientRect();"
                                " return [r.x + r.width / 2, r.y + r.height / 2]; }", id)


def _click_id(driver, id):
    driver.page.evaluate("(id) => document.getElementById(id).scrollIntoView({block: 'center'})", id)
    x, y = _box(driver, id)
    assert driver.execute(Click(point={"x": x, "y": y})).ok


def test_wrong_button_fails(driver):
    task = WidgetSuite().episode("click-button", 9, "train")
    task.setup(driver)
    try:
        wrong = driver.page.evaluate(
            "(t) => [...document.querySelectorAll('[data-g-commit]')].map(e => e.id).find(i => i !== t)",
            task.goal.commit)
        _click_id(driver, wrong)
        out = task.evaluate(driver)
        assert out.done and not out.success and "expected" in out.detail
        _click_id(driver, task.goal.commit)  # too late: the first commit decided the episode
        assert not task.evaluate(driver).success
    finally:
        task.teardown()


def test_submit_without_filling_fails(driver):
    for family in ("check-boxes", "type-field", "set-slider", "toggle-setting"):
        task = WidgetSuite().episode(family, 5, "train")
        task.setup(driver)
        try:
            _click_id(driver, task.goal.commit)
            out = task.evaluate(driver)
            assert out.done and not out.success and "field" in out.detail, (family, out)
        finally:
            task.teardown()


def test_cancelled_dialog_does_not_succeed(driver):
    task = WidgetSuite().episode("dialog-confirm", 6, "train")
    task.setup(driver)
    try:
        opener = task.spec.plan[0]
        _click_id(driver, opener.id)
        cancel = driver.page.evaluate(f"document.querySelector('#{opener.until} [data-g-close]').id")
        _click_id(driver, cancel)
        out = task.evaluate(driver)
        assert not out.done and not out.success
        assert driver.page.evaluate(f"document.getElementById('{opener.until}').hidden")
    finally:
        task.teardown()
