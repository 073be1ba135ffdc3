"""The Python API for test suites: a ``Session`` wraps one Playwright page and a policy.

```python
from agent.session import Session

with Session.launch(policy="builtin", report_dir="galago-report", cache=".galago-cache/login.yaml") as s:
    s.goto("http://127.0.0.1:8000/login.html")
    s.act('Log in as "ada" with password "lovelace"')      # ActFailed if the policy gives up
    s.assert_("The dashboard greets ada")                    # AssertFailed names the report
    count = s.query("How many unread messages are there?", schema=int)
```

Every call writes a run directory under ``report_dir`` (a fresh temporary folder when None), so a
failure always has a report to point at. ``act`` goes through the record/replay cache when one is
given (agent/cache.py): a full replay never loads the policy, which is why the policy is loaded
lazily, on first use. ``query``/``assert_``/``wait_for`` need a policy that answers questions —
one with an ``answer(question, observation) -> str`` method (``Answerer``).
"""
from __future__ import annotations

import json
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from actions.errors import ConfigError, GalagoError, ModelError
from actions.schema import Point, action_points
from agent.cache import Cache, ReplayPolicy, url_key
from agent.report import CALL_FILE  # what a session call was (kind, cache status, dpr); reports read it
from agent.task import Outcome
from agent.trajectory import (FINAL_SCREENSHOT, SUMMARY_FILE, RunSummary, StepRecord, TrajectoryWriter,
                              new_run_dir, safe_name)
from perception.observation import Element, Observation
from policy.base import Episode

T = TypeVar("T")
ANSWERING_POLICIES = "hf:DIR, openai:MODEL@BASE_URL, or any policy object with an answer(question, observation) method"


# -- errors ----------------------------------------------------------------------------------------


class SessionFailure(GalagoError, AssertionError):
    """A session call did not do what the test asked. An AssertionError, so pytest reports it as a
    test failure; the message names the HTML report of the call."""

    def __init__(self, message: str, *, report_path: Path | None = None, screenshot: Path | None = None,
                 result: Any = None):
        if report_path is not None:
            message = f"{message}\n  report: {report_path}"
        super().__init__(message)
        self.report_path = report_path
        self.screenshot = screenshot
        self.result = result


class ActFailed(SessionFailure):
    """``act`` ended without the policy saying it finished (it asked the user, or the budget ran out)."""


class AssertFailed(SessionFailure):
    """``assert_``: the policy judged the statement false."""


class WaitTimeout(SessionFailure):
    """``wait_for``: the statement did not become true in time."""


class LocateFailed(SessionFailure):
    """``locate``: the policy pointed at nothing."""


class QueryFailed(SessionFailure):
    """``query``: the policy's answer does not fit the requested schema."""


class AnswerUnsupported(ConfigError):
    """query/assert_/wait_for with a policy that cannot answer questions."""


@runtime_checkable
class Answerer(Protocol):
    """A policy that answers questions about the screen (hf:, openai:, test policies)."""

    def answer(self, question: str, observation: Observation) -> str: ...


# -- results ---------------------------------------------------------------------------------------


@dataclass
class Located:
    """Where the policy would act for a description: a viewport point and the element under it."""

    point: Point
    element: Element | None
    thought: str = ""
    response: str = ""


@dataclass
class ActResult:
    """How one ``act`` went. ``cache`` is off, miss (recorded), hit (replayed whole) or partial
    (replayed ``replayed_steps``, then the policy took over at a mismatch)."""

    instruction: str
    answer: str | None
    steps: int
    seconds: float
    run_dir: Path
    cache: str
    replayed_steps: int
    policy_calls: int
    mismatch: str = ""
    result: Any = field(default=None, repr=False)  # the loop's RunResult


# -- the task an instruction becomes ---------------------------------------------------------------


