"""Textual grounding: a click lands on the element its thought names.

A small model often writes the right target in its thought (``Click the "Upload image" link``) and
then points at a neighbour: it reads better than it points. SeeAct (Zheng et al., 2024) grounds by
the element's description rather than the model's coordinates; this does the same as a check on the
model's own point:

- the step's thought quotes one or more strings (``"…"`` or ``“…”``); in a thought of several
  clauses (``"A" is ticked; "B" is unchecked; tick it.``) those of the last clause that quotes any:
  the thought states what it sees first and what it acts on last;
- some elements of the current screen carry quoted strings in their text (after case and
  white-space folding: as whole words for controls whose box can show their text (a menu toggle's
  text holds its menu's, drawn outside it), as the whole text for static text, since a sentence
  such as the task's own instruction mentions everything); the named elements are the
  best of them: interactive before static, more of the quoted strings before fewer, an exact text
  before a longer one;
- the step's first pointer action (click, double, right click, hover, select) is not on one of them;
- when the named elements are static text or labels, the point is not on a control without text of
  its own: ``Click the "Year" field`` names the caption (or a ``<label>`` not tied to its input, as
  in MiniWoB++'s forward form), and the model's point on the input beside it is what the thought
  means;

then that point moves to the centre of the named element nearest to it. A ``select_option`` is
grounded the same way onto a dropdown (a combobox or listbox) its thought names, the option it is to
show left out of the names. Anything else is left as
the model wrote it: no quote, no pointer action, a point already on a named element, or a name no
element on screen carries (a target still to scroll to).

Among equally good elements the one with the least text besides the names wins: for ``Click
"Delete" in the row of "Flag"`` the "Delete Flag" button, not "Delete Flag badge". A thought that
places its control in a row (``click "star" in the row of "Ann"``, ``… next to "Ann"``) keeps, of
several alike controls, those level with an element carrying the row's name: the star of Ann's email,
not the nearest star. Likewise a feed post's button, of a post a thought gives the author of (``This
post is by @felis … its "Reply" button``): the button under that handle, not the nearest.

A drag whose thought sets a slider to a value (``drag its thumb to 21``) is aimed by the slider's
scale instead (``slide_to_value``).

With the task's instruction at hand, a quoted name that no element carries and that the instruction
does not quote either, but that is close to a name the instruction quotes (a slip in copying:
"Down rating" for "Download rating"), is read as that name. Typed text gets the same reading
(``typed_from_task``): words without digits that the instruction does not hold but that are close to
as many of its words ("Debe" for "Debee", "Pedro"." for "Pedro") are typed as the instruction
writes them; and before that, a typed text that is not the one its thought says to type (``type
"Pedro"``, a date converted to ``09/10/2001``) is typed as the thought says (``typed_from_thought``).
"""
from __future__ import annotations

import dataclasses
import difflib
import re
from typing import Sequence

from actions.schema import Point, Step
from perception.observation import Element, Observation
from perception.space import CoordinateSpace

NAMED_ROLES = ("icon", "swatch", "shape")  # what the element list names a picture by: not drawn text
POINTER_KINDS = ("click", "double_click", "right_click", "hover", "select")
SELECT_ROLES = ("combobox", "listbox")  # what a select_option may be moved onto
_EDITABLE = frozenset(("textbox", "searchbox", "combobox", "spinbutton"))  # what text can be typed into
REPAIR_RATIO = 0.75  # difflib similarity from which a name no element carries is read as the task's
_QUOTED = re.compile(r'"([^"\n]{1,100})"|\u201c([^\u201d\n]{1,100})\u201d')


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def quoted(thought: str) -> list[str]:
    """The quoted strings of a thought, folded, in order, without repeats or empties."""
    out: list[str] = []
    for m in _QUOTED.finditer(thought or ""):
        q = _fold(m.group(1) or m.group(2) or "")
        if q and q not in out:
            out.append(q)
    return out


def _as_word(text: str) -> re.Pattern:
    """``text`` as a whole word or run of words (not inside a longer word)."""
    return re.compile(r"(?<!\w)" + re.escape(text) + r"(?!\w)")


def target_clause(thought: str) -> str:
    """The thought's last clause (split at ``;``) that quotes anything ('' when none does)."""
    return next((c for c in reversed((thought or "").split(";")) if quoted(c)), "")


def target_names(thought: str) -> list[str]:
    """The quoted strings of the thought's target clause (``target_clause``)."""
    return quoted(target_clause(thought))


def _score(el: Element, names: list[str]) -> tuple[bool, int, bool, int] | None:
    """How well ``el`` carries the quoted names: (interactive, how many names its text contains as
    whole words, whether its text is exactly one, minus the characters of its text that are not a
    name); None when it carries none. Static text counts only when it is exactly a name."""
    text = _fold(el.text)
    if not text:
        return None
    if not el.interactive:  # static text only by its whole text: a sentence (the task's own
        return (False, 1, True, 0) if text in names else None  # instruction) mentions everything
    if len(text) > _holds(el) and el.role not in NAMED_ROLES:
        return None  # more text than its box can show: the rest is drawn outside it (a menu toggle)
    rest, found = text, 0
    for n in names:
        rest, k = _as_word(n).subn("", rest)
        found += k > 0
    return (True, found, text in names, -len(rest.replace(" ", ""))) if found else None


def _task_spans(task: str, n: int) -> list[str]:
    """The task's runs of ``n`` words, folded (``Select Marylinda>Nicol``: a menu path's steps are
    words too)."""
    words = [w for w in (_WORD_EDGE.sub("", w) for w in re.split(r"[\s>]+", _fold(task))) if w]
    return list(dict.fromkeys(" ".join(words[j:j + n]) for j in range(len(words) - n + 1)))


def _repair(names: list[str], task: str, observation: Observation) -> list[str]:
    """Names no element carries and the task does not quote, read as the task's closest quoted
    name when they are near it (a copying slip). A task that quotes nothing (``Select
    Marylinda>Nicol``) offers its runs of as many words instead, read only when one is nearest."""
    asked = quoted(task)
    out = []
    for n in names:
        if n not in asked and not named_elements(observation, [n]):
            n = _nearest(n, asked or _task_spans(task, len(n.split())), unique=not asked) or n
        if n not in out:
            out.append(n)
    return out


def _nearest(name: str, near: list[str], unique: bool) -> str | None:
    """The one of ``near`` most like ``name`` when it is like enough (REPAIR_RATIO) and, with
    ``unique``, likelier than the rest; else None."""
    scored = sorted(((difflib.SequenceMatcher(None, name, a).ratio(), a) for a in near), reverse=True)
    if scored and scored[0][0] >= REPAIR_RATIO and (not unique or len(scored) == 1 or scored[1][0] < scored[0][0]):
        return scored[0][1]
    return None


TYPED_RATIO = 0.8  # difflib similarity from which typed words are read as the instruction's
_WORD_EDGE = re.compile(r"^[^\w@#$&+-]+|[^\w]+$")  # quotes and punctuation around a word


_SAYS_TYPE = re.compile(r'\btype\s+"([^"]+)"', re.I)
_SAYS_KEYS = re.compile(r':\s*([^\s"]+)\.\s*$')  # a conversion's result, last: "… as month/day/year: 09/10/2001."


def typed_from_thought(step: Step) -> tuple[Step, bool]:
    """``step`` with the text of its one ``type`` action read as its thought says it (``type "Pedro"``,
    ``… as month/day/year: 09/10/2001.``) when the two differ, and whether it changed. The action is
    written after the thought and copies it: a small model that wrote ``type "Pedro"`` and then typed
    ``Paula`` (a neighbouring field's value), or converted a date to ``09/10/2001`` and typed
    ``03/10/2001``, slipped in the copy. A thought that says several texts or none is left alone."""
    typed = [i for i, a in enumerate(step.actions) if a.kind == "type"]
    said = _SAYS_TYPE.findall(step.thought or "")
    if not said:
        m = _SAYS_KEYS.search(step.thought or "")
        said = [m.group(1)] if m and any(c.isdigit() for c in m.group(1)) else []
    if len(typed) != 1 or len(set(said)) != 1 or step.actions[typed[0]].text == said[0]:
        return step, False
    actions = list(step.actions)
    actions[typed[0]] = actions[typed[0]].model_copy(update={"text": said[0]})
    return dataclasses.replace(step, actions=actions), True


