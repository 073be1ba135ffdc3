"""Oracle teachers for the first 28 tasks of the WebGUM-56 set (book-flight .. click-test-2).

Each oracle re-reads the page at every step and returns one action; see oracle.py for the rules.
"""
from __future__ import annotations

import colorsys
import re
from datetime import date

from tasks.suites.miniwob.oracle import OracleContext, OracleError, joined, oracle, shapes_described

SUBMIT = "Submit"


def _submit(ctx: OracleContext, label: str = "Submit", selector: str = "button"):
    return f'Everything asked for is done; click "{label}".', ctx.click(ctx.find_text(label, selector))


# -- single clicks ---------------------------------------------------------------------------


@oracle("click-test")
def click_test(ctx: OracleContext):
    return 'Click the "Click Me!" button, as asked.', ctx.click("#subbtn")


@oracle("click-test-2")
def click_test_2(ctx: OracleContext):
    return 'The instruction asks for button ONE; click it.', ctx.click("#subbtn")


@oracle("click-button")
def click_button(ctx: OracleContext):
    target = ctx.quoted()[0]
    return (f'The button labelled "{target}" matches the instruction; click it.',
            ctx.click(ctx.find_text(target, "#area button")))


@oracle("click-button-sequence")
def click_button_sequence(ctx: OracleContext):
    if ctx.step == 0:
        return 'Click button ONE first, as the instruction says.', ctx.click("#subbtn")
    return 'Button ONE is done; now click button TWO.', ctx.click("#subbtn2")


@oracle("click-link")
def click_link(ctx: OracleContext):
    target = ctx.quoted()[0]
    return f'The link "{target}" is in the text; click it.', ctx.click(ctx.find_text(target, "#area .alink"))


@oracle("click-dialog")
def click_dialog(ctx: OracleContext):
    return ('The dialog has a close "x" in its title bar; click it.',
            ctx.click(".ui-dialog-titlebar-close"))


@oracle("click-dialog-2")
def click_dialog_2(ctx: OracleContext):
    target = ctx.quoted()[0]
    if target == "x":
        return 'The "x" in the dialog title bar is the button asked for; click it.', ctx.click(
            ".ui-dialog-titlebar-close")
    return (f'The dialog button "{target}" is the one asked for; click it.',
            ctx.click(ctx.find_text(target, ".ui-dialog-buttonpane button")))


@oracle("click-color")
def click_color(ctx: OracleContext):
    # the instruction (core.getUtterance) names the colour; the query may show it as a swatch
    m = re.search(r"Click on the (.+?) colored box", ctx.instruction)
    if not m:
        raise OracleError(f"click-color: cannot read a colour from {ctx.instruction!r}")
    color = m.group(1).strip()
    boxes = ctx.page.query_selector_all("#area .color")
    want = _rgb(ctx, color)
    for b in boxes:
        if ctx.js("(e) => getComputedStyle(e).backgroundColor", b) == want:
            return f'The "{color}" box is the one asked for; click it.', ctx.click(b)
    raise OracleError(f"click-color: no box of colour {color!r}")


def _rgb(ctx: OracleContext, css_color: str) -> str:
    """A CSS colour name as the browser computes it (e.g. 'rgb(255, 0, 0)')."""
    return ctx.js("(c) => { const d = document.createElement('div'); d.style.color = c;"
                  " document.body.appendChild(d); const v = getComputedStyle(d).color; d.remove(); return v; }",
                  css_color)


@oracle("click-shape")
def click_shape(ctx: OracleContext):
    (size, color, what), handles = shapes_described(ctx, ctx.instruction.removeprefix("Click on a").split())
    if not handles:
        raise OracleError(f"click-shape: nothing matches {ctx.instruction!r}")
    # Quote the task's words, each a word of the mark's name in the element list: the click is
    # aimed at the mark that carries them all (grounding), a copy, not a choice among names.
    said = [f'"{w}"' for w in (size, color) if w] + ([f'a "{what}"'] if what not in ("item", "shape") else [])
    if not said:
        return "Any mark will do; click one.", ctx.click(handles[0])
    return f"The mark asked for is {joined(said)}; click it.", ctx.click(handles[0])


# -- checkbox / radio forms -------------------------------------------------------------------


