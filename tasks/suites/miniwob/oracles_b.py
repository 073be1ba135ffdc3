"""Oracle teachers for the second 28 tasks of the WebGUM-56 set (click-widget .. use-spinner).

Each oracle re-reads the page at every step and returns one action; see oracle.py for the rules
(read the page with side-effect-free JS, act only through actions the driver performs).
"""
from __future__ import annotations

import functools
import re

from actions.schema import Scroll
from tasks.suites.miniwob.oracle import (SHAPES_JS, OracleContext, OracleError, describe_shape, joined, oracle,
                                         shapes_described)

# -- shared helpers ----------------------------------------------------------------------------

_FIELD_JS = """(s) => { const e = document.querySelector(s);
  if (!e) return null;
  return {value: e.value, focused: document.activeElement === e, disabled: !!e.disabled}; }"""


def _fill(ctx: OracleContext, selector: str, value: str, label: str):
    """One step towards the field ``selector`` holding exactly ``value``; None when it does."""
    f = ctx.js(_FIELD_JS, selector)
    if f is None:
        raise OracleError(f"{ctx.task_id}: no field {selector!r}")
    if f["value"] == value:
        return None
    if not f["focused"]:
        return f'Click the {label} field to type into it.', ctx.click(selector)
    return _type_over(ctx, selector, f["value"], value, label)


def _type_over(ctx: OracleContext, key: str, current: str, value: str, label: str, thought: str = ""):
    """Type ``value`` into the focused field, first selecting what it holds (typing then replaces it).
    ``thought`` replaces the typing step's default one."""
    if current and ctx.memory.get("selected") != key:
        ctx.memory["selected"] = key
        return f'The {label} field holds other text; select it all to replace it.', ctx.hotkey("ctrl", "a")
    ctx.memory["selected"] = None
    return thought or f'Type "{value}" into the {label} field.', ctx.type(value)


def _press(ctx: OracleContext, selector: str, label: str, why: str = "everything asked for is filled in"):
    return f'{why[0].upper()}{why[1:]}; click "{label}".', ctx.click(selector)


def _visible_in_area(ctx: OracleContext, handle) -> bool:
    """Rendered (not display:none) and with its centre inside the 160x210 task area."""
    if not ctx.js("(e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden'", handle):
        return False
    return ctx.visible(handle)


ORDINAL = {"1st": 1, "2nd": 2, "3rd": 3}


# -- clicks ----------------------------------------------------------------------------------


@oracle("click-widget")
def click_widget(ctx: OracleContext):
    (kind,) = ctx.quoted()[:1] or [None]
    if kind is None:
        raise OracleError(f"click-widget: cannot read a widget type from {ctx.instruction!r}")
    for h in ctx.page.query_selector_all(f'#area .widget [data-type="{kind}"]'):
        if _visible_in_area(ctx, h):
            return f'This is a "{kind}" widget, the kind asked for; click it.', ctx.click(h)
    raise OracleError(f"click-widget: no visible {kind!r} widget")


@oracle("focus-text")
def focus_text(ctx: OracleContext):
    return "Click into the text box to focus it.", ctx.click("#tt")


@oracle("focus-text-2")
def focus_text_2(ctx: OracleContext):
    m = re.search(r"(1st|2nd|3rd) input", ctx.instruction)
    if not m:
        raise OracleError(f"focus-text-2: cannot read {ctx.instruction!r}")
    return (f"The {m.group(1)} text box from the top is the one asked for; click into it.",
            ctx.click(f"#tt{ORDINAL[m.group(1)]}"))


@oracle("grid-coordinate")
def grid_coordinate(ctx: OracleContext):
    m = re.search(r"\((-?\d),\s*(-?\d)\)", ctx.instruction)
    if not m:
        raise OracleError(f"grid-coordinate: cannot read {ctx.instruction!r}")
    x, y = int(m.group(1)), int(m.group(2))
    handle = ctx.page.query_selector(f'#area circle[id="({x},{y})"]')
    if handle is None:
        raise OracleError(f"grid-coordinate: no point ({x},{y})")
    horiz = "at the centre" if x == 0 else f"{abs(x)} right" if x > 0 else f"{abs(x)} left"
    vert = "" if y == 0 else f", {abs(y)} up" if y > 0 else f", {abs(y)} down"
    return f"The point ({x},{y}) is {horiz}{vert} from the origin; click it.", ctx.click(handle)


