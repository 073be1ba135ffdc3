"""Observation -> model inputs. One function, ``encode_observation``, shared by the policy and training.

Token layout (after the image patches):

    <|bos|> <|instr|> instruction
    <|el|> cx cy role [named] text [value] [flags]  one group per element, box embedding on each token
                                                    (``coords_last``: <|el|> role ... [flags] cx cy)
    <|hist|> action ...                             the last ``max_history`` actions (compact: no thoughts)
    <|resp|>                                        the response follows (training: target + <|eos|>)

Element centres ``cx cy`` are number tokens on the 0..1000 relative grid of the observed area, the
same grid ``CoordinateSpace.relative(w, h, 1000)`` gives the answer, so the policy can copy them.
With ``mark_named`` an element whose text or value the instruction names (``names``) carries the word
``named`` right after its role, on top of the group's token limit (so a long label cannot cut it
off, and it cannot push the group's last tokens, a typed value's end or a state flag, out).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from perception.observation import Element
from policy.moe.config import (SEG_ELEMENT, SEG_HISTORY, SEG_INSTRUCTION, SEG_OTHER, SEG_RESPONSE,
                               MoEConfig)
from policy.moe.model import PromptBatch
from policy.moe.tokenizer import BOS, EL, EOS, HIST, INSTR, PAD, RESP, GalagoTokenizer

_WS = re.compile(r"\s+")
_ACTION = re.compile(r"Action\s*[:：]\s*(.*)", re.S)
MAX_TEXT_CHARS = 80  # per element / history entry, before tokenising (keeps tokenising cheap)
MAX_NAMED_CHARS = 60  # longer element texts (paragraphs) are never marked named


@dataclass
class EncodedPrompt:
    image: torch.Tensor  # uint8 [3, S, S]
    tokens: list[int]
    segments: list[int]
    boxes: list[tuple[float, float, float, float]]
    box_mask: list[bool]

    def __len__(self) -> int:
        return len(self.tokens)

    def extend(self, ids: Sequence[int], segment: int) -> None:
        self.tokens.extend(ids)
        self.segments.extend([segment] * len(ids))
        self.boxes.extend([(0.0, 0.0, 0.0, 0.0)] * len(ids))
        self.box_mask.extend([False] * len(ids))


def _clean(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    return _WS.sub(" ", text or "").strip()[:limit]


def compact_action(response: str) -> str:
    """The action part of a UI-TARS response (history keeps actions only: thoughts are long)."""
    m = _ACTION.search(response or "")
    if m:
        text = m.group(1)
    else:
        lines = (response or "").strip().splitlines()
        text = lines[-1] if lines else ""
    return _clean(text or "", 160)


def image_tensor(image: Image.Image | None, size: int) -> torch.Tensor:
    """The screenshot resized (aspect not kept) to size x size RGB, uint8 [3, S, S]; None = blank."""
    if image is None:
        return torch.zeros(3, size, size, dtype=torch.uint8)
    img = image.convert("RGB")
    if img.size != (size, size):
        # reducing_gap: a fast box pre-shrink for large screenshots, then a proper bilinear resize
        img = img.resize((size, size), Image.BILINEAR, reducing_gap=2.0)
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def _rel(v: float, extent: float) -> float:
    return min(1.0, max(0.0, v / extent)) if extent > 0 else 0.0


def _select_elements(elements: Sequence[Element], width: float, height: float, limit: int) -> list[Element]:
    """Visible elements in reading order; beyond ``limit``, interactive ones are kept first."""
    vis = [e for e in elements if e.box.width > 0 and e.box.height > 0
           and e.box.x < width and e.box.y < height and e.box.x + e.box.width > 0 and e.box.y + e.box.height > 0]
    if len(vis) <= limit:
        return vis
    keep = {id(e) for e in ([e for e in vis if e.interactive] + [e for e in vis if not e.interactive])[:limit]}
    return [e for e in vis if id(e) in keep]


def names(instruction: str, text: str | None, exact: bool = False) -> bool:
    """Whether ``instruction`` contains ``text`` as whole words (no letter or digit runs on at either
    end), ignoring case unless ``exact``. Empty, long (> MAX_NAMED_CHARS) or whole-instruction texts
    never count: "Select Fay from the list" names an option "Fay" and a value "Fay", not "Fa"."""
    needle, hay = _clean(text or "", 400), _clean(instruction or "", 400)
    if not needle or len(needle) > MAX_NAMED_CHARS or needle.casefold() == hay.casefold():
        return False
    if not exact:
        needle, hay = needle.casefold(), hay.casefold()
    # str.find and isalnum (what the pattern [^\W_] matches) rather than a regex: a pattern per needle
    # is compiled anew for each element and thrashes re's cache
    at = hay.find(needle)
    while at >= 0:
        end = at + len(needle)
        if not (at > 0 and hay[at - 1].isalnum()) and not (end < len(hay) and hay[end].isalnum()):
            return True
        at = hay.find(needle, at + 1)
    return False


def element_ids(tok: GalagoTokenizer, e: Element, width: float, height: float, limit: int,
                coords_last: bool = False, instruction: str | None = None) -> list[int]:
    """One element's tokens (at most ``limit`` after <|el|>, not counting the centre); with
    ``instruction`` (``mark_named``), ``named`` follows the role of an element whose text (any case) or
    value (exactly: a typed value must match as typed) it names, on top of the limit."""
    cx, cy = e.box.center
    coords = [tok.num_id(round(_rel(cx, width) * 1000)), tok.num_id(round(_rel(cy, height) * 1000))]
    # the role and the text are tokenised apart, so a label tokenises as it does when quoted
    role = tok.encode(_clean(e.role, 20))
    body = role + tok.encode_label(_clean(e.text))
    extra = []
    if e.value and e.value != e.text:
        # a value reads as a quoted label does, so it can be compared with the instruction's words
        extra.append(("= " if tok.quote_space else "=") + _clean(e.value, 40))
    if e.checked is not None:
        extra.append("checked" if e.checked else "unchecked")
    if e.focused:
        extra.append("focused")
    if e.disabled:
        extra.append("disabled")
    if extra:
        body += tok.encode(" " + " ".join(extra))
    body = body[:max(0, limit)]
    if instruction is not None and (names(instruction, e.text) or names(instruction, e.value, exact=True)):
        # outside the limit: the mark must not push a typed value's end or a state flag out of the group
        body[len(role):len(role)] = tok.encode(" named")
    return [EL] + body + coords if coords_last else [EL] + coords + body


def encode_observation(tok: GalagoTokenizer, cfg: MoEConfig, instruction: str, image: Image.Image | None,
                       width: float, height: float, elements: Sequence[Element] = (),
                       history: Sequence[str] = (), *, no_image: bool = False,
                       no_elements: bool = False) -> EncodedPrompt:
    """Encode one step's inputs. ``history`` holds previous responses in UI-TARS syntax (relative-1000
    space); ``width``/``height`` are the CSS size of the observed area (element boxes are in it)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"observed area must have a positive size, got {width}x{height}")
    p = EncodedPrompt(image_tensor(None if no_image else image, cfg.image_size), [], [], [], [])
    p.extend([BOS], SEG_OTHER)
    p.extend([INSTR] + tok.encode(_clean(instruction, 400))[:cfg.max_instruction_tokens], SEG_INSTRUCTION)
    if not no_elements:
        for e in _select_elements(elements, width, height, cfg.max_elements):
            ids = element_ids(tok, e, width, height, cfg.max_element_tokens, cfg.coords_last,
                              instruction if cfg.mark_named else None)
            b = e.box
            box = (_rel(b.x, width), _rel(b.y, height), _rel(b.x + b.width, width), _rel(b.y + b.height, height))
            p.tokens.extend(ids)
            p.segments.extend([SEG_ELEMENT] * len(ids))
            p.boxes.extend([box] * len(ids))
            p.box_mask.extend([True] * len(ids))
    if cfg.max_history > 0:
        for r in list(history)[-cfg.max_history:]:
            p.extend([HIST] + tok.encode(compact_action(r))[:cfg.max_history_tokens], SEG_HISTORY)
    p.extend([RESP], SEG_OTHER)
    return p


