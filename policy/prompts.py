"""UI-TARS / Qwen-VL prompts and the message layout shared by the ``hf:`` and ``openai:`` backends.

Large open models are run the way they were trained (shared/notes/ui-tars.md §2, §4):

* one user message with the UI-TARS-1.5 computer-use prompt (action space incl. ``call_user``) and
  the instruction; a system message "You are a helpful assistant." before it (OSWorld's layout);
* then, for every past step, the screenshot of that step (only for the last ``history_images - 1``
  steps) in its own user message, followed by the assistant's response with
  ``<|box_start|>``/``<|box_end|>`` re-inserted (servers strip those special tokens);
* a feedback message after a step whose action failed (galago's addition: the loop feeds model
  errors back, the reference harnesses do not);
* the current screenshot last, in its own user message.

``Family`` ties a model family to its coordinate convention: UI-TARS-1.5 / Qwen2.5-VL answer in
pixels of the smart-resized image, UI-TARS-1.0 / Qwen2-VL and Qwen3-VL(-MoE) on a relative
0..1000 grid (Qwen3-VL README, "Coordinate System", quoted in QwenLM/Qwen3-VL#1741; its
computer-use prompt says "The screen's resolution is 1000x1000", QwenLM/Qwen3-VL#1521).

Messages here are plain dataclasses holding PIL images; each backend converts them to its wire
format (a chat-template string for transformers, ``image_url`` parts for OpenAI servers).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Sequence

from PIL import Image

from perception.space import IMAGE_FACTOR, MAX_PIXELS, MIN_PIXELS, CoordinateSpace

SYSTEM_PROMPT = "You are a helpful assistant."
HISTORY_IMAGES = 5  # screenshots in context, the current one included (UI-TARS / OSWorld: 5)
FEEDBACK_PREFIX = "Feedback on your last step: "
INSTRUCTION_HEADING = "## User Instruction\n"

# The UI-TARS-1.5 computer-use action space in its start_box form, with call_user (OSWorld's
# call-user variant; UI-TARS-desktop's getSystemPromptV1_5), composed from shared/notes/ui-tars.md
# §2.2-2.3. The browser lines are UI-TARS-desktop's browser-operator additions plus galago's
# select_option: native <select> popups do not render in headless screenshots.
_COMPUTER_ACTIONS = """click(start_box='<|box_start|>(x1,y1)<|box_end|>')
left_double(start_box='<|box_start|>(x1,y1)<|box_end|>')
right_single(start_box='<|box_start|>(x1,y1)<|box_end|>')
drag(start_box='<|box_start|>(x1,y1)<|box_end|>', end_box='<|box_start|>(x3,y3)<|box_end|>')
hotkey(key='')
type(content='') #If you want to submit your input, use "\\n" at the end of `content`.
scroll(start_box='<|box_start|>(x1,y1)<|box_end|>', direction='down or up or right or left')
wait() #Sleep for 5s and take a screenshot to check for any changes.
finished(content='xxx') # Use escape characters \\', \\", and \\n in content part to ensure we can parse the content in normal python string format.
call_user() # Submit the task and call the user when the task is unsolvable, or when you need the user's help."""

_BROWSER_ACTIONS = """select_option(start_box='<|box_start|>(x1,y1)<|box_end|>', option='visible option text') # Choose an option of the dropdown at that point.
navigate(url='xxx')
navigate_back()"""

_TEMPLATE = """You are a GUI agent. You are given a task and your action history, with screenshots. You need to perform the next action to complete the task.

## Output Format
```
Thought: ...
Action: ...
```

## Action Space
{actions}

## Note
- Use {language} in `Thought` part.
- Write a small plan and finally summarize your next action (with its target element) in one sentence in `Thought` part.{extra_notes}

""" + INSTRUCTION_HEADING + "{instruction}"