@oracle("identify-shape")
def identify_shape(ctx: OracleContext):
    items = ctx.js(SHAPES_JS)
    if len(items) != 1:
        raise OracleError(f"identify-shape: expected one figure, found {len(items)}")
    d = describe_shape(items[0])
    label = {"letter": "Letter", "digit": "Number"}.get(d["type"]) or d["text"].capitalize()
    what = f'the {d["type"]} "{d["text"]}"' if d["type"] != "shape" else f'a {d["text"]}'
    el = ctx.listed(ctx.page.query_selector("#area_svg > *"))
    if el is not None and el.role == "shape":  # quote the mark as the element list names it
        what = f'the "{el.text}"'
    return f'The figure is {what}; click "{label}".', ctx.click(ctx.find_text(label, "#area-buttons button"))


_LISTED_MAX = 5  # more names than this would not fit a thought


@oracle("count-shape")
def count_shape(ctx: OracleContext):
    m = re.search(r"How many (.+?)s are there\?", ctx.instruction)
    if not m:
        raise OracleError(f"count-shape: cannot read {ctx.instruction!r}")
    found = [ctx.listed(h) for h in shapes_described(ctx, m.group(1).split())[1]]
    n = len(found)
    button = ctx.click(ctx.find_text(str(n), "#count-buttons button"))
    marks = sorted((el for el in found if el is not None and el.role == "shape"), key=lambda el: el.index)
    if len(marks) == n and 0 < n <= _LISTED_MAX:  # name them as listed: counting is copying
        names = joined(['"' + el.text + '"' for el in marks])
        return f'The {m.group(1)}s are {names}: {n}; click "{n}".', button
    if n == 0:
        return f'No mark is a {m.group(1)}: 0; click "0".', button
    return f'Counting the {m.group(1)}s in the picture gives {n}; click "{n}".', button


# -- text entry --------------------------------------------------------------------------------


@oracle("enter-text", "enter-text-dynamic")
def enter_text(ctx: OracleContext):
    want = ctx.quoted()[0]
    return _fill(ctx, "#tt", want, "text") or _press(ctx, "#subbtn", "Submit", f'the field holds "{want}"')


@oracle("enter-password")
def enter_password(ctx: OracleContext):
    want = ctx.quoted()[0]
    return (_fill(ctx, "#password", want, "Password") or _fill(ctx, "#verify", want, "Verify password")
            or _press(ctx, "#subbtn", "Submit", "both password fields hold the password"))


def _login(ctx: OracleContext, button: str):
    q = ctx.quoted()
    if len(q) < 2:
        raise OracleError(f"{ctx.task_id}: cannot read a username and password from {ctx.instruction!r}")
    user, password = q[0], q[1]
    return (_fill(ctx, "#username", user, "Username") or _fill(ctx, "#password", password, "Password")
            or _press(ctx, "#subbtn", button, "the username and password are filled in"))


@oracle("login-user")
def login_user(ctx: OracleContext):
    return _login(ctx, "Login")


@oracle("login-user-popup", max_steps=12)
def login_user_popup(ctx: OracleContext):
    if ctx.exists("#popup"):
        return ('A popup asks whether to exit to the home page; that would abandon the login, so click '
                '"Cancel".', ctx.click("#popup-cancel"))
    return _login(ctx, "OK")


def _click_left_edge(ctx: OracleContext, selector: str):
    # Date/time inputs are split into segments: a click near the left edge lands in the first one
    # (a click further right picks a later segment or opens the native picker, invisible headless).
    b = ctx.box(selector)
    return ctx.click((b.x + min(10.0, b.width * 0.1), b.y + b.height / 2))


def _segmented_entry(ctx: OracleContext, want_value: str, keys: str, shown: str, what: str):
    f = ctx.js(_FIELD_JS, "#tt")
    if f["value"] == want_value:
        return _press(ctx, "#subbtn", "Submit", f"the {what} field shows {shown}")
    if f["focused"] and not ctx.memory.get("typed"):
        ctx.memory["typed"] = True
        # the value comes first: writing it is a copy of the instruction, and the keys are then a copy
        # of the value (a date typed as written; a time with a two-digit hour and A/P)
        return f'The {what} is {shown}; type "{keys}" to fill the {what} field segment by segment.', ctx.type(keys)
    ctx.memory["typed"] = False
    return f"Click the first segment of the {what} field to type the {what}.", _click_left_edge(ctx, "#tt")