def typed_from_task(step: Step, task: str) -> tuple[Step, bool]:
    """``step`` with the text of its ``type`` actions read as the instruction writes it when the
    model miscopied it (see the module docstring), and whether any changed. Text with a digit
    (dates, times, numbers the step converts), that the instruction holds, or that differs from its
    words only in letter case is left alone."""
    words = [w for w in (_WORD_EDGE.sub("", w) for w in task.split()) if w]
    actions, changed = list(step.actions), False
    for i, action in enumerate(actions):
        text = action.text.strip() if action.kind == "type" else ""
        n = len(text.split())
        if (not text or any(c.isdigit() for c in text) or not 0 < n <= len(words)
                or _as_word(text).search(task)):
            continue
        spans = {" ".join(words[j:j + n]) for j in range(len(words) - n + 1)}
        if text.casefold() in {sp.casefold() for sp in spans}:
            continue  # the task's words in other letter case: asked for ("in lower case"), not a slip
        scored = sorted(((difflib.SequenceMatcher(None, text.casefold(), sp.casefold()).ratio(), sp)
                         for sp in spans), reverse=True)
        if scored[0][0] >= TYPED_RATIO and (len(scored) == 1 or scored[1][0] < scored[0][0]):
            actions[i] = action.model_copy(update={"text": scored[0][1]})
            changed = True
    return (dataclasses.replace(step, actions=actions), True) if changed else (step, False)


def _holds(el: Element) -> float:
    """About how many characters ``el``'s box can show, with room to spare (small text is ~5 px a
    character and ~10 px a line; twice that)."""
    return 2 * max(1.0, el.box.width / 5) * max(1.0, el.box.height / 10)


def _on_screen(el: Element, observation: Observation) -> bool:
    """Whether ``el``'s centre is inside the observed area."""
    x, y = el.box.center
    return 0 <= x <= observation.width and 0 <= y <= observation.height


def named_elements(observation: Observation, names: list[str]) -> list[Element]:
    """The elements on screen (centre inside the observed area) that best carry ``names``: interactive
    before static, then the most names contained (a row's "Remove Ann" button for "Remove" and "Ann"),
    then an exact text before a longer one. When no text carries a name, the controls whose role
    is one (``Click a "checkbox"``)."""
    scored = [(score, el) for el in observation.elements if _on_screen(el, observation)
              and (score := _score(el, names)) is not None]
    if not scored:  # no text carries a name: a kind of control named (``a "radio" widget``), its controls
        return [el for el in observation.elements
                if el.interactive and el.role in names and _on_screen(el, observation)]
    best = max(score for score, _ in scored)
    return [el for score, el in scored if score == best]


_IN_ROW = re.compile(r'"([^"\n]{1,100})" (?:in the row of|in the same row as|next to) "([^"\n]{1,100})"', re.I)


def _carrying(observation: Observation, name: str) -> list[Element]:
    """The elements on screen that carry ``name`` (folded), as grounding reads them."""
    return [el for el in observation.elements if _on_screen(el, observation) and _score(el, [name]) is not None]


def _level_with(observation: Observation, el: Element, row: str) -> bool:
    """Whether ``el`` is level with an element on screen carrying ``row`` (folded; itself too): in its row."""
    return any(abs(el.box.center[1] - r.box.center[1]) <= max(el.box.height, r.box.height) / 2
               for r in _carrying(observation, row))


def _row_controls(observation: Observation, control: str, row: str) -> list[Element]:
    """The controls on screen carrying ``control`` (folded) level with an element carrying ``row``."""
    return [el for el in _carrying(observation, control) if el.interactive and _level_with(observation, el, row)]


def off_screen(step: Step, observation: Observation, task: str) -> bool:
    """Whether ``step`` points at something that is not there: its first pointer action is not on a
    control without text (an icon, an input under its caption) and no element on screen carries
    (as grounding reads them: a sentence that mentions a name does not carry it)

    - any name the thought quotes, when it quotes a name the task quotes: ``Click "massa"`` while
      "massa" is on another tab, or further down a list; the right step is to look for it;
    - a control ``"Details" in the row of "Ann"`` when only "Ann" is on screen;
    - else any name of the thought's target clause: a name the model made up or miscopied
      (``"Meter company" is checked but not asked for; untick it.`` with no such box; ``"ANicol"``
      for "Nicol").
    """
    names = quoted(step.thought)
    if not names or not observation.elements:
        return False
    if not set(names) & set(quoted(task)):
        names = _repair(target_names(step.thought), task, observation)
    row = _IN_ROW.search(step.thought)
    for action in step.actions:
        if action.kind not in POINTER_KINDS:
            continue
        here = observation.element_at(action.point.x, action.point.y)
        if here is not None and here.interactive and not here.text.strip():
            return False
        if row and not _row_controls(observation, _fold(row.group(1)), _fold(row.group(2))):
            return True  # the control is not on screen in that row (further right, further down)
        return bool(names) and not named_elements(observation, names) and not _in_label(observation, names)
    return False


def _in_label(observation: Observation, names: list[str]) -> bool:
    """Whether a static text on screen is one of ``names`` and one word more (a menu entry ``Block
    @leonie`` for "Block"; not a sentence that mentions it), or a name is a glyph (one character:
    the ``x`` a close button draws, named "Close" in the list)."""
    if any(len(n) == 1 for n in names):
        return True
    return any(not el.interactive and _on_screen(el, observation) and any(
        (t := _fold(el.text)).startswith(n + " ") and len(t.split()) == len(n.split()) + 1 for n in names)
        for el in observation.elements)


_AWAY = re.compile(r'"([^"\n]{1,100})"[^"\n;]{0,40}? is (?:further (?:down|up)|out of view|not in view|not visible|'
                   r'not (?:on|in) "|(?:below|above) the visible)', re.I)


def shows(observation: Observation, name: str) -> bool:
    """Whether an element on screen carries ``name`` as grounding reads it, not as an icon's name (a
    picture's name is read from its classes: a hint, not text). The element list holds only what
    can be hit, so a name shown cut by a list's edge counts too."""
    return any(el.role not in NAMED_ROLES for el in _carrying(observation, _fold(name)))


def _cut(el: Element, observation: Observation) -> bool:
    """Whether ``el`` is cut off by the screen's bottom edge (its box, clipped to the view, reaches
    it): a scroll down shows it. A row a list's own edge cuts is left shown: clicked where it shows,
    it is hit, and a list scrolled a notch at a time may never show it whole."""
    return el.box.y + el.box.height >= observation.height - 0.5


_ROW_OF = re.compile(r'"([^"\n]{1,100})" (?:in the row of|in the same row as|next to) $', re.I)


def said_away(step: Step, observation: Observation) -> bool:
    """Whether the thought says a name is not on screen (``The email from "Storm" is further down
    the inbox``, ``"Submit" is not in view yet``, ``"massa" is not on "Tab #1"``) while an element on
    screen carries it whole (not an icon's name; not cut off by an edge, which a scroll reveals): the
    step would take away what it looks for, which is right there. A control in a row (``"Delete"
    in the row of "Gateway" is out of view``) is judged by the control in that row."""
    thought = step.thought or ""
    for m in _AWAY.finditer(thought):
        row = _ROW_OF.search(thought[:m.start(1) - 1])
        if row:
            if any(not _cut(el, observation)
                   for el in _row_controls(observation, _fold(row.group(1)), _fold(m.group(1)))):
                return True
            continue
        carriers = [el for el in _carrying(observation, _fold(m.group(1))) if el.role not in NAMED_ROLES]
        if any(not _cut(el, observation) for el in [el for el in carriers if el.interactive] or carriers):
            return True  # (a field cut off is out of view though its label above it is whole)
    return False