@dataclass(frozen=True)
class Family:
    """A model family: how its coordinates map to the screen and how it is prompted.

    ``coords`` is "smart_resize" (pixels of the Qwen2.5-VL-resized image) or "relative" (a
    0..``scale`` grid). ``factor``/``min_pixels``/``max_pixels`` are the smart-resize parameters;
    the hf backend replaces them with the model's own image-processor values.
    """

    name: str
    coords: Literal["smart_resize", "relative", "absolute"]
    scale: int = 1000
    factor: int = IMAGE_FACTOR
    min_pixels: int = MIN_PIXELS
    max_pixels: int = MAX_PIXELS
    note: str = ""  # an extra "## Note" line, e.g. the relative grid for Qwen3-VL

    def space(self, width: int, height: int, dpr: float = 1.0) -> CoordinateSpace:
        if self.coords == "smart_resize":
            return CoordinateSpace.smart_resize(width, height, factor=self.factor, min_pixels=self.min_pixels,
                                                max_pixels=self.max_pixels, dpr=dpr)
        if self.coords == "relative":
            return CoordinateSpace.relative(width, height, scale=self.scale, dpr=dpr)
        return CoordinateSpace.absolute(width, height, dpr)

    def with_image_params(self, factor: int, min_pixels: int, max_pixels: int) -> "Family":
        return Family(self.name, self.coords, self.scale, factor, min_pixels, max_pixels, self.note)

    def params(self) -> dict:
        """The coordinate convention as JSON (what ``galago serve`` advertises in /v1/models)."""
        d: dict = {"coordinate_space": self.coords}
        if self.coords == "relative":
            d["scale"] = self.scale
        if self.coords == "smart_resize":
            d.update(factor=self.factor, min_pixels=self.min_pixels, max_pixels=self.max_pixels)
        return d


UITARS_15 = Family("ui-tars-1.5", "smart_resize")  # also Qwen2.5-VL
UITARS_10 = Family("ui-tars-1.0", "relative")  # also Qwen2-VL
QWEN3_VL = Family("qwen3-vl", "relative", note="- The screen's resolution is 1000x1000: coordinates are relative, "
                                                "0..1000 on both axes.")

# config.json model_type -> family (transformers names; shared/notes/models.md §3.2)
MODEL_TYPE_FAMILIES = {
    "qwen2_5_vl": UITARS_15,
    "qwen2_vl": UITARS_10,
    "qwen3_vl": QWEN3_VL,
    "qwen3_vl_moe": QWEN3_VL,
}


def family_for_model_type(model_type: str) -> Family | None:
    return MODEL_TYPE_FAMILIES.get(model_type)


def family_from_params(name: str, params: dict) -> Family:
    """The inverse of ``Family.params`` (what a galago server advertises); raises ValueError."""
    kind = params.get("coordinate_space")
    if kind == "relative":
        return Family(name, "relative", scale=int(params.get("scale", 1000)))
    if kind == "smart_resize":
        return Family(name, "smart_resize", factor=int(params.get("factor", IMAGE_FACTOR)),
                      min_pixels=int(params.get("min_pixels", MIN_PIXELS)),
                      max_pixels=int(params.get("max_pixels", MAX_PIXELS)))
    if kind == "absolute":
        return Family(name, "absolute")
    raise ValueError(f"unknown coordinate_space {kind!r}")


def family_for_model_name(name: str) -> Family | None:
    """Guess the family from a served model name (e.g. ``ui-tars-1.5-7b``, ``Qwen3-VL-30B-A3B``).

    None when the name says nothing; the openai backend then asks the server (galago serve
    advertises its convention) or falls back to UI-TARS-1.5.
    """
    n = name.lower().replace("_", "-")
    if re.search(r"ui-?tars-?1[.-]5", n) or re.search(r"qwen2[.-]5-?vl", n):
        return UITARS_15
    if re.search(r"qwen3(\.\d+)?-?vl", n):
        return QWEN3_VL
    if re.search(r"ui-?tars-?(1[.-]0|2b|7b|72b)", n) or re.search(r"qwen2-?vl", n):
        return UITARS_10
    return None


def system_prompt(instruction: str, *, language: str = "English", browser: bool = True,
                  family: Family | None = None) -> str:
    """The first user message: the UI-TARS-1.5 computer-use prompt with the instruction."""
    actions = _COMPUTER_ACTIONS + ("\n" + _BROWSER_ACTIONS if browser else "")
    note = family.note if family is not None and family.note else ""
    return _TEMPLATE.format(actions=actions, language=language, instruction=instruction.strip(),
                            extra_notes=("\n" + note) if note else "")


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------

