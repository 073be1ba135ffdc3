"""The policy's tokenizer: byte-level BPE (HF ``tokenizers``) plus one token per number 0..1000.

Layout of the ids (fixed, checked on load):

* 0..7      specials ``<|pad|> <|bos|> <|eos|> <|img|> <|instr|> <|el|> <|hist|> <|resp|>``
* 8..1008   number tokens ``<|n0|>`` .. ``<|n1000|>``
* 1009..    the BPE vocabulary, trained on the demonstrations' text

Why number tokens: coordinates live on the 0..1000 relative grid, and an element's centre is
written into the prompt with the same tokens the answer uses, so pointing becomes copying a token
(the head is tied to the embeddings) and works for labels never seen in training. Every standalone
integer 0..1000 in any text (instruction, element text, targets) becomes its number token before BPE;
decoding writes the digits back, so text round-trips exactly.

Every other run of digits (``2016``, ``05``, ``0253``) is written one number token per digit, and a
number's neighbours do not change how it is cut (``13.``, ``/13/``, ``53P`` hold ``13`` and ``53``
as in ``13``). So a date, a time or a code in the instruction tokenises to the same digits as the
same value typed into a field or named in a thought, and reproducing it is copying tokens. (The
first tokenizers cut only standalone integers and left the rest to BPE, where ``12/13/2016`` and
``day 13.`` share no token; a tokenizer without the marker token ``<|digits|>`` keeps that rule, so
checkpoints trained with it load unchanged.)

Why words are isolated before BPE (``" ?\\p{L}+"`` and quotes are pre-token boundaries): a label
must tokenise the same wherever it occurs (in an element, the instruction, the thought, or inside
``type(content='ada')``), or copying it does not generalise to unseen labels. Punctuation runs
between words may merge freely, and the fixed fragments of UI-TARS syntax (``PHRASES``) are single
added tokens, so a typical response is ~12-20 tokens and generation stays cheap.

A word's first piece carries the space before it (``Ġbeacon``), so a word right after an opening
quote would tokenise apart from the same word after a space: ``Under Northern beacon`` and
``the "Northern beacon" tab`` would share ``Ġbeacon`` but not the first word, and a thought could
not copy an unquoted name from the instruction token for token. So an opening quote (one not
preceded by a letter) followed by a letter is written as the quote, the token ``<|sp|>`` ("the next
space is not there") and the word with its space: ``"<|sp|> Northern``; decoding drops ``<|sp|> ``.
Element labels are encoded with a leading space likewise (``encode_label``). A tokenizer without
``<|sp|>`` (trained before) keeps the first rule, where a label tokenises as it does after a quote.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from actions.errors import ConfigError
from policy.moe.config import N_SPECIAL, NUM_MAX

SPECIALS = ["<|pad|>", "<|bos|>", "<|eos|>", "<|img|>", "<|instr|>", "<|el|>", "<|hist|>", "<|resp|>"]
assert len(SPECIALS) == N_SPECIAL
PAD, BOS, EOS, IMG, INSTR, EL, HIST, RESP = range(N_SPECIAL)
NUM_BASE = N_SPECIAL
NUM_TOKENS = [f"<|n{i}|>" for i in range(NUM_MAX + 1)]
# fixed fragments of UI-TARS syntax that carry no user content; matched before BPE (ids after it)
PHRASES = [
    "Thought: ", "\nAction: ", "Action: ", "Reflection: ", "Action_Summary: ",
    "click(start_box='(", "left_double(start_box='(", "right_single(start_box='(", "hover(start_box='(",
    "drag(start_box='(", ")', end_box='(", "scroll(start_box='(", ")', direction='",
    "select_option(start_box='(", ")', option='", "', amount='", "type(content='", "\\n')",
    "hotkey(key='", "finished(content='", "call_user(content='", "navigate(url='", "wait(seconds='",
    "wait()", "finished()", "call_user()", "navigate_back()", ")')", "')",
    "<|box_start|>(", ")<|box_end|>')", "<point>", "</point>')",
]

# present in tokenizers that cut every digit run (the current rule); absent in the first ones
DIGITS_MARKER = "<|digits|>"
# after an opening quote: the next word's space is not there (and present in tokenizers of that rule)
QUOTE_SPACE = "<|sp|>"
RULE_TOKENS = (DIGITS_MARKER, QUOTE_SPACE)  # added in this order; ids after the phrases
_LETTER = r"[^\W\d_]"
OPEN_QUOTE_RE = re.compile(rf"(?<!{_LETTER})(['\"])(?={_LETTER})")
# the first rule: a standalone integer 0..1000 without leading zeros (not part of a word, a decimal
# or a longer number) becomes a number token; other digits are left to BPE
LEGACY_NUMBER_RE = re.compile(r"(?<![\w.])(1000|[1-9]\d{0,2}|0)(?![\w.])")
DIGIT_RUN_RE = re.compile(r"[0-9]+")
NUMBER_RE = re.compile(r"1000|[1-9][0-9]{0,2}|0")  # a digit run that is one number token
NUM_TOKEN_RE = re.compile(r"<\|n(\d{1,4})\|>")


def _num_tokens(run: str) -> str:
    """A run of digits as number tokens: one for 0..1000 written without leading zeros, else one per digit."""
    if NUMBER_RE.fullmatch(run):
        return f"<|n{run}|>"
    return "".join(f"<|n{c}|>" for c in run)


def _to_num_tokens(text: str, digits: bool = True) -> str:
    if not digits:
        return LEGACY_NUMBER_RE.sub(lambda m: f"<|n{m.group(1)}|>", text)
    return DIGIT_RUN_RE.sub(lambda m: _num_tokens(m.group(0)), text)


class GalagoTokenizer:
    """A thin wrapper over a ``tokenizers.Tokenizer`` that owns the number-token convention."""

    def __init__(self, tok: Tokenizer):
        for i, s in enumerate(SPECIALS + NUM_TOKENS[:1] + NUM_TOKENS[-1:]):
            want = i if i < N_SPECIAL else (NUM_BASE if s == NUM_TOKENS[0] else NUM_BASE + NUM_MAX)
            if tok.token_to_id(s) != want:
                raise ConfigError(f"tokenizer is not a galago MoE tokenizer: {s!r} should have id {want}")
        self.tok = tok
        self.vocab_size = tok.get_vocab_size()
        self._marker = tok.token_to_id(DIGITS_MARKER)
        self.digits = self._marker is not None  # which number rule (module docstring)
        self.quote_space = tok.token_to_id(QUOTE_SPACE) is not None  # which quote rule

    # ---- training / io -------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 4096) -> "GalagoTokenizer":
        """Train the BPE part on ``texts`` (digits are cut out first: they have their own tokens)."""
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(r" ?\p{L}+|['\"]"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=SPECIALS + NUM_TOKENS, show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), min_frequency=2)

        def pieces():
            for t in texts:
                # merges never span a digit, matching how number tokens split text when encoding;
                # a word after an opening quote is counted with its space, as encode writes it
                yield from (p for p in DIGIT_RUN_RE.split(OPEN_QUOTE_RE.sub(r"\1 ", t)) if p)
        tok.train_from_iterator(pieces(), trainer)
        tok.add_tokens(PHRASES)
        tok.add_special_tokens(list(RULE_TOKENS))
        return cls(tok)

    def upgraded(self) -> "GalagoTokenizer":
        """This tokenizer switched to the current rules (adds the rule tokens it lacks; no other id
        changes), for training a checkpoint of the first rules further on the current ones."""
        missing = [t for t in RULE_TOKENS if self.tok.token_to_id(t) is None]
        if not missing:
            return self
        tok = Tokenizer.from_str(self.tok.to_str())
        tok.add_special_tokens(missing)
        return GalagoTokenizer(tok)

    def save(self, path: str | Path) -> None:
        self.tok.save(str(path))

    @classmethod
    def load(cls, path: str | Path) -> "GalagoTokenizer":
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises plain Exception subclasses
            raise ConfigError(f"cannot read tokenizer {path}: {e}") from None
        return cls(tok)

    # ---- encode / decode -----------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        if not text:
            return []
        text = _to_num_tokens(text, self.digits)
        if self.quote_space:
            text = OPEN_QUOTE_RE.sub(rf"\1{QUOTE_SPACE} ", text)
        return self.tok.encode(text, add_special_tokens=False).ids

    def encode_label(self, text: str) -> list[int]:
        """An element's label, tokenised as it is when a thought quotes it (module docstring)."""
        if self.quote_space and re.match(_LETTER, text):
            return self.encode(" " + text)
        return self.encode(text)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; specials are dropped, number tokens become digits."""
        ids = [int(i) for i in ids if int(i) >= N_SPECIAL and int(i) != self._marker]
        text = self.tok.decode(ids, skip_special_tokens=False)
        if self.quote_space:
            text = text.replace(QUOTE_SPACE + " ", "").replace(QUOTE_SPACE, "")
        return NUM_TOKEN_RE.sub(lambda m: m.group(1), text)

    @staticmethod
    def num_id(n: int) -> int:
        """The token id of the number ``n`` (clipped to 0..1000)."""
        return NUM_BASE + max(0, min(NUM_MAX, int(n)))

    def __len__(self) -> int:
        return self.vocab_size