_CLAIM = re.compile(r'((?:"[^"\n]{1,100}"(?:, | and ))*"[^"\n]{1,100}") (?:is|are)$')


TICK_ROLES = ("checkbox", "switch", "menuitemcheckbox")
_TOGGLE = re.compile(r"\b(un)?(?:tick|check) it\W*$", re.I)
_TOGGLE_FIRST = re.compile(r'^\s*(un)?(?:tick|check) "', re.I)  # ``Check "A": the task lists it.``
_COUNT = re.compile(r"\((\d+) of (\d+)\)")
_TOWARDS = re.compile(r'\bselection towards "([^"\n]{1,100})"', re.I)  # ``Press Down to move the selection …``
_HUES = frozenset(("red", "orange", "yellow", "green", "cyan", "blue", "purple", "magenta"))
_ALL_DONE = re.compile(r"\beverything asked for is done\b", re.I)
_SHADES_OF = re.compile(r"\bshades of (\w+)", re.I)
_DESELECT = re.compile(r"\b(deselect|unselect|untick|uncheck)\b", re.I)
_OPENS = re.compile(r"\b(open|expand)\b", re.I)
_POST_BY = re.compile(r"\bpost is by (@[\w.-]+)", re.I)
_NONE_LEFT = re.compile(r"\bno post by (@[\w.-]+) in view is left unmarked", re.I)
_FIND = re.compile(r'\bto find "([^"\n]{1,100})"', re.I)
_ADDRESSED = re.compile(r"\bis addressed to ([^\s;,\"]{1,100})", re.I)  # ``The forward is addressed to Sidoney; …``
_FEED_END = re.compile(r"\bthe feed is read to its end\b", re.I)  # ``"Submit" is in view: the feed is read …``
_ALL_BY = re.compile(r"\ball posts by (@[\w.-]+)", re.I)
_NOT_YET = re.compile(r"\bnot (?:selected|marked|checked|ticked) yet\b", re.I)  # ``… button is not marked yet``
_CUT_OFF = re.compile(r'\bpost by "?(@[\w.-]+)"? is in view but its buttons are cut off', re.I)


def _whole(el: Element, observation: Observation) -> bool:
    """Whether ``el`` is on screen and not cut by the bottom edge or a scroll box's (a feed's icon is
    square: one shorter than it is wide is cut), which a scroll down reveals."""
    return (_on_screen(el, observation) and el.box.y + el.box.height < observation.height - 0.5
            and not (el.role == "icon" and el.box.height < 0.9 * el.box.width))


def _author_above(observation: Observation, y: float) -> str | None:
    """The handle (``@name``) nearest above ``y`` on screen, folded: the header of the feed post a
    point is in. None when none is (the post's header is scrolled out of sight)."""
    above = [el for el in observation.elements if el.text.startswith("@") and len(el.text.split()) == 1
             and _on_screen(el, observation) and el.box.center[1] < y]
    return _fold(max(above, key=lambda el: el.box.center[1]).text) if above else None


def _left_undone(el: Element, observation: Observation, task: str) -> bool:
    """Whether ``el`` is on screen and still to do for ``task``: a box it names (unquoted too)
    shown unticked, or a list box's option it names shown unselected, or a swatch of a hue it
    names (``the shades of blue``: "light blue") not selected, or a list whose selection (its
    value) the task does not name (``Select Ruthann from the scroll list`` while "Laurice" is
    selected: the selection stopped short of it)."""
    if el.role == "listbox" and el.value.strip() and _on_screen(el, observation):
        # a list's selection (its options joined by ", ") holding one the task does not name
        return any(_as_word(_fold(v)).search(_fold(task)) is None for v in el.value.split(", ") if v.strip())
    if not _on_screen(el, observation) or not el.text.strip():
        return False
    if el.role in ("checkbox", "option") and el.checked is False:  # (a list box's option the task names, unselected)
        return _as_word(_fold(el.text)).search(_fold(task)) is not None
    return el.role == "swatch" and not el.checked and bool(set(_fold(el.text).split()) & _HUES & set(
        re.findall(r"\w+", _fold(task))))


_NONE_IS = re.compile(r"\bno mark is an? ([\w ]{1,60}?): (\d+)", re.I)  # ``No mark is a yellow letter: 0``
_GIVES = re.compile(r"\bcounting the ([\w ]{1,60}?)s in the picture gives (\d+)", re.I)
_TAKEN = re.compile(r"\bplay \w in the [\w-]+ square", re.I)  # ``Play X in the top-left square: …``
_LINE_CLAIM = re.compile(r"\bit (?:blocks (\w)'s line|completes a line of three (\w)\b)", re.I)