def _checkbox_state(ctx: OracleContext) -> list[dict]:
    return ctx.js("""() => [...document.querySelectorAll('#area input[type=checkbox], #area input[type=radio]')]
        .map((e, i) => ({i, label: e.parentElement.textContent.trim(), checked: e.checked}))""")


def _toggle_to(ctx: OracleContext, wanted: set[str], describe: str):
    """Check the boxes whose label is in ``wanted`` and uncheck the rest, one click a step."""
    handles = ctx.page.query_selector_all("#area input[type=checkbox], #area input[type=radio]")
    for it in _checkbox_state(ctx):
        if (it["label"] in wanted) != it["checked"]:
            verb = "Check" if not it["checked"] else "Uncheck"
            return f'{verb} "{it["label"]}": {describe}.', ctx.click(handles[it["i"]])
    return _submit(ctx)


def _select_list(instruction: str) -> list[str]:
    """The items the instruction lists, in its order."""
    m = re.match(r"Select (.*) and click Submit\.", instruction)
    if not m:
        raise OracleError(f"cannot read the items to select from {instruction!r}")
    body = m.group(1).removeprefix("words similar to ")
    return [] if body == "nothing" else list(dict.fromkeys(w.strip() for w in body.split(",")))


@oracle("click-checkboxes", "click-checkboxes-large", "click-checkboxes-transfer")
def click_checkboxes(ctx: OracleContext):
    wanted = set(_select_list(ctx.instruction))
    return _toggle_to(ctx, wanted, "the instruction lists exactly these")


@oracle("click-checkboxes-soft")
def click_checkboxes_soft(ctx: OracleContext):
    # The instruction's words in its order, each with the box that means the same (the task's
    # synonym table stands in for world knowledge): the thought copies the word, then names the box,
    # so which box a word means is one fact the demonstrations teach, not a choice among all boxes.
    groups = ctx.js("() => SYNONYMS")
    state = _checkbox_state(ctx)
    handles = ctx.page.query_selector_all("#area input[type=checkbox]")
    wanted = set()
    for word in _select_list(ctx.instruction):
        box = next((it for it in state if any(it["label"] in g and word in g for g in groups)), None)
        if box is None:
            raise OracleError(f"click-checkboxes-soft: no box means {word!r}")
        wanted.add(box["label"])
        if not box["checked"]:
            return f'"{word}" means "{box["label"]}"; check it.', ctx.click(handles[box["i"]])
    return _toggle_to(ctx, wanted, "no word asked for means it")


@oracle("click-option")
def click_option(ctx: OracleContext):
    (target,) = _select_list(ctx.instruction)
    return _toggle_to(ctx, {target}, "it is the option asked for")


# -- tabs, collapsibles, menus ----------------------------------------------------------------


@oracle("click-tab")
def click_tab(ctx: OracleContext):
    m = re.search(r"Tab #(\d)", ctx.instruction)
    name = f"Tab #{m.group(1)}"
    return f'Click "{name}", the tab asked for.', ctx.click(ctx.find_text(name, "#area ul a"))


@oracle("click-tab-2", "click-tab-2-hard", max_steps=12)
def click_tab_2(ctx: OracleContext):
    target = ctx.quoted()[0]
    visible = ctx.find_all_text(target, "#area .alink")
    if visible:
        return f'The link "{target}" is on this tab; click it.', ctx.click(visible[0])
    # the link is on another tab: look through the tabs in order, from the one after the tab shown
    # (the element list marks it selected); which tab holds the link is not on screen
    tabs = ctx.js("""() => [...document.querySelectorAll('#area ul a')].map(a => ({
        name: a.textContent.trim(), on: a.closest('li').getAttribute('aria-selected') === 'true'}))""")
    here = next((i for i, t in enumerate(tabs) if t["on"]), None)
    if here is None or len(tabs) < 2:
        raise OracleError(f"click-tab-2: no other tab to look for {target!r} on")
    nxt = (here + 1) % len(tabs)  # after the last, the first: a page may start on any tab
    return (f'"{target}" is not on "{tabs[here]["name"]}"; open the next tab, "{tabs[nxt]["name"]}", '
            f'to look for it.', ctx.click(ctx.page.query_selector_all("#area ul a")[nxt]))


