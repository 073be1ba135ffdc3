"""The MiniWoB++ suite on Playwright: seeded episodes of the `miniwob` package's task pages.

An episode is one task page, loaded fresh, seeded with ``Math.seedrandom(<number>)`` and started
with ``core.startEpisodeReal()``. The policy observes only the 160x210 task area (``#wrap``, at
the page's top-left), so action points are the same in page and observed-area CSS px.

Conventions (report them with any number measured on this suite):

* Success is ``WOB_RAW_REWARD_GLOBAL > 0`` (Pix2Act, BrowserGym); strict success is ``== 1``.
* The 10 s wall-clock episode timer is disabled (``core.EPISODE_MAX_TIME`` = 1e9 ms) so a slow
  policy is judged on what it does, not on how fast it thinks; ``real_timer=True`` keeps the
  page's own limit (7-30 s).
* Seeds: split "train" uses the seed as given; split "test" uses ``seed + TEST_SEED_OFFSET``
  (1,000,000), so train seeds 0..999,999 and test seeds never meet.
* ``core.setDataMode('train')`` as the miniwob Python package does.
"""
from __future__ import annotations

import functools
import importlib.resources
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from actions.errors import ConfigError, EnvironmentFailure
from agent.task import Outcome
from tasks.server import PageServer

TEST_SEED_OFFSET = 1_000_000
EPISODE_MAX_TIME_MS = 1_000_000_000  # effectively no timer
VIEWPORT = (340, 240)  # holds #wrap (160x210) and the page's own HUD to its right
OBSERVE_SELECTOR = "#wrap"
DEFAULT_MAX_STEPS = 10

# Unregistered pages in the package (real-time tasks); they load but are not part of the suite.
EXCLUDED = ("button-delay", "chase-circle", "hover-shape", "moving-items", "simon-says")

# The 56-task WebGUM / WebN-T5 / HTML-T5 subset (shared/notes/miniwob.md §8).
WEBGUM_56 = (
    "book-flight", "choose-date", "choose-date-easy", "choose-date-medium", "choose-list",
    "click-button", "click-button-sequence", "click-checkboxes", "click-checkboxes-large",
    "click-checkboxes-soft", "click-checkboxes-transfer", "click-collapsible", "click-collapsible-2",
    "click-color", "click-dialog", "click-dialog-2", "click-link", "click-menu", "click-option",
    "click-pie", "click-scroll-list", "click-shades", "click-shape", "click-tab", "click-tab-2",
    "click-tab-2-hard", "click-test", "click-test-2", "click-widget", "count-shape", "email-inbox",
    "email-inbox-forward-nl", "email-inbox-forward-nl-turk", "email-inbox-nl-turk", "enter-date",
    "enter-password", "enter-text", "enter-text-dynamic", "enter-time", "focus-text", "focus-text-2",
    "grid-coordinate", "guess-number", "identify-shape", "login-user", "login-user-popup",
    "multi-layouts", "multi-orderings", "navigate-tree", "search-engine", "social-media",
    "social-media-all", "social-media-some", "tic-tac-toe", "use-autocomplete", "use-spinner",
)

# Step budgets for tasks that need more than DEFAULT_MAX_STEPS low-level actions. Oracles may
# also declare a budget (``@oracle(task, max_steps=N)``); the larger of the two wins.
MAX_STEPS = {
    "book-flight": 20, "book-flight-nodelay": 20, "choose-date": 20, "choose-date-easy": 15,
    "choose-date-medium": 20, "choose-date-nodelay": 20, "click-checkboxes": 12,
    "click-checkboxes-large": 25, "click-checkboxes-soft": 12, "click-checkboxes-transfer": 12,
    "click-scroll-list": 20, "click-shades": 20, "click-tab-2": 12, "click-tab-2-hard": 12,
    "click-collapsible-2": 12, "click-menu": 12, "click-button-sequence": 10,
    "email-inbox": 20, "email-inbox-forward-nl": 20, "email-inbox-forward-nl-turk": 20,
    "email-inbox-nl-turk": 20, "search-engine": 15, "social-media-all": 30, "social-media-some": 30,
    "tic-tac-toe": 15, "guess-number": 20, "login-user-popup": 12, "multi-layouts": 15,
    "multi-orderings": 15, "use-spinner": 20, "navigate-tree": 15,
}