def _false_line(thought: str, point: tuple[float, float], observation: Observation) -> bool:
    """Whether a board move's thought says it blocks a player's line (``it blocks O's line``) or
    completes one (``it completes a line of three X``) while no two of that player's marks on the
    board (``icon "mark o"``) are in a line with the square it plays: the three are consecutive
    squares of a row, a column or a diagonal (one the midpoint of the others, a square's pitch
    apart). Not judged without marks on screen."""
    m = _LINE_CLAIM.search(thought)
    marks = [el for el in observation.elements if el.role == "icon" and _fold(el.text).startswith("mark ")]
    if not m or not marks:
        return False
    letter = _fold(m.group(1) or m.group(2))
    own = [el.box.center for el in marks if _fold(el.text) == f"mark {letter}"]
    w = sorted(el.box.width for el in marks)[len(marks) // 2]

    def step_ok(d: float) -> bool:
        return abs(d) < 0.3 * w or 0.9 * w < abs(d) < 1.4 * w

    def in_line(a, b, c) -> bool:  # b the midpoint of a and c, a square's step apart
        dx, dy = (c[0] - a[0]) / 2, (c[1] - a[1]) / 2
        return (abs(b[0] - a[0] - dx) < 0.5 * w and abs(b[1] - a[1] - dy) < 0.5 * w and step_ok(dx) and step_ok(dy)
                and max(abs(dx), abs(dy)) > 0.9 * w)
    return not any(in_line(*trio) for i, a in enumerate(own) for b in own[i + 1:]
                   for trio in ((point, a, b), (a, point, b), (a, b, point)))


def _fits(words: list[str], name: str) -> bool:
    """Whether a drawing's mark named ``name`` (``large blue letter d``) is one a count's words
    describe (``blue d``, ``large item``, ``small shapes``: a shape is a mark not a letter or digit)."""
    have = name.split()
    for w in words:
        if w in ("shape", "shapes"):
            if "letter" in have or "digit" in have:
                return False
        elif not {w, w[:-1] if w.endswith("s") else w} & (set(have) | _GENERIC):
            return False
    return True


def _miscounted(thought: str, observation: Observation, task: str = "") -> bool:
    """Whether the thought counts a drawing's marks of a description (``The yellow letters are …: 2``,
    ``No mark is a small triangle: 0``, ``Counting the blue items … gives 3``) to another number than
    the element list's marks on screen that fit it, or of a description with a word the task does
    not have (``No mark is a small t: 0`` for "How many small triangles are there?": a word cut
    short counts nothing). Not judged when no mark is listed."""
    marks = [_fold(el.text) for el in observation.elements if el.role == "shape" and _on_screen(el, observation)]
    if not marks:
        return False
    claims = [(m.group(1), m.group(3)) for m in _LISTED.finditer(thought) if m.group(1)]
    claims += _NONE_IS.findall(thought) + _GIVES.findall(thought)
    told = set(re.findall(r"\w+", _fold(task)))
    if told and any(not {w, w + "s", w + "es"} & told for desc, _ in claims for w in _fold(desc).split()):
        return True
    sized = any(w in _SIZES for name in marks for w in name.split())  # (a drawing may name no mark's size)
    return any(sum(_fits([w for w in _fold(desc).split() if sized or w not in _SIZES], name) for name in marks)
               != int(n) for desc, n in claims)


_FOCUS_TOWARDS = re.compile(r'\b(?:list focus|press) (down|up) (?:to move the selection )?towards "([^"\n]{1,100})"',
                            re.I)  # ``Move the list focus down towards "China" …``, ``Press Down to move …``
_FOCUS_ON = re.compile(r'\bthe focus is on "([^"\n]{1,100})"', re.I)


def _off_focus(thought: str, observation: Observation) -> bool:
    """Whether a thought about a list box's keyboard focus contradicts the option the element list
    marks focused (the driver follows it): it is on another option than ``The focus is on "China"``
    says, or ``Move the list focus down towards "China"`` while China is the focused one or shown
    above it. Not judged when no option on screen is marked focused."""
    focus = next((el for el in observation.elements if el.role == "option" and el.focused
                  and _on_screen(el, observation)), None)
    if focus is None:
        return False
    m = _FOCUS_ON.search(thought)
    if m and _fold(m.group(1)) != _fold(focus.text):
        return True
    m = _FOCUS_TOWARDS.search(thought)
    if not m:
        return False
    if _fold(m.group(2)) == _fold(focus.text):
        return True  # already there: Ctrl+Space, not one more step
    there = [el for el in observation.elements if el.role == "option" and _fold(el.text) == _fold(m.group(2))
             and _on_screen(el, observation)]
    below = m.group(1).lower() == "down"
    return any((el.box.center[1] < focus.box.center[1]) == below for el in there)


def against_state(step: Step, observation: Observation, task: str = "") -> bool:
    """Whether a click's thought contradicts what the screen or the task says of the box it acts on
    (its target clause's names): it ticks a box the element list shows ticked already (``tick it``,
    ``Check "A": …``), marks one more of several items (``click its "Like" button (2 of 3)``) on
    one shown marked already, unticks one
    shown unticked (the click would undo what is right), ticks one the task's quotes do not name
    where they name the boxes to tick (``_ticks_unasked``), calls a box the task quotes, or no box
    on screen, "not asked for", or says "no other box is checked" while a box the task does not
    quote is, or that everything asked for is done while a box the task names is unticked; or
    opens a tab shown open; or says a feed post is by a user when the handle heading it is
    another's, or that none in view by a user is left unmarked while one has the task's button
    unmarked (or that the feed is read to its end while one by the user the task names has), or
    that a user's post in view has its buttons cut off while one shows whole, or that a button is
    not marked yet where the click lands on one shown marked, or that the last click did not
    register while what it opened a menu to find is on screen; or says a message is addressed to a
    name no field on screen holds; or moves
    a list's selection on towards a row shown selected already (a key press too), or a list box's
    keyboard focus the wrong way or past where it is (``_off_focus``); or counts a
    drawing's marks to another number than the element list shows (``_miscounted``); or plays on a
    board's square marked already, or says a move blocks or completes a line it is not in
    (``_false_line``). A small model that has lost
    count among the boxes or rows writes such steps."""
    thought = step.thought or ""
    asked = quoted(task)
    if _miscounted(thought, observation, task):
        return True
    m = _FIND.search(thought)
    if m and _MISSED.search(thought) and shows(observation, m.group(1)):
        return True  # ``The last click did not register; … open its "more" menu to find "Mute"`` with
        # "Mute" on screen: it did (a second click would close the menu)
    m = _ADDRESSED.search(thought)
    if m and observation.elements and not any(
            el.role in _EDITABLE and _fold(el.value) == _fold(m.group(1)) for el in observation.elements):
        return True  # ``The forward is addressed to St`` while no field holds "St": it was not typed
    m = _NONE_LEFT.search(thought) or (_FEED_END.search(thought) and _ALL_BY.search(task))
    if m and any(el.role == "icon" and not el.checked and _fold(el.text) in asked and _whole(el, observation)
                 and _author_above(observation, el.box.center[1]) == _fold(m.group(1)) for el in observation.elements):
        return True  # a post of that user in view still has the task's button unmarked (whole: one cut
        # by the bottom edge is scrolled to first)
    m = _CUT_OFF.search(thought)
    if m and any(el.role == "icon" and _whole(el, observation)
                 and _author_above(observation, el.box.center[1]) == _fold(m.group(1)) for el in observation.elements):
        return True  # a button of that user's post is whole on screen (the bottom edge cuts the others)
    m = _TOWARDS.search(thought)
    if m and any(el.checked for el in named_elements(observation, [_fold(m.group(1))])):
        return True  # moving the selection on from the row it is to reach, shown selected already
    if _off_focus(thought, observation):
        return True
    if not any(a.kind in POINTER_KINDS for a in step.actions):
        return False
    click = next(a for a in step.actions if a.kind in POINTER_KINDS)
    here = observation.element_at(click.point.x, click.point.y)
    if _TAKEN.search(thought) and here is not None and _fold(here.text).startswith("mark "):
        return True  # a board's square marked already (``icon "mark o"``)
    if _NOT_YET.search(thought) and here is not None and here.checked:
        return True  # ``its "Share" button is not marked yet`` on one shown marked: the click unmarks it
    if _false_line(thought, (click.point.x, click.point.y), observation):
        return True  # ``it blocks O's line`` on a square no two O marks are in a line with
    m = _POST_BY.search(thought)
    if m and _author_above(observation, click.point.y) not in (None, _fold(m.group(1))):
        return True  # the post the click lands in is another user's
    if _ALL_DONE.search(thought) and any(_left_undone(el, observation, task) for el in observation.elements):
        return True  # a box the task names (``Select abw, Ho and click Submit``) is shown unticked
    if asked and "no other box is checked" in thought and any(
            el.interactive and el.role in TICK_ROLES and el.checked and _fold(el.text) not in asked
            for el in observation.elements):
        return True  # a box the task does not quote is checked on screen
    names = _repair(target_names(thought), task, observation) if task else target_names(thought)
    if not names:
        return False
    hue = _SHADES_OF.search(task)
    if hue and _fold(hue.group(1)) in _HUES and not _DESELECT.search(thought) and any(
            el.role == "swatch" and set(_fold(el.text).split()) & _HUES and _fold(hue.group(1)) not in _fold(el.text).split()
            for el in named_elements(observation, names)):
        return True  # selects a square of another hue than the task's (``Select the "light green" square`` for red)
    # a box whose label is drawn beside it (more text than its box holds) is named by its text too
    boxes = [el for el in named_elements(observation, names) if el.checked is not None] or [
        el for el in observation.elements if el.checked is not None and _fold(el.text) in names
        and _on_screen(el, observation)]
    if _OPENS.search(target_clause(thought)) and any(el.role == "tab" and el.checked for el in boxes):
        return True  # a tab (an accordion section) open already: the click does nothing or closes it
    if "not asked for" in thought and (not boxes or any(_fold(el.text) in asked for el in boxes)):
        return True  # also for a part of the name ("Answer" for the box "Answer note"), a slip, none
    m = _TOGGLE.search(thought) or _TOGGLE_FIRST.match(thought)
    if m and m.group(1) is None and boxes and _ticks_unasked(names, boxes, observation, asked):
        return True  # ``"Previous system" is unchecked; tick it`` where the task quotes the boxes to tick
    if m:
        return {bool(el.checked) for el in boxes} == {m.group(1) is None}
    if _COUNT.search(thought):  # marking items one by one (``click its "Like" button (2 of 3)``)
        return bool(here is not None and here.checked)  # one already marked: the click would unmark it
    return False


def _ticks_unasked(names: list[str], boxes: list[Element], observation: Observation, asked: list[str]) -> bool:
    """Whether a click that ticks ``boxes`` (its thought's ``names``) ticks none the task asks for,
    where the task quotes the boxes it asks for: ``asked`` names a box on screen. A label and a
    quoted name that contain one another count as one (``"Email"`` for the box "Email alerts")."""
    def asks(text: str) -> bool:
        t = _fold(text)
        return bool(t) and any(q == t or q in t or t in q for q in asked)
    if not asked or not any(el.checked is not None and asks(el.text) for el in observation.elements):
        return False
    return not any(asks(n) for n in names) and not any(asks(el.text) for el in boxes)


_AFFIX = re.compile(r'"([^"\n]{1,100})",? (?:which )?(starts|begins|ends) with "([^"\n]{1,100})"'
                    r'(?: and (starts|begins|ends) with "([^"\n]{1,100})")?', re.I)
_AFFIX_FIRST = re.compile(r'(starts|begins|ends) with "([^"\n]{1,100})" is "([^"\n]{1,100})"', re.I)


_AFFIX_OPEN = re.compile(r'(starts|begins|ends) with "([^"\n]{1,100})"(?: and (starts|begins|ends) with '
                         r'"([^"\n]{1,100})")? is "$', re.I)  # ``The suggestion that ends with "had" is "``
_SHADE_OPEN = re.compile(r'\bshade of (\w+) not selected yet is the "$', re.I)  # ``A shade of red not selected …``


def quote_choices(text: str, observation: Observation) -> list[str]:
    """Where ``text`` (a response being written) has just opened the quote of a name it says
    starts or ends with a text (``The suggestion that ends with "had" is "``): the labels on screen
    that do, folded; or of a square it says is a shade of a hue not selected yet (``A shade of red
    not selected yet is the "``): the unselected swatches on screen whose name has no other hue.
    [] elsewhere, or when none is."""
    m = _SHADE_OPEN.search(text)
    if m:
        hue = _fold(m.group(1))
        return list(dict.fromkeys(
            name for el in observation.elements
            if el.role == "swatch" and not el.checked and _on_screen(el, observation)
            and (name := _fold(el.text)) and set(name.split()) & _HUES <= {hue}))
    m = _AFFIX_OPEN.search(text)
    if not m:
        return []
    tests = [(m.group(1), _fold(m.group(2)))] + ([(m.group(3), _fold(m.group(4)))] if m.group(3) else [])
    return list(dict.fromkeys(
        name for el in observation.elements if (name := _fold(el.text)) and _on_screen(el, observation)
        and all(name.endswith(a) if verb.lower() == "ends" else name.startswith(a) for verb, a in tests)))


MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
_MONTH = r"(" + "|".join(MONTHS) + r")"
_DATE_HEAD = re.compile(r"\b(\d{1,2})/\d{1,2}/\d{4} is$")
_DATE_IS = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4}) is " + _MONTH + r" (\d{1,2}), (\d{4})", re.I)
_SHOWS = re.compile(_MONTH + r" (\d{1,2}), (\d{4})\b.*?\bshows " + _MONTH + r" (\d{4}): (go back|go forward|click)",
                    re.I | re.S)