@oracle("enter-date")
def enter_date(ctx: OracleContext):
    m = re.search(r"(\d{2})/(\d{2})/(\d{4})", ctx.instruction)
    if not m:
        raise OracleError(f"enter-date: cannot read {ctx.instruction!r}")
    mm, dd, yyyy = m.groups()
    # Chromium's date input takes "/" as the move to the next segment, so the keys are the date as written
    return _segmented_entry(ctx, f"{yyyy}-{mm}-{dd}", f"{mm}/{dd}/{yyyy}", f"{mm}/{dd}/{yyyy}", "date")


@oracle("enter-time")
def enter_time(ctx: OracleContext):
    m = re.search(r"(\d{1,2}):(\d{2})\s*([AP])M", ctx.instruction)
    if not m:
        raise OracleError(f"enter-time: cannot read {ctx.instruction!r}")
    h, mi, ap = int(m.group(1)), m.group(2), m.group(3)
    h24 = h % 12 + (12 if ap == "P" else 0)
    # a time input takes ":" between hour and minute, but a one-digit hour waits for a second digit
    # unless it is padded ("1:22A" stays empty, "01:22A" holds 01:22), and a space cancels the entry
    return _segmented_entry(ctx, f"{h24:02d}:{mi}", f"{h:02d}:{mi}{ap}", f"{h}:{mi} {ap}M", "time")


_FEEDBACK_JS = """() => { const shown = [...document.querySelectorAll('#feedback > div')]
    .filter(d => !d.classList.contains('hide'));
  if (!shown.length) return null;
  const s = shown[0].querySelector('span');
  return {id: shown[0].id, n: s ? s.textContent : ''}; }"""


@oracle("guess-number", max_steps=20)
def guess_number(ctx: OracleContext):
    lo, hi = ctx.memory.setdefault("lo", 0), ctx.memory.setdefault("hi", 9)
    fb = ctx.js(_FEEDBACK_JS) or {"id": "waiting", "n": ""}
    note = ""
    if fb["id"] in ("higher", "lower") and fb["n"].lstrip("-").isdigit():
        n = int(fb["n"])
        if fb["id"] == "higher":
            lo = max(lo, n + 1)
        else:
            hi = min(hi, n - 1)
        ctx.memory.update(lo=lo, hi=hi)
        rng = f"it must be {lo}" if lo == hi else f"it lies in {lo}-{hi}"
        note = f"The number is {fb['id']} than {n}, so {rng}. "
    if lo > hi:
        raise OracleError(f"guess-number: the feedback is contradictory (range {lo}-{hi})")
    guess = (lo + hi) // 2
    f = ctx.js(_FIELD_JS, "#tt")
    if not f["focused"]:
        # the left part: a number box has spin arrows on its right that would change the value
        return f"{note}Click the answer box to enter a guess.", _click_left_edge(ctx, "#tt")
    if f["value"] and ctx.memory.get("selected") != f["value"]:
        ctx.memory["selected"] = f["value"]
        return f"{note}Select the previous guess to replace it.", ctx.hotkey("ctrl", "a")
    return (f"{note}Guess {guess}, the middle of the range, and press Enter to submit it.",
            ctx.type(str(guess), submit=True))


# -- widgets ---------------------------------------------------------------------------------


@oracle("use-spinner", max_steps=25)
def use_spinner(ctx: OracleContext):
    m = re.search(r"Select (-?\d+) with the spinner", ctx.instruction)
    if not m:
        raise OracleError(f"use-spinner: cannot read {ctx.instruction!r}")
    want = int(m.group(1))
    raw = ctx.js("() => document.getElementById('spinner').value")
    cur = int(raw) if re.fullmatch(r"-?\d+", raw or "") else 0
    if cur == want:
        return _press(ctx, "#subbtn", "Submit", f"the spinner shows {want}")
    if cur < want:
        return f"The spinner shows {cur}, below {want}; click its up arrow.", ctx.click("#area .ui-spinner-up")
    return f"The spinner shows {cur}, above {want}; click its down arrow.", ctx.click("#area .ui-spinner-down")


_MENU_JS = """() => { const out = [];
  for (const ul of document.querySelectorAll('ul.ui-autocomplete')) {
    if (getComputedStyle(ul).display === 'none') continue;
    ul.querySelectorAll('li').forEach(li => out.push(li.textContent.trim()));
  } return out; }"""


