"""The pytest plugin, run for real: pytester runs a sample test module (in a subprocess, so its
sync Playwright is its own) against a local page, with a counting model-free policy."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytest_plugins = ["pytester"]

PAGES = Path(__file__).parent / "pages_session"
LOGIN = 'Log in as "ada" with password "lovelace"'

CONFTEST = '''
import os
import pytest
import policy
from plan_policy import PlanPolicy
from tasks.server import PageServer

policy.register("plan", lambda arg=None, **_: PlanPolicy(), form="plan")


@pytest.fixture(scope="session")
def server():
    with PageServer(os.path.join(os.path.dirname(__file__), "pages")) as s:
        yield s
'''

SAMPLE = f'''
import pytest

LOGIN = {LOGIN!r}
pytestmark = pytest.mark.galago_policy("plan")


def test_login(galago, server):
    galago.goto(server.url("login.html"))
    result = galago.act(LOGIN)
    print("CACHE", result.cache, result.policy_calls)
    galago.assert_('"Welcome, ada" is shown')
    assert galago.query("How many unread messages are there?", schema=int) == 3


def test_gives_up(galago, server):
    galago.goto(server.url("login.html"))
    galago.act("Order a pizza")


@pytest.mark.galago_max_steps(2)
def test_budget(galago, server):
    galago.goto(server.url("login.html"))
    galago.act("Fill in the username")


def test_plain(server):  # does not use galago: not in the index
    assert server.url("x").startswith("http://127.0.0.1")
'''


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(plan_policy=(PAGES / "plan_policy.py").read_text(), test_flow=SAMPLE)
    (pytester.path / "pages").mkdir()
    (pytester.path / "pages" / "login.html").write_text((PAGES / "login.html").read_text())
    monkeypatch.setenv("GALAGO_TEST_CALLS", str(pytester.path / "calls.txt"))
    return pytester


def calls(project: pytest.Pytester) -> dict[str, int]:
    """How often the policy was asked to act / to answer since the last call (then resets)."""
    path = project.path / "calls.txt"
    lines = path.read_text().split() if path.exists() else []
    path.unlink(missing_ok=True)
    return {"act": lines.count("act"), "answer": lines.count("answer")}


def test_fixture_reports_failures_and_writes_an_index(project):
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--galago-report", "reports")
    result.assert_outcomes(passed=2, failed=2)
    out = result.stdout.str()
    # The failing act names its own report, and the failure output names the test's report.
    act_report = re.search(r"report: (\S+/report\.html)", out)
    assert act_report and Path(act_report.group(1)).is_file()
    assert "the policy gave up" in out and "budget ran out (2 steps)" in out
    test_report = project.path / "reports" / "test_flow.py-test_gives_up" / "report.html"
    assert f"galago report: {test_report}" in out and test_report.is_file()
    assert 'data-verdict="failed"' in test_report.read_text()
    index = project.path / "reports" / "index.html"
    assert f"galago report index: {index}" in out
    html = index.read_text()
    assert html.count("<tr") == 3 and "test_plain" not in html and "2 of 4" not in html and "1 of 3 passed" in html
    assert 'href="test_flow.py-test_login/report.html"' in html
    # Only the finished act was recorded, beside the test module.
    cache = yaml.safe_load((project.path / ".galago-cache" / "test_flow.yaml").read_text())
    assert [e["instruction"] for e in cache["entries"]] == [LOGIN]


@pytest.mark.slow  # four pytest subprocesses, each starting Chromium
def test_replay_skips_the_policy_and_a_changed_page_heals_the_record(project):
    run = ["-p", "no:cacheprovider", "-k", "test_login", "-s"]
    project.runpytest_subprocess(*run).assert_outcomes(passed=1)
    assert calls(project) == {"act": 6, "answer": 2}
    cache_file = project.path / ".galago-cache" / "test_flow.yaml"
    first = yaml.safe_load(cache_file.read_text())

    result = project.runpytest_subprocess(*run)  # a later run: a full cache hit
    result.assert_outcomes(passed=1)
    assert "CACHE hit 0" in result.stdout.str()
    assert calls(project) == {"act": 0, "answer": 2}  # questions are never cached
    assert yaml.safe_load(cache_file.read_text()) == first

    # The page changes: the sign-in button moves far down. Replay runs up to it, the policy takes
    # over for the rest, and the record is rewritten with the new position.
    page = project.path / "pages" / "login.html"
    page.write_text(page.read_text().replace('get("shift") || 0', 'get("shift") || 200'))
    result = project.runpytest_subprocess(*run)
    result.assert_outcomes(passed=1)
    assert "CACHE partial 2" in result.stdout.str()
    assert calls(project) == {"act": 2, "answer": 2}
    healed = yaml.safe_load(cache_file.read_text())
    old_y = first["entries"][0]["steps"][4]["anchors"][0]["box"][1]
    assert healed["entries"][0]["steps"][4]["anchors"][0]["box"][1] == pytest.approx(old_y + 200, abs=2)

    result = project.runpytest_subprocess(*run, "--galago-cache", "ro")
    result.assert_outcomes(passed=1)
    assert calls(project)["act"] == 0  # the healed record replays whole