@oracle("click-collapsible")
def click_collapsible(ctx: OracleContext):
    if ctx.animating():
        return "The section is still opening; wait for it.", ctx.wait(0.4)
    if not ctx.js("() => $('.ui-accordion-content:visible').length === 1"):
        return "The section is collapsed; click its header to expand it.", ctx.click("#area h3")
    return 'The section is expanded; click "Submit".', ctx.click("#subbtn")


@oracle("click-collapsible-2", max_steps=12)
def click_collapsible_2(ctx: OracleContext):
    if ctx.animating():
        return "A section is still opening; wait for it.", ctx.wait(0.4)
    target = ctx.quoted()[0]
    visible = [b for b in ctx.find_all_text(target, "#area .alink") if ctx.visible(b)]
    if visible:
        return f'The link "{target}" is visible; click it.', ctx.click(visible[0])
    # look through the sections in order, from the one after the section open (the element list
    # marks it selected); which section holds the link is not on screen
    found = ctx.js("""(t) => [...document.querySelectorAll('#area h3')].map(h => ({
        name: h.textContent.trim(), open: getComputedStyle(h.nextElementSibling).display !== 'none',
        has: [...h.nextElementSibling.querySelectorAll('.alink')].some(s => s.textContent === t)}))""", target)
    headers = ctx.page.query_selector_all("#area h3")
    here = next((i for i, f in enumerate(found) if f["open"]), None)
    if here is None:
        return f'"{target}" is not visible; expand "{found[0]["name"]}" to look for it.', ctx.click(headers[0])
    if not found[here]["has"]:
        nxt = (here + 1) % len(found)  # after the last, the first
        return (f'"{target}" is not in "{found[here]["name"]}"; expand the next section, '
                f'"{found[nxt]["name"]}", to look for it.', ctx.click(headers[nxt]))
    link = ctx.page.query_selector_all("#area .alink")
    scroll = ctx.reveal(next(h for h in link if h.text_content() == target and h.is_visible()))
    if scroll is not None:
        return f'"{target}" is below the visible part of the section; scroll to it.', scroll
    raise OracleError(f"click-collapsible-2: {target!r} is open but not visible")


@oracle("click-menu", max_steps=12)
def click_menu(ctx: OracleContext):
    path = ctx.instruction.removeprefix("Select ").split(">")
    for depth, name in enumerate(path):
        # the menu item of this level: its <div> label, among the visible items of the open menu
        boxes = [b for b in ctx.find_all_text(name, "#area li > div") if ctx.visible(b)]
        if not boxes:
            raise OracleError(f"click-menu: item {name!r} is not visible")
        if depth == len(path) - 1:
            return f'"{name}" is the item asked for; click it.', ctx.click(boxes[0])
        opened = ctx.js("""(n) => { const li = [...document.querySelectorAll('#area li')].find(
                l => l.firstElementChild && l.firstElementChild.textContent === n);
            const sub = li && li.querySelector(':scope > ul');
            return !!sub && getComputedStyle(sub).display !== 'none'; }""", name)
        if not opened:
            if ctx.memory.get("hovered") == name:  # jQuery-UI opens submenus after a short delay
                ctx.memory["hovered"] = None
                return f'The submenu of "{name}" is about to open; wait for it.', ctx.wait(0.3)
            ctx.memory["hovered"] = name
            return f'Hover "{name}" to open its submenu on the way to "{path[-1]}".', ctx.hover(boxes[0])
    raise OracleError("click-menu: empty path")


# -- lists -----------------------------------------------------------------------------------


@oracle("choose-list")
def choose_list(ctx: OracleContext):
    m = re.match(r"Select (.*) from the list and click Submit\.", ctx.instruction)
    if not m:
        raise OracleError(f"choose-list: cannot read {ctx.instruction!r}")
    want = m.group(1)
    current = ctx.js("() => { const s = document.querySelector('#options'); return s.options[s.selectedIndex].text; }")
    if current != want:
        return f'Choose "{want}" in the drop-down list.', ctx.select("#options", want)
    return _submit(ctx)


_OPTIONS_JS = "() => [...document.querySelectorAll('#options option')].map(o => [o.textContent, o.selected])"