@functools.cache
def html_root() -> Path:
    """The installed `miniwob` package's ``html`` folder (holds core/, common/, miniwob/)."""
    root = Path(str(importlib.resources.files("miniwob") / "html"))
    if not (root / "miniwob").is_dir():
        raise EnvironmentFailure(f"the miniwob package has no task pages under {root}")
    return root


@functools.cache
def registered_task_ids() -> tuple[str, ...]:
    """Every task page the `miniwob` package registers as an env, sorted.

    Read from registration.py's ``id="miniwob/<task>-v1"`` lines (importing the package would
    pull in gymnasium and selenium), and kept only where the page exists.
    """
    pages = {p.stem for p in (html_root() / "miniwob").glob("*.html")}
    reg = Path(str(importlib.resources.files("miniwob") / "registration.py"))
    try:
        ids = set(re.findall(r'id="miniwob/([a-z0-9-]+)-v1"', reg.read_text()))
    except OSError:
        ids = set()
    ids = (ids & pages) if ids else (pages - set(EXCLUDED))
    return tuple(sorted(ids))


_server: PageServer | None = None
_server_lock = threading.Lock()


def page_server() -> PageServer:
    """The process-wide server of the package's html folder on 127.0.0.1 (started on first use)."""
    global _server
    with _server_lock:
        if _server is None:
            _server = PageServer(html_root())
        return _server


def task_url(task_id: str) -> str:
    return page_server().url(f"miniwob/{task_id}.html")


def episode_seed(seed: int, split: str) -> int:
    """The JS seed of an episode: train seeds as given, test seeds offset into a disjoint range."""
    if split not in ("train", "test"):
        raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
    if not 0 <= seed < TEST_SEED_OFFSET:
        raise ConfigError(f"miniwob seeds must be in 0..{TEST_SEED_OFFSET - 1}, got {seed}")
    return seed if split == "train" else seed + TEST_SEED_OFFSET


def utterance_text(utt, query_text: str = "") -> str:
    """The instruction as a string: ``core.getUtterance()`` returns a dict on the nl email tasks.

    The displayed #query text is what a screenshot policy reads, so it wins when present.
    """
    if isinstance(utt, str):
        return utt.strip()
    if isinstance(utt, dict):
        if query_text.strip():
            return " ".join(query_text.split())
        if isinstance(utt.get("utterance"), str) and utt["utterance"].strip():
            return utt["utterance"].strip()
        fields = utt.get("fields") or {}
        if isinstance(fields, dict) and fields:
            return "; ".join(f"{k}: {v}" for k, v in fields.items())
    raise EnvironmentFailure(f"cannot read an instruction from utterance {utt!r}")


_START_JS = """([seed, maxTime]) => {
  Math.seedrandom(seed);
  core.setDataMode('train');
  if (maxTime !== null) core.EPISODE_MAX_TIME = maxTime;
  core.startEpisodeReal();
}"""
_STATE_JS = """() => ({done: WOB_DONE_GLOBAL, raw: WOB_RAW_REWARD_GLOBAL, reward: WOB_REWARD_GLOBAL,
                       reason: WOB_REWARD_REASON})"""


