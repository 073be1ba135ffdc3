"""Quoted names are copied, not spelt: a steer for ``generate`` that keeps a name the thought quotes
from the task a copy of the task's text.

A small model writes a name it read (``Check "458x6xg"``) token by token and sometimes drifts into
another name half-way (``"458csZp"`` from the task's ``458x6xg`` and ``56csZp``, ``"Kicol"`` for
``Nicol``): grounding cannot aim a click at a name nothing on screen holds, and a thought built on
it goes wrong from there. So once the quote so far is a copy of at least three letters or digits
of the task's text, from a word's start to inside that word (case folded), a next token that would
make it none is replaced by the most likely one that keeps it one, or closes the quote: ``"458`` +
``cs`` becomes ``"458`` + ``x``. A copy that reached a word's end is free to go on (``"Kor"`` in
``starts with "Kor"``: the suggestion quoted is "Korea, South"), as is one of a letter or two.

Only the task's text: a name the model picks among the page's (``"pig" means "hide"``, a synonym
among the boxes) is its choice, and its point is evidence of that choice; forcing such a drifted
name onto another box's label made grounding move a right click to a wrong box (click-checkboxes-
soft 0.8 -> 0.4 on five seeds). Left alone too: a quote whose first piece is already no copy (a
name not shown, the model's own text), a text to type (``type "04:43A"``: a value the step
converts), a quote that became none through digits (digits are never overridden), everything
outside the thought's quotes. Like the point grammar it restricts the choice, not the reported
log-probabilities.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from policy.moe.tokenizer import GalagoTokenizer

MIN_COPY = 3  # letters or digits copied before the guard holds the quote to the copy

def _word_start(s: str, i: int) -> bool:
    return i == 0 or not s[i - 1].isalnum()


class CopyGuard:
    """Per tokenizer: the text of every token (case folded) and the ids of the quote, ``<|sp|>``,
    the thought's end and the number tokens. ``steer(sources)`` gives a ``generate`` steer for one
    step's sources (the policy passes the task)."""

    def __init__(self, tokenizer: GalagoTokenizer):
        t = tokenizer.tok
        self.quote = t.token_to_id('"')
        self.sp = t.token_to_id("<|sp|>")
        self.action = t.token_to_id("\nAction: ")
        self.decode = tokenizer.decode
        self.pieces = [tokenizer.decode([i]).casefold() for i in range(tokenizer.vocab_size)]  # ~60 ms once
        self.by_first: dict[str, list[int]] = {}
        for i, p in enumerate(self.pieces):
            if p:
                self.by_first.setdefault(p[0], []).append(i)
        self.numbers = {i for i, p in enumerate(self.pieces) if p.isdigit()}
        self.usable = self.quote is not None and self.action is not None

    def steer(self, sources: Iterable[str]):
        """``steer(row, ids)`` for ``generate``: inside a quote of the thought whose text so far is
        a copy, (the tokens that would make it none, the tokens that keep it one); else None."""
        texts = [s.casefold() for s in sources if s and s.strip()]
        if not self.usable or not texts:
            return None

        def steer(row: int, ids: Sequence[int]):
            if self.action in ids or ids.count(self.quote) % 2 == 0:
                return None
            last = len(ids) - 1 - ids[::-1].index(self.quote)
            inside = ids[last + 1:]
            if not inside or inside == [self.sp]:
                return None  # the first piece is the model's own choice
            if self.decode(ids[max(0, last - 2):last]).casefold().rstrip().endswith("type"):
                return None  # a text to type: a value the step may convert (``type "04:43A"`` for 4:43 AM)
            so_far = self.decode(inside).casefold()
            if sum(c.isalnum() for c in so_far) < MIN_COPY:
                return None  # a letter or two is no evidence of copying (``"T`` of the task's "the")
            rests = [r for r in self._rests(so_far, texts) if r[:1].isalnum()]
            if not rests:
                return None  # no copy, or a copy to a word's end (a name the task gives the start of)
            after_sp = inside[-1] == self.sp
            return _Breaks(self, rests, after_sp), _Keeps(self, rests, after_sp)
        return steer

    @staticmethod
    def _rests(so_far: str, texts: list[str]) -> list[str]:
        """What follows ``so_far`` where it occurs from a word's start in ``texts`` ("" at an end)."""
        rests = []
        for s in texts:
            i = s.find(so_far)
            while i >= 0:
                if _word_start(s, i):
                    rests.append(s[i + len(so_far):])
                i = s.find(so_far, i + 1)
        return rests

    def keeps(self, token: int, rests: list[str], after_sp: bool) -> bool:
        """Whether ``token`` keeps the quote a copy (or closes it, or is a digit)."""
        if token == self.quote or token in self.numbers:
            return True
        if token >= len(self.pieces):
            return False
        piece = self.pieces[token]
        if after_sp and piece.startswith(" "):
            piece = piece[1:]
        return bool(piece) and any(r.startswith(piece) for r in rests)


class _Rule:
    def __init__(self, guard: CopyGuard, rests: list[str], after_sp: bool):
        self.guard, self.rests, self.after_sp = guard, rests, after_sp


class _Breaks(_Rule):
    """The tokens that would make the quote no copy (a container for ``generate``'s ``in``)."""

    def __contains__(self, token: int) -> bool:
        return not self.guard.keeps(int(token), self.rests, self.after_sp)


class _Keeps(_Rule):
    """The tokens that keep it one, listed when ``generate`` overrides a token."""

    def __iter__(self):
        g = self.guard
        found = {g.quote}
        for r in self.rests:
            heads = {r[0], " " + r[0]} if r and self.after_sp else ({r[0]} if r else set())
            for c in heads:
                for t in g.by_first.get(c[0], ()):
                    if t not in found and g.keeps(t, [r], self.after_sp):
                        found.add(t)
        return iter(sorted(found))