@oracle("use-autocomplete", "use-autocomplete-nodelay", max_steps=15)
def use_autocomplete(ctx: OracleContext):
    q = ctx.quoted()
    if not q:
        raise OracleError(f"use-autocomplete: cannot read {ctx.instruction!r}")
    start, end = q[0], (q[1] if len(q) > 1 else "")
    want = f'starts with "{start}"' + (f' and ends with "{end}"' if end else "")
    f = ctx.js(_FIELD_JS, "#tags")
    ok = lambda s: s.startswith(start) and s.endswith(end)  # noqa: E731
    if ok(f["value"]) and f["value"] and ctx.memory.get("picked") == f["value"]:
        return _press(ctx, "#subbtn", "Submit", f'the field holds "{f["value"]}", which {want}')
    if not f["value"].startswith(start) or not f["value"]:
        return _fill(ctx, "#tags", start, "Tags")
    items = ctx.js(_MENU_JS)
    fits = [s for s in items if ok(s)]
    if not fits or not all(s.lower().startswith(f["value"].lower()) for s in items):
        tries = ctx.memory["waits"] = ctx.memory.get("waits", 0) + 1
        if tries > 6:
            raise OracleError(f"use-autocomplete: no suggestion {want} for {f['value']!r}")
        return "Wait for the suggestions to appear.", ctx.wait(0.4)
    target = fits[0]
    for box in ctx.find_all_text(target, "ul.ui-autocomplete li"):
        if ctx.visible(box):
            ctx.memory["picked"] = target
            # the test that picks it first, the name after it: copied from the one suggestion that
            # passes, not from the first one listed
            if end:
                return f'The suggestion that ends with "{end}" is "{target}"; pick it.', ctx.click(box)
            return f'"{target}" {want}; pick it from the suggestions.', ctx.click(box)
    # the suggestion is listed below the visible area: type more of it to shorten the list
    more = target[len(f["value"]):len(f["value"]) + 1]
    ctx.memory["waits"] = 0
    return f'"{target}" is further down the suggestions; type "{more}" to narrow them.', ctx.type(more)


# -- forms with several layouts --------------------------------------------------------------

_MOVIE_RE = re.compile(r"Search for (.+?) movies directed by (.+?) from year (\d+)\.")
_MOVIE_FIELDS_JS = """() => [...document.querySelectorAll('#area input[type=text]')].map((e, i) => {
  let p = e.parentElement;
  while (p && p.id !== 'area' && !p.textContent.trim()) p = p.parentElement;
  return {i, label: p ? p.textContent.replace(/\\s+/g, ' ').trim() : '', value: e.value,
          focused: document.activeElement === e}; })"""
_MOVIE_SUBMIT = "#area button, #area .final, #area .ui-submit"


@oracle("multi-layouts", "multi-orderings", max_steps=15)
def movie_search(ctx: OracleContext):
    m = _MOVIE_RE.search(ctx.instruction)
    if not m:
        raise OracleError(f"{ctx.task_id}: cannot read {ctx.instruction!r}")
    values = {"genre": m.group(1), "director": m.group(2), "year": m.group(3)}
    # where each value stands in the task: the typing step quotes it, so the field's value is a copy
    # of the words next to the ones that name the field, not a guess among the task's three values
    said = {"genre": f"for {m.group(1)} movies", "director": f"directed by {m.group(2)}",
            "year": f"from year {m.group(3)}"}
    fields = ctx.js(_MOVIE_FIELDS_JS)
    handles = ctx.page.query_selector_all("#area input[type=text]")
    for f in fields:
        lab = f["label"].lower()
        key = "genre" if "genre" in lab else "director" if "director" in lab else "year" \
            if ("year" in lab or "date" in lab) else None
        if key is None:
            raise OracleError(f"{ctx.task_id}: unknown field label {f['label']!r}")
        if f["value"] == values[key]:
            continue
        name = f'"{f["label"]}"'
        if not f["focused"]:
            return f"Click the {name} field to enter the {key}.", ctx.click(handles[f["i"]])
        return _type_over(ctx, f"field{f['i']}", f["value"], values[key], name,
                          f'The {name} field takes the {key}; the task says "{said[key]}": type "{values[key]}".')
    button = ctx.page.query_selector(_MOVIE_SUBMIT)
    label = " ".join((button.text_content() or "").split())
    return _press(ctx, button, label, "genre, director and year are filled in")


# -- trees, search results -------------------------------------------------------------------

