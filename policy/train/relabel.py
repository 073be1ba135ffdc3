"""Label randomisation for distillation: quoted words become fresh pseudo-words, consistently.

Held-out episodes name labels the student never saw ("Click the "Vina" link"): to succeed it must
find the instruction's words among the elements and copy them (and the element's coordinates), not
recall the training vocabulary. ``relabel`` takes one demonstration and replaces every quoted
string of its instruction (and each capitalised word of it that does not start a sentence, see
``relabel_map``), wherever it occurs as whole words in the instruction, the element texts
and values, the history and the target, by a pseudo-word of the same shape (letter runs of similar
length, the same capitalisation, punctuation and digits kept). The screenshot is left as it was:
the student reads text from the element list, and learns not to recall it.

Strings with digits (dates, times, amounts) keep their meaning in the task and are never replaced.
"""
from __future__ import annotations

import random
import re
from typing import Any

_QUOTED = re.compile(r'"([^"\n]{2,60})"')
_NAME = re.compile(r"(?<![A-Za-z0-9])[A-Z][a-z]{2,}(?![A-Za-z0-9])")  # a capitalised word: Lonee, Storm
_KEEP = frozenset(("january february march april may june july august september october november december "
                   "monday tuesday wednesday thursday friday saturday sunday").split())
_LETTERS = re.compile(r"[A-Za-z]+")
_VOWELS = "aeiou"
_CONSONANTS = "bcdfghjklmnprstvwz"


def _pseudo_word(n: int, rng: random.Random) -> str:
    """A pronounceable lower-case word of ``n`` letters (tokenises like a real unseen word)."""
    out, vowel = [], rng.random() < 0.3
    while len(out) < n:
        out.append(rng.choice(_VOWELS if vowel else _CONSONANTS))
        vowel = not vowel if rng.random() < 0.85 else vowel
    return "".join(out)


def _shape_like(word: str, new: str) -> str:
    """``new`` written in ``word``'s case: all capitals, capitalised, or lower-case first letter."""
    if word.isupper() and len(word) > 1:
        return new.upper()
    if word[:1].isupper():
        return new[:1].upper() + new[1:]
    if word[:1].islower():
        return new[:1].lower() + new[1:]
    return new


def fresh_label(text: str, rng: random.Random) -> str:
    """``text`` with each letter run replaced by a pseudo-word of similar length and the same case."""
    def sub(m: re.Match) -> str:
        w = m.group(0)
        n = max(1, len(w) + rng.randint(-1, 1)) if len(w) > 2 else len(w)
        return _shape_like(w, _pseudo_word(n, rng))
    return _LETTERS.sub(sub, text)


def relabel_map(instruction: str, rng: random.Random) -> dict[str, str]:
    """Old -> new for every quoted string of the instruction that is safe to rename, and every
    capitalised word of it outside quotes that does not start a sentence: the names a task copies
    (``Select Jordanna>Lonee``, ``forward Storm's email to Elyn``, ``click Submit``). Whether a word
    is renamed depends on the instruction alone, never on the step: a rule that renamed only the
    names a step shows or quotes would tell the student which step it is in (renamed names only
    where the name is still to be picked). Months and weekdays keep their meaning; lower-case words
    too (a synonym asked for is knowledge, not a copy)."""
    mapping: dict[str, str] = {}
    for s in _QUOTED.findall(instruction):
        s = s.strip()
        if len(s) < 2 or any(c.isdigit() for c in s) or not _LETTERS.search(s) or s.lower() in mapping:
            continue
        mapping[s.lower()] = fresh_label(s, rng)
    bare = _QUOTED.sub(" ", instruction)
    for m in _NAME.finditer(bare):
        k, before = m.group(0).lower(), bare[:m.start()].rstrip()
        if k not in mapping and k not in _KEEP and before and before[-1] not in ".!?":
            mapping[k] = fresh_label(m.group(0), rng)
    return mapping


def _pattern(mapping: dict[str, str]) -> re.Pattern | None:
    if not mapping:
        return None
    alts = "|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True))  # longest first
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alts})(?![A-Za-z0-9])", re.IGNORECASE)


def apply_map(text: str, mapping: dict[str, str], pattern: re.Pattern | None) -> str:
    """Replace whole-word occurrences (any case); an occurrence written in capitals or capitalised
    gets its replacement written the same way."""
    if pattern is None or not text:
        return text

    return pattern.sub(lambda m: _shape_like(m.group(0), mapping[m.group(0).lower()]), text)


def relabel(instruction: str, elements: list[dict[str, Any]], history: list[str], target: str,
            rng: random.Random) -> tuple[str, list[dict[str, Any]], list[str], str]:
    """The demonstration's texts with its quoted labels renamed consistently (see the module doc)."""
    mapping = relabel_map(instruction, rng)
    pattern = _pattern(mapping)
    if pattern is None:
        return instruction, elements, history, target
    new_elements = []
    for e in elements:
        e = dict(e)
        for key in ("text", "value"):
            if isinstance(e.get(key), str):
                e[key] = apply_map(e[key], mapping, pattern)
        new_elements.append(e)
    return (apply_map(instruction, mapping, pattern), new_elements,
            [apply_map(h, mapping, pattern) for h in history], apply_map(target, mapping, pattern))
