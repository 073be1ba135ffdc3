"""pytest plugin (entry point ``pytest11: galago = agent.pytest_plugin``): the ``galago`` fixture.

```python
def test_login(galago, server):
    galago.goto(server.url("login.html"))
    galago.act('Log in as "ada" with password "lovelace"')
    galago.assert_('"Welcome, ada" is shown')
```

* ``galago`` — a function-scoped ``agent.session.Session`` on a fresh browser context; one
  Chromium is shared by the whole test session, one policy per spec (loaded on first use, so tests
  that replay from the cache never load it).
* Options: ``--galago-policy SPEC`` (default: ini ``galago_policy``, else ``builtin``),
  ``--galago-report DIR`` (default ``galago-report/`` under the rootdir), ``--galago-headed``,
  ``--galago-cache rw|ro|off`` (default rw). Cache files: ``.galago-cache/<test-module>.yaml``
  beside each test module.
* Markers: ``@pytest.mark.galago_policy("spec")``, ``@pytest.mark.galago_max_steps(n)``.
* Reports: one HTML report per test (``DIR/<test>/report.html``), named in the failure output,
  and an index of all tests (``DIR/index.html``).

This module is imported by every pytest run once galago is installed, so it imports nothing heavy
until a test asks for the fixture.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

_STATE = pytest.StashKey["_GalagoState"]()
_REPORT_PATH = pytest.StashKey[Path]()
_CACHE_CHOICES = ("rw", "ro", "off", "read-write", "read-only")


@dataclass
class _Result:
    name: str
    outcome: str = "passed"
    seconds: float = 0.0
    report: str | None = None
    message: str = ""


@dataclass
class _GalagoState:
    report_dir: Path
    cache_mode: str
    headless: bool
    default_policy: str
    caches: dict = field(default_factory=dict)  # cache file -> Cache (one per test module)
    policies: dict = field(default_factory=dict)  # spec -> loaded policy, shared by tests
    results: dict = field(default_factory=dict)  # nodeid -> _Result (tests that used galago)

    def cache_for(self, path: Path) -> Any:
        from agent.cache import Cache

        if self.cache_mode == "off":
            return None
        key = path.resolve()
        if key not in self.caches:
            self.caches[key] = Cache(key, mode=self.cache_mode)
        return self.caches[key]

    def policy(self, spec: str) -> Any:
        if spec not in self.policies:
            from policy import load

            self.policies[spec] = load(spec)
        return self.policies[spec]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("galago", "galago GUI agent")
    group.addoption("--galago-policy", default=None, metavar="SPEC",
                    help="policy spec for the galago fixture (builtin, moe:DIR, hf:DIR, openai:MODEL@BASE_URL, ...)")
    group.addoption("--galago-report", default=None, metavar="DIR",
                    help="folder for run directories and HTML reports (default: galago-report/ in the rootdir)")
    group.addoption("--galago-headed", action="store_true", default=False, help="show the browser (needs a display)")
    group.addoption("--galago-cache", default="rw", choices=_CACHE_CHOICES,
                    help="record/replay cache: rw (replay, record misses; default), ro (replay only), off")
    parser.addini("galago_policy", "default policy spec of the galago fixture", default="builtin")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "galago_policy(spec): policy spec for this test's galago session")
    config.addinivalue_line("markers", "galago_max_steps(n): step budget for this test's galago acts")
    report = config.getoption("--galago-report")
    report_dir = Path(report) if report else config.rootpath / "galago-report"
    config.stash[_STATE] = _GalagoState(
        report_dir=report_dir.resolve(), cache_mode=config.getoption("--galago-cache"),
        headless=not config.getoption("--galago-headed"),
        default_policy=config.getoption("--galago-policy") or config.getini("galago_policy") or "builtin")
    config.pluginmanager.register(_Reporter(config), "galago-reporter")


def _safe(nodeid: str) -> str:
    from agent.trajectory import safe_name

    return safe_name(nodeid.replace("::", "-").replace("/", "-"))[:120]


@pytest.fixture(scope="session")
def galago_browser(pytestconfig: pytest.Config) -> Iterator[Any]:
    """One Chromium for the whole test session (each test gets its own context)."""
    from actions.drivers.browser import CHROMIUM_ARGS, acquire_playwright, find_chromium, release_playwright

    state = pytestconfig.stash[_STATE]
    executable = find_chromium()
    args = list(CHROMIUM_ARGS) if state.headless else [a for a in CHROMIUM_ARGS if a != "--headless"]
    pw = acquire_playwright()  # one sync Playwright per thread, shared with Session.launch in tests
    try:
        browser = pw.chromium.launch(executable_path=executable, headless=state.headless, args=args)
    except Exception:
        release_playwright(pw)
        raise
    try:
        yield browser
    finally:
        try:
            browser.close()
        finally:
            release_playwright(pw)


@pytest.fixture
def galago(request: pytest.FixtureRequest, galago_browser: Any) -> Iterator[Any]:
    """A galago Session on a fresh page (1280x720) of the shared browser."""
    from agent.session import Session

    state: _GalagoState = request.config.stash[_STATE]
    node = request.node
    marker = node.get_closest_marker("galago_policy")
    spec = str(marker.args[0]) if marker and marker.args else state.default_policy
    steps_marker = node.get_closest_marker("galago_max_steps")
    max_steps = int(steps_marker.args[0]) if steps_marker and steps_marker.args else 10
    test_dir = state.report_dir / _safe(node.nodeid)
    report_path = test_dir / "report.html"
    node.stash[_REPORT_PATH] = report_path
    module_path = Path(str(node.path))
    cache = state.cache_for(module_path.parent / ".galago-cache" / f"{module_path.stem}.yaml")

    context = galago_browser.new_context(viewport={"width": 1280, "height": 720})
    session = None
    try:
        page = context.new_page()
        session = Session(page, policy=spec, report_dir=test_dir, cache=cache, max_steps=max_steps,
                          policy_loader=lambda: state.policy(spec))
        yield session
    finally:
        try:
            if session is not None:
                path = session.report(report_path, title=node.nodeid)
                if path is not None:
                    node.user_properties.append(("galago_report", str(path)))
                session.close()
        finally:
            context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    path = item.stash.get(_REPORT_PATH, None)
    if path is not None and rep.when == "call" and rep.failed:
        rep.sections.append(("galago", f"galago report: {path}"))


class _Reporter:
    """Collects test outcomes and writes the per-session index (in the controller under xdist:
    user_properties travel with the reports)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.state: _GalagoState = config.stash[_STATE]
        self.index: Path | None = None
        self.error = ""

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        res = self.state.results.setdefault(report.nodeid, _Result(report.nodeid))
        res.seconds += report.duration
        for key, value in report.user_properties:
            if key == "galago_report":
                res.report = value
        if report.failed:
            res.outcome = "failed" if report.when == "call" else "error"
            lines = str(report.longreprtext or "").strip().splitlines()
            res.message = lines[-1] if lines else ""
        elif report.skipped and res.outcome == "passed":
            res.outcome = "skipped"

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        for policy in self.state.policies.values():
            close = getattr(policy, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    pass
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller writes the index
            return
        try:
            self.index = self._write_index()
        except Exception as e:  # the tests' outcome matters more than the index
            self.error = f"{type(e).__name__}: {e}"

    def _write_index(self) -> Path | None:
        from agent.report import IndexEntry, build_index

        entries = []
        for res in self.state.results.values():
            if res.report is None:
                continue  # a test that did not use the galago fixture
            rel = res.report
            try:
                rel = str(Path(res.report).resolve().relative_to(self.state.report_dir))
            except ValueError:
                pass
            entries.append(IndexEntry(res.name, res.outcome, res.seconds, rel, res.message))
        if not entries:
            return None
        return build_index(entries, self.state.report_dir / "index.html")

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        if self.index is not None:
            terminalreporter.write_line(f"galago report index: {self.index}")
        if self.error:
            terminalreporter.write_line(f"galago: could not write the report index: {self.error}")