def said_month(text: str) -> int | None:
    """The month (1-12) of the ``MM/DD/YYYY`` date that ``text`` ends in writing out (``… 09/20/2016
    is``): the next word is that month's name. None otherwise."""
    m = _DATE_HEAD.search(text)
    return int(m.group(1)) if m and 1 <= int(m.group(1)) <= 12 else None


def _calendar_step(want: tuple[str, str], shown: tuple[str, str]) -> str:
    """The step from the calendar month ``shown`` towards the month ``want`` (each (month name,
    year)): ``go back``, ``go forward`` or ``click`` (the day)."""
    w, s = (int(y) * 12 + MONTHS.index(m.lower()) for m, y in (want, shown))
    return "go back" if w < s else "go forward" if w > s else "click"


def _false_date(thought: str) -> bool:
    """A date written two ways that are not the same date (``09/20/2016 is December 20, 2016``), or a
    calendar step that does not follow from the month wanted and the month shown (``May 29, 2016;
    the calendar shows June 2016: click day "29"``)."""
    for m in _DATE_IS.finditer(thought):
        if (int(m.group(1)), int(m.group(2)), m.group(3)) != (MONTHS.index(m.group(4).lower()) + 1,
                                                               int(m.group(5)), m.group(6)):
            return True
    return any(m.group(6).lower() != _calendar_step((m.group(1), m.group(3)), (m.group(4), m.group(5)))
               for m in _SHOWS.finditer(thought))


_SHADE = re.compile(r'"([^"\n]{1,100})"[^"\n]*?\bshade of (\w+)', re.I)  # ``the "light blue" square …: a shade of blue``
_SHADE_FIRST = re.compile(r'\bshade of (\w+)[^"\n]*?"([^"\n]{1,100})"', re.I)  # ``A shade of blue … is the "light blue" …``
_GENERIC = frozenset(("item", "thing", "one", "mark", "shape"))  # a word any mark answers to
_SIZES = frozenset(("small", "large"))
_LISTED = re.compile(r'\b(?:the ([\w ]{1,60}?)s )?are ((?:"[^"\n]{1,100}"(?:, | and ))*"[^"\n]{1,100}"): (\d+)\b', re.I)
_COUNT_CLICK = re.compile(r': (\d+); click "(\d+)"')  # ``…: 2; click "2".``
_RESULTS = re.compile(r'\bresults (\d+) to (\d+): ((?:"[^"\n]{1,100}"(?:, | and ))*"[^"\n]{1,100}"); '
                      r'result (\d+) is "([^"\n]{1,100})"', re.I)  # ``results 7 to 9: "A" and "B"; result 8 is "B"``
_NUMBER_WORDS = {w: i + 1 for i, w in enumerate(("one", "two", "three", "four", "five", "six", "seven", "eight",
                                                  "nine", "ten"))}
_ON_PAGE = re.compile(r"\bresult (\d+) is on page (\d+) \((\w+) results a page\)", re.I)


def _false_description(thought: str) -> bool:
    """A colour named as a shade of another hue (``the "dark green" square: it is a shade of blue``;
    a name without a hue word, ``brown``, is not judged), an item counted past the end (``(3 of
    2)``), a list of names counted to another number than it holds (``are "a" and "b": 3``) or
    holding a name that is not a name of what is counted (each word of it but a generic one is a
    word of each name), or a count clicked as another, or a result picked by its place that is not
    at that place in the results listed (``results 7 to 9: "A", "B" and "C"; result 8 is "C"``), or
    put on another page than its place gives."""
    for name, hue in _SHADE.findall(thought) + [(n, h) for h, n in _SHADE_FIRST.findall(thought)]:
        words, hue = set(_fold(name).split()), _fold(hue)
        if hue in _HUES and words & _HUES and hue not in words:
            return True  # a "dark green" square called a shade of blue
    if any(not 0 < int(k) <= int(n) for k, n in _COUNT.findall(thought)):
        return True  # ``(3 of 2)``: counted past the end
    if any(a != b for a, b in _COUNT_CLICK.findall(thought)):
        return True  # counted one number, clicks another
    for m in _RESULTS.finditer(thought):  # the r-th of results a..b is the (r-a+1)-th name listed
        a, b, r = int(m.group(1)), int(m.group(2)), int(m.group(4))
        names = [_fold(x or y) for x, y in _QUOTED.findall(m.group(3))]
        if len(names) != b - a + 1 or not a <= r <= b or names[r - a] != _fold(m.group(5)):
            return True
    for r, page, per in _ON_PAGE.findall(thought):
        n = int(per) if per.isdigit() else _NUMBER_WORDS.get(per.lower(), 0)
        if n and (int(r) - 1) // n + 1 != int(page):
            return True  # ``result 8 is on page 2 (three results a page)``
    for m in _LISTED.finditer(thought):
        names = [_fold(a or b) for a, b in _QUOTED.findall(m.group(2))]
        if len(names) != int(m.group(3)):
            return True
        sized = any(set(n.split()) & _SIZES for n in names)  # (a drawing may name no mark's size)
        wanted = [w for w in _fold(m.group(1) or "").split() if w not in _GENERIC and (sized or w not in _SIZES)]
        if any(w not in n.split() for n in names for w in wanted):
            return True  # a listed name is not what is counted (``The yellow letters are "red letter k"``)
    return False


