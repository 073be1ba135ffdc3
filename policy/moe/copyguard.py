"""Quoted names are copied, not spelt: a steer for ``generate`` that keeps a name the thought quotes
from the task a copy of the task's text.

A small model writes a name it read (``Check "458x6xg"``) token by token and sometimes drifts into
another name half-way (``"458csZp"`` from the task's ``458x6xg`` and ``56csZp``, ``"Kicol"`` for
``Nicol``): grounding cannot aim a click at a name nothing on screen holds, and a thought built on
it goes wrong from there. So once the quote so far is a copy of at least three letters or digits
of the task's text, from a word's start to inside that word (case folded), a next token that would
make it none is replaced by the most likely one that keeps it one, or closes the quote: ``"458`` +
``cs`` becomes ``"458`` + ``x``. A copy that reached a word's end ends that word there or goes on
as a label (``"Kor"`` in ``starts with "Kor"``: the suggestion quoted is "Korea, South"; not
``"homemouflage"``); a copy of a letter or two is free.

Only a copy of the task's text is held to: a name the model picks among the page's (``"pig" means
"hide"``, a synonym among the boxes) is its choice, and its point is evidence of that choice;
forcing such a drifted name onto another box's label made grounding move right clicks to wrong
boxes (click-checkboxes-soft 0.8 -> 0.4 on five seeds). And a copy may go on as a label on the
page: ``"Dir`` copied from the task's "directed" goes on to the field "Director". Left alone too:
a text to type (``type "04:43A"``: a value the step converts), a quote that became no copy
through digits (digits are never overridden), everything outside the thought's quotes. Like the
point grammar it restricts the choice, not the reported log-probabilities.
"""
from __future__ import annotations

import re
from typing import Callable, Iterable, Sequence

from policy.moe.tokenizer import GalagoTokenizer

MIN_COPY = 3  # letters or digits copied before the guard holds the quote to the copy
_WORD = re.compile(r"[^\W\d_]+")


def _word_start(s: str, i: int) -> bool:
    return i == 0 or not s[i - 1].isalnum()


