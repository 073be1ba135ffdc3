"""The label vocabulary and its train/test split.

Labels are the words of ``data/words.json`` plus two-word combinations of them (adjective+noun,
verb+noun, noun+noun). About 10% of the words are *held out*: they, and every phrase containing one,
appear only in test episodes, so evaluation sees labels no training page ever showed.

The split is a stable hash of the word (never Python's salted ``hash``), so it is the same on every
machine and run. Words that also occur in fixed UI text (button captions like "Save", instruction
templates) cannot be held out — they appear on every page — and are kept in train.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from functools import cached_property
from pathlib import Path

DATA = Path(__file__).with_name("data") / "words.json"
HELDOUT_PERCENT = 11
SPLITS = ("train", "test")
WORD_LISTS = ("nouns", "adjectives", "verbs", "first_names", "last_names", "cities")


def _bucket(word: str) -> int:
    return int.from_bytes(hashlib.sha256(word.lower().encode()).digest()[:4], "big") % 100


def tokens(text: str) -> set[str]:
    """Lower-case word tokens of a text (used for held-out checks)."""
    return set(re.findall(r"[a-z]+", text.lower()))


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


class Vocabulary:
    def __init__(self, lists: dict[str, tuple[str, ...]], domains: tuple[str, ...],
                 fixed_words: frozenset[str] = frozenset()):
        self.lists = lists
        self.domains = domains
        self.fixed_words = fixed_words  # words of fixed UI text; never held out
        self._words: dict[tuple[str, str], tuple[str, ...]] = {}
        self._heldout: dict[str, tuple[str, ...]] = {}

    @classmethod
    def load(cls, fixed_text: str = "") -> "Vocabulary":
        data = json.loads(DATA.read_text())
        lists = {k: tuple(data[k]) for k in WORD_LISTS}
        for k, words in lists.items():
            if len(set(words)) != len(words):
                raise ValueError(f"duplicate words in {DATA}:{k}")
        return cls(lists, tuple(data["domains"]), frozenset(tokens(fixed_text)))

    @cached_property
    def heldout_words(self) -> frozenset[str]:
        """Lower-case words that only test episodes may show."""
        out = set()
        for words in self.lists.values():
            for w in words:
                if _bucket(w) < HELDOUT_PERCENT and not (tokens(w) & self.fixed_words):
                    out.add(w.lower())
        return frozenset(out)

    def words(self, kind: str, split: str) -> tuple[str, ...]:
        """The words of one list usable in ``split`` (test: all of them; train: the non-held-out)."""
        key = (kind, check_split(split))
        if key not in self._words:
            ws = self.lists[kind]
            self._words[key] = ws if split == "test" else tuple(
                w for w in ws if w.lower() not in self.heldout_words)
        return self._words[key]

    def heldout(self, kind: str) -> tuple[str, ...]:
        if kind not in self._heldout:
            self._heldout[kind] = tuple(w for w in self.lists[kind] if w.lower() in self.heldout_words)
        return self._heldout[kind]

    def entries(self, split: str) -> list[str]:
        """Every label of the split: the words and all two-word phrases (deterministic order)."""
        n, a, v = (self.words(k, split) for k in ("nouns", "adjectives", "verbs"))
        out = [*n, *a, *v]
        out += [f"{x} {y}" for x in a for y in n]
        out += [f"{x} {y}" for x in v for y in n]
        out += [f"{x} {y}" for x in n for y in n if x != y]
        return out

    # -- sampling (all through the episode's own Random) ---------------------------------------

    def word(self, rng: random.Random, kind: str, split: str, novel: bool = False) -> str:
        """One word; ``novel`` (test only) draws from the held-out part when it has any."""
        pool = self.heldout(kind) if (novel and split == "test" and self.heldout(kind)) else self.words(kind, split)
        return rng.choice(pool)

    def label(self, rng: random.Random, split: str, novel: bool = False) -> str:
        """A short capitalised label: a noun, 'adjective noun', 'verb noun' or 'noun noun'."""
        shape = rng.choice(("n", "an", "an", "vn", "vn", "nn"))
        first = {"n": "nouns", "an": "adjectives", "vn": "verbs", "nn": "nouns"}[shape]
        # a novel label puts its held-out word in a random position
        novel_pos = rng.randrange(len(shape)) if novel else -1
        parts: list[str] = []
        for i, ch in enumerate(shape):
            kind = first if i == 0 else "nouns"
            w = self.word(rng, kind, split, novel=(i == novel_pos))
            while w in parts:  # no "Pilot pilot"
                w = self.word(rng, kind, split)
            parts.append(w)
        text = " ".join(parts)
        return text[0].upper() + text[1:]

    def labels(self, rng: random.Random, k: int, split: str, novel_first: bool = False) -> list[str]:
        """``k`` distinct labels that differ in their lower-case form too."""
        out: list[str] = []
        seen: set[str] = set()
        while len(out) < k:
            lab = self.label(rng, split, novel=novel_first and not out)
            if lab.lower() not in seen:
                seen.add(lab.lower())
                out.append(lab)
        return out

    def person(self, rng: random.Random, split: str) -> tuple[str, str]:
        return self.word(rng, "first_names", split), self.word(rng, "last_names", split)
