"""``MoEPolicy``: the built-in MoE vision-language model behind the Policy protocol."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import torch

from actions.errors import ActionParseError
from actions.schema import Step
from perception.observation import Observation
from perception.space import CoordinateSpace
from policy.base import BasePolicy, HistoryEntry
from policy.grounding import ground_step
from policy.moe.generate import Generation, generate
from policy.moe.model import MoEModel
from policy.moe.pretrained import from_pretrained, save_pretrained
from policy.moe.prompt import EncodedPrompt, encode_observation
from policy.moe.tokenizer import GalagoTokenizer

SCALE = 1000  # the relative grid the model answers on


class MoEPolicy(BasePolicy):
    """Greedy (by default) decoding of ``Thought: ...\\nAction: ...`` on a 0..1000 relative grid.

    ``no_image`` / ``no_elements`` are ablations: the model sees a blank screenshot / no element list.
    ``ground`` (on by default) moves a click onto the element its thought quotes when the model's
    point missed it (policy.grounding); ``grounded`` says whether the last step was moved.
    After each ``act``, ``last`` holds the Generation (token ids, log-probs) and ``last_ms`` the time.
    """

    name = "moe"

    def __init__(self, model: MoEModel, tokenizer: GalagoTokenizer, *, no_image: bool = False,
                 no_elements: bool = False, max_new_tokens: int | None = None, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int | None = None, decode_threads: int | None = 1,
                 ground: bool = True):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.no_image, self.no_elements = no_image, no_elements
        self.ground, self.grounded = ground, False
        self.max_new_tokens = max_new_tokens or model.cfg.max_new_tokens
        self.temperature, self.top_p = temperature, top_p
        self.decode_threads = decode_threads  # one-token steps are faster on one thread (tiny matmuls)
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.last: Generation | None = None
        self.last_text = ""
        self.last_ms = 0.0

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, **options) -> "MoEPolicy":
        model, tok = from_pretrained(model_dir)
        return cls(model, tok, **options)

    def save_pretrained(self, out_dir: str | Path) -> Path:
        return save_pretrained(self.model, self.tokenizer, out_dir)

    def coordinate_space(self, width: int, height: int, dpr: float = 1.0) -> CoordinateSpace:
        return CoordinateSpace.relative(width, height, SCALE, dpr)

    def encode(self, task: str, observation: Observation, history: Sequence[HistoryEntry | str]) -> EncodedPrompt:
        responses = [h if isinstance(h, str) else h.response for h in history]
        return encode_observation(self.tokenizer, self.model.cfg, task or observation.instruction,
                                  observation.screenshot, observation.width, observation.height,
                                  observation.elements, responses, no_image=self.no_image,
                                  no_elements=self.no_elements)

    @property
    def uses_elements(self) -> bool:
        """It reads the page's element list (galago serve asks openai: clients to send it)."""
        return not self.no_elements

    def respond(self, task: str, observation: Observation, history: Sequence[HistoryEntry | str] = ()) -> str:
        """The raw response text (not parsed)."""
        t0 = time.perf_counter()
        prompt = self.encode(task, observation, history)
        self.last = generate(self.model, [prompt], self.max_new_tokens, self.temperature, self.top_p,
                             self.generator, decode_threads=self.decode_threads)
        self.last_text = self.tokenizer.decode(self.last.tokens[0])
        self.last_ms = (time.perf_counter() - t0) * 1000
        return self.last_text

    def act(self, task: str, observation: Observation, history: Sequence[HistoryEntry]) -> Step:
        from actions import parse_response  # imported late: written alongside this module

        text = self.respond(task, observation, history)
        space = observation.space
        if space is None or space.kind != "relative" or round(space.model_width) != SCALE:
            space = self.coordinate_space(observation.width, observation.height, observation.dpr)
        try:
            step = parse_response(text, space)
        except ActionParseError as e:  # propagates with the text: the loop records it and feeds it back
            e.raw = text
            raise
        if not step.raw:
            step.raw = text
        self.grounded = False
        if self.ground and not self.no_elements:
            step, self.grounded = ground_step(step, observation, space)
        return step