class InstructionTask:
    """An instruction on whatever page the session is at. No success checks: the run ends when the
    policy says finished or call_user, or when the budget runs out (implements agent.task.Task)."""

    observe_selector = None
    script: list[str] = []
    stop_on_success = False
    seed = None

    def __init__(self, instruction: str, max_steps: int, viewport: tuple[int, int]):
        self.instruction = instruction
        self.max_steps = max_steps
        self.viewport = viewport
        self.id = "act-" + safe_name(instruction.lower())[:40].strip("-")

    def setup(self, driver: Any) -> None:
        pass

    def evaluate(self, driver: Any) -> Outcome:
        return Outcome(done=False, success=False)

    def teardown(self) -> None:
        pass


# -- answers ---------------------------------------------------------------------------------------

_YES = {"yes", "true", "y", "correct", "right", "affirmative"}
_NO = {"no", "false", "n", "incorrect", "wrong", "negative"}


def _hint(schema: Any) -> str:
    if schema is bool:
        return "Answer yes or no."
    if schema is int:
        return "Answer with a whole number only."
    if schema is float:
        return "Answer with a number only."
    if schema is str:
        return "Answer briefly."
    return ("Answer with JSON only, matching this JSON schema: "
            + json.dumps(schema.model_json_schema(), separators=(",", ":")))


def _check_schema(schema: Any) -> None:
    if schema in (str, int, float, bool):
        return
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return
    raise ConfigError(f"query schema must be str, int, float, bool or a pydantic model class, got {schema!r}")


def parse_answer(text: str, schema: type[T]) -> T:
    """Turn an answer's text into ``schema``. Raises ValueError with what was expected."""
    text = (text or "").strip()
    if schema is str:
        return text  # type: ignore[return-value]
    if schema is bool:
        for word in re.findall(r"[A-Za-z]+", text.lower())[:8]:  # "The answer is no." counts
            if word in _YES:
                return True  # type: ignore[return-value]
            if word in _NO:
                return False  # type: ignore[return-value]
        raise ValueError(f"expected yes or no, got {text[:200]!r}")
    if schema is int:
        m = re.search(r"-?\d[\d,_]*", text)
        if not m:
            raise ValueError(f"expected a whole number, got {text[:200]!r}")
        return int(re.sub(r"[,_]", "", m.group()))  # type: ignore[return-value]
    if schema is float:
        m = re.search(r"-?\d[\d,_]*(?:\.\d+)?|-?\.\d+", text)
        if not m:
            raise ValueError(f"expected a number, got {text[:200]!r}")
        return float(re.sub(r"[,_]", "", m.group()))  # type: ignore[return-value]
    # A pydantic model: the first {...} (or [...]) block of the text, validated as JSON (never eval).
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    end = max(text.rfind("}"), text.rfind("]"))
    if start < 0 or end < start:
        raise ValueError(f"expected JSON for {schema.__name__}, got {text[:200]!r}")
    try:
        return schema.model_validate_json(text[start:end + 1])  # type: ignore[attr-defined]
    except ValidationError as e:
        raise ValueError(f"the answer does not fit {schema.__name__}: {e.errors()[0]['msg']} "
                         f"(answer: {text[:200]!r})") from None


# -- the session -------------------------------------------------------------------------------------