@oracle("click-scroll-list", max_steps=20)
def click_scroll_list(ctx: OracleContext):
    m = re.match(r"Select (.*) from the scroll list and click Submit\.", ctx.instruction)
    if not m:
        raise OracleError(f"click-scroll-list: cannot read {ctx.instruction!r}")
    wanted = [w.strip() for w in m.group(1).split(",")]
    options = ctx.js(_OPTIONS_JS)
    names = [o[0] for o in options]
    selected = {o[0] for o in options if o[1]}
    if selected == set(wanted):
        return _submit(ctx)
    first = wanted[0]
    if first not in selected or "focus" not in ctx.memory:
        # a plain click selects the first item alone (and puts the keyboard focus on it)
        handles = ctx.page.query_selector_all("#options option")
        i, k = names.index(first), ctx.memory.get("focus")
        if ctx.reveal(handles[i]) is None:
            ctx.memory["focus"] = i
            return f'Click "{first}" in the list to select it.', ctx.click(handles[i])
        if k is None:
            # A wheel notch (100 px) can jump past a row of this short list, so the keyboard
            # does the scrolling: select a visible row, then arrow to the one asked for.
            k = next(j for j, h in enumerate(handles) if ctx.reveal(h) is None)
            ctx.memory["focus"] = k
            return (f'"{first}" is out of sight in the list; click "{names[k]}" to start from there.',
                    ctx.click(handles[k]))
        key = "down" if i > k else "up"
        ctx.memory["focus"] = k + (1 if i > k else -1)
        return f'Press {key.capitalize()} to move the selection towards "{first}".', ctx.hotkey(key)
    # further items: Ctrl+arrows move the focus without touching the selection, Ctrl+Space adds
    nxt = next(w for w in wanted if w not in selected)
    i, j = ctx.memory["focus"], names.index(nxt)
    if i == j:
        return f'The focus is on "{nxt}"; press Ctrl+Space to add it to the selection.', ctx.hotkey("ctrl", "space")
    ctx.memory["focus"] = i + (1 if j > i else -1)
    key = "down" if j > i else "up"
    return (f'Move the list focus {key} towards "{nxt}" with Ctrl+{key.capitalize()}, keeping the selection.',
            ctx.hotkey("ctrl", key))


# -- date picker ------------------------------------------------------------------------------

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def _date_from(text: str) -> date:
    m = re.search(r"(\d{2})/(\d{2})/(\d{4})", text)
    if not m:
        raise OracleError(f"no MM/DD/YYYY date in {text!r}")
    return date(int(m.group(3)), int(m.group(1)), int(m.group(2)))


def _pick_date(ctx: OracleContext, want: date, input_sel: str = "#datepicker"):
    """One step towards ``want`` in a jQuery-UI datepicker; None when the input already holds it."""
    if ctx.js("(s) => document.querySelector(s).value", input_sel) == want.strftime("%m/%d/%Y"):
        return None
    if ctx.animating():
        return "The calendar is still appearing; wait for it.", ctx.wait(0.4)
    if not ctx.exists("#ui-datepicker-div .ui-datepicker-calendar"):
        return "Click the date field to open the calendar.", ctx.click(input_sel)
    shown = ctx.js("""() => [document.querySelector('.ui-datepicker-month').textContent,
                             +document.querySelector('.ui-datepicker-year').textContent]""")
    shown_idx = int(shown[1]) * 12 + MONTHS.index(shown[0])
    want_idx = want.year * 12 + want.month - 1
    name = f"{MONTHS[want.month - 1]} {want.year}"
    # the thought first writes the date as the task does, then by name: a copy, then a twelve-way
    # lookup right after the month's digits, so the month compared with the calendar's is in words
    said = f"{want.strftime('%m/%d/%Y')} is {MONTHS[want.month - 1]} {want.day}, {want.year}"
    if want_idx < shown_idx:
        return (f"{said}; the calendar shows {shown[0]} {shown[1]}: go back a month.",
                ctx.click(".ui-datepicker-prev"))
    if want_idx > shown_idx:
        return (f"{said}; the calendar shows {shown[0]} {shown[1]}: go forward a month.",
                ctx.click(".ui-datepicker-next"))
    day = ctx.find_text(str(want.day), "#ui-datepicker-div td[data-handler=selectDay] a")
    return f'{said}; the calendar shows {name}: click day "{want.day}".', ctx.click(day)  # quoted: grounded