@dataclass
class MiniWoBEpisode:
    """One seeded MiniWoB++ episode (implements agent.task.Task).

    ``seed`` is the seed as asked; ``js_seed`` the number passed to ``Math.seedrandom`` (differs
    on the test split). ``instruction`` and ``utterance`` are known after ``setup``.
    """

    id: str
    seed: int
    split: str = "test"
    real_timer: bool = False
    max_steps: int = DEFAULT_MAX_STEPS
    viewport: tuple[int, int] = VIEWPORT
    observe_selector: str | None = OBSERVE_SELECTOR
    script: list[str] = field(default_factory=list)
    stop_on_success: bool = False  # MiniWoB ends episodes itself (WOB_DONE_GLOBAL)
    final_screen_shows_result: bool = False  # a done episode shows MiniWoB's START cover, not the result
    instruction: str = ""
    utterance: object = None  # raw core.getUtterance() (a dict on the nl email tasks)
    js_seed: int = 0
    url: str = ""

    def __post_init__(self):
        if self.id not in registered_task_ids() and self.id not in EXCLUDED:
            raise ConfigError(f"unknown miniwob task {self.id!r}")
        self.js_seed = episode_seed(self.seed, self.split)

    @property
    def allowed_origins(self) -> list[str]:
        return [page_server().origin]

    def start_server(self) -> None:
        page_server()

    def setup(self, driver) -> None:
        page = driver.page
        self.url = task_url(self.id)
        if hasattr(driver, "goto"):
            driver.goto(self.url)
        else:
            page.goto(self.url)
        # onload shows the START cover once core.js and the task script ran.
        page.wait_for_selector("#sync-task-cover", state="visible", timeout=15_000)
        max_time = None if self.real_timer else EPISODE_MAX_TIME_MS
        page.evaluate(_START_JS, [self.js_seed, max_time])
        page.wait_for_function("() => WOB_TASK_READY === true", timeout=15_000)
        self.utterance = page.evaluate("() => core.getUtterance()")
        query = page.evaluate("() => (document.getElementById('query') || {}).textContent || ''")
        self.instruction = utterance_text(self.utterance, query)
        if hasattr(driver, "set_observed_area"):
            driver.set_observed_area(self.observe_selector)

    def oracle(self):
        """This episode's teacher (what `--policy oracle` binds to)."""
        from tasks.suites.miniwob.oracle import MiniWoBOracle

        return MiniWoBOracle(self.id)

    def state(self, driver) -> dict:
        """The page's episode globals: done, raw (reward), reward (time-scaled), reason."""
        return driver.page.evaluate(_STATE_JS)

    def evaluate(self, driver) -> Outcome:
        s = self.state(driver)
        raw = float(s["raw"] or 0.0)
        done = bool(s["done"])
        detail = f"raw reward {raw:g}" + (f" ({s['reason']})" if s.get("reason") else "")
        if not done:
            detail = "episode running"
        return Outcome(done=done, success=done and raw > 0, reward=raw if done else 0.0,
                       strict_success=done and raw == 1.0, detail=detail)

    def teardown(self) -> None:
        pass  # the page server is shared by every episode of the process

    def __repr__(self) -> str:
        return f"MiniWoBEpisode({self.id!r}, seed={self.seed}, split={self.split!r})"


class MiniWoBSuite:
    """MiniWoB++ (the `miniwob` 1.1.0 package's 125 registered tasks) on Playwright."""

    name = "miniwob"

    def __init__(self, real_timer: bool = False):
        self.real_timer = real_timer

    def task_ids(self) -> list[str]:
        return list(registered_task_ids())

    def default_task_ids(self) -> list[str]:
        return list(WEBGUM_56)

    def max_steps(self, task_id: str) -> int:
        from tasks.suites.miniwob.oracle import load_oracles

        spec = load_oracles().get(task_id)
        declared = spec.max_steps if spec is not None else None
        return max(MAX_STEPS.get(task_id, DEFAULT_MAX_STEPS), declared or 0)

    def episode(self, task_id: str, seed: int, split: str = "test") -> MiniWoBEpisode:
        return MiniWoBEpisode(task_id, int(seed), split=split, real_timer=self.real_timer,
                              max_steps=self.max_steps(task_id))

    def oracle(self, task_id: str):
        from tasks.suites.miniwob.oracle import MiniWoBOracle

        return MiniWoBOracle(task_id)

