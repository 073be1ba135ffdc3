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

Why words are isolated before BPE (``" ?\\p{L}+"`` and quotes are pre-token boundaries): a label
must tokenise the same wherever it occurs (in an element, the instruction, the thought, or inside
``type(content='ada')``), or copying it does not generalise to unseen labels. Punctuation runs
between words may merge freely, and the fixed fragments of UI-TARS syntax (``PHRASES``) are single
added tokens, so a typical response is ~12-20 tokens and generation stays cheap.
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

# a standalone integer 0..1000 without leading zeros (not part of a word, a decimal or a longer number)
NUMBER_RE = re.compile(r"(?<![\w.])(1000|[1-9]\d{0,2}|0)(?![\w.])")
NUM_TOKEN_RE = re.compile(r"<\|n(\d{1,4})\|>")


def _to_num_tokens(text: str) -> str:
    return NUMBER_RE.sub(lambda m: f"<|n{m.group(1)}|>", text)


class GalagoTokenizer:
    """A thin wrapper over a ``tokenizers.Tokenizer`` that owns the number-token convention."""

    def __init__(self, tok: Tokenizer):
        for i, s in enumerate(SPECIALS + NUM_TOKENS[:1] + NUM_TOKENS[-1:]):
            want = i if i < N_SPECIAL else (NUM_BASE if s == NUM_TOKENS[0] else NUM_BASE + NUM_MAX)
            if tok.token_to_id(s) != want:
                raise ConfigError(f"tokenizer is not a galago MoE tokenizer: {s!r} should have id {want}")
        self.tok = tok
        self.vocab_size = tok.get_vocab_size()

    # ---- training / io -------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 4096) -> "GalagoTokenizer":
        """Train the BPE part on ``texts`` (numbers are cut out first: they have their own tokens)."""
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
                # merges never span a number, matching how added tokens split text when encoding
                for p in NUMBER_RE.split(t):
                    if p and not NUMBER_RE.fullmatch(p):
                        yield p
        tok.train_from_iterator(pieces(), trainer)
        tok.add_tokens(PHRASES)
        return cls(tok)

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
        return self.tok.encode(_to_num_tokens(text), add_special_tokens=False).ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; specials are dropped, number tokens become digits."""
        ids = [int(i) for i in ids if int(i) >= N_SPECIAL]
        text = self.tok.decode(ids, skip_special_tokens=False)
        return NUM_TOKEN_RE.sub(lambda m: m.group(1), text)

    @staticmethod
    def num_id(n: int) -> int:
        """The token id of the number ``n`` (clipped to 0..1000)."""
        return NUM_BASE + max(0, min(NUM_MAX, int(n)))

    def __len__(self) -> int:
        return self.vocab_size
