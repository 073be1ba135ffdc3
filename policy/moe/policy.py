"""``MoEPolicy``: the built-in MoE vision-language model behind the Policy protocol."""
from __future__ import annotations

import re
import time
import zlib
from pathlib import Path
from typing import Callable, Sequence

import torch

from actions import format_step, parse_response
from actions.errors import ActionParseError, GalagoError
from actions.schema import Step
from perception.observation import Observation
from perception.space import CoordinateSpace
from policy.base import BasePolicy, HistoryEntry, is_stuck
from policy.grounding import (STEER_TRIGGERS, box_choices, box_states, ground_step, menu_path, next_word,
                              quote_choices, quoted, refusal, slide_to_value, typed_from_task, typed_from_thought,
                              untick_unasked)
from policy.moe.copyguard import CopyGuard
from policy.moe.generate import Generation, PointGrammar, generate
from policy.moe.model import MoEModel
from policy.moe.pretrained import from_pretrained, save_pretrained
from policy.moe.prompt import EncodedPrompt, compact_action, encode_observation
from policy.moe.tokenizer import GalagoTokenizer

SCALE = 1000  # the relative grid the model answers on
ESCAPE_SAMPLES = 4  # drawn at once when the loop says the last action keeps failing (MoEPolicy._escape)
ESCAPE_TEMPERATURE = 1.0
VERIFY_SAMPLES = 8  # drawn when greedy decoding points at a name nothing on screen holds
THOUGHT = "Thought: "
_VERB_FIRST = re.compile(r'^Thought: (Un)?[Cc]heck "$')


