"""The seeded episode generator: (family, seed, split) -> page HTML, instruction, goal, plan.

Seeds are split by construction: train seeds are 0 .. TEST_OFFSET-1, test seeds TEST_OFFSET and up.
A test seed below TEST_OFFSET (``widgets:click-button@7``) is shifted by TEST_OFFSET, so a test
episode can never equal a train one. The Random is seeded with a string of family, split and seed,
so families do not share streams and the result is the same on every machine (str seeds hash with
SHA-512, not Python's salted hash).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache

from tasks.suites.widgets import phrasings as P
from tasks.suites.widgets.families import FAMILIES
from tasks.suites.widgets.goal import Goal, PlanStep
from tasks.suites.widgets.page import PageBuilder
from tasks.suites.widgets.styles import Style
from tasks.suites.widgets.vocab import Vocabulary, check_split

TEST_OFFSET = 1_000_000
COMMON_VIEWPORTS = ((320, 568), (360, 640), (375, 667), (414, 736), (768, 800), (800, 600), (1024, 768),
                    (1280, 720), (1280, 800), )


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    return Vocabulary.load(P.fixed_text())


def canonical_seed(seed: int, split: str) -> int:
    """The seed actually used: train seeds must lie below TEST_OFFSET; test seeds are moved above it."""
    check_split(split)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if split == "train":
        if seed >= TEST_OFFSET:
            raise ValueError(f"train seeds are 0..{TEST_OFFSET - 1}; {seed} is a test seed")
        return seed
    return seed if seed >= TEST_OFFSET else seed + TEST_OFFSET


@dataclass(frozen=True)
class GeneratedEpisode:
    family: str
    seed: int  # canonical (see canonical_seed)
    split: str
    instruction: str
    html: str
    goal: Goal
    plan: tuple[PlanStep, ...]
    viewport: tuple[int, int]
    layout: str
    style: Style
    labels: tuple[str, ...] = field(default=())  # vocabulary strings shown on the page


def random_viewport(rng: random.Random) -> tuple[int, int]:
    if rng.random() < 0.5:
        return rng.choice(COMMON_VIEWPORTS)
    return rng.randint(320, 1280), rng.randint(400, 800)


def generate(family: str, seed: int, split: str = "test") -> GeneratedEpisode:
    if family not in FAMILIES:
        raise ValueError(f"unknown widget family {family!r}; known: {', '.join(FAMILIES)}")
    seed = canonical_seed(seed, split)
    rng = random.Random(f"widgets/{family}/{split}/{seed}")
    viewport = random_viewport(rng)
    style = Style.random(rng)
    b = PageBuilder(rng, vocabulary(), split, style, viewport)
    block = FAMILIES[family](b)
    body, layout = b.layout(block.html)
    html = b.document(body, title="Widgets")
    return GeneratedEpisode(family, seed, split, block.instruction, html, block.goal, tuple(block.plan), viewport,
                            layout, style, tuple(b.labels_used))