def false_claim(step: Step) -> bool:
    """Whether the thought contradicts itself on a fact it can be checked on: it says of a quoted
    text that it starts or ends with another when it does not (``"Honduras" starts with "Ho" and
    ends with "Kong"``, ``the suggestion that ends with "Kong" is "Honduras"``: a small model copies
    the first suggestion of a list and states the task's test as passed), or writes a date two ways
    that differ, or takes a calendar step the months it names do not call for (``_false_date``), or
    counts what it quotes wrongly (``_false_description``)."""
    thought = step.thought or ""
    if _false_date(thought) or _false_description(thought):
        return True
    claims = [(m.group(1), m.group(2), m.group(3)) for m in _AFFIX.finditer(thought)]
    claims += [(m.group(1), m.group(4), m.group(5)) for m in _AFFIX.finditer(thought) if m.group(4)]
    claims += [(m.group(3), m.group(1), m.group(2)) for m in _AFFIX_FIRST.finditer(thought)]
    for subject, verb, affix in claims:
        subject, part = _fold(subject), _fold(affix)
        if not (subject.endswith(part) if verb.lower() == "ends" else subject.startswith(part)):
            return True
    return False


_UNASKED = re.compile(r'"([^"\n]{1,100})" is checked but not asked for; untick it\W*$', re.I)


_MARK_OF = re.compile(r'\bclick its "[^"\n]{1,100}" button \((\d+) of (\d+)\)', re.I)  # ``… button (2 of 3).``
_NEXT_ONE = re.compile(r"\bthe next post by @[\w.-]+ is (?:out of view|cut off)", re.I)
_TO_SUBMIT = re.compile(r'"Submit" button is (?:out of view|cut off)|" is clicked on \d+ posts? by', re.I)
_MISSED = re.compile(r"^\s*the last click did not register\b", re.I)


def lost_count(step: Step, said: Sequence[str]) -> bool:
    """Whether the thought's count of items marked one by one (``click its "Like" button (2 of 3)``)
    does not go on from where the past thoughts' count (``said``, oldest first) stopped: the next
    number, or the same after ``The last click did not register``; or it heads for the next item
    (``The next post by @x is out of view``) when the count is complete, or for "Submit" when it is
    not. The marks scroll out of view, so the count the thoughts kept is the one thing that
    remembers them; a small model loses it (``(2 of 3)`` after ``(3 of 3)``)."""
    last = None
    for text in said:
        m = _MARK_OF.search(text or "")
        if m:
            last = (int(m.group(1)), int(m.group(2)))
    thought = step.thought or ""
    m = _MARK_OF.search(thought)
    if m:
        want = 1 if last is None else last[0] if _MISSED.search(thought) else last[0] + 1
        return int(m.group(1)) != want or (last is not None and int(m.group(2)) != last[1])
    if last is None:
        return False
    done = last[0] >= last[1]
    return bool(_NEXT_ONE.search(thought)) if done else bool(_TO_SUBMIT.search(thought))


_FORM_DONE = re.compile(r"\bcompleted form\b|\bfilled in\b", re.I)  # ``… to submit the completed form``
_PAIRS = re.compile(r'([^\W\d_][\w ]{0,40}?):? "([^"\n]{1,100})"')  # ``Title "Room gallery"``


def form_unfinished(step: Step, observation: Observation, task: str) -> bool:
    """Whether a step says the form is filled in (``Click the "Save" button to submit the completed
    form``) while a field on screen whose label the task gives a value (``Country "Fund"``) holds
    another (the model skipped a field: a list still showing its first option). A field is the
    task's label's when its text starts with the label's last words, the most of them ("Full
    name" for ``and Full name "Lina"``, not "Name")."""
    if not _FORM_DONE.search(step.thought or "") or not task:
        return False
    fields = [el for el in observation.elements
              if el.role in _EDITABLE and _on_screen(el, observation) and "\u2022" not in el.value]  # (a password)

    def fit(label: str, el: Element) -> int:  # how many of the field's first words end the label
        words = _fold(el.text).split()
        return max((k for k in range(1, len(words) + 1)
                    if label == (head := " ".join(words[:k])) or label.endswith(" " + head)), default=0)
    for label, value in _PAIRS.findall(task):
        scored = [(fit(_fold(label), el), el) for el in fields]
        best = max(scored, key=lambda t: t[0], default=(0, None))
        if best[0] and _fold(best[1].value) != _fold(value):
            return True
    return False


_LOOKING = re.compile(r'\bto (?:find|reveal|look for|reach)(?: the)? "[^"\n]*"', re.I)  # ``… menu to find "X"``


def finished_early(step: Step, observation: Observation, task: str, said: Sequence[str]) -> bool:
    """Whether a step says the task is finished while a name the task quotes, or a control on screen
    that it names (``… then click Submit``), goes unnamed in every past thought: it was never
    acted on (``"Monitor lead" is unchecked; tick it``, then finished without the Submit the task
    ends with; ``Click the "Bill path" menu to find "Shuffle harbor"``, then finished)."""
    if not any(a.kind == "finished" for a in step.actions) or not task:
        return False
    told, past = _fold(task), _fold(_LOOKING.sub("", " ".join(said)))  # (what a step looked for is not acted on)
    if any(name not in past for name in quoted(task)):
        return True  # a name the task quotes no past step named (one in a menu scrolled out of view too)
    return any(el.interactive and el.role in ("button", "link", "menuitem") and (name := _fold(el.text))
               and _on_screen(el, observation) and _as_word(name).search(told) and name not in past
               for el in observation.elements)


def refusal(step: Step, observation: Observation, task: str, said: Sequence[str] = ()) -> str:
    """The name of the first check that refuses ``step`` on ``observation`` for ``task`` (``said``:
    the past steps' thoughts, oldest first), '' when none does. The policy resamples a step one
    refuses; the teachers' own steps pass them all (tests/test_miniwob.py)."""
    checks = (("off_screen", lambda: off_screen(step, observation, task)),
              ("said_away", lambda: said_away(step, observation)),
              ("not_asked", lambda: not_asked(step, task)),
              ("against_state", lambda: against_state(step, observation, task)),
              ("false_claim", lambda: false_claim(step)),
              ("false_type", lambda: false_type(step, task)),
              ("types_blind", lambda: types_blind(step, observation)),
              ("lost_count", lambda: lost_count(step, said)),
              ("finished_early", lambda: finished_early(step, observation, task, said)),
              ("form_unfinished", lambda: form_unfinished(step, observation, task)))
    return next((name for name, refuses in checks if refuses()), "")


def untick_unasked(step: Step, observation: Observation, task: str,
                   space: CoordinateSpace | None = None) -> tuple[Step, bool]:
    """``step`` aimed at a box on screen that is checked and not asked for (the nearest to its point),
    when its thought unticks a box "not asked for" that is asked for or not there (``"Planet village"
    is checked but not asked for; untick it.`` while "Refund" is checked and the task does not name
    it), and whether it changed. The model saw that a box is to be unticked and slipped in naming
    it; every such box is to be unticked. The thought is rewritten with the box's name, so the
    history says what was done."""
    m = _UNASKED.search(step.thought or "")
    asked = quoted(task)
    clicks = [i for i, a in enumerate(step.actions) if a.kind == "click"]
    if not m or not asked or not clicks:
        return step, False
    named = [el for el in named_elements(observation, [_fold(m.group(1))]) if el.checked is not None]
    if named and not any(_fold(el.text) in asked for el in named):
        return step, False  # it names a box that is indeed not asked for
    extra = [el for el in observation.elements if el.interactive and el.role in TICK_ROLES and el.checked
             and _fold(el.text) and _fold(el.text) not in asked]
    if not extra:
        return step, False
    p = step.actions[clicks[0]].point  # any of them is to be unticked: the one nearest the model's point
    box = min(extra, key=lambda el: (el.box.center[0] - p.x) ** 2 + (el.box.center[1] - p.y) ** 2)
    thought = step.thought[:m.start(1)] + box.text + step.thought[m.end(1):]
    actions = list(step.actions)
    actions[clicks[0]] = actions[clicks[0]].model_copy(update={"point": _on_grid(*box.box.center, space)})
    return dataclasses.replace(step, thought=thought, actions=actions), True