def encode_target(tok: GalagoTokenizer, text: str) -> list[int]:
    """Token ids of a response, ending with <|eos|>."""
    return tok.encode(text) + [EOS]


def collate(prompts: Sequence[EncodedPrompt], targets: Sequence[Sequence[int]] | None = None,
            pad_left: bool = False) -> tuple[PromptBatch, torch.Tensor | None]:
    """Pad a batch. With ``targets`` (training) each row is prompt + target, right-padded, and the
    second value holds next-token labels (-100 except where the next token is a target token).
    Without (generation) rows are left-padded so every row's next token lands at the same index."""
    if not prompts:
        raise ValueError("empty batch")
    rows = []
    for i, p in enumerate(prompts):
        t = list(targets[i]) if targets is not None else []
        rows.append((p.tokens + t, p.segments + [SEG_RESPONSE] * len(t),
                     p.boxes + [(0.0, 0.0, 0.0, 0.0)] * len(t), p.box_mask + [False] * len(t), len(p.tokens)))
    L = max(len(r[0]) for r in rows)
    B = len(rows)
    tokens = torch.full((B, L), PAD, dtype=torch.long)
    segments = torch.full((B, L), SEG_OTHER, dtype=torch.long)
    boxes = torch.zeros(B, L, 4)
    box_mask = torch.zeros(B, L, dtype=torch.bool)
    mask = torch.zeros(B, L, dtype=torch.bool)
    labels = torch.full((B, L), -100, dtype=torch.long) if targets is not None else None
    for i, (tk, sg, bx, bm, n_prompt) in enumerate(rows):
        n = len(tk)
        sl = slice(L - n, L) if pad_left else slice(0, n)
        tokens[i, sl] = torch.tensor(tk, dtype=torch.long)
        segments[i, sl] = torch.tensor(sg, dtype=torch.long)
        boxes[i, sl] = torch.tensor(bx, dtype=torch.float32)
        box_mask[i, sl] = torch.tensor(bm, dtype=torch.bool)
        mask[i, sl] = True
        if labels is not None:
            off = sl.start
            # the token at position j predicts token j+1: label the positions n_prompt-1 .. n-2
            labels[i, off + n_prompt - 1: off + n - 1] = tokens[i, off + n_prompt: off + n]
    images = torch.stack([p.image for p in prompts])
    return PromptBatch(images, tokens, segments, boxes, box_mask, mask), labels