class MoEPolicy(BasePolicy):
    """Greedy (by default) decoding of ``Thought: ...\\nAction: ...`` on a 0..1000 relative grid.

    ``no_image`` / ``no_elements`` are ablations: the model sees a blank screenshot / no element list.
    ``ground`` (on by default) moves a click onto the element its thought quotes when the model's
    point missed it, aims a slider's drag at the value its thought sets, and types a miscopied word
    as the task writes it (policy.grounding); ``grounded`` says whether the last step was changed.
    ``constrain`` (on by default) decodes the points of actions as numbers (generate.PointGrammar).
    ``verify`` (on by default): when greedy decoding points at a name nothing on screen holds (one
    the task quotes, or one it made up; grounding.off_screen), a few samples are drawn and the most
    likely one that does not is taken (it looks for the target: another tab, a scroll), as for a
    repeated action; likewise when its thought contradicts the screen where it acts (ticks a ticked
    box, calls one the task quotes "not asked for", opens a tab shown open, says a post is by a user
    another heads, says all is done while a box the task names is unticked; grounding.against_state;
    when a box on screen is checked and not asked for, such a click is aimed at it instead:
    grounding.untick_unasked), or says a text it picks starts or ends with what it does not, writes
    a date two ways that differ, takes a calendar step its months do not call for, or counts
    what it quotes wrongly (grounding.false_claim), or types nothing, a text neither the task nor
    its thought holds, or one outside what it cites the task as saying (grounding.false_type), or
    types where nothing on screen takes text (grounding.types_blind), or counts items marked one by
    one on from another number than its past thoughts reached (grounding.lost_count), or says it is
    finished while a control the task names was never named (grounding.finished_early), or that
    the form is filled in while a field the task gives a value holds another (grounding.form_unfinished).
    And a thought's claim about a box (``"A" is`` … ``ticked``/``unchecked``) says the state the
    element list gives (grounding.claimed_state): where the model writes a state word, it is the
    true one; likewise the month a thought names for a date it has just written in digits
    (``09/20/2016 is`` … ``September``) and the step it takes from the month it wants and the month a
    calendar shows (``go back``, ``go forward``, ``click``; grounding.next_word).
    ``copy`` (on by default, with ``verify``): a name the thought quotes stays a copy of the task's
    text once it has started as one inside a word of it, unless it goes on as a label on the page
    (copyguard.CopyGuard: ``"458x6xg"``, not ``"458csZp"``; ``"Director"`` though the task says
    "directed"); and a verb-first thought's quote (``Check "``) names a box that step changes
    (``CopyGuard.choose`` among grounding.box_choices). ``copy=False`` switches both off.
    When the loop flags the last action as repeated without effect and greedy decoding writes it
    again, a few seeded samples are drawn and the most likely different action is taken (``_escape``).
    After each ``act``, ``last`` holds the Generation (token ids, log-probs) and ``last_ms`` the time.
    """

    name = "moe"

    def __init__(self, model: MoEModel, tokenizer: GalagoTokenizer, *, no_image: bool = False,
                 no_elements: bool = False, max_new_tokens: int | None = None, temperature: float = 0.0,
                 top_p: float = 1.0, seed: int | None = None, decode_threads: int | None = None,
                 ground: bool = True, constrain: bool = True, verify: bool = True, copy: bool = True):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.no_image, self.no_elements = no_image, no_elements
        self.ground, self.grounded, self.verify = ground, False, verify
        self.grammar = PointGrammar.from_tokenizer(tokenizer, model.cfg.vocab_size) if constrain else None
        self._word_ids: dict[str, int | None] = {}  # one-token words of the steer's rules
        self._triggers = {self._word_id(w) for w in STEER_TRIGGERS} - {None}
        self.copy_guard = CopyGuard(tokenizer) if copy else None
        self.max_new_tokens = max_new_tokens or model.cfg.max_new_tokens
        self.temperature, self.top_p = temperature, top_p
        # None: the process's torch threads (2 on the 2-core machine, ~10% quicker a step than one,
        # same tokens on 300 recorded steps; an evaluation's workers get 1 each)
        self.decode_threads = decode_threads
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.last: Generation | None = None
        self.last_text = ""
        self.last_ms = 0.0
        self.last_prompt: EncodedPrompt | None = None

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
        prompt = self.last_prompt = self.encode(task, observation, history)
        self.last = generate(self.model, [prompt], self.max_new_tokens, self.temperature, self.top_p,
                             self.generator, decode_threads=self.decode_threads, grammar=self.grammar,
                             steer=self._steer(observation, task))
        self.last_text = self.tokenizer.decode(self.last.tokens[0])
        self.last_ms = (time.perf_counter() - t0) * 1000
        return self.last_text

    def _word_id(self, word: str) -> int | None:
        """The token of ``word`` when it is one token, else None."""
        if word not in self._word_ids:
            ids = self.tokenizer.encode(word)
            self._word_ids[word] = ids[0] if len(ids) == 1 else None
        return self._word_ids[word]

    def _steer(self, observation: Observation | None, task: str = ""):
        """generate's ``steer``: where the response reaches a word a fact decides (grounding.next_word:
        a box's state after ``"A" is``, a date's month after ``09/20/2016 is``, a calendar's step after
        ``… the calendar shows July 2016:``, whether another box is to be named after the claims of
        those the task asks for), the word written is a true one; and a quote stays a copy
        (copyguard.CopyGuard). None when verification is off."""
        if not self.verify or self.no_elements or observation is None:
            return None
        states = box_states(observation)
        task = task or observation.instruction
        asked = quoted(task)
        decode, word_id = self.tokenizer.decode, self._word_id
        guard = self.copy_guard
        copied = guard.steer(task, [t for el in observation.elements for t in (el.text, el.value)]) \
            if guard is not None else None
        choices = box_choices(observation, task)
        choosing = guard is not None and any(choices.values())  # no box on screen: no name to choose
        path = menu_path(task) if guard is not None else []
        named: dict[tuple[int, int], list[list[str]]] = {}  # (row, open quote's index) -> name lists, in turn

        def names_for(ids: list[int], q: int) -> list[list[str]]:
            """The lists of names the quote opened at ``ids[q]`` is chosen among, tried in turn: the
            boxes a verb-first thought changes (``Check "``), the labels that pass the thought's test
            (``… ends with "had" is "``), else a menu path's items (``on the way to "``: its last)."""
            head = decode(ids[:q + 1])
            lists = []
            verb = _VERB_FIRST.match(head) if choosing and ids.index(guard.quote) == q else None
            if verb:
                lists.append(choices["uncheck" if verb.group(1) else "check"])
            passing = quote_choices(head, observation)
            if passing:
                lists.append(passing)
            elif path and not guard.typing(ids, q):
                lists.append(path[-1:] if head[:-1].rstrip().endswith("on the way to") else path)
            return lists

        def steer(row: int, ids: list[int]):
            rule = next_word(decode(ids), states, asked) if ids and ids[-1] in self._triggers else None
            if rule is not None:
                these, those = [word_id(w) for w in rule[0]], [word_id(w) for w in rule[1]]
                if None not in these and None not in those and those:
                    return set(these), those
            if guard is not None and ids.count(guard.quote) % 2 and guard.action not in ids:
                q = len(ids) - 1 - ids[::-1].index(guard.quote)
                if (row, q) not in named:  # worked out once a quote, not at each of its tokens
                    named[row, q] = names_for(ids, q)
                for names in named[row, q]:
                    chosen = guard.choose(ids[q + 1:], names)
                    if chosen is not None:
                        return chosen
            return copied(row, ids) if copied is not None else None
        return steer

    def _branch(self, steer, samples: int):
        """``steer`` for ``_escape``'s samples, whose second half start the thought with another token
        than greedy decoding did: a confident small model makes its choice in the thought's first
        word (``The link "massa" is on this tab`` against ``"massa" is not on this tab``), where
        samples at temperature 1 would all agree with it."""
        greedy = self.last.tokens[0] if self.last is not None else []
        head, n = "", 0  # the "Thought: " every response starts with
        while n < len(greedy) and head != THOUGHT:
            longer = head + self.tokenizer.decode([greedy[n]])
            if not THOUGHT.startswith(longer):
                break
            head, n = longer, n + 1
        if n >= len(greedy):
            return steer
        prefix, first = list(greedy[:n]), greedy[n]
        others = [t for t in range(self.model.cfg.vocab_size) if t != first]

        def branch(row: int, ids: list[int]):
            if row >= samples // 2 and ids == prefix:
                return [first], others
            return steer(row, ids) if steer is not None else None
        return branch

    def _step(self, text: str, observation: Observation, space: CoordinateSpace,
              task: str = "") -> tuple[Step, bool]:
        """Parse ``text`` and ground its click (policy.grounding); (step, whether it was moved)."""
        try:
            step = parse_response(text, space)
        except ActionParseError as e:  # propagates with the text: the loop records it and feeds it back
            e.raw = text
            raise
        if not step.raw:
            step.raw = text
        if self.ground and not self.no_elements:
            task = task or observation.instruction
            step, moved = ground_step(step, observation, space, task)
            step, slid = slide_to_value(step, observation, space)
            step, unticked = untick_unasked(step, observation, task, space) if self.verify else (step, False)
            step, said = typed_from_thought(step)
            step, retyped = typed_from_task(step, task)
            return step, moved or slid or unticked or said or retyped
        return step, False

    def _escape(self, observation: Observation, space: CoordinateSpace, repeated: str,
                task: str = "", samples: int = ESCAPE_SAMPLES,
                accept: Callable[[Step], bool] | None = None) -> tuple[Step, bool] | None:
        """Greedy decoding wrote an action that should not be taken again (``repeated``: the loop
        said it keeps failing), or a step the checks hold wrong (``repeated`` "", ``accept`` the
        checks). Draw a few samples (seeded by the prompt, so a run stays reproducible; half of them
        start the thought with another token than greedy decoding did, see ``_branch``) and return
        the most likely one that does something else than ``repeated`` and passes ``accept``, or
        None when none does."""
        prompt = self.last_prompt
        gen = torch.Generator().manual_seed(zlib.crc32(repr(prompt.tokens).encode()))
        t0 = time.perf_counter()
        g = generate(self.model, [prompt] * samples, self.max_new_tokens, ESCAPE_TEMPERATURE, 1.0,
                     gen, decode_threads=self.decode_threads, grammar=self.grammar,
                     steer=self._branch(self._steer(observation, task), samples))
        self.last_ms += (time.perf_counter() - t0) * 1000
        best = None
        for i in sorted(range(len(g.tokens)), key=lambda i: -sum(g.logprobs[i])):
            text = self.tokenizer.decode(g.tokens[i])
            try:
                found = self._step(text, observation, space, task)
            except ActionParseError:
                continue
            if found[0].actions and self._action_text(found[0], space) not in ("", repeated) \
                    and (accept is None or accept(found[0])):
                best = found
                self.last = Generation([g.tokens[i]], [g.logprobs[i]], [g.finished[i]], g.prompt_tokens[i:i + 1])
                self.last_text = text
                break
        return best

    def act(self, task: str, observation: Observation, history: Sequence[HistoryEntry]) -> Step:
        self.grounded = False
        task = task or observation.instruction
        text = self.respond(task, observation, history)
        space = observation.space
        if space is None or space.kind != "relative" or round(space.model_width) != SCALE:
            space = self.coordinate_space(observation.width, observation.height, observation.dpr)
        step, self.grounded = self._step(text, observation, space, task)
        if history and is_stuck(history[-1]) and self.temperature <= 0:
            repeated = compact_action(history[-1].response)
            if self._action_text(step, space) == repeated:
                step, self.grounded = self._escape(observation, space, repeated, task) or (step, self.grounded)
        said = [h.thought or h.response for h in history]

        def wrong(s: Step) -> bool:
            return bool(refusal(s, observation, task, said))
        # a greedy thought with a quote left open has lost its thread (``Click the tree" field to type
        # into it.``): resampled too, though a sample's own open quote is no reason to refuse it
        if self.verify and self.temperature <= 0 and not self.no_elements \
                and (wrong(step) or step.thought.count('"') % 2):
            # the same action with a thought that passes is taken too: often only the thought was
            # wrong (``Play X in the centre square: it blocks O's line`` where it makes two X)
            step, self.grounded = self._escape(
                observation, space, "", task, VERIFY_SAMPLES,
                accept=lambda s: not s.is_terminal and not wrong(s)) or (step, self.grounded)
        return step

    @staticmethod
    def _action_text(step: Step, space: CoordinateSpace) -> str:
        """The action as history writes it (the loop's format, or a galago-serve client's)."""
        try:
            return compact_action(format_step(step.thought, step.actions, space))
        except (ValueError, GalagoError):
            return ""
