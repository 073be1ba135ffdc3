"""The observe -> think -> act loop.

``Agent.stream`` is one short generator in the style of smolagents' ``MultiStepAgent._run_stream``:
each pass captures the screen, asks the policy for a Step, executes its actions and records the
step; concerns such as screenshots on disk, memory pruning, stuck detection and callbacks plug in
around it. Errors are split as in actions.errors: a ModelError (bad text, an action that could not
be done) is recorded and fed back to the policy; an EnvironmentFailure (or a crash in a driver or a
policy) ends the run with ``RunResult.error`` set and the trajectory intact on disk.
"""
from __future__ import annotations

import hashlib
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from actions import format_step
from actions.errors import ConfigError, EnvironmentFailure, GalagoError, ModelError
from actions.schema import TERMINAL_KINDS, ActionResult, Step, action_points
from agent.task import Outcome
from agent.trajectory import RunSummary, StepRecord, TrajectoryWriter, new_run_dir
from policy.base import STUCK_WARNING, Episode, HistoryEntry, ScreenshotNeeded

StepCallback = Callable[[StepRecord, "Agent"], None]


@dataclass
class RunResult:
    """How one run went. ``to_json()`` gives the ``galago run --json`` object."""

    task: str
    success: bool
    strict_success: bool
    reward: float
    steps: int
    seconds: float
    run_dir: str | None
    error: str | None = None
    finished_answer: str | None = None
    records: list[StepRecord] = field(default_factory=list)
    stop_reason: str = ""  # finished, call_user, done, success, max_steps, error, interrupted, closed

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with exactly the contract keys (json.dumps it to print)."""
        return {"task": self.task, "success": self.success, "reward": self.reward, "steps": self.steps,
                "seconds": round(self.seconds, 3), "run_dir": self.run_dir, "error": self.error}


class _EndRun(Exception):
    """Internal: the environment (or our own code) failed; end the run with this message."""


def _screen_key(frame: Any) -> str:
    """A hash of the screen: of the browser's PNG bytes when there are (same pixels, same bytes;
    the image need not be decoded), else of the pixels; of the URL and elements in a capture
    without a screenshot."""
    png = getattr(frame, "png", None)
    if png:
        data = png
    elif frame.image is not None:
        data = frame.image.tobytes()
    else:
        data = json.dumps([frame.url, frame.elements], sort_keys=True, default=str).encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class Agent:
    """Runs a policy on tasks.

    ``policy`` is a Policy or a spec string for ``policy.load``. With ``driver=None`` each run
    launches a headless BrowserDriver at the task's viewport and closes it afterwards. ``out_dir``
    is the parent of run directories (None: nothing written). ``max_steps`` overrides the task's
    budget; ``history_images`` is how many recent steps keep their Observation in the history.
    """

    def __init__(self, policy: Any, driver: Any = None, *, out_dir: str | Path | None = None,
                 max_steps: int | None = None, history_images: int = 2,
                 callbacks: Sequence[StepCallback] = (), headless: bool = True, stuck_repeats: int = 3):
        if isinstance(policy, str):
            from policy import load

            policy = load(policy)
        if max_steps is not None and max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1, got {max_steps}")
        self.policy = policy
        self.driver = driver
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.max_steps = max_steps
        self.history_images = history_images
        self.callbacks = list(callbacks)
        self.headless = headless
        self.stuck_repeats = stuck_repeats
        self._last_usage: dict | None = None

    # -- public API ---------------------------------------------------------------------------

    def run(self, task: Any, *, run_dir: str | Path | None = None) -> RunResult:
        """Run ``task`` to the end and return its RunResult."""
        result = None
        for item in self.stream(task, run_dir=run_dir):
            result = item
        assert isinstance(result, RunResult)
        return result

    def stream(self, task: Any, *, run_dir: str | Path | None = None) -> Iterator[StepRecord | RunResult]:
        """Yield a StepRecord after every step, then the RunResult."""
        start = time.perf_counter()
        started_at = time.time()
        if run_dir is None and self.out_dir is not None:
            run_dir = new_run_dir(self.out_dir, task.id)
        writer = TrajectoryWriter(run_dir) if run_dir is not None else None
        records: list[StepRecord] = []
        history: list[HistoryEntry] = []
        seen: list[tuple[str, str]] = []  # (screen, actions) per step, for stuck detection
        outcome = Outcome(done=False, success=False)
        answer: str | None = None
        error: str | None = None
        stop = "max_steps"
        budget = self.max_steps or task.max_steps
        driver, owned = self.driver, False

        def finish(stop_reason: str, err: str | None) -> RunResult:
            nonlocal driver
            if writer is not None and err is None and driver is not None:
                try:  # the final screen is what a reader of the run wants to see first
                    final = driver.capture()
                    writer.final_screenshot(final.image, getattr(final, "png", None))
                except Exception:
                    pass
            try:
                task.teardown()
            except Exception:
                pass
            if owned and driver is not None:
                try:
                    driver.close()
                except Exception:
                    pass
                driver = None
            ok = bool(outcome.success) and err is None
            result = RunResult(task=task.id, success=ok, strict_success=ok and bool(outcome.strict_success),
                               reward=float(outcome.reward) if err is None else 0.0, steps=len(records),
                               seconds=time.perf_counter() - start,
                               run_dir=str(writer.run_dir) if writer else None, error=err,
                               finished_answer=answer, records=records, stop_reason=stop_reason)
            if writer is not None:
                writer.summary(RunSummary(**result.to_json(), strict_success=result.strict_success,
                                          finished_answer=answer, stop_reason=stop_reason,
                                          policy=getattr(self.policy, "name", type(self.policy).__name__),
                                          instruction=getattr(task, "instruction", ""), max_steps=budget,
                                          started_at=started_at, usage=_sum_usage(records)))
                writer.close()
            return result

        try:
            try:
                if driver is None:
                    driver, owned = self._launch(task), True
                task.setup(driver)
                observe_selector = getattr(task, "observe_selector", None)
                if hasattr(driver, "set_observed_area"):
                    driver.set_observed_area(observe_selector)
                self.policy.reset(Episode(instruction=task.instruction, task=task, driver=driver,
                                          seed=getattr(task, "seed", None)))
            except (ConfigError, KeyboardInterrupt):
                raise
            except Exception as e:  # launching or setting up the environment failed
                raise _EndRun(self._describe(e, "setup", writer)) from e

            for index in range(budget):
                rec, step, obs = self._step(task, driver, index, history, writer)
                records.append(rec)
                self._detect_stuck(rec, seen, obs)
                if rec.error:
                    if writer:
                        writer.append(rec)
                    raise _EndRun(rec.error)
                try:
                    outcome = task.evaluate(driver)
                except Exception as e:
                    rec.error = self._describe(e, "evaluate", writer)
                    if writer:
                        writer.append(rec)
                    raise _EndRun(rec.error) from e
                rec.success, rec.reward, rec.outcome_detail = outcome.success, outcome.reward, outcome.detail
                rec.ended_at = time.time()
                if writer:
                    writer.append(rec)
                history.append(self._history_entry(rec, step, obs))
                self._prune(history)
                for cb in self.callbacks:
                    cb(rec, self)
                yield rec
                terminal = next((a for a in (step.actions if step else []) if a.kind in TERMINAL_KINDS), None)
                if terminal is not None:
                    stop = terminal.kind
                    answer = getattr(terminal, "answer", None) if terminal.kind == "finished" \
                        else getattr(terminal, "question", None)
                    break
                if outcome.done:
                    stop = "done"
                    break
                if outcome.success and getattr(task, "stop_on_success", True):
                    stop = "success"
                    break
        except _EndRun as e:
            error, stop = str(e), "error"
        except KeyboardInterrupt:
            finish("interrupted", "interrupted by the user")
            raise
        except GeneratorExit:
            finish("closed", None)
            raise
        except ConfigError as e:
            finish("error", str(e))
            raise
        yield finish(stop, error)

    # -- one step -----------------------------------------------------------------------------

    def _step(self, task: Any, driver: Any, index: int, history: list[HistoryEntry],
              writer: TrajectoryWriter | None) -> tuple[StepRecord, Step | None, Any]:
        """Observe, think, act. Model errors land in ``rec.feedback``, fatal ones in ``rec.error``."""
        rec = StepRecord(index=index, started_at=time.time())
        t0 = time.perf_counter()
        try:  # a policy that will not look (a cache replay) gets the elements without a screenshot
            obs = self._observe(driver, rec, writer, getattr(self.policy, "needs_screenshot", True))
        except Exception as e:
            rec.error = self._describe(e, "capture", writer)
            rec.env_s = time.perf_counter() - t0
            return rec, None, None
        env_s = time.perf_counter() - t0

        t1 = time.perf_counter()
        step: Step | None = None
        where = "policy"
        try:
            try:
                step = self.policy.act(obs.instruction or task.instruction, obs, history)
            except ScreenshotNeeded:
                if obs.screenshot is not None:
                    raise RuntimeError("the policy asked for a screenshot it was given") from None
                where, t = "capture", time.perf_counter()
                obs = self._observe(driver, rec, writer, True)
                where, spent = "policy", time.perf_counter() - t
                env_s, t1 = env_s + spent, t1 + spent  # the capture is the environment's time
                step = self.policy.act(obs.instruction or task.instruction, obs, history)
        except ModelError as e:
            rec.feedback = str(e)
            rec.response = str(getattr(e, "raw", "") or "")
        except Exception as e:  # a crash in the policy is our bug, not the model's: end the run
            rec.error = self._describe(e, where, writer)
        rec.policy_s = time.perf_counter() - t1
        usage = getattr(self.policy, "last_usage", None)
        if isinstance(usage, dict) and usage and usage is not self._last_usage:  # a fresh dict per call
            rec.usage = {k: int(v) for k, v in usage.items() if isinstance(v, (int, float))}
            self._last_usage = usage

        if step is not None:
            rec.thought, rec.response = step.thought, step.raw
            rec.actions = [a.model_dump(mode="json") for a in step.actions]
            t2 = time.perf_counter()
            for action in step.actions:
                if action.kind in TERMINAL_KINDS:
                    break  # finished/call_user end the run; they are not the driver's business
                points = action_points(action)
                if points:
                    el = obs.element_at(points[0].x, points[0].y)
                    rec.targets.append(el.to_dict() if el is not None else None)
                try:
                    result = driver.execute(action)
                except ModelError as e:
                    result = ActionResult(ok=False, error=str(e))
                except Exception as e:
                    rec.error = self._describe(e, "execute", writer)
                    break
                rec.results.append({"ok": result.ok, "error": result.error, "info": result.info})
                if not result.ok:
                    # The rest of the batch was planned for a screen that did not happen.
                    rec.feedback = result.error or f"{action.kind} failed"
                    break
            env_s += time.perf_counter() - t2
        rec.env_s = env_s
        return rec, step, obs

    # -- around the step ----------------------------------------------------------------------

    def _observe(self, driver: Any, rec: StepRecord, writer: TrajectoryWriter | None, screenshot: bool) -> Any:
        """Capture the screen (without its screenshot unless ``screenshot``), write the screenshot if
        there is one, and return the policy's Observation."""
        from perception.observe import observe

        frame = driver.capture() if screenshot else driver.capture(screenshot=False)
        obs = observe(frame, self.policy.coordinate_space(frame.width, frame.height, frame.dpr))
        rec.url, rec.title, rec.dpr = frame.url, frame.title, float(frame.dpr or 1.0)
        if writer is not None and frame.image is not None:
            rec.screenshot = writer.screenshot(rec.index, frame.image, getattr(frame, "png", None))
        rec._screen_key = _screen_key(frame)
        return obs

    def _launch(self, task: Any) -> Any:
        from actions.drivers.browser import BrowserDriver

        start_server = getattr(task, "start_server", None)
        if callable(start_server):
            start_server()  # a local page server's origin must be known to the origin allow-list
        return BrowserDriver.launch(headless=self.headless, viewport=tuple(task.viewport),
                                    allowed_origins=getattr(task, "allowed_origins", None))

    def _detect_stuck(self, rec: StepRecord, seen: list[tuple[str, str]], obs: Any) -> None:
        """The same action ``stuck_repeats`` times while the screen stayed put, or only went back and
        forth between two states (a toggle clicked again and again)."""
        key = rec._screen_key
        seen.append((key, repr(rec.actions) if rec.actions else ""))
        n = self.stuck_repeats
        last = seen[-n:]
        if n > 1 and len(last) == n and last[0][1] and all(a == last[0][1] for _, a in last):
            screens = [k for k, _ in last]
            if len(set(screens)) == 1:
                rec.warning = STUCK_WARNING.format(n=n, how="did not change")
            elif n >= 3 and all(screens[i] == screens[i - 2] for i in range(2, n)):
                rec.warning = STUCK_WARNING.format(n=n, how="only went back and forth")

    def _history_entry(self, rec: StepRecord, step: Step | None, obs: Any) -> HistoryEntry:
        response = rec.response
        if step is not None and step.actions and obs is not None and obs.space is not None:
            try:  # one history syntax for every backend, in this policy's coordinate space
                response = format_step(step.thought, step.actions, obs.space)
            except (ValueError, GalagoError):
                pass  # keep the raw text; a formatting gap must not end a run
        feedback = "\n".join(s for s in (rec.feedback, rec.warning) if s)
        return HistoryEntry(index=rec.index, thought=rec.thought, actions=list(step.actions) if step else [],
                            response=response, feedback=feedback, observation=obs)

    def _prune(self, history: list[HistoryEntry]) -> None:
        # Screenshots dominate memory (and a model's context); keep only the last few.
        keep = max(self.history_images, 0)
        for entry in history[: len(history) - keep] if keep else history:
            entry.observation = None

    @staticmethod
    def _describe(e: BaseException, where: str, writer: TrajectoryWriter | None) -> str:
        if isinstance(e, EnvironmentFailure):
            return f"{type(e).__name__}: {e}"
        if writer is not None:  # an unexpected crash: keep the traceback for whoever debugs it
            with open(writer.run_dir / "error.txt", "a", encoding="utf-8") as f:
                f.write(f"during {where}:\n{traceback.format_exc()}\n")
        return f"{where} failed: {type(e).__name__}: {e}"


def _sum_usage(records: list[StepRecord]) -> dict:
    total: dict[str, int] = {}
    for rec in records:
        for k, v in rec.usage.items():
            total[k] = total.get(k, 0) + v
    return total