@dataclass
class Message:
    """One chat message; ``parts`` are str (text) or PIL images, in order."""

    role: Literal["system", "user", "assistant"]
    parts: list = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(p for p in self.parts if isinstance(p, str))

    @property
    def images(self) -> list[Image.Image]:
        return [p for p in self.parts if isinstance(p, Image.Image)]


_BOX_ARG = re.compile(r"((?:start_box|end_box|point|start_point|end_point)\s*=\s*)(['\"])(.*?)\2", re.S)


def add_box_tokens(response: str) -> str:
    """Wrap every coordinate argument in ``<|box_start|>..<|box_end|>`` (idempotent), as UI-TARS
    saw its own responses in training; OpenAI-compatible servers strip these special tokens."""
    def wrap(m: re.Match) -> str:
        value = m.group(3)
        if "<|box_start|>" in value or not value.strip():
            return m.group(0)
        return f"{m.group(1)}{m.group(2)}<|box_start|>{value.strip()}<|box_end|>{m.group(2)}"

    return _BOX_ARG.sub(wrap, response)


def build_messages(instruction: str, image: Image.Image, history: Sequence, *,
                   past_images: dict[int, Image.Image] | None = None, history_images: int = HISTORY_IMAGES,
                   language: str = "English", browser: bool = True, family: Family | None = None,
                   box_tokens: bool = True) -> list[Message]:
    """The conversation for one step.

    ``history`` holds ``policy.base.HistoryEntry`` items (``index``, ``response``, ``feedback``,
    ``observation``); a past step's screenshot comes from ``past_images[index]`` or else its
    observation, and only the last ``history_images - 1`` past steps carry one. ``image`` is the
    current screenshot, already at the size the model should see.
    """
    if history_images < 1:
        raise ValueError(f"history_images must be >= 1, got {history_images}")
    msgs = [Message("system", [SYSTEM_PROMPT]),
            Message("user", [system_prompt(instruction, language=language, browser=browser, family=family)])]
    past_images = past_images or {}
    first_with_image = len(history) - (history_images - 1)
    for k, entry in enumerate(history):
        if k >= first_with_image:
            img = past_images.get(entry.index)
            if img is None and getattr(entry, "observation", None) is not None:
                img = entry.observation.screenshot
            if img is not None:
                msgs.append(Message("user", [img]))
        response = entry.response or ""
        msgs.append(Message("assistant", [add_box_tokens(response) if box_tokens else response]))
        if entry.feedback:
            msgs.append(Message("user", [FEEDBACK_PREFIX + entry.feedback]))
    msgs.append(Message("user", [image]))
    return msgs


ANSWER_PROMPT = ("Look at the screenshot and answer the question about it. Reply with the answer only, "
                 "without explanation or actions.\n\n## Question\n")
_ANSWER_PREFIX = re.compile(r"^\s*(?:thought:.*?\n)?\s*(?:answer|final answer)\s*[:：]\s*", re.I | re.S)
_FINISHED = re.compile(r"finished\(\s*content\s*=\s*(['\"])(.*?)(?<!\\)\1\s*\)", re.S)


def answer_messages(question: str, image: Image.Image) -> list[Message]:
    """One turn asking a question about one screenshot (Session.query / assert_ / wait_for)."""
    return [Message("system", [SYSTEM_PROMPT]), Message("user", [image, ANSWER_PROMPT + question.strip()])]


def extract_answer(text: str) -> str:
    """The answer in a reply to ``answer_messages``: GUI models often wrap it in
    ``finished(content='...')`` or prefix ``Answer:``; both are unwrapped."""
    m = _FINISHED.search(text)
    if m:
        return m.group(2).replace("\\'", "'").replace('\\"', '"').replace("\\n", "\n").strip()
    return _ANSWER_PREFIX.sub("", text, count=1).strip()


def instruction_from_prompt(text: str) -> str:
    """The instruction inside a first user message built by ``system_prompt`` (or the whole text,
    for clients that send just the instruction)."""
    i = text.rfind(INSTRUCTION_HEADING)
    return (text[i + len(INSTRUCTION_HEADING):] if i >= 0 else text).strip()