class CopyGuard:
    """Per tokenizer: the text of every token (case folded) and the ids of the quote, the thought's
    end and the number tokens. ``steer(task, labels)`` gives a ``generate`` steer for one step."""

    def __init__(self, tokenizer: GalagoTokenizer):
        t = tokenizer.tok
        self.quote = t.token_to_id('"')
        self.sp = t.token_to_id("<|sp|>")
        self.action = t.token_to_id("\nAction: ")
        self.decode = tokenizer.decode
        self.pieces = [tokenizer.decode([i]).casefold() for i in range(tokenizer.vocab_size)]  # ~60 ms once
        self.by_first: dict[str, list[int]] = {}  # by the first character, and by the first after spaces
        for i, p in enumerate(self.pieces):
            for c in {p[:1], p.lstrip()[:1]} - {""}:
                self.by_first.setdefault(c, []).append(i)
        self.numbers = {i for i, p in enumerate(self.pieces) if p.isdigit()}
        self.usable = self.quote is not None and self.action is not None

    def steer(self, task: str, labels: Iterable[str] = ()):
        """``steer(row, ids)`` for ``generate``: inside a quote of the thought whose text so far is a
        copy from inside a word of ``task``, (the tokens that would make it none of the task nor of
        any of ``labels``, the tokens that keep it a copy of the task); else None."""
        told = task.casefold() if task and task.strip() else ""
        shown = [t.casefold() for t in labels if t and t.strip()]
        if not self.usable or not told:
            return None
        texts = [told, *shown]
        letters = {w[0] for t in texts for w in _WORD.findall(t)}

        def opens(token: int) -> bool:  # a name's first letters start a word of the task or of a label
            if token == self.quote:
                return False  # an empty name
            piece = self.piece(token).lstrip()
            return not piece[:1].isalpha() or bool(_rests(piece, texts))

        def steer(row: int, ids: Sequence[int]):
            if self.action in ids or ids.count(self.quote) % 2 == 0:
                return None
            last = len(ids) - 1 - ids[::-1].index(self.quote)
            so_far = self.decode(ids[last + 1:]).casefold()
            if self.typing(ids, last):
                return self._typed(so_far, told)
            if not so_far.strip():  # the quote's first letters (after its ``<|sp|>``): ``"Kicol"`` for Nicol
                return _Refused(opens), _Allowed(self, opens, letters)
            if sum(c.isalnum() for c in so_far) < MIN_COPY:
                return None  # a letter or two is no evidence of copying (``"T`` of the task's "the")
            copied = _rests(so_far, [told])
            rests = [r for r in copied if r[:1].isalnum()]
            if not rests:
                return self._word_end(so_far, shown) if copied else None  # (no copy: the model's own name)

            def copy_or_label(token: int) -> bool:  # ``"Dir`` may go on to the field "Director"
                if self.keeps(token, rests):
                    return True
                piece = self.piece(token)
                return bool(piece) and bool(_rests(so_far + piece, shown))
            return _Refused(copy_or_label), _Allowed(self, lambda t: self.keeps(t, rests), [r[0] for r in rests])
        return steer

    def _word_end(self, so_far: str, shown: list[str]):
        """A copy that reached the end of a word of the task (``"home``) ends its word there or goes
        on as a label on the page (``"Kor`` of ``starts with "Kor"`` on to the suggestion "Korea,
        South"): letters glued to it (``"homemouflage"``) are refused."""
        def ends(token: int) -> bool:
            piece = self.piece(token)
            return not piece[:1].isalnum() or bool(_rests(so_far + piece, shown))
        return _Refused(ends), _Allowed(self, ends, [r[0] for r in _rests(so_far, shown) if r] + [" ", ",", "."])

    def _typed(self, so_far: str, told: str):
        """A text to type is the step's own (a value it converts: ``type "04:43A"`` for 4:43 AM; a
        letter that narrows a list of suggestions), but one that has copied two letters or more from
        a word's start of the task and stands inside that word everywhere is not closed there
        (``type "St"`` for "Storm")."""
        if len(so_far) < 2 or not so_far.isalpha():
            return None
        rests = _rests(so_far, [told])
        if not rests or not all(r[:1].isalnum() for r in rests):
            return None

        def goes_on(token: int) -> bool:
            return token != self.quote and self.keeps(token, rests)
        return _Refused(lambda t: t != self.quote), _Allowed(self, goes_on, [r[0] for r in rests])

    def choose(self, inside: Sequence[int], names: Sequence[str]):
        """(the tokens that would make the quote so far, ``inside``, none of ``names``, the tokens
        that keep it the start of one or close it on a whole one) for ``generate``'s steer; None
        when it is none already. ``names`` folded. A name that starts with a letter follows the
        quote's ``<|sp|>`` (tokenizer docstring)."""
        after_sp = list(inside) == [self.sp]
        so_far = "" if after_sp else self.decode(inside).casefold()
        rests = [n[len(so_far):] for n in names if n.startswith(so_far)]
        if not rests:
            return None

        def ok(token: int) -> bool:
            return self.fits(token, rests, not inside, after_sp)
        return _Refused(ok), _Allowed(self, ok, [" "] if after_sp else [r[0] for r in rests if r])

    def fits(self, token: int, rests: Sequence[str], opening: bool, after_sp: bool) -> bool:
        """Whether ``token`` keeps a chosen quote the start of one of the names (``choose``)."""
        if token == self.quote:
            return "" in rests
        if token == self.sp:
            return opening and any(r[:1].isalpha() for r in rests)
        piece = self.piece(token)
        if after_sp:
            if not piece.startswith(" "):
                return False
            if piece == " ":  # a name with no token of its own for its first letters after a space
                return any(r[:1].isalpha() for r in rests)  # (``"Ursula"``: `` `` then ``Ur``)
            piece = piece[1:]
        elif opening and piece[:1].isalpha():
            return False  # a name's first letter comes after <|sp|>
        return bool(piece) and any(r.startswith(piece) for r in rests)

    def keeps(self, token: int, rests: list[str]) -> bool:
        """Whether ``token`` keeps the quote a copy (or closes it, or is a digit)."""
        if token == self.quote or token in self.numbers:
            return True
        piece = self.piece(token)
        return bool(piece) and any(r.startswith(piece) for r in rests)

    def piece(self, token: int) -> str:
        """The text of ``token``, case folded ('' for an id past the vocabulary)."""
        return self.pieces[token] if token < len(self.pieces) else ""

    def typing(self, ids: Sequence[int], quote: int) -> bool:
        """Whether the quote opened at ``ids[quote]`` is a text to type (``type "``)."""
        return self.decode(ids[max(0, quote - 2):quote]).casefold().rstrip().endswith("type")


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


class _Refused:
    """The tokens ``ok`` refuses: ``generate`` overrides its most likely token when it is one of them."""

    def __init__(self, ok: Callable[[int], bool]):
        self.ok = ok

    def __contains__(self, token: int) -> bool:
        return not self.ok(int(token))


class _Allowed:
    """The tokens ``ok`` allows, among the quote, ``<|sp|>`` and those whose text starts with one of
    ``heads``: listed only when ``generate`` overrides a token."""

    def __init__(self, guard: CopyGuard, ok: Callable[[int], bool], heads: Iterable[str]):
        self.guard, self.ok, self.heads = guard, ok, heads

    def __iter__(self):
        g = self.guard
        found = {t for t in (g.quote, g.sp) if t is not None and self.ok(t)}
        for c in set(self.heads):
            found.update(t for t in g.by_first.get(c, ()) if self.ok(t))
        return iter(sorted(found))