_TREE_JS = """(name) => {
  const shown = e => e.getClientRects().length > 0;
  const spans = [...document.querySelectorAll('#tree span')];
  const hits = spans.filter(s => s.textContent === name);
  for (const s of hits) if (shown(s)) return {visible: spans.indexOf(s)};
  // open the outermost closed folder on the way to the first hidden match
  for (const s of hits) {
    const chain = [];
    for (let li = s.parentElement.parentElement.closest('li'); li; li = li.parentElement.closest('li'))
      chain.unshift(li);
    for (const li of chain) {
      const ul = li.querySelector(':scope > ul'), head = li.querySelector(':scope > span');
      if (ul && !shown(ul) && shown(head)) return {open: spans.indexOf(head), name: head.textContent};
    }
  }
  return null; }"""


@oracle("navigate-tree", max_steps=15)
def navigate_tree(ctx: OracleContext):
    target = ctx.quoted()[-1]
    found = ctx.js(_TREE_JS, target)
    if found is None:
        raise OracleError(f"navigate-tree: no item {target!r}")
    spans = ctx.page.query_selector_all("#tree span")
    if "visible" in found:
        return f'"{target}" is shown in the tree; click it.', ctx.click(spans[found["visible"]])
    return (f'"{target}" is inside the closed folder "{found["name"]}"; click the folder to open it.',
            ctx.click(spans[found["open"]]))


_RESULTS_JS = """() => [...document.querySelectorAll('#page-content a')].map(a => +a.getAttribute('data-result'))"""


@oracle("search-engine", max_steps=15)
def search_engine(ctx: OracleContext):
    q = ctx.quoted()
    m = re.search(r"(\d+)(?:st|nd|rd|th) search result", ctx.instruction)
    if not q or not m:
        raise OracleError(f"search-engine: cannot read {ctx.instruction!r}")
    term, k = q[0], int(m.group(1)) - 1
    shown = ctx.js(_RESULTS_JS)
    value = ctx.js(_FIELD_JS, "#search-text")["value"]
    if not shown or value != term or -1 in shown:
        step = _fill(ctx, "#search-text", term, "search")
        if step is not None:
            return step
        return f'The search box holds "{term}"; click "Search".', ctx.click("#search")
    if k in shown:  # the page's results named in order, then the one asked for: a pick by place in a
        links = ctx.page.query_selector_all("#page-content a")  # list the thought has just written
        names = [" ".join(((el := ctx.listed(a)) and el.text or a.text_content()).split()) for a in links]
        first, i, listed = shown[0] + 1, shown.index(k), joined(['"' + n + '"' for n in names])
        return (f'This page shows results {first} to {first + len(names) - 1}: {listed}; '
                f'result {k + 1} is "{names[i]}"; click it.',
                ctx.click(links[i]))
    page = k // 3 + 1
    return (f"Result {k + 1} is on page {page} (three results a page); open page {page}.",
            ctx.click(ctx.find_text(str(page), "#pagination a")))


# -- tic-tac-toe -------------------------------------------------------------------------------

_LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))
_CELL_NAMES = ("top-left", "top-middle", "top-right", "middle-left", "centre", "middle-right",
               "bottom-left", "bottom-middle", "bottom-right")
RANDOM_MOVE = 0.55  # the page's opponent moves at random 55% of the time, else wins/blocks if it can


def _wins(b: tuple, v: int) -> bool:
    return any(b[i] == b[j] == b[k] == v for i, j, k in _LINES)


def _checks(b: tuple, m: int) -> list[int | None]:
    """The page's seven line checks (checkLeftHorizontal .. checkRightVertical), each the first empty
    cell that completes two ``m`` marks, in the page's own order."""
    def first(cands):
        return next((c for c, others in cands if b[c] == 0 and all(b[o] == m for o in others)), None)

    rows = [(i * 3, i * 3 + 1, i * 3 + 2) for i in range(3)]
    lh = first((r[0], (r[1], r[2])) for r in rows)
    mh = first((r[1], (r[0], r[2])) for r in rows)
    rh = first((r[2], (r[0], r[1])) for r in rows)
    diag = first([(0, (4, 8)), (4, (0, 8)), (8, (0, 4)), (2, (4, 6)), (4, (2, 6)), (6, (2, 4))])
    lv = first([(0, (3, 6)), (3, (0, 6)), (6, (0, 3))])
    mv = first([(1, (4, 7)), (4, (1, 7)), (7, (1, 4))])
    rv = first([(2, (5, 8)), (5, (2, 8)), (8, (2, 5))])
    return [lh, mh, rh, diag, lv, mv, rv]


