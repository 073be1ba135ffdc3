"""The session API and record/replay, on real headless Chromium with a model-free test policy."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

import policy as policy_registry
from actions.errors import ConfigError
from agent.cache import Anchor, Cache, CacheEntry, CachedStep, cache_mode, url_key
from agent.report import build_report
from agent.session import (ActFailed, AnswerUnsupported, AssertFailed, QueryFailed, Session, WaitTimeout,
                           parse_answer)
from policy.scripted import ScriptedPolicy
from tasks.server import PageServer
from tests.pages_session.plan_policy import PlanPolicy

PAGES = Path(__file__).parent / "pages_session"
LOGIN = 'Log in as "ada" with password "lovelace"'
FILL = "Fill in the username"  # a 2-step flow (+ finished) where the steps themselves are not the point


@pytest.fixture(scope="module")
def server():
    with PageServer(PAGES) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    from actions.drivers.browser import CHROMIUM_ARGS, acquire_playwright, find_chromium, release_playwright

    pw = acquire_playwright()  # shared with Session.launch in this thread (one sync Playwright per thread)
    b = pw.chromium.launch(executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()
    release_playwright(pw)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 800, "height": 600})
    yield context.new_page()
    context.close()


def session(page, tmp_path, policy=None, cache=None, **kw) -> Session:
    return Session(page, policy=policy or PlanPolicy(), report_dir=tmp_path / "runs", cache=cache, **kw)


# -- act, record, replay ------------------------------------------------------------------------


def test_act_records_then_replays_without_loading_the_policy(page, server, tmp_path):
    loads = []

    def factory(arg=None, **_):
        loads.append(1)
        return PlanPolicy()

    policy_registry.register("plan-test", factory, form="plan-test")
    cache_file = tmp_path / ".galago-cache" / "test_login.yaml"

    s1 = session(page, tmp_path, policy="plan-test", cache=Cache(cache_file))
    s1.goto(server.url("login.html"))
    first = s1.act(LOGIN)
    assert (first.cache, first.policy_calls, first.answer) == ("miss", 6, "done")
    s1.assert_('"Welcome, ada" is shown')
    saved = yaml.safe_load(cache_file.read_text())
    assert [e["instruction"] for e in saved["entries"]] == [LOGIN]
    assert saved["entries"][0]["path"] == "/login.html"  # the port is not part of the key
    assert len(saved["entries"][0]["steps"]) == 5
    anchor = saved["entries"][0]["steps"][4]["anchors"][0]
    assert (anchor["role"], anchor["text"], len(anchor["box"])) == ("button", "Sign in", 4)

    # A fresh session (a later test run): everything replays, the policy is never loaded.
    s2 = session(page, tmp_path, policy="plan-test", cache=Cache(cache_file))
    s2.goto(server.url("login.html?x=1"))  # the query string is not part of the key either
    again = s2.act(LOGIN)
    assert (again.cache, again.policy_calls, again.replayed_steps) == ("hit", 0, 6)
    assert not s2.policy_loaded and len(loads) == 1
    assert page.locator("#welcome").inner_text() == "Welcome, ada"  # the replay really logged in
    assert s2.cache.hits == 1 and s2.cache.writes == 0
    # Replayed steps are checked by their elements, without a screenshot; the final screen has one.
    assert sorted(p.name for p in again.run_dir.glob("*.png")) == ["final.png"]
    html = build_report([again.run_dir], tmp_path / "hit.html").read_text()
    assert html.count("no screenshot: a replayed step") == 6  # the report says why
    s3 = session(page, tmp_path, policy="plan-test", cache=Cache(cache_file), replay_screenshots=True)
    s3.goto(server.url("login.html"))
    shots = s3.act(LOGIN)
    assert shots.cache == "hit" and len(list(shots.run_dir.glob("step-*.png"))) == 6


def test_replay_follows_a_small_move_and_falls_back_on_a_big_one(page, server, tmp_path):
    cache = Cache(tmp_path / "c.yaml")
    pol = PlanPolicy()
    s = session(page, tmp_path, policy=pol, cache=cache)
    s.goto(server.url("login.html"))
    s.act(LOGIN)
    recorded_y = cache.entries[0].steps[4].anchors[0].center[1]

    s.goto(server.url("login.html?shift=25"))  # within tolerance: replayed, the click follows the button
    moved = s.act(LOGIN)
    assert (moved.cache, moved.policy_calls) == ("hit", 0)
    assert page.locator("#welcome").is_visible()
    assert cache.entries[0].steps[4].anchors[0].center[1] == pytest.approx(recorded_y + 25, abs=2)

    s.goto(server.url("login.html?shift=200"))  # too far: the model takes over at the mismatch
    calls = pol.calls
    healed = s.act(LOGIN)
    assert healed.cache == "partial" and healed.replayed_steps == 4
    assert "Sign in" in healed.mismatch and healed.policy_calls == 2 and pol.calls == calls + 2
    assert page.locator("#welcome").is_visible()
    assert cache.entries[0].steps[4].anchors[0].center[1] == pytest.approx(recorded_y + 200, abs=2)  # updated
    assert cache.fallbacks == 1
    # The model saw the screen from the mismatch on (PlanPolicy refuses to act blind); its steps have pictures.
    assert sorted(p.name for p in healed.run_dir.glob("*.png")) == ["final.png", "step-004.png", "step-005.png"]


def test_cache_read_only_and_off(page, server, tmp_path):
    path = tmp_path / "c.yaml"
    ro = session(page, tmp_path, cache=Cache(path, mode="ro"))
    ro.goto(server.url("login.html"))
    assert ro.act(FILL).cache == "miss"
    assert not path.exists()  # read-only never writes

    rw = session(page, tmp_path, cache=Cache(path))
    rw.goto(server.url("login.html"))
    rw.act(FILL)
    pol = PlanPolicy()
    off = session(page, tmp_path, policy=pol, cache=Cache(path, mode="off"))
    off.goto(server.url("login.html"))
    result = off.act(FILL)
    assert result.cache == "off" and pol.calls == 3
    assert page.locator("#user").input_value() == "ada"
    ro2 = session(page, tmp_path, policy=pol, cache=Cache(path, mode="ro"))
    ro2.goto(server.url("login.html"))
    assert ro2.act(FILL, cache=False).cache == "off" and pol.calls == 6
    assert ro2.act(FILL).cache == "hit" and pol.calls == 6  # read-only still replays


def test_act_failure_names_its_report(page, server, tmp_path):
    s = session(page, tmp_path)
    s.goto(server.url("login.html"))
    with pytest.raises(ActFailed) as e:
        s.act("Order a pizza")
    err = e.value
    assert isinstance(err, AssertionError) and "gave up" in str(err)
    assert err.report_path.is_file() and str(err.report_path) in str(err)
    assert err.screenshot.is_file() and err.result.stop_reason == "call_user"

    s.goto(server.url("login.html"))
    with pytest.raises(ActFailed, match=r"budget ran out \(2 steps\)"):
        s.act(FILL, max_steps=2)
    with pytest.raises(ConfigError):
        s.act("  ")


# -- questions ------------------------------------------------------------------------------------


class Home(BaseModel):
    user: str
    unread: int


def test_query_assert_and_wait_for(page, server, tmp_path):
    s = session(page, tmp_path)
    s.goto(server.url("login.html"))
    s.act(LOGIN)
    assert s.query("How many unread messages are there?", schema=int) == 3
    assert s.query('Is "Welcome, ada" shown?', schema=bool) is True
    assert s.query('Is "Welcome, bob" shown?', schema=bool) is False
    assert s.query("What is on screen? Reply in JSON", schema=Home) == Home(user="ada", unread=3)
    assert "Sign in" in s.query("What is the page title?")
    with pytest.raises(QueryFailed, match="expected a whole number"):
        s.query("What is the page title?", schema=int)
    with pytest.raises(ConfigError, match="schema"):
        s.query("x", schema=list)

    s.assert_('"Welcome, ada" is shown')
    with pytest.raises(AssertFailed) as e:
        s.assert_('"Welcome, bob" is shown')
    assert e.value.report_path.is_file() and "judged it false" in str(e.value)

    s.page.click("#load")  # the report appears 0.7 s later
    s.wait_for('"Report ready" is shown', timeout=5, interval=0.2)
    with pytest.raises(WaitTimeout, match="not true after 0.5s"):
        s.wait_for('"Never shown" is shown', timeout=0.5, interval=0.2)

    report = s.report()
    html = report.read_text()
    assert html.count('class="run ') == len(s.run_dirs) >= 10


def test_locate_points_at_the_element_without_acting(page, server, tmp_path):
    s = session(page, tmp_path)
    s.goto(server.url("login.html"))
    located = s.locate("the Sign in button")
    assert located.element is not None and located.element.text == "Sign in"
    assert located.element.box.contains(located.point.x, located.point.y)
    assert page.locator("#login").is_visible()  # nothing was clicked


def test_policy_without_answer_gives_a_clear_error(page, server, tmp_path):
    s = session(page, tmp_path, policy=ScriptedPolicy([]))
    s.goto(server.url("login.html"))
    for call in (lambda: s.query("x"), lambda: s.assert_("x"), lambda: s.wait_for("x")):
        with pytest.raises(AnswerUnsupported, match="hf:DIR, openai:MODEL@BASE_URL"):
            call()


def test_bad_policy_spec_fails_at_construction(page, tmp_path):
    with pytest.raises(ConfigError, match="unknown policy 'nope'"):
        session(page, tmp_path, policy="nope")
    with pytest.raises(ConfigError, match="empty"):
        session(page, tmp_path, policy=" ")


def test_launch_is_a_context_manager(server, tmp_path):
    with Session.launch(policy=PlanPolicy(), viewport=(640, 480), report_dir=tmp_path) as s:
        s.goto(server.url("login.html"))
        assert s.page.viewport_size == {"width": 640, "height": 480}
        browser = s.driver._owned[1]
    assert not browser.is_connected()


# -- units --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, schema, value", [
    ("Yes, it is.", bool, True), ("no", bool, False), ("TRUE", bool, True), ("The answer is no.", bool, False),
    ("There are 1,204 rows", int, 1204), ("-7", int, -7), ("about 3.5 s", float, 3.5), (" hi ", str, "hi"),
])
def test_parse_answer(text, schema, value):
    assert parse_answer(text, schema) == value


@pytest.mark.parametrize("text, schema", [("maybe", bool), ("none", int), ("{bad json}", Home),
                                          ('{"user": "a"}', Home), ("no json here", Home)])
def test_parse_answer_rejects(text, schema):
    with pytest.raises(ValueError):
        parse_answer(text, schema)


def test_cache_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nentries:\n- instruction: x\n  colour: red\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*colour"):
        Cache(bad)
    bad.write_text("version: 1\nentries: [ {")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        Cache(bad)
    bad.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError):  # safe_load: YAML never constructs objects
        Cache(bad)
    with pytest.raises(ConfigError, match="unknown cache mode"):
        Cache(tmp_path / "x.yaml", mode="sometimes")
    with pytest.raises(ValueError, match="anchors"):
        CachedStep(actions=[{"kind": "type", "text": "a"}], anchors=[None, None])
    assert cache_mode("RO") == "read-only" and cache_mode("rw") == "read-write"
    assert [url_key(u) for u in ("http://127.0.0.1:5/a/b.html?q=1#f", "http://h:1/", "about:blank", "")] == \
        ["/a/b.html", "/", "about:", ""]


def test_cache_file_round_trips_and_merges(tmp_path):
    path = tmp_path / "c.yaml"
    a, b = Cache(path), Cache(path)  # two workers on one file
    step = CachedStep(thought="t", actions=[{"kind": "click", "point": {"x": 1, "y": 2}}],
                      anchors=[Anchor(role="button", text="Go", box=(0, 0, 10, 10))])
    assert a.store(CacheEntry(instruction="one", path="/p", steps=[step]))
    assert b.store(CacheEntry(instruction="two", path="/p", steps=[step]))
    assert not b.store(CacheEntry(instruction="two", path="/p", steps=[step]))  # unchanged: no write
    text = path.read_text()
    assert text.startswith("# galago") and "kind: click" in text
    assert sorted(e.instruction for e in Cache(path).entries) == ["one", "two"]
    assert Cache(path).lookup("one", "http://x:9/p").steps[0] == step
