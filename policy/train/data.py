"""Demonstrations: the on-disk format `galago collect` writes and distillation reads.

A DATA directory holds::

    DATA/steps.jsonl              one JSON object per line, one line per step (appended, flushed)
    DATA/images/<episode>-<step>.png   the observed area at that step (viewport or task-area crop)

Each line of steps.jsonl is a ``DemoStep``::

    {"episode": "miniwob-click-button-7-0",   # unique within DATA ([A-Za-z0-9._-], no "/")
     "task": "miniwob:click-button",          # SUITE:TASK or a task-file id
     "seed": 7, "step": 0,                    # step index within the episode, from 0
     "instruction": "Click on the \\"OK\\" button.",
     "image": "images/miniwob-click-button-7-0-0.png",  # relative to DATA, inside it
     "width": 160, "height": 210, "dpr": 1.0, # CSS px of the observed area; image is width*dpr wide
     "elements": [{"index": 0, "role": "button", "text": "OK", "box": [x, y, w, h], ...}],
                                              # perception.Element.to_dict(); boxes in CSS px of the area
     "history": ["Thought: ...\\nAction: click(start_box='(412,530)')"],
                                              # previous responses, UI-TARS syntax, relative-1000 space
     "target": "Thought: ...\\nAction: click(start_box='(500,410)')",  # same syntax and space
     "success": true}                         # whether the whole episode succeeded

Unknown keys are rejected. ``DemoWriter`` writes it, ``load_demos`` reads and validates it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from actions.errors import ConfigError
from perception.observation import Element

STEPS_FILE = "steps.jsonl"
IMAGES_DIR = "images"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,160}$")


class DemoStep(BaseModel):
    """One demonstrated step (one line of steps.jsonl)."""

    model_config = ConfigDict(extra="forbid")

    episode: str = Field(min_length=1)
    task: str = Field(min_length=1)
    seed: int
    step: int = Field(ge=0)
    instruction: str
    image: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    dpr: float = Field(default=1.0, gt=0)
    elements: list[dict[str, Any]] = Field(default_factory=list)
    history: list[str] = Field(default_factory=list)
    target: str = Field(min_length=1)
    success: bool

    @field_validator("episode")
    @classmethod
    def _episode_name(cls, v: str) -> str:
        if not _SAFE_NAME.match(v):
            raise ValueError("episode must match [A-Za-z0-9._-]{1,160} (it names image files)")
        return v

    @field_validator("image")
    @classmethod
    def _relative_image(cls, v: str) -> str:
        p = Path(v)
        if p.is_absolute() or ".." in p.parts or not v:
            raise ValueError("image must be a path relative to the data directory, inside it")
        return v

    @field_validator("elements")
    @classmethod
    def _elements(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, d in enumerate(v):
            try:
                Element.from_dict(d)
                box = d["box"]
                if len(box) != 4 or not all(isinstance(b, (int, float)) for b in box):
                    raise ValueError("box must be [x, y, w, h]")
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"element {i} is not an Element.to_dict(): {e}") from None
        return v

    def element_objects(self) -> list[Element]:
        return [Element.from_dict(d) for d in self.elements]

    def image_path(self, data_dir: str | Path) -> Path:
        return Path(data_dir) / self.image


def _elements_as_dicts(elements: Iterable[Element | dict]) -> list[dict]:
    return [e.to_dict() if isinstance(e, Element) else dict(e) for e in elements]


class EpisodeRecorder:
    """Buffers one episode's steps (images are written at once) until ``end(success)``."""

    def __init__(self, writer: "DemoWriter", episode: str, task: str, seed: int, instruction: str):
        self.writer, self.episode, self.task, self.seed, self.instruction = writer, episode, task, seed, instruction
        self.steps: list[DemoStep] = []

    def add(self, image: Image.Image, width: int, height: int, target: str, *,
            elements: Iterable[Element | dict] = (), history: Sequence[str] = (), dpr: float = 1.0,
            instruction: str | None = None) -> DemoStep:
        n = len(self.steps)
        rel = self.writer.save_image(image, self.episode, n)
        step = DemoStep(episode=self.episode, task=self.task, seed=self.seed, step=n,
                        instruction=self.instruction if instruction is None else instruction, image=rel,
                        width=width, height=height, dpr=dpr, elements=_elements_as_dicts(elements),
                        history=list(history), target=target, success=False)
        self.steps.append(step)
        return step

    def end(self, success: bool) -> list[DemoStep]:
        """Write the episode's lines with its outcome."""
        done = [s.model_copy(update={"success": bool(success)}) for s in self.steps]
        for s in done:
            self.writer.write(s)
        self.steps = []
        return done


class DemoWriter:
    """Appends demonstrations to ``out_dir`` (created if needed); each line is flushed as written.

    Use ``write(step, image=...)`` when the outcome is already known, or
    ``episode(...)`` -> ``EpisodeRecorder`` to add steps and write them once the episode ends.
    """

    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        (self.dir / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
        self._fh = open(self.dir / STEPS_FILE, "a", encoding="utf-8")

    def save_image(self, image: Image.Image, episode: str, step: int) -> str:
        if not _SAFE_NAME.match(episode):
            raise ValueError(f"bad episode name {episode!r}: use [A-Za-z0-9._-]")
        rel = f"{IMAGES_DIR}/{episode}-{step}.png"
        image.save(self.dir / rel, format="PNG")
        return rel

    def write(self, step: DemoStep, image: Image.Image | None = None) -> DemoStep:
        if image is not None:
            rel = self.save_image(image, step.episode, step.step)
            step = step.model_copy(update={"image": rel})
        elif not (self.dir / step.image).is_file():
            raise ValueError(f"{step.image} does not exist in {self.dir}; pass image=")
        self._fh.write(step.model_dump_json() + "\n")
        self._fh.flush()
        return step

    def episode(self, episode: str, task: str, seed: int, instruction: str) -> EpisodeRecorder:
        return EpisodeRecorder(self, episode, task, seed, instruction)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> "DemoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_demos(data_dir: str | Path, *, only_success: bool = False, check_images: bool = True) -> list[DemoStep]:
    """Read and validate DATA/steps.jsonl. Raises ConfigError naming the first bad line."""
    d = Path(data_dir)
    f = d / STEPS_FILE
    if not f.is_file():
        raise ConfigError(f"{d} is not a demonstration directory (no {STEPS_FILE})")
    out: list[DemoStep] = []
    with open(f, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                step = DemoStep.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError) as e:
                raise ConfigError(f"{f}:{n}: bad demonstration line: {e}") from None
            if check_images and not (d / step.image).is_file():
                raise ConfigError(f"{f}:{n}: image {step.image} not found in {d}")
            if only_success and not step.success:
                continue
            out.append(step)
    return out
