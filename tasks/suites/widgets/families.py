"""The task families: each builds its widget block, goal, plan and instruction from a PageBuilder."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from html import escape
from typing import Callable

from tasks.suites.widgets import phrasings as P
from tasks.suites.widgets.goal import EnterDate, Fill, Goal, PickOption, PlanStep, Press, SetChecked, Slide
from tasks.suites.widgets.page import PageBuilder, attr


@dataclass
class TaskBlock:
    html: str
    instruction: str
    goal: Goal
    plan: list[PlanStep]


def _novel(b: PageBuilder) -> bool:
    # test episodes put a held-out word in the target label half of the time
    return b.split == "test" and b.rng.random() < 0.5


def _submit_row(b: PageBuilder, cancel: bool | None = None) -> tuple[str, str, str]:
    """The Submit (+ optional Cancel, a wrong commit) buttons; returns (html, submit id, caption)."""
    caption = b.caption(P.SUBMIT)
    html, sid = b.button(caption)
    if cancel if cancel is not None else b.rng.random() < 0.5:
        c, _ = b.button(b.caption(P.CANCEL), cls="plain")
        html = html + " " + c if b.rng.random() < 0.5 else c + " " + html
    return f'<div class="row">{html}</div>', sid, caption


def _value_for(b: PageBuilder, kind: str) -> str:
    first, last = b.vocab.person(b.rng, b.split)
    b.labels_used.extend([first, last])
    if kind in ("Name", "Full name"):
        return f"{first} {last}"
    if kind == "Email":
        return f"{first.lower()}.{last.lower()}@{b.rng.choice(b.vocab.domains)}"
    if kind == "Username":
        return f"{first.lower()}{b.rng.randint(1, 99)}"
    if kind == "Nickname":
        return first
    if kind == "Password":
        return f"{b.vocab.word(b.rng, 'nouns', b.split)}-{b.rng.randint(100, 9999)}!"
    if kind == "City":
        return b.take(b.vocab.word(b.rng, "cities", b.split))
    if kind == "Phone":
        return f"+1 555 {b.rng.randint(100, 999)} {b.rng.randint(1000, 9999)}"
    if kind == "Website":
        return f"www.{b.vocab.word(b.rng, 'nouns', b.split)}.example"
    if kind == "Postcode":
        return str(b.rng.randint(10000, 99999))
    lab = b.vocab.label(b.rng, b.split)
    b.labels_used.append(lab)
    return lab


def _fields(b: PageBuilder, n: int) -> list[tuple[str, str]]:
    """(label, html-kind) for n distinct text-like fields."""
    labels = b.rng.sample(P.FIELD_KINDS, n)
    for lab in labels:
        b.take(lab)
    kinds = {"Email": "email", "Password": "password"}
    return [(lab, kinds.get(lab, "textarea" if lab in ("Comment", "Notes", "Message") else "text")) for lab in labels]


# -- single clicks -------------------------------------------------------------------------------


def click_button(b: PageBuilder) -> TaskBlock:
    rng = b.rng
    labels = b.labels(rng.randint(2, 8), novel_first=_novel(b))
    target = labels[0]
    rng.shuffle(labels)
    cls = rng.choice(("", "plain"))
    parts, tid = [], ""
    for lab in labels:
        html, id = b.button(lab, cls=cls)
        parts.append(html)
        if lab == target:
            tid = id
    wrap = rng.choice(('<div class="row">{}</div>', '<div class="grid">{}</div>', '<div>{}</div>'))
    return TaskBlock(wrap.format(" ".join(parts)), P.instruction(rng, "click-button", label=target),
                     Goal(tid), [Press(tid, f'the "{target}" button', "because the task asks for it")])


def click_link(b: PageBuilder) -> TaskBlock:
    rng = b.rng
    labels = b.labels(rng.randint(2, 8), novel_first=_novel(b))
    target = labels[0]
    rng.shuffle(labels)
    links, tid = [], ""
    for lab in labels:
        html, id = b.link(lab)
        links.append(html)
        if lab == target:
            tid = id
    if rng.random() < 0.5:
        html = "<ul>" + "".join(f"<li>{x}</li>" for x in links) + "</ul>"
    else:  # links inline in running text
        html = "<p>" + " ".join(f"{escape(rng.choice(P.FILLER))} {x}." for x in links) + "</p>"
    return TaskBlock(html, P.instruction(rng, "click-link", label=target), Goal(tid),
                     [Press(tid, f'the link "{target}"', "because the task asks for it")])


# -- forms ---------------------------------------------------------------------------------------


def type_field(b: PageBuilder) -> TaskBlock:
    rng = b.rng
    fields = _fields(b, rng.randint(1, 4))
    t = rng.randrange(len(fields))
    rows, ids = [], []
    for lab, kind in fields:
        html, id = b.text_input(lab, kind if kind != "textarea" else "text", textarea=kind == "textarea")
        rows.append(html)
        ids.append(id)
    text = _value_for(b, fields[t][0])
    sub_html, sid, caption = _submit_row(b)
    form_commit = f' data-g-commit="{sid}"'  # Enter in a field submits like the button
    html = f'<form id="{b.nid("form")}"{form_commit}>{"".join(rows)}{sub_html}</form>'
    values = {id: "" for id in ids}
    values[ids[t]] = text
    label = fields[t][0]
    return TaskBlock(html, P.instruction(rng, "type-field", text=text, field=label, submit=caption),
                     Goal(sid, values),
                     [Fill(ids[t], text, label), Press(sid, f'the "{caption}" button', "to submit the form")])


def fill_form_submit(b: PageBuilder) -> TaskBlock:
    rng = b.rng
    fields = _fields(b, rng.randint(2, 5))
    rows, plan, values, pairs = [], [], {}, []
    for lab, kind in fields:
        html, id = b.text_input(lab, kind if kind != "textarea" else "text", textarea=kind == "textarea")
        rows.append(html)
        v = _value_for(b, lab)
        values[id] = v
        plan.append(Fill(id, v, lab))
        pairs.append(f'{lab} "{v}"')
    if rng.random() < 0.4:  # a select among the text fields
        lab = b.take(rng.choice([x for x in ("Country", "Role", "Plan", "Team", "Region") if x.lower() not in b.used]))
        opts = b.labels(rng.randint(3, 6))
        id = b.nid("s")
        rows.insert(rng.randint(0, len(rows)), f'<label class="field" for="{id}"><span>{escape(lab)}</span>'
                    f'<select id="{id}" data-g-field="{id}">' + "".join(
                        f'<option value="{attr(o)}">{escape(o)}</option>' for o in opts) + "</select></label>")
        v = rng.choice(opts[1:])
        values[id] = v
        plan.append(PickOption(id, v, lab))
        pairs.append(f'{lab} "{v}"')
    sub_html, sid, caption = _submit_row(b)
    html = f'<form id="{b.nid("form")}">{"".join(rows)}{sub_html}</form>'
    plan.append(Press(sid, f'the "{caption}" button', "to submit the completed form"))
    pairs_text = ", ".join(pairs[:-1]) + " and " + pairs[-1]
    return TaskBlock(html, P.instruction(rng, "fill-form-submit", pairs=pairs_text, submit=caption),
                     Goal(sid, values), plan)


def check_boxes(b: PageBuilder) -> TaskBlock:
    rng = b.rng
    labels = b.labels(rng.randint(3, 8), novel_first=_novel(b))
    want = set(rng.sample(range(len(labels)), rng.randint(1, min(4, len(labels) - 1))))
    rows, ids, values = [], [], {}
    for i, lab in enumerate(labels):
        html, id = b.checkbox(lab, checked=rng.random() < 0.25)
        rows.append(html)
        ids.append(id)
        values[id] = i in want
    # the wanted boxes first, in the instruction's order, each thought going through those already
    # ticked; then any other box that is ticked; every thought starts at the first asked box, so
    # what to do is decided after reading the states, not in the thought's first word
    asked = sorted(want)
    names = tuple(labels[i] for i in asked)
    plan = [SetChecked(ids[i], True, labels[i], names[:k]) for k, i in enumerate(asked)]
    plan += [SetChecked(ids[i], False, labels[i], names, unasked=True) for i in range(len(labels)) if i not in want]
    sub_html, sid, caption = _submit_row(b)
    cols = ' class="grid"' if rng.random() < 0.3 else ""
    html = f'<fieldset><legend>{escape(b.label())}</legend><div{cols}>{"".join(rows)}</div></fieldset>{sub_html}'
    seen = tuple(f'"{n}" is ticked' for n in names) + ("no other box is checked",)
    plan.append(Press(sid, f'the "{caption}" button', seen=seen))
    items = P.join_items([labels[i] for i in sorted(want)])
    return TaskBlock(html, P.instruction(rng, "check-boxes", items=items, submit=caption), Goal(sid, values), plan)


def _radio_group(b: PageBuilder, name: str, options: list[str], checked: int | None) -> tuple[str, dict[str, str]]:
    ids, rows = {}, []
    for i, opt in enumerate(options):
        id = b.nid("r")
        ids[opt] = id
        ch = " checked" if i == checked else ""
        rows.append(f'<label class="check" for="{id}"><input type="radio" id="{id}" name="{name}" '
                    f'value="{attr(opt)}" data-g-field="{name}"{ch}><span>{escape(opt)}</span></label>')
    return "".join(rows), ids


def choose_radio(b: PageBuilder) -> TaskBlock:
    rng = b.rng
    groups = []
    for gi in range(rng.randint(1, 2)):
        gname = b.label()
        opts = b.labels(rng.randint(2, 6), novel_first=gi == 0 and _novel(b))
        checked = rng.randrange(len(opts)) if rng.random() < 0.5 else None
        key = b.nid("rg")
        html, ids = _radio_group(b, key, opts, checked)
        groups.append((gname, key, opts, checked, ids, html))
    t = rng.randrange(len(groups))
    gname, key, opts, checked, ids, _ = groups[t]
    option = rng.choice([o for i, o in enumerate(opts) if i != checked])
    values = {k: (o[c] if c is not None else None) for _, k, o, c, _, _ in groups}
    values[key] = option
    sub_html, sid, caption = _submit_row(b)
    html = "".join(f'<fieldset><legend>{escape(g[0])}</legend>{g[5]}</fieldset>' for g in groups) + sub_html
    return TaskBlock(html, P.instruction(rng, "choose-radio", option=option, group=gname, submit=caption),
                     Goal(sid, values),
                     [SetChecked(ids[option], True, option), Press(sid, f'the "{caption}" button', "to submit the choice")])


def select_option(b: PageBuilder) -> TaskBlock:
    rng = b.rng
    rows, selects = [], []
    for si in range(rng.randint(1, 2)):
        lab = b.label()
        opts = b.labels(rng.randint(3, 10), novel_first=si == 0 and _novel(b))
        id = b.nid("s")
        placeholder = rng.random() < 0.5
        first = '<option value="">-- choose --</option>' if placeholder else ""
        rows.append(f'<label class="field" for="{id}"><span>{escape(lab)}</span><select id="{id}" data-g-field="{id}">'
                    + first + "".join(f'<option value="{attr(o)}">{escape(o)}</option>' for o in opts)
                    + "</select></label>")
        selects.append((lab, id, opts, "" if placeholder else opts[0]))
    t = rng.randrange(len(selects))
    lab, id, opts, initial = selects[t]
    option = rng.choice([o for o in opts if o != initial])
    values = {s[1]: s[3] for s in selects}
    values[id] = option
    sub_html, sid, caption = _submit_row(b)
    return TaskBlock("".join(rows) + sub_html,
                     P.instruction(rng, "select-option", option=option, field=lab, submit=caption), Goal(sid, values),
                     [PickOption(id, option, lab), Press(sid, f'the "{caption}" button', "to submit the selection")])


def toggle_setting(b: PageBuilder) -> TaskBlock:
    rng = b.rng
    tabs = b.labels(rng.randint(2, 5))
    set_id = b.nid("tabs")
    head, panels, switches = [], [], []  # switches: (tab index, label, id, initial)
    for ti, tab in enumerate(tabs):
        pid, bid = b.nid("panel"), b.nid("tab")
        sel = "true" if ti == 0 else "false"
        head.append(f'<button type="button" role="tab" id="{bid}" aria-selected="{sel}" data-g-tab="{pid}">{escape(tab)}</button>')
        rows = []
        for _ in range(rng.randint(1, 4)):
            lab, on = b.label(novel=ti > 0 and _novel(b)), rng.random() < 0.5
            html, cid = b.checkbox(lab, on, cls="check switch")
            rows.append(html)
            switches.append((ti, lab, cid, on, bid, pid))
        hidden = "" if ti == 0 else " hidden"
        panels.append(f'<div role="tabpanel" id="{pid}"{hidden}>{"".join(rows)}</div>')
    ti, lab, cid, on, bid, pid = rng.choice([s for s in switches if s[0] > 0])
    values = {s[2]: s[3] for s in switches}
    values[cid] = not on
    sub_html, sid, caption = _submit_row(b)
    html = (f'<div data-g-tabset id="{set_id}"><div class="tabs" role="tablist">{"".join(head)}</div>'
            f'{"".join(panels)}</div>{sub_html}')
    state = "off" if on else "on"
    return TaskBlock(html, P.instruction(rng, "toggle-setting", tab=tabs[ti], setting=lab, state=state, submit=caption),
                     Goal(sid, values),
                     [Press(bid, f'the "{tabs[ti]}" tab', f'to reveal the "{lab}" setting', until=pid),
                      SetChecked(cid, not on, lab),
                      Press(sid, f'the "{caption}" button', "to save the setting")])


# -- disclosure widgets --------------------------------------------------------------------------


def accordion_open_click(b: PageBuilder) -> TaskBlock:
    rng = b.rng
    sections = b.labels(rng.randint(2, 5))
    t = rng.randrange(len(sections))
    parts, target = [], None
    for si, sec in enumerate(sections):
        hid, body = b.nid("acc"), b.nid("accbody")
        btns = []
        for bi, lab in enumerate(b.labels(rng.randint(1, 3), novel_first=si == t and _novel(b))):
            html, id = b.button(lab)
            btns.append(html)
            if si == t and bi == 0:
                target = (lab, id, hid, body)
        parts.append(f'<button type="button" class="acc-head" id="{hid}" aria-expanded="false" '
                     f'data-g-toggle="{body}">&#9656; {escape(sec)}</button>'
                     f'<div class="acc-body" id="{body}" hidden><p class="muted">{escape(rng.choice(P.FILLER))}</p>'
                     f'<div class="row">{" ".join(btns)}</div></div>')
    lab, id, hid, body = target
    return TaskBlock("".join(parts), P.instruction(rng, "accordion-open-click", section=sections[t], label=lab),
                     Goal(id), [Press(hid, f'the "{sections[t]}" section header', f'to show "{lab}"', until=body),
                                Press(id, f'the "{lab}" button', "inside the opened section")])


def dialog_confirm(b: PageBuilder) -> TaskBlock:
    rng = b.rng
    triggers = b.labels(rng.randint(1, 4), novel_first=_novel(b))
    t = rng.randrange(len(triggers))
    confirm_caption, cancel_caption = rng.choice(P.CONFIRM), rng.choice(P.CANCEL)
    btns, target = [], None
    for i, trig in enumerate(triggers):
        oid = b.nid("dlg")
        html, bid = b.button(trig, commit=False, extra=f' data-g-open="{oid}"')
        btns.append(html)
        ok, okid = b.button(confirm_caption)
        cancel, _ = b.button(cancel_caption, commit=False, cls="plain", extra=" data-g-close")
        order = ok + " " + cancel if rng.random() < 0.5 else cancel + " " + ok
        b.overlays.append(f'<div class="overlay" id="{oid}" hidden><div class="dialog" role="dialog" aria-modal="true">'
                          f'<h2>{escape(trig)}</h2><p>{escape(rng.choice(P.DIALOG_TEXT))}</p>'
                          f'<div class="row">{order}</div></div></div>')
        if i == t:
            target = (trig, bid, okid, oid)
    trig, bid, okid, oid = target
    return TaskBlock(f'<div class="row">{" ".join(btns)}</div>',
                     P.instruction(rng, "dialog-confirm", trigger=trig, confirm=confirm_caption), Goal(okid),
                     [Press(bid, f'the "{trig}" button', "to open its confirmation dialog", until=oid),
                      Press(okid, f'"{confirm_caption}" in the dialog', "to confirm")])


def menu_item(b: PageBuilder) -> TaskBlock:
    rng = b.rng
    menus = b.labels(rng.randint(1, 4))
    t = rng.randrange(len(menus))
    parts, target = [], None
    for mi, menu in enumerate(menus):
        lid = b.nid("menu")
        mb, mbid = b.button(menu + " \u25BE", commit=False, cls="plain",
                            extra=f' aria-haspopup="menu" aria-expanded="false" data-g-menu="{lid}"')
        items = []
        for ii, lab in enumerate(b.labels(rng.randint(2, 7), novel_first=mi == t and _novel(b))):
            html, id = b.button(lab, extra=' role="menuitem"')
            items.append(html)
            if mi == t and ii == 0:
                target = (lab, id, mbid, lid)
        rng.shuffle(items)
        parts.append(f'<div class="menu">{mb}<div class="menu-list" id="{lid}" role="menu" hidden>{"".join(items)}</div></div>')
    lab, id, mbid, lid = target
    return TaskBlock(f'<nav class="menubar">{"".join(parts)}</nav><div style="height:14em"></div>',
                     P.instruction(rng, "menu-item", menu=menus[t], item=lab), Goal(id),
                     [Press(mbid, f'the "{menus[t]}" menu', f'to find "{lab}"', until=lid),
                      Press(id, f'the menu item "{lab}"', "because it is the requested entry")])


# -- value widgets -------------------------------------------------------------------------------


def _date_text(rng, d: dt.date) -> str:
    m = P.MONTHS[d.month - 1]
    return rng.choice((f"{m} {d.day}, {d.year}", f"{d.day} {m} {d.year}", d.isoformat()))


def set_date(b: PageBuilder) -> TaskBlock:
    rng = b.rng
    rows, dates = [], []
    for lab in rng.sample(P.DATE_FIELDS, rng.randint(1, 2)):
        b.take(lab)
        id = b.nid("d")
        init = "" if rng.random() < 0.6 else (dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(12000))).isoformat()
        rows.append(f'<label class="field" for="{id}"><span>{escape(lab)}</span>'
                    f'<input type="date" id="{id}" data-g-field="{id}" value="{init}"></label>')
        dates.append((lab, id, init))
    lab, id, init = rng.choice(dates)
    day = dt.date(1990, 1, 1) + dt.timedelta(days=rng.randrange(16000))
    values = {d[1]: d[2] for d in dates}
    values[id] = day.isoformat()
    sub_html, sid, caption = _submit_row(b)
    said = _date_text(rng, day)
    return TaskBlock("".join(rows) + sub_html,
                     P.instruction(rng, "set-date", field=lab, date=said, submit=caption),
                     Goal(sid, values),
                     [EnterDate(id, day.isoformat(), lab, said), Press(sid, f'the "{caption}" button', "to submit the date")])


def set_slider(b: PageBuilder) -> TaskBlock:
    rng = b.rng
    rows, sliders = [], []
    for lab in rng.sample(P.SLIDER_FIELDS, rng.randint(1, 2)):
        b.take(lab)
        hi, step = rng.choice(((10, 1), (20, 1), (50, 1), (50, 5), (100, 1), (100, 5), (100, 10), (200, 10), (200, 5)))
        init = rng.randrange(0, hi + 1, step)
        id, out = b.nid("sl"), b.nid("out")
        rows.append(f'<label class="field" for="{id}"><span>{escape(lab)} <output id="{out}">{init}</output></span>'
                    f'<input type="range" id="{id}" data-g-field="{id}" data-g-output="{out}" min="0" max="{hi}" '
                    f'step="{step}" value="{init}"></label>')
        sliders.append((lab, id, init, hi, step))
    lab, id, init, hi, step = rng.choice(sliders)
    value = rng.choice([v for v in range(0, hi + 1, step) if v != init])
    values = {s[1]: str(s[2]) for s in sliders}
    values[id] = str(value)
    sub_html, sid, caption = _submit_row(b)
    return TaskBlock("".join(rows) + sub_html,
                     P.instruction(rng, "set-slider", field=lab, value=str(value), submit=caption), Goal(sid, values),
                     [Slide(id, value, lab), Press(sid, f'the "{caption}" button', "to apply the value")])


# -- collections ---------------------------------------------------------------------------------


def table_row_action(b: PageBuilder) -> TaskBlock:
    rng = b.rng
    n = rng.randint(3, 10)
    names = b.labels(n, novel_first=_novel(b))
    owners = []
    for _ in range(n):
        while True:
            first, last = b.vocab.person(rng, b.split)
            o = f"{first} {last}"
            if o.lower() not in b.used:
                owners.append(b.take(o))
                break
    cols = ["Name", "Owner", "Status", "Updated"] if not b.narrow else ["Name", "Status"]
    if not b.narrow and rng.random() < 0.5:
        cols.append("Amount")
    actions = rng.sample(P.ROW_ACTIONS, rng.randint(1, 3 if not b.narrow else 2))
    key_col = "Owner" if "Owner" in cols and rng.random() < 0.3 else "Name"
    t = rng.randrange(n)
    target_action = rng.choice(actions)
    body, tid = [], ""
    for i in range(n):
        cells = {"Name": names[i], "Owner": owners[i], "Status": rng.choice(P.STATUS),
                 "Updated": (dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(700))).isoformat(),
                 "Amount": f"${rng.randint(5, 99999):,}"}
        btns = []
        for a in actions:
            html, id = b.button(a, cls="plain", extra=f' aria-label="{attr(a + " " + names[i])}"')
            btns.append(html)
            if i == t and a == target_action:
                tid = id
        body.append("<tr>" + "".join(f"<td>{escape(cells[c])}</td>" for c in cols)
                    + f'<td><div class="row">{" ".join(btns)}</div></td></tr>')
    head = "".join(f"<th>{c}</th>" for c in cols) + "<th></th>"
    value = names[t] if key_col == "Name" else owners[t]
    html = f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    return TaskBlock(html, P.instruction(rng, "table-row-action", action=target_action, column=key_col, value=value),
                     Goal(tid), [Press(tid, f'"{target_action}" in the row of "{value}"', "because that row matches")])


def scroll_list_click(b: PageBuilder) -> TaskBlock:
    rng = b.rng
    n = rng.randint(15, 40)
    labels = b.labels(n, novel_first=_novel(b))
    target = labels[0]
    rng.shuffle(labels)
    # put the target mostly out of the initial view, so scrolling is needed
    labels.remove(target)
    labels.insert(rng.randint(n // 3, n - 1), target)
    list_name = b.label()
    items, tid = [], ""
    for lab in labels:
        html, id = b.button(lab)
        items.append(f"<li>{html}</li>")
        if lab == target:
            tid = id
    h = rng.randint(120, 260)
    html = (f'<h2>{escape(list_name)}</h2><ul class="scroll-list" role="listbox" style="max-height:{h}px">'
            f'{"".join(items)}</ul>')
    return TaskBlock(html, P.instruction(rng, "scroll-list-click", label=target, list=list_name), Goal(tid),
                     [Press(tid, f'"{target}" in the list', "because it is the requested item", reach=16)])


def search_open_result(b: PageBuilder) -> TaskBlock:
    rng = b.rng
    query = b.vocab.word(rng, "nouns", b.split, novel=_novel(b))
    b.take(query)
    q = query.capitalize()
    # several results share the query word, so the agent must pick the exact title
    matching, k = [], rng.randint(2, 5)
    while len(matching) < k:
        lab = f"{b.vocab.word(rng, rng.choice(('adjectives', 'verbs')), b.split).capitalize()} {query}"
        if lab.lower() not in b.used:
            matching.append(b.take(lab))
    others = [x for x in b.labels(rng.randint(3, 10)) if query not in x.lower().split()]
    target = rng.choice(matching)
    items = matching + others
    rng.shuffle(items)
    rid, fid, inp = b.nid("results"), b.nid("search"), b.nid("q")
    lis, tid = [], ""
    for lab in items:
        html, id = b.link(lab)
        lis.append(f'<li data-g-text="{attr(lab)}" hidden>{html}</li>')
        if lab == target:
            tid = id
    btn_caption = b.caption(P.SEARCH)
    sbtn = b.nid("sb")
    html = (f'<form id="{fid}" role="search" data-g-search="{rid}" class="row">'
            f'<input type="search" id="{inp}" aria-label="Search" placeholder="Search..." autocomplete="off" style="flex:1">'
            f'<button type="submit" id="{sbtn}">{escape(btn_caption)}</button></form>'
            f'<ul class="results" id="{rid}" hidden><li class="none muted" hidden>No results found</li>{"".join(lis)}</ul>')
    return TaskBlock(html, P.instruction(rng, "search-open-result", query=q, result=target), Goal(tid),
                     [Fill(inp, q, "Search"),
                      Press(sbtn, f'the "{btn_caption}" button', "to run the search", until=tid),
                      Press(tid, f'the result "{target}"', "because it is the requested result")])


FAMILIES: dict[str, Callable[[PageBuilder], TaskBlock]] = {
    "click-button": click_button,
    "click-link": click_link,
    "type-field": type_field,
    "fill-form-submit": fill_form_submit,
    "check-boxes": check_boxes,
    "choose-radio": choose_radio,
    "select-option": select_option,
    "toggle-setting": toggle_setting,
    "accordion-open-click": accordion_open_click,
    "dialog-confirm": dialog_confirm,
    "menu-item": menu_item,
    "set-date": set_date,
    "set-slider": set_slider,
    "table-row-action": table_row_action,
    "scroll-list-click": scroll_list_click,
    "search-open-result": search_open_result,
}