def _smart_move(b: tuple) -> int | None:
    """determineSpace: the last line check that wins for O, else the last that blocks X."""
    win = [c for c in _checks(b, -1) if c is not None]
    if win:
        return win[-1]
    block = [c for c in _checks(b, 1) if c is not None]
    return block[-1] if block else None


@functools.lru_cache(maxsize=None)
def _p_win_after_x(b: tuple) -> float:
    """Chance that X wins from ``b`` (X just moved, O to move) against the page's opponent."""
    if _wins(b, 1):
        return 1.0
    free = [i for i in range(9) if b[i] == 0]
    if not free:
        return 0.0

    def after(c: int) -> float:
        nb = b[:c] + (-1,) + b[c + 1:]
        if _wins(nb, -1) or all(nb):
            return 0.0
        return _best_x(nb)[1]

    rand = sum(after(c) for c in free) / len(free)
    smart = _smart_move(b)
    return RANDOM_MOVE * rand + (1 - RANDOM_MOVE) * (after(smart) if smart is not None else rand)


@functools.lru_cache(maxsize=None)
def _best_x(b: tuple) -> tuple[int, float]:
    """X's move with the highest chance to win (ties: the lowest cell) and that chance."""
    best = (-1, -1.0)
    for c in range(9):
        if b[c] == 0:
            p = _p_win_after_x(b[:c] + (1,) + b[c + 1:])
            if p > best[1] + 1e-12:
                best = (c, p)
    return best


@oracle("tic-tac-toe", max_steps=15)
def tic_tac_toe(ctx: OracleContext):
    marks = ctx.js("""() => [...Array(9).keys()].map(i => { const c = document.getElementById('ttt-' + i).className;
        return c.includes('mark-x') ? 1 : c.includes('mark-o') ? -1 : 0; })""")
    board = tuple(marks)
    cell, _ = _best_x(board)
    if cell < 0:
        raise OracleError("tic-tac-toe: no free square")
    after = board[:cell] + (1,) + board[cell + 1:]
    if _wins(after, 1):
        why = "it completes a line of three X and wins"
    elif _wins(board[:cell] + (-1,) + board[cell + 1:], -1):
        why = "it blocks O's line"
    elif any(sum(after[i] for i in line) == 2 for line in _LINES if cell in line):
        why = "it makes two X in a line with the third square open"
    else:
        why = "it gives X the best chance to make a line"
    return f"Play X in the {_CELL_NAMES[cell]} square: {why}.", ctx.click(f"#ttt-{cell}")


# -- email inbox -----------------------------------------------------------------------------

_EMAIL_RES = (
    (re.compile(r'Find the email by (.+?) and reply to them with the text "(.*)"\.'), "reply"),
    (re.compile(r"Find the email by (.+?) and forward that email to (.+?)\.$"), "forward"),
    (re.compile(r"Find the email by (.+?) and click the trash icon"), "delete"),
    (re.compile(r"Find the email by (.+?) and click the star icon"), "star"),
)
_EMAIL_STATE_JS = """() => {
  const shown = s => { const e = document.querySelector(s); return !!e && e.getClientRects().length > 0; };
  return {forward: shown('#forward'), reply: shown('#reply'), email: shown('#email'), main: shown('#main'),
          search: shown('#search'),
          open_sender: (document.querySelector('#email .email-header .email-sender') || {}).textContent || '',
          threads: [...document.querySelectorAll('#main .email-thread')].map(
            t => t.querySelector('.email-sender').textContent)}; }"""


def _email_goal(ctx: OracleContext) -> dict:
    """{action, by, to, message}: from the nl tasks' structured fields, else from the instruction."""
    fields = ctx.utterance.get("fields") if isinstance(ctx.utterance, dict) else None
    if not fields:
        fields = ctx.js("() => core.currentFields || null") if ctx.task_id != "email-inbox" else None
    if fields:
        action = fields.get("task") or "forward"
        return {"action": action, "by": fields["by"], "to": fields.get("to", ""), "message": fields.get("message", "")}
    for rx, action in _EMAIL_RES:
        m = rx.search(ctx.instruction)
        if m:
            g = m.groups()
            return {"action": action, "by": g[0], "to": g[1] if action == "forward" else "",
                    "message": g[1] if action == "reply" else ""}
    raise OracleError(f"{ctx.task_id}: cannot read {ctx.instruction!r}")