class Session:
    """galago on one Playwright page.

    ``Session.launch(...)`` starts its own Chromium (use it as a context manager);
    ``Session(page, policy=...)`` wraps a page you already have (e.g. pytest-playwright's ``page``)
    and leaves it open on ``close``. ``policy`` is a spec string for ``policy.load`` (loaded on
    first use, or by ``policy_loader`` when given) or a policy object. ``report_dir`` collects one run directory per call (default: a
    new temporary folder). ``cache`` is a ``Cache``, a path to a cache file (read-write), or None.
    Steps replayed from the cache take no screenshot (the final screen still has one);
    ``replay_screenshots=True`` keeps one per step in the reports, at about half the replay speed.
    """

    def __init__(self, page: Any, policy: Any = "builtin", *, report_dir: str | Path | None = None,
                 cache: Cache | str | Path | None = None, max_steps: int = 10,
                 policy_loader: Callable[[], Any] | None = None, replay_screenshots: bool = False,
                 _driver: Any = None):
        if max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1, got {max_steps}")
        if _driver is None:
            from actions.drivers.browser import BrowserDriver

            _driver = BrowserDriver(page)
        self._driver = _driver
        self._policy_spec = policy if isinstance(policy, str) else None
        self._policy = None if isinstance(policy, str) else policy
        self._policy_loader = policy_loader  # e.g. the pytest plugin's, which shares one policy per spec
        if isinstance(policy, str) and not policy.strip():
            raise ConfigError("policy spec is empty; use e.g. builtin, hf:DIR or openai:MODEL@BASE_URL")
        if isinstance(policy, str) and _spec_name(policy) not in _known_specs():
            import policy as policy_mod  # a typo must fail here, not at the first act (or never, on a replay)

            policy_mod.load(policy)  # raises the ConfigError that lists the valid forms
        self.report_dir = Path(report_dir) if report_dir is not None else Path(tempfile.mkdtemp(prefix="galago-"))
        self.cache = Cache(cache) if isinstance(cache, (str, Path)) else cache
        self.max_steps = max_steps
        self.replay_screenshots = replay_screenshots
        self.run_dirs: list[Path] = []
        self._closed = False

    @classmethod
    def launch(cls, policy: Any = "builtin", headless: bool = True, viewport: tuple[int, int] = (1280, 720),
               report_dir: str | Path | None = None, cache: Cache | str | Path | None = None, *,
               max_steps: int = 10, dpr: float = 1.0, allowed_origins: Sequence[str] | None = None,
               replay_screenshots: bool = False) -> "Session":
        """Start Chromium with one page of ``viewport`` CSS px; ``close`` (or ``with``) shuts it down."""
        from actions.drivers.browser import BrowserDriver

        driver = BrowserDriver.launch(headless=headless, viewport=viewport, dpr=dpr, allowed_origins=allowed_origins)
        try:
            return cls(driver.page, policy, report_dir=report_dir, cache=cache, max_steps=max_steps,
                       replay_screenshots=replay_screenshots, _driver=driver)
        except BaseException:
            driver.close()
            raise

    # -- plumbing ----------------------------------------------------------------------------------

    @property
    def page(self) -> Any:
        """The Playwright page: use it for anything galago does not do (selectors, expect, cookies)."""
        return self._driver.page

    @property
    def driver(self) -> Any:
        return self._driver

    @property
    def policy(self) -> Any:
        """The policy, loaded on first use (a fully replayed ``act`` never needs it)."""
        if self._policy is None:
            if self._policy_loader is not None:
                self._policy = self._policy_loader()
            else:
                from policy import load

                self._policy = load(self._policy_spec)
        return self._policy

    @property
    def policy_loaded(self) -> bool:
        return self._policy is not None

    def goto(self, url: str, timeout: float = 30.0) -> None:
        self._driver.goto(url, timeout=timeout)

    def close(self) -> None:
        """Close the browser (when launched by ``launch``) and a policy loaded from a spec."""
        if self._closed:
            return
        self._closed = True
        try:
            self._driver.close()
        finally:
            if self._policy is not None and self._policy_spec is not None and self._policy_loader is None:
                close = getattr(self._policy, "close", None)
                if callable(close):
                    close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def report(self, out_file: str | Path | None = None, title: str | None = None) -> Path | None:
        """One HTML report of every call so far (None when nothing ran)."""
        if not self.run_dirs:
            return None
        from agent.report import build_report

        return build_report(self.run_dirs, out_file or self.report_dir / "report.html", title=title)

    def _viewport(self) -> tuple[int, int]:
        size = self.page.viewport_size
        if size:
            return int(size["width"]), int(size["height"])
        w, h = self.page.evaluate("[innerWidth, innerHeight]")
        return int(w), int(h)

    def _new_run_dir(self, kind: str, text: str) -> Path:
        run_dir = new_run_dir(self.report_dir, f"{len(self.run_dirs):03d}-{kind}-{safe_name(text.lower())[:32]}")
        self.run_dirs.append(run_dir)
        return run_dir

    def _write_call(self, run_dir: Path, **info: Any) -> None:
        try:
            info.setdefault("dpr", float(self.page.evaluate("devicePixelRatio")))
        except Exception:
            info.setdefault("dpr", 1.0)
        (run_dir / CALL_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")

    def _fail_report(self, run_dir: Path) -> tuple[Path | None, Path | None]:
        """Build the call's report now (a failure message must point at something that exists)."""
        from agent.report import build_report

        shots = sorted(run_dir.glob("step-*.png"))
        final = run_dir / FINAL_SCREENSHOT
        screenshot = final if final.is_file() else (shots[-1] if shots else None)
        try:
            return build_report([run_dir], run_dir / "report.html"), screenshot
        except Exception:  # never hide the test's failure behind a report bug
            return None, screenshot

    def _observe(self, policy: Any) -> tuple[Any, Observation]:
        from perception.observe import observe

        frame = self._driver.capture()
        space = policy.coordinate_space(frame.width, frame.height, frame.dpr) if policy is not None else None
        return frame, observe(frame, space)

    # -- act ---------------------------------------------------------------------------------------

    def act(self, instruction: str, max_steps: int | None = None, *, cache: bool = True) -> ActResult:
        """Carry out ``instruction`` on the current page with the observe-think-act loop.

        Returns when the policy says it finished; raises ``ActFailed`` (naming the report) when it
        asks the user instead, the ``max_steps`` budget (default: the session's) runs out, or the
        browser fails. With a cache, a recorded run is replayed without the policy.
        """
        from agent.loop import Agent

        if not isinstance(instruction, str) or not instruction.strip():
            raise ConfigError("act needs a non-empty instruction")
        budget = self.max_steps if max_steps is None else max_steps
        if budget < 1:
            raise ConfigError(f"max_steps must be at least 1, got {budget}")
        instruction = instruction.strip()
        start_url = self.page.url
        use_cache = self.cache is not None and cache and self.cache.mode != "off"
        entry = self.cache.lookup(instruction, start_url) if use_cache else None
        replay = ReplayPolicy(lambda: self.policy, entry, screenshots=self.replay_screenshots,
                              tolerance=self.cache.tolerance if self.cache is not None else 48.0)
        task = InstructionTask(instruction, budget, self._viewport())
        run_dir = self._new_run_dir("act", instruction)
        result = Agent(replay, self._driver, max_steps=budget).run(task, run_dir=run_dir)
        ok = result.stop_reason == "finished" and not result.error

        status = "off"
        if use_cache:
            status = "miss" if entry is None else ("hit" if replay.fallback_at is None else "partial")
            counter = {"miss": "misses", "hit": "hits", "partial": "fallbacks"}[status]
            setattr(self.cache, counter, getattr(self.cache, counter) + 1)
            if ok:
                self.cache.store(replay.entry_from_run(instruction, start_url, result.records,
                                                       result.finished_answer))
        _fix_summary(run_dir, ok)
        self._write_call(run_dir, kind="act", instruction=instruction, url=start_url, ok=ok, cache=status,
                         cache_key=[instruction, url_key(start_url)] if use_cache else None,
                         replayed=replay.replayed, fallback_at=replay.fallback_at, mismatch=replay.mismatch,
                         policy_calls=replay.calls, stop_reason=result.stop_reason)
        if not ok:
            report, screenshot = self._fail_report(run_dir)
            if result.error:
                why = f"the run failed: {result.error}"
            elif result.stop_reason == "call_user":
                why = "the policy gave up" + (f": {result.finished_answer}" if result.finished_answer else "")
            else:
                why = f"the step budget ran out ({budget} steps)"
            raise ActFailed(f"act({instruction!r}) failed after {result.steps} steps: {why}",
                            report_path=report, screenshot=screenshot, result=result)
        return ActResult(instruction=instruction, answer=result.finished_answer, steps=result.steps,
                         seconds=result.seconds, run_dir=run_dir, cache=status,
                         replayed_steps=len(replay.replayed), policy_calls=replay.calls,
                         mismatch=replay.mismatch, result=result)

    # -- locate ------------------------------------------------------------------------------------

    def locate(self, description: str) -> Located:
        """Where the policy would click for ``description``: one policy step, not executed."""
        if not description.strip():
            raise ConfigError("locate needs a non-empty description")
        policy = self.policy
        instruction = f"Click {description.strip()}"
        run_dir = self._new_run_dir("locate", description)
        writer = TrajectoryWriter(run_dir)
        rec = StepRecord(index=0, started_at=time.time(), thought=instruction)
        t0 = time.perf_counter()
        frame, obs = self._observe(policy)
        rec.url, rec.title = frame.url, frame.title
        rec.screenshot = writer.screenshot(0, frame.image, getattr(frame, "png", None))
        rec.env_s = time.perf_counter() - t0
        task = InstructionTask(instruction, 1, (frame.width, frame.height))
        point, element, why, step = None, None, "", None
        t1 = time.perf_counter()
        try:
            policy.reset(Episode(instruction=instruction, task=task, driver=self._driver))
            step = policy.act(instruction, obs, [])
        except ModelError as e:
            why = f"the policy's answer could not be used: {e}"
            rec.feedback = str(e)
        rec.policy_s = time.perf_counter() - t1
        if step is not None:
            rec.thought, rec.response = step.thought, step.raw
            rec.actions = [a.model_dump(mode="json") for a in step.actions]
            points = [p for a in step.actions for p in action_points(a)]
            if points:
                point = points[0]
                element = obs.element_at(point.x, point.y)
                rec.targets = [element.to_dict() if element is not None else None]
            else:
                why = f"the policy pointed at nothing (it answered {step.raw or step.actions!r})"
        rec.ended_at = time.time()
        writer.append(rec)
        ok = point is not None
        writer.summary(RunSummary(task=task.id, success=ok, reward=float(ok), steps=1,
                                  seconds=time.perf_counter() - t0, run_dir=str(run_dir), error=None if ok else why,
                                  policy=getattr(policy, "name", ""), instruction=instruction, max_steps=1,
                                  started_at=rec.started_at))
        writer.close()
        self._write_call(run_dir, kind="locate", instruction=description, ok=ok)
        if not ok:
            report, shot = self._fail_report(run_dir)
            raise LocateFailed(f"locate({description!r}) failed: {why}", report_path=report, screenshot=shot)
        return Located(point=point, element=element, thought=step.thought if step else "",
                       response=step.raw if step else "")

    # -- questions ---------------------------------------------------------------------------------

    def _answerer(self, verb: str) -> Any:
        policy = self.policy
        if not callable(getattr(policy, "answer", None)):
            name = getattr(policy, "name", type(policy).__name__)
            raise AnswerUnsupported(f"{verb} needs a policy that answers questions about the screen; policy "
                                    f"{name!r} cannot (it has no answer() method). Policies that can: "
                                    f"{ANSWERING_POLICIES}")
        return policy

    def _ask(self, policy: Any, writer: TrajectoryWriter, index: int, question: str) -> tuple[str, StepRecord]:
        rec = StepRecord(index=index, started_at=time.time(), thought=question)
        t0 = time.perf_counter()
        frame, obs = self._observe(policy)
        rec.url, rec.title = frame.url, frame.title
        rec.screenshot = writer.screenshot(index, frame.image, getattr(frame, "png", None))
        rec.env_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        reply = str(policy.answer(question, obs))
        rec.policy_s = time.perf_counter() - t1
        rec.response = reply
        return reply, rec

    def _finish_check(self, writer: TrajectoryWriter, kind: str, text: str, ok: bool, error: str | None,
                      steps: int, t0: float, policy: Any, answer: str | None = None) -> None:
        writer.summary(RunSummary(task=kind, success=ok, reward=float(ok), steps=steps,
                                  seconds=time.perf_counter() - t0, run_dir=str(writer.run_dir), error=error,
                                  finished_answer=answer, policy=getattr(policy, "name", ""), instruction=text,
                                  max_steps=steps, started_at=time.time()))
        writer.close()
        self._write_call(writer.run_dir, kind=kind, instruction=text, ok=ok)  # never cached

    def query(self, question: str, schema: type[T] = str) -> T:  # type: ignore[assignment]
        """Ask about the screen; the answer comes back as ``schema`` (str, int, float, bool or a
        pydantic model). Raises QueryFailed when the answer does not fit."""
        _check_schema(schema)
        policy = self._answerer("query")
        run_dir = self._new_run_dir("query", question)
        writer, t0 = TrajectoryWriter(run_dir), time.perf_counter()
        reply, rec = self._ask(policy, writer, 0, f"{question.strip()}\n{_hint(schema)}")
        try:
            value, error = parse_answer(reply, schema), None
        except ValueError as e:
            value, error = None, str(e)
            rec.feedback = error
        rec.ended_at = time.time()
        writer.append(rec)
        self._finish_check(writer, "query", question, error is None, error, 1, t0, policy, answer=reply)
        if error is not None:
            report, shot = self._fail_report(run_dir)
            raise QueryFailed(f"query({question!r}): {error}", report_path=report, screenshot=shot)
        return value  # type: ignore[return-value]

    def assert_(self, statement: str, message: str | None = None) -> None:
        """Fail (AssertFailed, naming the report) unless the policy judges ``statement`` true now."""
        policy = self._answerer("assert_")
        run_dir = self._new_run_dir("assert", statement)
        writer, t0 = TrajectoryWriter(run_dir), time.perf_counter()
        reply, rec = self._ask(policy, writer, 0, _statement_question(statement))
        try:
            verdict, error = parse_answer(reply, bool), None
        except ValueError as e:
            verdict, error = False, f"unclear answer: {e}"
            rec.feedback = error
        rec.ended_at = time.time()
        writer.append(rec)
        ok = bool(verdict) and error is None
        self._finish_check(writer, "assert", statement, ok, None if ok else (error or f"judged false: {reply}"),
                           1, t0, policy, answer=reply)
        if not ok:
            report, shot = self._fail_report(run_dir)
            head = message or f"assert_({statement!r}) failed"
            raise AssertFailed(f"{head}: {error or 'the policy judged it false'} (answer: {reply.strip()[:300]!r})",
                               report_path=report, screenshot=shot)

    def wait_for(self, statement: str, timeout: float = 10.0, interval: float = 0.5) -> None:
        """Poll until the policy judges ``statement`` true; WaitTimeout after ``timeout`` seconds."""
        if timeout < 0 or interval < 0:
            raise ConfigError("wait_for needs timeout >= 0 and interval >= 0")
        policy = self._answerer("wait_for")
        run_dir = self._new_run_dir("wait", statement)
        writer, t0 = TrajectoryWriter(run_dir), time.perf_counter()
        deadline = time.monotonic() + timeout
        reply, index, ok = "", 0, False
        while True:
            reply, rec = self._ask(policy, writer, index, _statement_question(statement))
            try:
                ok = parse_answer(reply, bool)
            except ValueError as e:
                ok, rec.feedback = False, f"unclear answer: {e}"
            rec.ended_at = time.time()
            writer.append(rec)
            index += 1
            if ok or time.monotonic() + interval > deadline:
                break
            time.sleep(interval)
        error = None if ok else f"not true after {timeout:g}s ({index} checks)"
        self._finish_check(writer, "wait_for", statement, ok, error, index, t0, policy, answer=reply)
        if not ok:
            report, shot = self._fail_report(run_dir)
            raise WaitTimeout(f"wait_for({statement!r}): {error}; last answer: {reply.strip()[:300]!r}",
                              report_path=report, screenshot=shot)


def _statement_question(statement: str) -> str:
    return (f"Is this statement about the current screen true? {statement.strip()}\n"
            f"Answer yes or no, then give a short reason.")


def _spec_name(spec: str) -> str:
    return spec.partition(":")[0].strip().lower()


def _known_specs() -> set[str]:
    from policy import spec_forms

    return {form.split(":")[0].split("[")[0].lower() for form in spec_forms()}


def _fix_summary(run_dir: Path, ok: bool) -> None:
    """An instruction has no success checks: the policy saying ``finished`` is the verdict."""
    path = run_dir / SUMMARY_FILE
    if not path.is_file():
        return
    summary = RunSummary.model_validate_json(path.read_text(encoding="utf-8"))
    summary = summary.model_copy(update={"success": ok, "strict_success": ok, "reward": float(ok)})
    path.write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