@oracle("choose-date", "choose-date-easy", "choose-date-medium", "choose-date-nodelay", max_steps=20)
def choose_date(ctx: OracleContext):
    step = _pick_date(ctx, _date_from(ctx.instruction))
    if step is not None:
        return step
    if ctx.animating():
        return "The calendar is closing; wait for it.", ctx.wait(0.4)
    return _submit(ctx)


# -- pie menu, shades ---------------------------------------------------------------------------

_PIE_JS = """(t) => { const e = [...document.querySelectorAll('#divWheel text[id^="wheelnav-divWheel-title-"]')]
  .find((e) => e.textContent === t); if (!e) return null;
  const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }"""


@oracle("click-pie", "click-pie-nodelay")
def click_pie(ctx: OracleContext):
    label = ctx.quoted()[0]
    title = ctx.js(_PIE_JS, label)  # the slice's label: where its box is
    if title is None:
        raise OracleError(f"click-pie: no item {label!r}")
    # The centre shows "+" while closed and "-" from the click on (a second click closes it again)
    if ctx.text("#wheelnav-divWheel-spreadertitle") != "-":
        return 'The pie menu shows "+": it is closed; click "+" to expand it.', ctx.click(
            "#wheelnav-divWheel-spreader")
    # It grows for about a second. One long wait, not waits until two reads agree: how many of
    # those it takes is not on the screen, one wait in the history is.
    if not ctx.memory.get("pie_waited"):
        ctx.memory["pie_waited"] = True
        return 'The pie menu shows "-" and is opening; wait for it.', ctx.wait(1.5)
    x, y, w, h = title
    return f'The slice labelled "{label}" is the one asked for; click it.', ctx.click((x + w / 2, y + h / 2))


_SHADES_JS = """() => [...document.querySelectorAll('#area span')].map(e => {
  const m = getComputedStyle(e).backgroundColor.match(/\\d+/g).map(Number);
  return {rgb: m.slice(0, 3), selected: e.classList.contains('selected')}; })"""
_HUES = {"red": 0.0, "green": 1 / 3, "blue": 2 / 3}


def _hue_name(rgb: list[int]) -> str:
    h, _, _ = colorsys.rgb_to_hls(*(c / 255 for c in rgb))
    return min(_HUES, key=lambda n: min(abs(h - _HUES[n]), 1 - abs(h - _HUES[n])))


@oracle("click-shades", max_steps=20)
def click_shades(ctx: OracleContext):
    m = re.search(r"shades of (\w+)", ctx.instruction)
    if not m:
        raise OracleError(f"click-shades: cannot read {ctx.instruction!r}")
    color = m.group(1)
    handles = ctx.page.query_selector_all("#area span")
    items = ctx.js(_SHADES_JS)
    wanted = [_hue_name(it["rgb"]) == color for it in items]
    done = sum(w and it["selected"] for w, it in zip(wanted, items))
    for k, it in enumerate(items):
        if wanted[k] != it["selected"]:
            el = ctx.listed(handles[k])
            name = f'the "{el.text}" square' if el is not None and el.text else "this square"
            if not it["selected"]:  # counted, so a click on one selected already reads as a slip; the
                # hue first, copied from the task, then the square's name, read with it in mind
                return (f"A shade of {color} not selected yet is {name} ({done + 1} of {sum(wanted)}); select it.",
                        ctx.click(handles[k]))
            return f"Deselect {name}: it is not {color}.", ctx.click(handles[k])
    return _submit(ctx, selector="#area button")


# -- book-flight -------------------------------------------------------------------------------

_BOOK_RE = re.compile(r"Book the (cheapest|shortest) one-way flight from: (.+?) to: (.+?) on (\d{2}/\d{2}/\d{4})\.")
_FIELD_JS = """(s) => { const e = document.querySelector(s);
  return {value: e.value, focused: document.activeElement === e, valid: DOMESTIC_FLIGHTS.indexOf(e.value) !== -1,
          all_selected: e.value.length > 0 && e.selectionStart === 0 && e.selectionEnd === e.value.length}; }"""
