"""The run directory: what happened, written as it happens.

```
RUN_DIR/
  steps.jsonl     one StepRecord per line, flushed after every step (a crash keeps what was done)
  step-000.png    the screen the policy saw at step 0, step-001.png ...
  final.png       the screen when the run ended (when the browser was still alive)
  summary.json    RunSummary, written at the end, also when the run failed or was interrupted
```
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

STEPS_FILE = "steps.jsonl"
SUMMARY_FILE = "summary.json"
FINAL_SCREENSHOT = "final.png"


class StepRecord(BaseModel):
    """One step of a run. ``actions`` are Action.model_dump() dicts in viewport CSS pixels."""

    model_config = ConfigDict(extra="ignore")

    index: int
    started_at: float = 0.0  # unix seconds
    ended_at: float = 0.0
    thought: str = ""
    response: str = ""  # the policy's raw text (or the UI-TARS rendering of its actions)
    actions: list[dict] = Field(default_factory=list)
    results: list[dict] = Field(default_factory=list)  # ActionResult as {ok, error, info}, one per executed action
    feedback: str = ""  # the model error fed back to the policy at the next step ("" when fine)
    warning: str = ""  # e.g. the stuck warning, also fed back
    error: str = ""  # an environment failure that ended the run during this step
    url: str = ""
    title: str = ""
    targets: list[dict | None] = Field(default_factory=list)  # element under each pointer action
    screenshot: str = ""  # file name inside the run directory
    policy_s: float = 0.0
    env_s: float = 0.0
    dpr: float = 1.0  # devicePixelRatio of the screenshot (its pixels / viewport CSS px)
    usage: dict = Field(default_factory=dict)  # token counts of this step's model calls (hf:, openai:)
    success: bool | None = None  # the task's verdict after this step (None: not evaluated)
    reward: float | None = None
    outcome_detail: str = ""
    _screen_key: str = PrivateAttr(default="")  # hash of the screen seen (stuck detection); not saved

    @property
    def ok(self) -> bool:
        return not (self.feedback or self.error)


class RunSummary(BaseModel):
    """summary.json. The first seven keys are the ``galago run --json`` contract."""

    model_config = ConfigDict(extra="ignore")

    task: str
    success: bool
    reward: float
    steps: int
    seconds: float
    run_dir: str | None
    error: str | None
    strict_success: bool = False
    finished_answer: str | None = None
    stop_reason: str = ""
    policy: str = ""
    instruction: str = ""
    max_steps: int = 0
    started_at: float = 0.0
    usage: dict = Field(default_factory=dict)  # token counts summed over the run's steps


def safe_name(text: str) -> str:
    """A file-system-safe version of a task id (``miniwob:click-button@7`` -> ``miniwob-click-button-7``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "task"


def new_run_dir(parent: str | Path, task_id: str) -> Path:
    """A fresh ``PARENT/<task>-<YYYYmmdd-HHMMSS>[-N]`` folder (never reuses an existing one)."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    stem = f"{safe_name(task_id)}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1000):
        candidate = parent / (stem if n == 0 else f"{stem}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a run directory under {parent}")


class TrajectoryWriter:
    """Appends StepRecords to ``steps.jsonl`` and screenshots next to it, as they happen."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._steps = open(self.run_dir / STEPS_FILE, "a", encoding="utf-8")

    def screenshot(self, index: int, image: Any, png: bytes | None = None) -> str:
        """Write the step's screenshot; ``png`` (the browser's own encoding) is written as is, which
        saves re-encoding the image (tens of ms for a 1280x720 PNG)."""
        return self._image(f"step-{index:03d}.png", image, png)

    def final_screenshot(self, image: Any, png: bytes | None = None) -> str:
        return self._image(FINAL_SCREENSHOT, image, png)

    def _image(self, name: str, image: Any, png: bytes | None) -> str:
        if png:
            (self.run_dir / name).write_bytes(png)
        else:
            image.save(self.run_dir / name)
        return name

    def append(self, record: StepRecord) -> None:
        self._steps.write(record.model_dump_json() + "\n")
        self._steps.flush()  # a killed run must still have every finished step on disk

    def summary(self, summary: RunSummary) -> None:
        tmp = self.run_dir / (SUMMARY_FILE + ".tmp")
        tmp.write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.run_dir / SUMMARY_FILE)  # atomic: a reader never sees half a summary

    def close(self) -> None:
        if not self._steps.closed:
            self._steps.close()


@dataclass
class Run:
    """A run directory read back: its steps and (when the run got that far) its summary."""

    run_dir: Path
    records: list[StepRecord] = field(default_factory=list)
    summary: RunSummary | None = None

    def screenshot_path(self, index: int) -> Path:
        return self.run_dir / f"step-{index:03d}.png"


def load_run(run_dir: str | Path) -> Run:
    """Read a run directory. A torn last line (the process was killed mid-write) is skipped."""
    run_dir = Path(run_dir)
    steps_file = run_dir / STEPS_FILE
    if not steps_file.is_file():
        from actions.errors import ConfigError

        raise ConfigError(f"{run_dir}: not a run directory (no {STEPS_FILE})")
    records: list[StepRecord] = []
    lines = steps_file.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(StepRecord.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValueError):
            if n == len(lines) - 1:
                break
            from actions.errors import ConfigError

            raise ConfigError(f"{steps_file}:{n + 1}: not a valid step record") from None
    summary = None
    if (run_dir / SUMMARY_FILE).is_file():
        summary = RunSummary.model_validate_json((run_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
    return Run(run_dir, records, summary)