_ASKED = re.compile(r'"([^"\n]{1,100})"[^"\n;]{0,30}? (?:is )?the (?:item|one|button|tab|option|kind) asked for\b'
                    r'|\bCheck "([^"\n]{1,100})": the instruction lists\b', re.I)
_UNCHECK_LISTED = re.compile(r'\bUncheck "([^"\n]{1,100})": the instruction lists\b', re.I)
_ITEM_ASKED = re.compile(r'"([^"\n]{1,100})" is the item asked for', re.I)
_HOVER_OPEN = re.compile(r'\bHover "([^"\n]{1,100})" to open its submenu\b', re.I)


_PATH = re.compile(r'("[^"\n]{1,100}"|[^\W\d_][\w-]*)(?:\s*>\s*("[^"\n]{1,100}"|[^\W\d_][\w-]*))+')


def menu_path(task: str) -> list[str]:
    """The items of a menu path the task gives (``Select Nicoline>Lilian>Angeline``, ``Please select
    "File" > "Export"``), folded, in order; [] when it gives none."""
    m = _PATH.search(task or "")
    return [_fold(p.strip('"')) for p in re.split(r"\s*>\s*", m.group(0))] if m else []


def not_asked(step: Step, task: str) -> bool:
    """Whether the thought calls a name the one asked for (``"Grete" is the item asked for``, ``Check
    "Nc": the instruction lists exactly these``) that the task does not hold as words: a small model
    that miscopied the task's name (``Select Jordanna>Lonee``) then settles on a name it sees.
    (Not ``on the way to "Kicol"``: a miscopy there is harmless while the step hovers the right
    item, and resampling it lost more menus than it saved.) A slip grounding reads as the task's
    name (``"Kicol"`` for "Nicol") is not one either. Likewise ``Uncheck "ey": the
    instruction lists exactly these`` while it lists "ey", and ``Hover "Lonee" to open its
    submenu`` when "Lonee" ends the task's path (it is the item to click), or ``"Jordanna" is the
    item asked for`` when it does not."""
    if not task:
        return False
    told, thought = _fold(task), step.thought or ""
    path = menu_path(task)
    hover = _HOVER_OPEN.search(thought)
    if path and hover and _fold(hover.group(1)) == path[-1]:
        return True  # the path's last item is clicked, not opened on the way to one more
    item = _ITEM_ASKED.search(thought)
    if item and _fold(item.group(1)) in path[:-1]:
        return True  # ``"Lilian" is the item asked for`` on the way along ``Nicoline>Lilian>Angeline``
    return any(not _as_word(name).search(told) and not _slip_of_task(name, task)
               for name in (_fold(next(g for g in m.groups() if g)) for m in _ASKED.finditer(thought))) \
        or any(_as_word(_fold(m.group(1))).search(told) for m in _UNCHECK_LISTED.finditer(thought))


def _slip_of_task(name: str, task: str) -> bool:
    """Whether ``name`` (folded) is a slip in copying one of the task's runs of as many words, the
    nearest one, of about its length (``"Kicol"`` for "Nicol", not ``"Lon"`` for "Lonee"): grounding
    reads it as that name (``_repair``)."""
    near = _nearest(name, _task_spans(task, len(name.split())), unique=True)
    return near is not None and abs(len(near) - len(name)) <= 1


_NARROW = re.compile(r"\bto narrow\b", re.I)  # ``type "g" to narrow them``: letters of a suggestion
_CITES = re.compile(r'\bsays "([^"\n]{1,200})"', re.I)  # ``the task says "directed by Ball": type "Ball".``


def false_type(step: Step, task: str) -> bool:
    """Whether a ``type`` step types nothing (and presses nothing), or its thought says to type a text
    (``type "Gabw shipment"``) that neither the task nor the thought's other quotes hold: a small
    model that lost its copy of the task's value half-way; or that is not inside what the thought
    cites the task as saying (``the task says "directed by Ball": type "Ball from year"``), or
    cites words the task does not have, or that stops inside a word of the task (``type "St"`` for
    "Storm"). Texts the task holds in other letter case, a few letters to narrow a list of
    suggestions and texts with digits (a date or a time the step converts) pass."""
    typed = [a for a in step.actions if a.kind == "type"]
    if any(not a.text and not a.submit for a in typed):
        return True
    said = _SAYS_TYPE.findall(step.thought or "")
    if not typed or len(said) != 1 or not task:
        return False
    text = _fold(said[0])
    cited = [_fold(c) for c in _CITES.findall(step.thought or "")]
    if cited and not any(text in c and c in _fold(task) for c in cited):
        return True  # ``the task says "directed by Ball": type "Ball from year"``: not what it cites
    if any(c.isdigit() for c in text):
        return False  # a value the step converts (a date, a time: "02:53P" for 2:53 PM) is not a copy
    others = [q for q in quoted(step.thought) if q != text]
    if any(text in q for q in others):
        return False
    if _NARROW.search(step.thought or ""):
        return text not in _fold(task)  # a few letters more of a suggestion: part of a word
    return re.search(re.escape(text) + r"(?!\w)", _fold(task)) is None  # ends where a word of it does


def types_blind(step: Step, observation: Observation) -> bool:
    """Whether a step types text while the screen lists elements, none of them on screen one that
    takes text (a textbox, a combobox, a spin button) or one that has the focus (a canvas or a game
    that reads keys): the keys would go nowhere (``Type "Cristin" into the reply field`` on a file
    tree). Not judged without elements (a desktop screen)."""
    if not observation.elements or not any(a.kind == "type" and a.text for a in step.actions):
        return False
    return not any((el.role in _EDITABLE or el.focused) and _on_screen(el, observation) for el in observation.elements)


def box_states(observation: Observation) -> dict[str, bool]:
    """Folded name -> checked, for the checkable controls on screen whose name has one state."""
    seen: dict[str, set[bool]] = {}
    for el in observation.elements:
        if el.interactive and el.checked is not None and _fold(el.text):
            seen.setdefault(_fold(el.text), set()).add(bool(el.checked))
    return {name: states.pop() for name, states in seen.items() if len(states) == 1}


def box_choices(observation: Observation, task: str) -> dict[str, list[str]]:
    """The boxes on screen a verb-first thought (``Check "A": …``, ``Uncheck "B": …``) may name,
    folded: ``check`` the unticked ones whose name the task holds as words, ``uncheck`` the ticked
    ones whose name it does not. A step that ticks a ticked box undoes what is right (the check
    ``against_state`` refuses it afterwards; the policy's steer keeps it from being written)."""
    told = _fold(task)
    out: dict[str, list[str]] = {"check": [], "uncheck": []}
    for el in observation.elements:
        name = _fold(el.text)
        if el.role not in TICK_ROLES or el.checked is None or not name or not _on_screen(el, observation):
            continue
        named = _as_word(name).search(told) is not None
        if not el.checked and named:
            out["check"].append(name)
        elif el.checked and not named:
            out["uncheck"].append(name)
    return out


def claimed_state(text: str, states: dict[str, bool]) -> bool | None:
    """When ``text`` ends in the start of a claim about boxes (``"A" and "B" are``, ``"C" is``) whose
    states ``states`` knows and agree on, that state; else None. The next word must say it."""
    m = _CLAIM.search(text)
    if not m:
        return None
    found = {states.get(n) for n in quoted(m.group(1))}
    return found.pop() if len(found) == 1 and None not in found else None


_SLIDE_TO = re.compile(r"\b(?:drag|slide|move|set|put)\b[^.;\"]*?\bto (-?\d+(?:\.\d+)?)(?![\d.]*\d)", re.I)