@oracle("email-inbox", "email-inbox-nl-turk", "email-inbox-forward-nl", "email-inbox-forward-nl-turk",
        max_steps=20)
def email_inbox(ctx: OracleContext):
    goal = _email_goal(ctx)
    by, action = goal["by"], goal["action"]
    s = ctx.js(_EMAIL_STATE_JS)
    if s["forward"]:
        step = _fill(ctx, "#forward .forward-sender", goal["to"], '"to"')
        return step or (f'The forward is addressed to {goal["to"]}; click the send icon.', ctx.click("#send-forward"))
    if s["reply"]:
        step = _fill(ctx, "#reply-text", goal["message"], "reply")
        return step or ("The reply text is written; click the send icon.", ctx.click("#send-reply"))
    if s["email"]:
        if s["open_sender"].strip() != by:
            return (f"This email is not from {by}; go back to the inbox.", ctx.click("#close-email"))
        if action == "reply":
            return f"This is {by}'s email; click Reply.", ctx.click("#email .email-reply")
        if action == "forward":
            return f"This is {by}'s email; click Forward.", ctx.click("#email .email-forward")
        icon = "trash" if action == "delete" else "star"
        return f"This is {by}'s email; click its {icon} icon.", ctx.click(f"#email .email-actions .{icon}")
    if s["search"]:
        return "Leave the search view and go back to the inbox.", ctx.click("#search-cancel")
    if not s["main"]:
        raise OracleError(f"{ctx.task_id}: neither the inbox nor an email is shown")
    if by not in s["threads"]:
        raise OracleError(f"{ctx.task_id}: no email from {by!r} in the inbox")
    thread = ctx.page.query_selector_all("#main .email-thread")[s["threads"].index(by)]
    scroll = None if ctx.shows(by) else ctx.reveal(thread)
    if scroll is not None:
        return f'The email from "{by}" is further down the inbox; scroll to it.', scroll
    if action in ("delete", "star"):
        icon = "trash" if action == "delete" else "star"
        verb = "delete it" if action == "delete" else "mark it as important"
        # the icon placed in the sender's row: grounding then picks that row's icon among the alike
        return (f'The email from "{by}" is in the list; click "{icon}" in the row of "{by}" to {verb}.',
                ctx.click(thread.query_selector(f".{icon}")))
    # the sender quoted: the policy's grounding then lands the click on the row that carries the name
    return f'The email from "{by}" is the one to {action}; open it.', ctx.click(thread.query_selector(".email-sender"))


# -- social media ----------------------------------------------------------------------------

_SOCIAL_ACTIONS = {"Share via DM": "share", "Copy link to Tweet": "copy", "Embed Tweet": "embed",
                   "Mute": "menu-user", "Block": "block-user", "Report": "report", "Reply": "reply",
                   "Retweet": "retweet", "Like": "like", "Share": "share"}
_POSTS_JS = """(cls) => [...document.querySelectorAll('#area .media')].map(m => {
  const c = m.querySelector('.controls .' + cls);
  return {user: m.querySelector('.username').textContent, active: !!c && c.classList.contains('active')}; })"""


def _scroll_for(ctx: OracleContext, handle, name: str = "") -> tuple[Scroll | None, bool]:
    """(the scroll that brings ``handle`` into reach or None when a click reaches it, whether the
    element list shows ``name`` already): a part in view is clicked where it shows; one whose
    click would land off the screen is scrolled for with a thought that does not call it out of
    view, which the policy's check (grounding.said_away) would hold wrong."""
    scroll = ctx.reveal(handle)
    if scroll is None or not (name and ctx.shows(name)):
        return scroll, False
    p, o = ctx.point(handle), ctx.observation
    return (None, True) if 0 <= p.x < o.width and 0 <= p.y < o.height else (scroll, True)


def _reveal_click(ctx: OracleContext, handle, seen: str, act: str, name: str = ""):
    scroll, shown = _scroll_for(ctx, handle, name)
    if scroll is not None:
        if shown:
            return f"{seen} is cut off at the edge; scroll {scroll.direction}.", scroll
        return f"{seen} is out of view in the feed; scroll to it.", scroll
    # the icons swap to a hover image under the pointer, and a first click can miss while it loads
    repeat = ctx.memory.get("last_act") == act
    ctx.memory["last_act"] = act
    return ("The last click did not register; " + act[0].lower() + act[1:] if repeat else act), ctx.click(handle)