_SUGGESTIONS_JS = """() => { const out = [];
  for (const ul of document.querySelectorAll('ul.ui-autocomplete')) {
    if (getComputedStyle(ul).display === 'none') continue;
    ul.querySelectorAll('li').forEach((li, i) => out.push(li.textContent.trim()));
  } return out; }"""


def _fill_airport(ctx: OracleContext, sel: str, want: str, label: str):
    """One step towards ``sel`` holding a listed airport that contains ``want``; None when done."""
    f = ctx.js(_FIELD_JS, sel)
    if f["valid"] and want in f["value"]:
        return None
    if f["focused"] and f["value"] != want and ctx.js(_SUGGESTIONS_JS) and any(
            f["value"] == s and want in s for s in ctx.js(_SUGGESTIONS_JS)):
        # the arrow keys put the highlighted suggestion into the field; Enter takes it
        return f'"{f["value"]}" is highlighted; press Enter to take it.', ctx.hotkey("enter")
    if f["focused"] and (f["value"] == want or f["value"] in ctx.js(_SUGGESTIONS_JS)):
        suggestions = ctx.js(_SUGGESTIONS_JS)
        match = next((s for s in suggestions if want in s), None)
        if match is None:
            waits = ctx.memory["suggest_waits"] = ctx.memory.get("suggest_waits", 0) + 1
            if waits % 3 == 0:  # the list closed (or never opened): the Down key asks for it again
                return f'No suggestions are showing for "{want}"; press Down to bring them up.', ctx.hotkey("down")
            return f'Wait for the suggestions for "{want}" to appear.', ctx.wait(0.4)
        handle = next(h for h in ctx.page.query_selector_all("ul.ui-autocomplete li")
                      if h.is_visible() and h.text_content().strip() == match)
        p = ctx.point(handle)
        hit = ctx.js("([x, y, e]) => { const h = document.elementFromPoint(x, y); return !!h && e.contains(h); }",
                     [p.x + ctx.origin[0], p.y + ctx.origin[1], handle])
        if hit and ctx.visible(p):
            return f'Pick "{match}" from the suggestions.', ctx.click(p)
        return f'"{match}" is not in sight in the suggestions; press Down to move to it.', ctx.hotkey("down")
    if not f["focused"]:
        return f'Click the "{label}" field to type the {label.lower()} airport.', ctx.click(sel)
    if f["value"] and not f["all_selected"]:
        return f'The "{label}" field holds the wrong text; select it all to replace it.', ctx.hotkey("ctrl", "a")
    return f'Type "{want}" into the "{label}" field.', ctx.type(want)


@oracle("book-flight", "book-flight-nodelay", max_steps=25)
def book_flight(ctx: OracleContext):
    m = _BOOK_RE.search(ctx.instruction)
    if not m:
        raise OracleError(f"book-flight: cannot read {ctx.instruction!r}")
    criterion, origin, dest, when = m.groups()
    if ctx.exists("#menu:not(.hide)"):
        for sel, want, label in (("#flight-from", origin, "From"), ("#flight-to", dest, "To")):
            step = _fill_airport(ctx, sel, want, label)
            if step is not None:
                return step
        step = _pick_date(ctx, _date_from(when))
        if step is not None:
            return step
        if ctx.animating():
            return "The calendar is closing; wait for it.", ctx.wait(0.4)
        return "From, To and the date are filled in; click Search.", ctx.click("#search")
    flights = ctx.js("""() => [...document.querySelectorAll('#results .flight')].map(f => ({
        price: +f.querySelector('.flight-price').getAttribute('data-price'),
        duration: +f.querySelector('.time-duration').getAttribute('data-duration'),
        shown: f.querySelector('.time-duration').textContent}))""")
    if not flights:
        raise OracleError("book-flight: the search returned no flights")
    key = "price" if criterion == "cheapest" else "duration"
    best = min(range(len(flights)), key=lambda k: flights[k][key])
    button = ctx.page.query_selector_all("#results .flight .flight-price")[best]
    what = (f"${flights[best]['price']}" if key == "price" else flights[best]["shown"])
    scroll = ctx.reveal(button)
    if scroll is not None:
        return f"The {criterion} flight ({what}) is further down the list; scroll to it.", scroll
    return f"This is the {criterion} flight ({what}); book it.", ctx.click(button)