def _on_grid(x: float, y: float, space: CoordinateSpace | None) -> Point:
    """(x, y) as the policy could have written it: rounded to ``space``'s integer grid."""
    if space is not None:
        x, y = space.to_viewport(*(round(v) for v in space.from_viewport(x, y)))
    return Point(x=x, y=y)


def slide_to_value(step: Step, observation: Observation, space: CoordinateSpace | None = None) -> tuple[Step, bool]:
    """``step`` with its drag aimed at the value its thought sets (``drag its thumb to 21``), and
    whether it changed. The model says the value; where that value lies on the track is arithmetic
    over the slider's scale (``Element.range``: min, max, step, track) that a point cannot be
    trusted with. The slider is the one the thought names, else the one under the drag's start,
    else the only one on screen. The drag starts on the thumb (where the current value puts it) and
    ends where the scale puts the value, snapped to the slider's step."""
    drags = [i for i, a in enumerate(step.actions) if a.kind == "drag"]
    found = _SLIDE_TO.findall(step.thought or "")
    sliders = [el for el in observation.elements if el.range is not None]
    if not drags or not found or not sliders:
        return step, False
    drag = step.actions[drags[0]]
    names = target_names(step.thought)
    named = [el for el in named_elements(observation, names) if el.range is not None] if names else []
    here = observation.element_at(drag.start.x, drag.start.y)
    slider = named[0] if len(named) == 1 else here if here in sliders else sliders[0] if len(sliders) == 1 else None
    if slider is None:
        return step, False
    r, value = slider.range, float(found[-1])
    if r.step:
        value = r.lo + round((value - r.lo) / r.step) * r.step
    try:
        start = _on_grid(*r.point_of(float(slider.value)), space)
    except ValueError:  # no readable current value: keep the model's start
        start = drag.start
    end = _on_grid(*r.point_of(value), space)
    if (start, end) == (drag.start, drag.end):
        return step, False
    actions = list(step.actions)
    actions[drags[0]] = drag.model_copy(update={"start": start, "end": end})
    return dataclasses.replace(step, actions=actions), True


_SHOWN_STEP = re.compile(_MONTH + r" \d{1,2}, (\d{4})\b[^.]*?\bshows " + _MONTH + r" (\d{4}):( go)?$", re.I | re.S)
STATE_WORDS = (" checked", " ticked", " unchecked")
STEER_TRIGGERS = (" is", " are", ":", " go", ";")  # the words after which ``next_word`` may decide the next
_TICKED_CLAIM = re.compile(r'((?:"[^"\n]{1,100}"(?:, | and ))*"[^"\n]{1,100}") (?:is|are) (?:ticked|checked)(?=;)')


def _all_claimed(text: str, states: dict[str, bool], asked: list[str]) -> bool | None:
    """After a claim that asked boxes are ticked (``…; "B" is ticked;``) in a thought that has
    claimed only asked boxes: whether no other box is left to name — every asked box claimed, and
    no box the task does not ask for checked on screen. None when ``text`` is not there."""
    if not asked or not re.search(r'" (?:is|are) (?:ticked|checked);$', text):
        return None
    claimed = {n for m in _TICKED_CLAIM.finditer(text) for n in quoted(m.group(1))}
    if not claimed or not claimed <= set(asked):
        return None
    return set(asked) <= claimed and not any(on for name, on in states.items() if name not in asked)


def next_word(text: str, states: dict[str, bool],
              asked: list[str] = ()) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """Where ``text`` (a response being written, ending in one of ``STEER_TRIGGERS``) reaches a word
    a fact decides: the words that could go there and the true ones. A box's state after ``"A" is``
    (``states``: box_states; claimed_state), a date's month after ``09/20/2016 is`` (said_month), a
    calendar's step after ``September 20, 2016; the calendar shows July 2016:`` (``go`` or
    ``click``) and after its ``go`` (``back`` or ``forward``), and after the claims that the boxes
    the task asks for (``asked``: its quoted names) are ticked, whether another box is named or
    ``no other box is checked`` follows (``_all_claimed``). None elsewhere."""
    done = _all_claimed(text, states, list(asked))
    if done is not None:
        return (" ", " no"), ((" no",) if done else (" ",))
    month = said_month(text)
    if month is not None:
        return tuple(" " + m.capitalize() for m in MONTHS), (" " + MONTHS[month - 1].capitalize(),)
    m = _SHOWN_STEP.search(text)
    if m:
        step = _calendar_step((m.group(1), m.group(2)), (m.group(3), m.group(4)))
        if m.group(5):  # after "go": which way
            return (" back", " forward"), (() if step == "click" else (" " + step.split()[1],))
        return (" go", " click"), ((" click",) if step == "click" else (" go",))
    state = claimed_state(text, states) if states else None
    if state is None:
        return None
    return STATE_WORDS, ((" ticked", " checked") if state else (" unchecked",))


def ground_step(step: Step, observation: Observation, space: CoordinateSpace | None = None,
                task: str = "") -> tuple[Step, bool]:
    """``step`` with its first pointer action moved onto the element its thought names (see the
    module docstring), and whether it moved. Points are in viewport CSS px, as parsed steps are.
    With ``space`` (the policy's), the new point is one the model could have written: the
    element's centre rounded to that space's integer grid. ``task``: the instruction, whose quoted
    names repair a slip in the thought's."""
    names = target_names(step.thought)
    if not names or not observation.elements:
        return step, False
    if task:
        names = _repair(names, task, observation)
    for i, action in enumerate(step.actions):
        if action.kind not in POINTER_KINDS:
            continue
        p = action.point
        if action.kind == "select":  # the dropdown is named, not the option it is to show
            wanted = [n for n in names if n != _fold(action.option)]
            candidates = [el for el in named_elements(observation, wanted) if el.role in SELECT_ROLES] if wanted else []
        else:
            candidates = named_elements(observation, names)
        row = _IN_ROW.search(step.thought)
        if row:  # ``click "star" in the row of "Ann"``: one of many alike, Ann's (also a button named with
            # its row, "Details Attach lead", that a shorter name, "Details Deal", outscores)
            level = _row_controls(observation, _fold(row.group(1)), _fold(row.group(2)))
            if level:  # the best carrier of the names among those (not "Delete Flag badge" for "Flag")
                def rank(el: Element) -> tuple:
                    return _score(el, names) or (False, 0, False, -10 ** 6)
                candidates = [el for el in level if rank(el) == max(map(rank, level))]
            else:
                candidates = [el for el in candidates if _level_with(observation, el, _fold(row.group(2)))] \
                    or candidates
        by = _POST_BY.search(step.thought)
        if by and len(candidates) > 1:  # ``This post is by @felis … its "Reply" button``: a button of @felis's post
            candidates = [el for el in candidates
                          if _author_above(observation, el.box.center[1]) == _fold(by.group(1))] or candidates
        if len(candidates) > 1 and _NOT_YET.search(step.thought):  # ``A shade of blue not selected yet is
            candidates = [el for el in candidates if el.checked is False] or candidates  # the "blue" square``
        if len(candidates) > 1:  # names that differ in case only ("Previous", "previous"): the one quoted
            raw = {" ".join((a or b).split()) for a, b in _QUOTED.findall(target_clause(step.thought))}
            candidates = [el for el in candidates if " ".join(el.text.split()) in raw] or candidates
        here = observation.element_at(p.x, p.y)
        if not candidates or here in candidates:
            return step, False
        if (here is not None and here.interactive and not here.text.strip()
                and not any(el.interactive and el.role != "label" for el in candidates)):
            return step, False  # a caption or label named, its control (an input, an icon) pointed at
        best = min(candidates, key=lambda el: (el.box.center[0] - p.x) ** 2 + (el.box.center[1] - p.y) ** 2)
        actions = list(step.actions)
        actions[i] = action.model_copy(update={"point": _on_grid(*best.box.center, space)})
        return dataclasses.replace(step, actions=actions), True
    return step, False