@oracle("social-media", max_steps=12)
def social_media(ctx: OracleContext):
    m = re.search(r'For the user (\S+), click on the "(.+?)" button', ctx.instruction)
    if not m:
        raise OracleError(f"social-media: cannot read {ctx.instruction!r}")
    user, label = m.groups()
    cls = _SOCIAL_ACTIONS[label]
    posts = ctx.js(_POSTS_JS, "reply")
    users = [p["user"] for p in posts]
    if user not in users:
        raise OracleError(f"social-media: no post by {user!r}")
    media = ctx.page.query_selector_all("#area .media")[users.index(user)]

    def reach(handle, act: str):
        # the handle quoted: a scroll for a post whose handle the element list shows is held wrong
        # (grounding.said_away), so a post in view with its buttons cut off says so instead
        scroll = ctx.reveal(handle)
        if scroll is not None and ctx.shows(user):
            return f'The post by "{user}" is in view but its buttons are cut off; scroll down.', scroll
        return _reveal_click(ctx, handle, f'The post by "{user}"', act)

    if cls in ("reply", "retweet", "like"):
        return reach(media.query_selector(f".controls .{cls}"), f'This post is by {user}; click its "{label}" button.')
    item = media.query_selector(f".controls li.{cls}")
    if not ctx.js("(e) => e.getClientRects().length > 0", item):
        return reach(media.query_selector(".controls .more"),
                     f'This post is by {user}; open its "more" menu to find "{label}".')
    return _reveal_click(ctx, item, f'The "{label}" item', f'Click "{label}" in the menu of {user}\'s post.', label)


@oracle("social-media-all", max_steps=40)
def social_media_all(ctx: OracleContext):
    m = re.search(r'Click the "(.+?)" button on all posts by (\S+) and then click Submit', ctx.instruction)
    if not m:
        raise OracleError(f"social-media-all: cannot read {ctx.instruction!r}")
    label, user = m.groups()
    # Decided on what the screen shows, not on how many posts the whole feed holds: a post in view
    # by the user whose button is not marked yet (the element list marks it "checked") is clicked;
    # else the feed is read on down, one notch at a time, until its "Submit" comes into view. A click
    # that missed (the icon's hover image still loading) leaves the button unmarked: clicked again.
    cls = _SOCIAL_ACTIONS[label]
    posts = ctx.js(_POSTS_JS, cls)
    medias = ctx.page.query_selector_all("#area .media")
    for i, post in enumerate(posts):
        icon = medias[i].query_selector(f".controls .{cls}")
        if post["user"] == user and not post["active"] and ctx.reveal(icon) is None:
            return f'This post is by {user} and its "{label}" button is not marked yet; click it.', ctx.click(icon)
    submit = ctx.page.query_selector("#submitRow button")
    down, shown = _scroll_for(ctx, submit, "Submit")
    if down is not None:
        where = "is cut off at the edge" if shown else "is not in view yet"
        return (f'No post by {user} in view is left unmarked, and "Submit" {where}; scroll down.',
                down.model_copy(update={"amount": 1}))
    return '"Submit" is in view: the feed is read to its end; click "Submit".', ctx.click(submit)


@oracle("social-media-some", max_steps=40)
def social_media_some(ctx: OracleContext):
    m = re.search(r'Click the "(.+?)" button on (\d+) posts? by (\S+) and then click Submit', ctx.instruction)
    if not m:
        raise OracleError(f"social-media-some: cannot read {ctx.instruction!r}")
    label, goal, user = m.group(1), int(m.group(2)), m.group(3)
    cls = _SOCIAL_ACTIONS[label]
    posts = ctx.js(_POSTS_JS, cls)
    mine = [i for i, p in enumerate(posts) if p["user"] == user]
    active = [i for i in mine if posts[i]["active"]]
    if len(active) < goal:
        i = next(i for i in mine if not posts[i]["active"])
        handle = ctx.page.query_selector_all("#area .media")[i].query_selector(f".controls .{cls}")
        return _reveal_click(ctx, handle, f"The next post by {user}",
                             f'This post is by {user}; click its "{label}" button ({len(active) + 1} of {goal}).')
    if len(active) > goal:
        raise OracleError(f"{ctx.task_id}: more posts marked than asked for")
    return _reveal_click(ctx, ctx.page.query_selector("#submitRow button"), 'The "Submit" button',
                         f'"{label}" is clicked on {goal} post{"s" if goal != 1 else ""} by {user}; click "Submit".',
                         "Submit")
