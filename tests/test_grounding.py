"""Textual grounding (policy.grounding): a click moves onto the element its thought quotes, only when
the model's own point missed every named element."""
from __future__ import annotations

import dataclasses

from actions.schema import Click, Drag, Hotkey, Point, Scroll, Step, Type
from perception.observation import Box, Element, Observation
from perception.space import CoordinateSpace
from policy.grounding import ground_step, quoted


def el(i: int, role: str, text: str, x: float, y: float, w: float = 100, h: float = 30,
       interactive: bool = True, checked: bool | None = None) -> Element:
    return Element(index=i, role=role, text=text, box=Box(x, y, w, h), interactive=interactive, checked=checked)


SCREEN = Observation(screenshot=None, width=800, height=600, elements=[
    el(0, "heading", "Upload image", 20, 10, 300, 40, interactive=False),
    el(1, "link", "Sync warehouse", 20, 100),
    el(2, "link", "Upload image", 20, 160),
    el(3, "button", "Upload image", 600, 500),
    el(4, "button", "Save draft", 300, 300),
    el(5, "link", "Below the fold", 20, 900),
])


def click(x: float, y: float, thought: str) -> Step:
    return Step(thought=thought, actions=[Click(point=Point(x=x, y=y))], raw="click")


def test_a_control_placed_in_a_row_grounds_to_the_one_in_that_row():
    inbox = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "text", "Debee", 20, 100, 80, 14, interactive=False), el(1, "icon", "star", 300, 100, 14, 14),
        el(2, "text", "Marketa", 20, 140, 80, 14, interactive=False), el(3, "icon", "star", 300, 140, 14, 14),
        el(4, "text", "Bobine", 20, 180, 80, 14, interactive=False), el(5, "icon", "star", 300, 180, 14, 14)])
    star = 'The email from "Marketa" is in the list; click "star" in the row of "Marketa" to mark it as important.'
    step, moved = ground_step(click(307, 187, star), inbox)  # Bobine's star, the model's point a row off
    assert moved and step.actions[0].point == Point(x=307, y=147)
    step, moved = ground_step(click(307, 147, star), inbox)
    assert not moved
    step, moved = ground_step(click(307, 187, 'click "star" in the row of "Nobody".'), inbox)
    assert not moved  # no such row: the model's own point stands
    feed = Observation(screenshot=None, width=800, height=600, elements=[  # two posts, each headed by its handle
        el(0, "text", "@vanda", 60, 50, 80, 14), el(1, "icon", "reply", 20, 100, 16, 16),
        el(2, "text", "@felis", 60, 150, 80, 14), el(3, "icon", "reply", 20, 200, 16, 16)])
    reply = 'This post is by @felis and its "Reply" button is not marked yet; click it.'
    step, moved = ground_step(click(28, 108, reply), feed)  # @vanda's button, the model's point a post off
    assert moved and step.actions[0].point == Point(x=28, y=208)
    assert not ground_step(click(28, 108, reply.replace("@felis", "@vanda")), feed)[1]


def test_a_kind_of_control_no_text_carries_grounds_to_a_control_of_that_role():
    widgets = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "textbox", "", 20, 100), el(1, "radio", "He", 20, 200, 20, 20), el(2, "checkbox", "radio", 400, 300)])
    kind = 'This is a "{}" widget, the kind asked for; click it.'
    step, moved = ground_step(click(70, 115, kind.format("radio")), widgets)  # a box's text says "radio"
    assert moved and step.actions[0].point == Point(x=450, y=315)
    nameless = Observation(screenshot=None, width=800, height=600, elements=widgets.elements[:2])
    step, moved = ground_step(click(70, 115, kind.format("radio")), nameless)
    assert moved and step.actions[0].point == Point(x=30, y=210)
    assert not ground_step(click(70, 115, kind.format("slider")), nameless)[1]


def test_a_name_in_two_cases_grounds_to_the_one_quoted():
    obs = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "button", "previous", 100, 100), el(1, "button", "Previous", 300, 100)])
    step, moved = ground_step(click(100, 100, 'The button labelled "Previous" matches the instruction; click it.'), obs)
    assert moved and step.actions[0].point == Point(x=300 + 50, y=100 + 15)
    step, moved = ground_step(click(300, 100, 'The button labelled "previous" matches; click it.'), obs)
    assert moved and step.actions[0].point == Point(x=100 + 50, y=100 + 15)


def test_quoted_strings_are_folded_and_deduplicated():
    assert quoted('Click the "Upload  Image" link, then “Save”; not "upload image" again.') == \
        ["upload image", "save"]
    assert quoted("Nothing quoted here.") == [] and quoted('An empty "" quote') == []


def test_a_click_that_missed_moves_to_the_nearest_named_interactive_element():
    step, moved = ground_step(click(70, 115, 'Click the "upload image" link.'), SCREEN)  # on "Sync warehouse"
    assert moved and step.actions[0].point == Point(x=70, y=175)  # the link, not the heading or far button
    assert step.thought == 'Click the "upload image" link.' and step.raw == "click"
    step, moved = ground_step(click(560, 450, 'Click "Upload image".'), SCREEN)  # nearer the button
    assert moved and step.actions[0].point == Point(x=650, y=515)
    step, moved = ground_step(click(170, 30, 'Click "Upload image".'), SCREEN)  # on the same-named heading
    assert moved and step.actions[0].point == Point(x=70, y=175)  # a control of that name is preferred
    grid = CoordinateSpace.relative(800, 600, 1000)  # the MoE policy's 0..1000 grid: a point it could write
    step, moved = ground_step(click(70, 115, 'Click the "upload image" link.'), SCREEN, grid)
    assert moved and step.actions[0].point == Point(x=70.4, y=175.2)


def test_whole_word_containment_is_the_fallback_and_exact_text_wins():
    step, moved = ground_step(click(70, 175, 'Press "Save".'), SCREEN)
    assert moved and step.actions[0].point == Point(x=350, y=315)  # "Save draft" contains "Save"
    partial = ground_step(click(70, 175, 'Press "Sav".'), SCREEN)  # not a whole word: left alone
    assert partial[1] is False


def test_left_alone_when_nothing_says_otherwise():
    on_target = click(40, 170, 'Click the "Upload image" link.')
    assert ground_step(on_target, SCREEN) == (on_target, False)  # already on a named element
    unnamed = click(70, 115, "Click the second link.")
    assert ground_step(unnamed, SCREEN) == (unnamed, False)  # no quote
    absent = click(70, 115, 'Click "Export"')
    assert ground_step(absent, SCREEN) == (absent, False)  # no element carries the name
    offscreen = click(70, 115, 'Click "Below the fold"')
    assert ground_step(offscreen, SCREEN) == (offscreen, False)  # its centre is outside the screen: scroll first
    typing = Step(thought='Type "Upload image".', actions=[Type(text="x")], raw="type")
    assert ground_step(typing, SCREEN) == (typing, False)
    scroll = Step(thought='Scroll to "Upload image".', actions=[Scroll(point=Point(x=5, y=5), direction="down")])
    assert ground_step(scroll, SCREEN)[1] is False
    drag = Step(thought='Drag "Save draft".', actions=[Drag(start=Point(x=1, y=1), end=Point(x=9, y=9))])
    assert ground_step(drag, SCREEN)[1] is False
    prose = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "text", 'Close the dialog box by clicking the "x".', 0, 0, 160, 50, interactive=False),
        el(1, "button", "", 300, 300, 20, 20)])  # an icon button: no text to match
    sentence = click(310, 310, 'The dialog has a close "x" in its title bar; click it.')
    assert ground_step(sentence, prose) == (sentence, False)  # static text is matched whole, not by a word
    form = Observation(screenshot=None, width=160, height=210, elements=[
        el(0, "text", "Released Date", 12, 57, 136, 11, interactive=False),  # a caption, not a <label>
        el(1, "textbox", "", 12, 70, 136, 18)])  # its input: no text to match
    on_input = click(80, 78, 'Click the "Released Date" field.')
    assert ground_step(on_input, form) == (on_input, False)  # the caption does not pull it off the input
    step, moved = ground_step(click(80, 150, 'Click the "Released Date" field.'), form)  # on nothing
    assert moved and step.actions[0].point == Point(x=80, y=62.5)
    forward = Observation(screenshot=None, width=160, height=210, elements=[  # MiniWoB++'s forward form
        el(0, "label", "to:", 4, 79, 15.5, 11),  # a <label> not tied to its input: clicking it focuses nothing
        el(1, "textbox", "", 22, 78, 130, 14)])
    on_field = click(81, 84, 'Click the "to" field to type into it.')
    assert ground_step(on_field, forward) == (on_field, False)
    feed = Observation(screenshot=None, width=160, height=210, elements=[  # a "more" toggle holds its menu's text
        el(0, "clickable", "Share via DM Copy link to Tweet Embed Tweet Mute @jess Block @jess Report", 102, 66, 29, 11)])
    item = click(96, 154, 'Click "Block" in the menu of @jess\'s post.')  # on the open menu's item (not listed)
    assert ground_step(item, feed) == (item, False)
    inbox = Observation(screenshot=None, width=160, height=210, elements=[  # rows start with the sender
        el(0, "clickable", "Hildagard Vitae augue. Vitae auctor..", 2, 73, 155, 39),
        el(1, "clickable", "Farrand Ridiculus eget... Imperdiet. Curs..", 2, 112, 155, 39),
        el(2, "clickable", "", 137, 120, 12, 12)])  # the row's trash icon
    step, moved = ground_step(click(80, 90, 'The email from "Farrand" is the one to reply; open it.'), inbox)
    assert moved and step.actions[0].point == Point(x=79.5, y=131.5)  # a row's box shows its whole text
    blind = Observation(screenshot=None, width=800, height=600, elements=[])
    assert ground_step(click(70, 115, 'Click "Upload image"'), blind)[1] is False


def test_the_moe_policy_grounds_by_default_and_sampling_for_grpo_does_not():
    import torch

    from policy.moe import MoEConfig, MoEPolicy, build_model
    from policy.moe.tokenizer import GalagoTokenizer
    from policy.train.rollout import SamplingPolicy

    torch.manual_seed(0)
    tok = GalagoTokenizer.train(["Click the button"], vocab_size=1300)
    model = build_model(MoEConfig.tiny(), tok)
    assert MoEPolicy(model, tok).ground and not MoEPolicy(model, tok, ground=False).ground
    sampling = SamplingPolicy(model, tok)
    assert not sampling.ground and sampling.grammar is None and not sampling.verify  # on-policy samples


def test_the_element_carrying_more_of_the_quoted_names_wins():
    table = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "text", "Ann", 20, 100), el(1, "button", "Remove Ann", 300, 100), el(2, "button", "Details Ann", 500, 100),
        el(3, "text", "Bob", 20, 200), el(4, "button", "Remove Bob", 300, 200), el(5, "button", "Details Bob", 500, 200),
    ])
    step, moved = ground_step(click(70, 215, 'Click "Remove" in the row of "Bob".'), table)  # on the name cell
    assert moved and step.actions[0].point == Point(x=350, y=215)


def test_the_element_with_least_text_besides_the_names_wins():
    table = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "button", "Delete Flag badge", 300, 100, 150), el(1, "button", "Delete Flag", 300, 200, 150),
    ])
    # nearer the "Delete Flag badge" row, but "Delete Flag" is the row the thought names
    step, moved = ground_step(click(380, 140, 'Click "Delete" in the row of "Flag".'), table)
    assert moved and step.actions[0].point == Point(x=375, y=215)


def test_a_slip_in_copying_a_name_is_read_as_the_name_the_task_quotes():
    table = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "text", "Cheap printer", 20, 100, interactive=False), el(1, "button", "Remove Cheap printer", 300, 100, 200),
        el(2, "text", "Download rating", 20, 200, interactive=False),
        el(3, "button", "Remove Download rating", 300, 200, 200),
    ])
    task = 'Find "Download rating" in the Name column and click "Remove" in that row.'
    slip = click(400, 140, 'Click "Remove" in the row of "Down rating".')  # between the rows, nearer the first
    step, moved = ground_step(slip, table, task=task)
    assert moved and step.actions[0].point == Point(x=400, y=215)
    step, moved = ground_step(slip, table)  # without the task only "Remove" is read: the nearest one
    assert moved and step.actions[0].point == Point(x=400, y=115)
    # a name on screen, or one far from every quoted name of the task, is taken as written
    other = click(400, 140, 'Click "Remove" in the row of "Cheap printer".')
    assert ground_step(other, table, task=task)[0].actions[0].point == Point(x=400, y=115)
    far = click(400, 140, 'Click "Remove" in the row of "Quartz".')
    assert ground_step(far, table, task=task)[0].actions[0].point == Point(x=400, y=115)


def test_a_task_that_quotes_nothing_repairs_a_slip_with_its_own_words():
    menu = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "clickable", "Marylinda", 20, 100), el(1, "clickable", "Nicol", 300, 100), el(2, "clickable", "Nico", 300, 200),
        el(3, "clickable", "Anita", 300, 300),
    ])
    task = "Select Marylinda>Nicol"
    slip = click(500, 500, '"ANicol" is the item asked for; click it.')
    step, moved = ground_step(slip, menu, task=task)
    assert moved and step.actions[0].point == Point(x=350, y=115)
    assert not ground_step(slip, menu)[1]  # without the task: no element carries "ANicol"
    # a name near two of the task's words alike, or near none, is taken as written
    assert not ground_step(click(500, 500, 'Click "Nicoa".'), menu, task="Select Nicol>Nicob")[1]
    assert not ground_step(click(500, 500, 'Click "Quartz".'), menu, task=task)[1]


def test_off_screen_flags_a_click_at_a_name_the_task_wants_and_nothing_carries():
    from policy.grounding import off_screen

    tabs = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "tab", "Tab #1", 20, 10), el(1, "tab", "Tab #2", 130, 10),
        el(2, "link", "felis", 20, 100), el(3, "text", "Lorem massa felis dolor.", 20, 200, 300, interactive=False),
        el(4, "textbox", "", 20, 300, 200),
    ])
    task = 'Switch between the tabs to find and click on the link "massa".'
    assert off_screen(click(70, 115, 'The link "massa" is on this tab; click it.'), tabs, task)  # a sentence
    # mentioning a name does not carry it
    assert not off_screen(click(70, 115, '"massa" is not on this tab; open tab "Tab #2".'), tabs, task)
    assert not off_screen(click(70, 115, 'Click "felis".'), tabs, task)  # on screen
    assert off_screen(click(70, 115, '"felis" is shown; click "Tab #9".'), tabs, task)  # a name made up
    assert off_screen(click(70, 115, 'Click "Tabb #2".'), tabs, task)  # or miscopied
    assert not off_screen(click(70, 115, 'Click "Tabb #2".'), tabs, 'Open "Tab #2".')  # read as the task's
    assert not off_screen(click(70, 315, 'Type "massa" into the field.'), tabs, task)  # a control without text
    assert not off_screen(Step(thought='"massa" is further down; scroll.', raw="scroll",
                               actions=[Scroll(point=Point(x=400, y=300), direction="down")]), tabs, task)
    shown = Observation(screenshot=None, width=800, height=600, elements=[*tabs.elements, el(5, "link", "massa", 20, 400)])
    assert not off_screen(click(70, 115, 'The link "massa" is on this tab; click it.'), shown, task)
    table = Observation(screenshot=None, width=800, height=600, elements=[  # the buttons are further right
        el(0, "text", "Letter entry", 20, 100, interactive=False), el(1, "button", "Details", 600, 200)])
    row_task = 'Click "Details" in the row where Name is "Letter entry".'
    press = 'Click "Details" in the row of "Letter entry" because that row matches.'
    assert off_screen(click(700, 105, press), table, row_task)
    wide = Observation(screenshot=None, width=800, height=600, elements=[
        *table.elements, el(2, "button", "Details", 600, 100)])
    assert not off_screen(click(650, 115, press), wide, row_task)
    labelled = Observation(screenshot=None, width=800, height=600, elements=[  # buttons named with their row
        el(0, "button", "Details Letter entry", 600, 100), el(1, "button", "Details Cup", 600, 200)])
    assert not off_screen(click(650, 115, press), labelled, row_task)
    menu = Observation(screenshot=None, width=160, height=210, elements=[  # a post's menu: entries of static text
        el(0, "text", 'For the user @leonie, click on the "Block" button.', 0, 0, 160, 50, interactive=False),
        el(1, "text", "Mute @leonie", 52, 151, 87, 17, interactive=False),
        el(2, "text", "Block @leonie", 52, 168, 87, 17, interactive=False)])
    block_task = 'For the user @leonie, click on the "Block" button.'
    assert not off_screen(click(96, 176, 'Click "Block" in the menu of @leonie\'s post.'), menu, block_task)
    assert off_screen(click(96, 176, 'Click "Report" in the menu of @leonie\'s post.'), menu, 'Click "Report".')
    dialog = Observation(screenshot=None, width=160, height=210, elements=[el(0, "button", "Close", 101, 77, 20, 20)])
    assert not off_screen(click(111, 87, 'The dialog has a close "x" in its title bar; click it.'), dialog,
                          'Close the dialog box by clicking the "x".')  # a glyph the list names otherwise


def test_said_away_flags_a_step_that_looks_elsewhere_for_a_name_on_screen():
    from policy.grounding import said_away

    inbox = Observation(screenshot=None, width=160, height=210, elements=[
        el(0, "text", "Please forward Storm's email to Elyn.", 0, 0, 160, 50, interactive=False),
        el(1, "text", "Storm", 7, 75, 98, 12, interactive=False), el(2, "icon", "star", 118, 80, 12, 12),
        el(3, "button", "Submit", 40, 180, 60, 20)])

    def scroll(thought: str) -> Step:
        return Step(thought=thought, raw="scroll", actions=[Scroll(point=Point(x=80, y=120), direction="down")])

    assert said_away(scroll('The email from "Storm" is further down the inbox; scroll to it.'), inbox)
    assert said_away(scroll('No post by @x in view is left unmarked, and "Submit" is not in view yet; scroll down.'),
                     inbox)
    assert not said_away(scroll('The email from "Elyn" is further down the inbox; scroll to it.'), inbox)  # only
    # the instruction's sentence mentions it
    assert not said_away(scroll('"Storm" is shown; the list goes on below.'), inbox)  # no claim that it is away
    assert said_away(click(60, 80, '"Storm" is not on "Tab #1"; open the next tab, "Tab #2".'), inbox)
    assert not said_away(click(60, 80, '"Elyn" is not on "Tab #1"; open the next tab, "Tab #2".'), inbox)
    assert not said_away(scroll('The "star" icon is further down; scroll to it.'), inbox)  # an icon's name
    assert not said_away(scroll('The email from Storm is further down the inbox; scroll to it.'), inbox)  # unquoted
    form = Observation(screenshot=None, width=375, height=667, elements=[  # the field cut by the bottom edge
        el(0, "text", "Password", 32, 636, 311, 21, interactive=False), el(1, "textbox", "Password", 33, 660, 309, 7)])
    assert not said_away(scroll('The "Password" field is out of view; scroll down in the page to reach it.'), form)
    whole = dataclasses.replace(form, height=700)
    assert said_away(scroll('The "Password" field is out of view; scroll down in the page to reach it.'), whole)
    rows = Observation(screenshot=None, width=1024, height=768, elements=[  # a row a list's edge cuts shows
        el(0, "button", "Drive", 45, 280, 441, 30), el(1, "button", "Ledger balance", 45, 320, 441, 3)])
    assert said_away(scroll('"Ledger balance" in the list is out of view; scroll down in the list.'), rows)
    assert said_away(scroll('"Drive" in the list is out of view; scroll down in the list.'), rows)
    table = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "text", "Gateway", 20, 100, 80, 30, interactive=False), el(1, "button", "Delete", 600, 200, 60, 30)])
    right = '"Delete" in the row of "Gateway" is out of view; scroll right in the list to reach it.'
    assert not said_away(scroll(right), table)  # the row is on screen, its button is not (in that row)
    level = dataclasses.replace(table, elements=[*table.elements, el(2, "button", "Delete", 600, 100, 60, 30)])
    assert said_away(scroll(right), level)


def test_not_asked_flags_a_name_the_task_does_not_hold():
    from policy.grounding import not_asked

    def says(thought: str) -> Step:
        return click(60, 80, thought)

    assert not_asked(says('"Grete" is the item asked for; click it.'), "Select Jordanna>Lonee")
    assert not not_asked(says('"Lonee" is the item asked for; click it.'), "Select Jordanna>Lonee")
    assert not not_asked(says('The dialog button "OK" is the one asked for; click it.'), 'Click the button "ok".')
    assert not_asked(says('The "red" box is the one asked for; click it.'), "Click on the blue colored box.")
    assert not not_asked(says('"Grete" is in the menu; hover it.'), "Select Jordanna>Lonee")  # no such claim
    assert not not_asked(says('"Lon" is the item asked for; click it.'), "")  # nothing to hold it against
    assert not_asked(says('"Lon" is the item asked for; click it.'), "Select Jordanna>Lonee")  # a part of a word
    assert not not_asked(says('"Konee" is the item asked for; click it.'), "Select Jordanna>Lonee")  # a slip
    hover = 'Hover "{}" to open its submenu on the way to "{}".'
    assert not_asked(says(hover.format("Lonee", "Ine")), "Select Jordanna>Lonee")  # the path's end is clicked
    assert not not_asked(says(hover.format("Jordanna", "Konee")), "Select Jordanna>Lonee")  # a slip that does no harm
    boxes = "Select KQMg, ey, 4ii848j and click Submit."
    assert not_asked(says('Check "Nc": the instruction lists exactly these.'), boxes)
    assert not not_asked(says('Check "4ii848j": the instruction lists exactly these.'), boxes)
    assert not_asked(says('Uncheck "ey": the instruction lists exactly these.'), boxes)
    assert not not_asked(says('Uncheck "Nc": the instruction lists exactly these.'), boxes)


def test_a_menu_path_is_read_and_its_end_is_the_item_asked_for():
    from policy.grounding import menu_path, not_asked
    assert menu_path("Select Nicoline>Lilian>Angeline") == ["nicoline", "lilian", "angeline"]
    assert menu_path('Please select "File" > "Save as".') == ["file", "save as"]
    assert menu_path("Is 3 > 2?") == [] and menu_path("Click the OK button.") == []
    path = "Select Nicoline>Lilian>Angeline"
    assert not_asked(click(60, 80, '"Lilian" is the item asked for; click it.'), path)  # on the way
    assert not not_asked(click(60, 80, '"Angeline" is the item asked for; click it.'), path)
    assert not_asked(click(60, 80, 'Hover "Angeline" to open its submenu on the way to "Angeline".'), path)
    assert not not_asked(click(60, 80, 'Hover "Lilian" to open its submenu on the way to "Angeline".'), path)


def test_claimed_state_is_the_state_the_element_list_gives():
    from policy.grounding import box_states, claimed_state

    form = Observation(screenshot=None, width=800, height=600, elements=[
        Element(index=0, role="checkbox", text="Pipeline poll", box=Box(20, 100, 20, 20), checked=True),
        Element(index=1, role="checkbox", text="Payment newsletter", box=Box(20, 140, 20, 20), checked=False),
        Element(index=2, role="checkbox", text="Annual company", box=Box(20, 180, 20, 20), checked=True),
        el(3, "text", "Payment newsletter", 50, 140, interactive=False),
    ])
    states = box_states(form)
    assert states == {"pipeline poll": True, "payment newsletter": False, "annual company": True}
    assert claimed_state('Thought: "Pipeline poll" is', states) is True
    assert claimed_state('Thought: "Pipeline poll" is ticked; "Payment newsletter" is', states) is False
    assert claimed_state('Thought: "Pipeline poll" and "Annual company" are', states) is True
    assert claimed_state('Thought: "Pipeline poll", "Payment newsletter" and "Annual company" are', states) is None
    assert claimed_state('Thought: "Somewhere else" is', states) is None  # no such box
    assert claimed_state('Thought: "Pipeline poll" is ticked', states) is None  # not at a claim's head
    assert claimed_state("Thought: The boxes asked for are", states) is None


def test_the_last_clause_that_quotes_names_the_target():
    from policy.grounding import target_names

    assert target_names('"A" and "B" are ticked; "C" is unchecked; tick it.') == ["c"]
    assert target_names('"massa" is not on this tab; open tab "Tab #3" to look for it.') == ["tab #3"]
    assert target_names('The email from "Ann" is the one to open; open it.') == ["ann"]
    assert target_names('Click "Remove" in the row of "Bob".') == ["remove", "bob"]
    form = Observation(screenshot=None, width=800, height=600, elements=[
        Element(index=0, role="checkbox", text="Early letter", box=Box(20, 100, 100, 20), checked=True),
        Element(index=1, role="checkbox", text="Poster", box=Box(20, 140, 100, 20), checked=True),
        Element(index=2, role="checkbox", text="Tag route", box=Box(20, 180, 100, 20), checked=False)])
    # on "Poster", which the thought names as ticked already: the click goes to the box it acts on
    step, moved = ground_step(click(70, 150, '"Early letter" and "Poster" are ticked; "Tag route" is unchecked; '
                                             'tick it.'), form)
    assert moved and step.actions[0].point == Point(x=70, y=190)


def test_a_select_moves_onto_the_dropdown_its_thought_names_not_the_option():
    from actions.schema import Select

    form = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "combobox", "Letter income", 20, 100, 200), el(1, "combobox", "Forecast sample", 20, 200, 200),
        el(2, "link", "Trail", 20, 300),
    ])
    step = Step(thought='The "Forecast sample" dropdown does not show "Trail" yet; select it.', raw="select",
                actions=[Select(point=Point(x=120, y=115), option="Trail")])
    moved, ok = ground_step(step, form)
    assert ok and moved.actions[0].point == Point(x=120, y=215) and moved.actions[0].option == "Trail"
    # a thought naming only the option leaves the select where it was (no link is a dropdown)
    only = Step(thought='Select "Trail".', raw="select", actions=[Select(point=Point(x=120, y=115), option="Trail")])
    assert ground_step(only, form) == (only, False)


def test_typed_text_is_read_as_the_task_writes_it_when_miscopied():
    from policy.grounding import typed_from_task

    def typed(text: str, task: str) -> tuple[str, bool]:
        step, changed = typed_from_task(Step(thought="", actions=[Type(text=text)]), task)
        return step.actions[0].text, changed

    forward = "Please forward the information from Marketa to Debee."
    assert typed("Debe", forward) == ("Debee", True)  # a prefix of a word is not the word
    assert typed("Debee", forward) == ("Debee", False)
    form = 'Use these values: Name "Diego Larsen", City "Helsinki", Nickname "Pedro" and Region "Tiny radio".'
    assert typed('Pedro".', form) == ("Pedro", True)  # the closing quote copied into the text
    assert typed("Diego Larsn", form) == ("Diego Larsen", True)  # spans as long as the text
    assert typed("Hello there", form) == ("Hello there", False)  # nothing near it
    assert typed("09:34P", "Enter 9:34 PM as the time.") == ("09:34P", False)  # converted: digits
    assert typed("Ann", "Greet Anna and Anne.") == ("Ann", False)  # two as near: no reading
    assert typed("diego larsen", form) == ("diego larsen", False)  # letter case is the step's choice
    click = Step(thought="", actions=[Click(point=Point(x=1, y=1))])
    assert typed_from_task(click, forward) == (click, False)


def test_typed_text_is_what_the_thought_says_to_type():
    from policy.grounding import typed_from_thought

    def typed(thought: str, text: str, submit: bool = False) -> tuple[str, bool]:
        step, changed = typed_from_thought(Step(thought=thought, actions=[Type(text=text, submit=submit)]))
        assert step.actions[0].submit == submit
        return step.actions[0].text, changed

    assert typed('"Nickname" is focused; type "Pedro".', "Paula") == ("Pedro", True)
    assert typed('Type "jonas@post.example" into the "Email" field.', "jonas@post.", True) == ("jonas@post.example", True)
    assert typed('"Nickname" is focused; type "Pedro".', "Pedro") == ("Pedro", False)
    date = ('The "Start date" date is to be September 10, 2001: year 2001, month 09, day 10; '
            'as month/day/year: 09/10/2001.')
    assert typed(date, "03/10/2001") == ("09/10/2001", True)  # the conversion's result, last
    assert typed("Select the previous guess: 42 is too low.", "50") == ("50", False)  # no value to type
    assert typed('Type "a" or type "b".', "c") == ("c", False)  # two texts: no reading
    assert typed("Guess 50, the middle of the range, and press Enter.", "50") == ("50", False)
    click = Step(thought='Type "x".', actions=[Click(point=Point(x=1, y=1))])
    assert typed_from_thought(click) == (click, False)


def test_false_claim_checks_starts_and_ends_with():
    from policy.grounding import false_claim
    pick = '"{}" starts with "Ho" and ends with "Kong"; pick it from the suggestions.'
    assert false_claim(click(10, 10, pick.format("Honduras")))
    assert not false_claim(click(10, 10, pick.format("Hong Kong")))
    assert false_claim(click(10, 10, 'The field holds "Chad", which starts with "Ba"; click "Submit".'))
    assert not false_claim(click(10, 10, 'The field holds "chad", which ends with "HAD"; click "Submit".'))
    assert not false_claim(click(10, 10, 'Click "Submit".'))
    cal = '{}; the calendar shows {}: {}.'
    assert false_claim(click(10, 10, cal.format("09/20/2016 is December 20, 2016", "December 2016", 'click day "20"')))
    assert false_claim(click(10, 10, cal.format("05/29/2016 is May 29, 2016", "June 2016", 'click day "29"')))
    assert false_claim(click(10, 10, cal.format("05/29/2016 is May 29, 2016", "April 2016", "go back a month")))
    assert not false_claim(click(10, 10, cal.format("05/29/2016 is May 29, 2016", "June 2016", "go back a month")))
    assert not false_claim(click(10, 10, cal.format("05/29/2016 is May 29, 2016", "May 2016", 'click day "29"')))
    assert not false_claim(click(10, 10, cal.format("12/01/2015 is December 1, 2015", "January 2016", "go back a month")))
    first = 'The suggestion that ends with "Kong" is "{}"; pick it.'
    assert false_claim(click(10, 10, first.format("Honduras")))
    assert not false_claim(click(10, 10, first.format("Hong Kong")))


def test_false_claim_checks_counts():
    from policy.grounding import false_claim
    counted = 'The yellow letters are {}: {}; click "{}".'
    assert not false_claim(click(10, 10, counted.format('"large yellow letter c" and "small yellow letter k"', 2, 2)))
    assert not false_claim(click(10, 10, 'The marks are "a", "b" and "c": 3; click "3".'))
    assert false_claim(click(10, 10, counted.format('"large yellow letter c" and "small yellow letter k"', 3, 3)))
    assert false_claim(click(10, 10, counted.format('"a"', 2, 2)))
    assert false_claim(click(10, 10, counted.format('"large yellow letter c"', 1, 2)))  # clicks another number
    assert false_claim(click(10, 10, counted.format('"large red letter c"', 1, 1)))  # not yellow
    assert not false_claim(click(10, 10, 'The large items are "large red letter c": 1; click "1".'))
    assert not false_claim(click(10, 10, 'No mark is a yellow letter: 0; click "0".'))
    assert false_claim(click(10, 10, 'No mark is a yellow letter: 0; click "3".'))
    assert false_claim(click(10, 10, 'This post is by @felis; click its "Reply" button (3 of 2).'))
    assert not false_claim(click(10, 10, 'This post is by @felis; click its "Reply" button (2 of 2).'))
    shade = 'Select the "{}" square (2 of 3): it is a shade of {}.'
    assert false_claim(click(10, 10, shade.format("blue", "green")))
    assert not false_claim(click(10, 10, shade.format("light green", "green")))
    assert not false_claim(click(10, 10, shade.format("brown", "red")))  # no hue word: not judged
    hue_first = 'A shade of {} not selected yet is the "{}" square (2 of 3); select it.'
    assert false_claim(click(10, 10, hue_first.format("blue", "light green")))
    assert not false_claim(click(10, 10, hue_first.format("green", "light green")))
    results = 'This page shows results 7 to 9: "Vanda", "Livia" and "Jess"; result {} is "{}"; click it.'
    assert not false_claim(click(10, 10, results.format(8, "Livia")))
    assert false_claim(click(10, 10, results.format(8, "Jess")))  # the third listed is result 9
    assert false_claim(click(10, 10, results.format(3, "Vanda")))  # not on this page
    assert false_claim(click(10, 10, 'This page shows results 1 to 3: "A" and "B"; result 2 is "B"; click it.'))
    paged = 'Result {} is on page {} (three results a page); open page {}.'
    assert not false_claim(click(10, 10, paged.format(8, 3, 3)))
    assert false_claim(click(10, 10, paged.format(8, 2, 2)))


def test_next_word_after_the_claims_of_the_asked_boxes():
    from policy.grounding import next_word
    asked = ["deep feature", "score"]
    right = {"deep feature": True, "score": True, "trail": False}
    both = 'Thought: "Deep feature" is ticked; "Score" is ticked;'
    assert next_word(both, right, asked) == ((" ", " no"), (" no",))  # nothing else to name
    assert next_word(both, {**right, "trail": True}, asked) == ((" ", " no"), (" ",))  # "Trail" is to be named
    assert next_word('Thought: "Deep feature" is ticked;', right, asked) == ((" ", " no"), (" ",))  # "Score" next
    assert next_word(both, right, []) is None  # a task that asks for no box by name
    assert next_word('Thought: "Trail" is checked but not asked for;', right, asked) is None


def test_untick_unasked_aims_at_a_box_not_asked_for():
    from policy.grounding import against_state, untick_unasked
    boxes = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "checkbox", "Deep feature", 20, 100, checked=True), el(1, "checkbox", "Refund", 20, 150, checked=True),
        el(2, "checkbox", "Score", 20, 200, checked=True), el(3, "checkbox", "Trail", 20, 250, checked=False)])
    task = 'Tick "Deep feature" and "Score", nothing more, and submit.'
    slip = click(50, 110, '"Deep feature" is ticked; "Score" is ticked; "Deep feature" is checked but not asked for; '
                          'untick it.')
    fixed, changed = untick_unasked(slip, boxes, task)
    assert changed and fixed.actions[0].point == Point(x=70, y=165) and '"Refund" is checked but not' in fixed.thought
    assert not against_state(fixed, boxes, task)
    right = click(50, 160, '"Refund" is checked but not asked for; untick it.')
    assert untick_unasked(right, boxes, task) == (right, False)  # already the box not asked for
    two = Observation(screenshot=None, width=800, height=600, elements=[
        *boxes.elements, el(4, "checkbox", "Other", 20, 300, checked=True)])
    low = click(50, 290, slip.thought)
    assert untick_unasked(low, two, task)[0].actions[0].point == Point(x=70, y=315)  # the nearest of two
    none = Observation(screenshot=None, width=800, height=600, elements=boxes.elements[:1] + boxes.elements[2:])
    assert untick_unasked(slip, none, task) == (slip, False)  # no box to untick: nothing to aim at


def test_false_type_flags_a_lost_copy():
    from policy.grounding import false_type

    def typing(thought: str, text: str) -> Step:
        return Step(thought=thought, actions=[Type(text=text)], raw="type")
    task = 'In the form, enter Full name "Gabriel Meyer" and Notes "Mirror" and then click Update.'
    assert false_type(typing('"Full name" is focused; type "Gabw shipment".', "Gabw shipment"), task)
    assert not false_type(typing('"Full name" is focused; type "Gabriel Meyer".', "Gabriel Meyer"), task)
    assert false_type(typing('"Full name" is focused; type "', ""), task)  # types nothing
    assert not false_type(typing('Type "gabriel meyer" in lower case.', "gabriel meyer"), task)
    time = 'The time is 2:53 PM; type "02:53P" to fill the time field segment by segment.'
    assert not false_type(typing(time, "02:53P"), "Enter 2:53 PM as the time and press submit.")
    narrow = '"Hong Kong" is further down the suggestions; type "g" to narrow them.'
    assert not false_type(typing(narrow, "g"), 'Enter an item that starts with "Ho" and ends with "Kong".')
    storm = "Storm wants the email you got from Sara."
    assert false_type(typing('Type "St" into the "to" field.', "St"), storm)  # stops inside a word
    assert not false_type(typing('Type "Storm" into the "to" field.', "Storm"), storm)
    assert not false_type(typing('Type "Ho" into the Tags field.', "Ho"), 'Enter an item that starts with "Ho".')
    assert false_type(typing('"Hong Kong" is further down; type "x" to narrow them.', "x"), 'Starts with "Ho".')
    movie = "Search for urban movies directed by Ball from year 1976."
    cites = 'The "Director" field takes the director; the task says "directed by Ball": type "{}".'
    assert not false_type(typing(cites.format("Ball"), "Ball"), movie)
    assert false_type(typing(cites.format("Ball from year"), "Ball from year"), movie)  # in the task, not the cite
    assert false_type(typing(cites.replace("by Ball", "by Bill").format("Bill"), "Bill"), movie)  # a cite it lacks


def test_types_blind_flags_typing_where_nothing_takes_text():
    from policy.grounding import types_blind
    tree = Observation(screenshot=None, width=160, height=210, elements=[
        el(0, "text", "Find the file named Cristin.", 0, 0, 160, 50, interactive=False),
        el(1, "clickable", "Annis", 10, 60, 60, 12), el(2, "clickable", "Cristin", 20, 75, 60, 12)])
    wrong = Step(thought='Type "Cristin" into the reply field.', actions=[Type(text="Cristin")], raw="type")
    assert types_blind(wrong, tree)
    assert not types_blind(Step(thought="Open it.", actions=[Click(point=Point(x=40, y=81))], raw="click"), tree)
    below = dataclasses.replace(tree, elements=[*tree.elements, el(3, "textbox", "", 10, 400, 100, 20)])
    assert types_blind(wrong, below)  # a field scrolled out of view takes nothing either
    form = dataclasses.replace(tree, elements=[*tree.elements, el(3, "textbox", "", 10, 100, 100, 20)])
    assert not types_blind(wrong, form)
    assert not types_blind(wrong, dataclasses.replace(tree, elements=[]))  # a desktop screen: not judged
    game = dataclasses.replace(tree, elements=[*tree.elements, dataclasses.replace(
        el(3, "clickable", "board", 10, 100, 100, 100), focused=True)])
    assert not types_blind(wrong, game)  # the focus is on an element that reads keys


def test_a_row_button_named_with_its_row_is_aimed_at_by_the_row_not_the_shortest_name():
    table = Observation(screenshot=None, width=1000, height=600, elements=[
        el(0, "text", "Deal", 210, 180, 200, 40, interactive=False), el(1, "text", "Boris", 440, 180, 200, 40,
                                                                        interactive=False),
        el(2, "button", "Details Deal", 925, 185, 66, 30),
        el(3, "text", "Attach lead", 210, 316, 200, 40, interactive=False),
        el(4, "text", "Nina Kim", 440, 316, 200, 40, interactive=False),
        el(5, "button", "Details Attach lead", 925, 322, 66, 30)])
    press = click(840, 420, 'Click "Details" in the row of "Nina Kim" because that row matches.')
    moved, changed = ground_step(press, table)
    assert changed and moved.actions[0].point == Point(x=958, y=337)  # Nina Kim's row's button


def test_a_click_said_to_mark_one_not_marked_yet_goes_to_an_unmarked_one_of_that_name():
    shades = Observation(screenshot=None, width=160, height=210, elements=[
        el(0, "swatch", "blue", 10, 60, 30, 30, checked=True), el(1, "swatch", "blue", 50, 60, 30, 30, checked=False),
        el(2, "swatch", "red", 90, 60, 30, 30, checked=False)])
    pick = 'A shade of blue not selected yet is the "blue" square (2 of 2); select it.'
    moved, changed = ground_step(click(25, 75, pick), shades)
    assert changed and moved.actions[0].point == Point(x=65, y=75)  # the unselected "blue", not the nearest
    deselect = click(25, 75, 'Deselect the "blue" square.')
    assert ground_step(deselect, shades) == (deselect, False)


def test_quote_choices_are_the_labels_that_pass_the_test_a_quote_opens_on():
    from policy.grounding import quote_choices
    menu = Observation(screenshot=None, width=160, height=210, elements=[
        el(0, "textbox", "Tags", 10, 60, 120, 15), el(1, "clickable", "Chad", 10, 80, 120, 15),
        el(2, "clickable", "Christmas Island", 10, 95, 120, 15), el(3, "clickable", "Trinidad", 10, 400, 120, 15)])
    assert quote_choices('Thought: The suggestion that ends with "had" is "', menu) == ["chad"]
    assert quote_choices('Thought: The suggestion that starts with "Ch" and ends with "d" is "', menu) == [
        "chad", "christmas island"]
    assert quote_choices('Thought: The suggestion that ends with "dad" is "', menu) == []  # off screen only
    assert quote_choices('Thought: Click "', menu) == []
    shades = Observation(screenshot=None, width=160, height=210, elements=[
        el(0, "swatch", "dark red", 10, 60, 30, 30), el(1, "swatch", "red", 50, 60, 30, 30, checked=True),
        el(2, "swatch", "light green", 90, 60, 30, 30), el(3, "swatch", "maroon", 10, 100, 30, 30)])
    assert quote_choices('Thought: A shade of red not selected yet is the "', shades) == ["dark red", "maroon"]


def test_a_list_boxs_focus_claims_follow_the_focused_option():
    from policy.grounding import against_state

    def option(i: int, text: str, y: float, focused: bool = False) -> Element:
        return Element(index=i, role="option", text=text, box=Box(3, y, 148, 17), focused=focused, checked=False)
    listbox = Observation(screenshot=None, width=160, height=210, elements=[
        option(0, "Turkey", 75), option(1, "China", 109), option(2, "Bouvet Island", 126, focused=True)])
    keys = Step(thought="", actions=[Hotkey(keys=("ctrl", "down"))], raw="hotkey")

    def says(thought: str) -> Step:
        return dataclasses.replace(keys, thought=thought)
    assert against_state(says('Move the list focus down towards "China" with Ctrl+Down, keeping the selection.'), listbox)
    assert not against_state(says('Move the list focus up towards "China" with Ctrl+Up, keeping the selection.'), listbox)
    assert against_state(says('The focus is on "China"; press Ctrl+Space to add it to the selection.'), listbox)
    assert not against_state(says('The focus is on "Bouvet Island"; press Ctrl+Space to add it.'), listbox)
    assert against_state(says('Move the list focus up towards "Bouvet Island" with Ctrl+Up.'), listbox)  # there
    assert against_state(says('Press Down to move the selection towards "Turkey".'), listbox)
    done = click(50, 180, 'Everything asked for is done; click "Submit".')
    assert against_state(done, listbox, "Select Bouvet Island, China from the scroll list and click Submit.")
    assert not against_state(done, listbox, "Select Gabon from the scroll list and click Submit.")  # not on
    # screen: not judged
    unmarked = dataclasses.replace(listbox, elements=[dataclasses.replace(e, focused=False) for e in listbox.elements])
    assert not against_state(says('The focus is on "China"; press Ctrl+Space to add it.'), unmarked)  # not judged


def test_lost_count_holds_a_count_of_marks_to_the_past_thoughts():
    from policy.grounding import lost_count

    def mark(k: int, n: int = 3) -> str:
        return f'This post is by @semper; click its "Retweet" button ({k} of {n}).'
    past = [mark(1), "The next post by @semper is out of view in the feed; scroll to it.", mark(2)]
    assert not lost_count(click(60, 80, mark(3)), past)
    assert lost_count(click(60, 80, mark(2)), past)  # counted again
    assert lost_count(click(60, 80, mark(3, 4)), past)  # of another total
    assert not lost_count(click(60, 80, "The last click did not register; " + mark(2)[0].lower() + mark(2)[1:]), past)
    assert not lost_count(click(60, 80, mark(1)), []) and lost_count(click(60, 80, mark(2)), [])
    submit = '"Retweet" is clicked on 3 posts by @semper; click "Submit".'
    assert lost_count(click(60, 80, submit), past)  # one still to mark
    assert not lost_count(click(60, 80, submit), [*past, mark(3)])
    onward = "The next post by @semper is out of view in the feed; scroll to it."
    assert lost_count(click(60, 80, onward), [*past, mark(3)]) and not lost_count(click(60, 80, onward), past)
    assert not lost_count(click(60, 80, 'Click "Submit".'), [])  # no count kept: nothing to hold to


def test_finished_early_flags_a_finish_before_the_control_the_task_ends_with():
    from actions.schema import Finished
    from policy.grounding import finished_early
    form = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "radio", "Monitor lead", 20, 100, checked=True), el(1, "button", "Submit", 20, 300)])
    task = 'Please pick "Monitor lead" as the Offer code, then click Submit.'
    done = Step(thought="The task is complete.", actions=[Finished()], raw="finished()")
    assert finished_early(done, form, task, ['"Monitor lead" is unchecked; tick it.'])
    assert not finished_early(done, form, task, ['"Monitor lead" is unchecked; tick it.', 'Click "Submit".'])
    assert not finished_early(click(30, 310, 'Click "Submit".'), form, task, [])  # not a finish
    assert not finished_early(done, form, "Pick Monitor lead.", [])  # the task names no control on screen
    menu = Observation(screenshot=None, width=800, height=600, elements=[el(0, "menuitem", "Shuffle harbor", 20, 100)])
    assert finished_early(done, menu, 'From the "Bill path" menu, pick "Shuffle harbor".',
                          ['Click the "Bill path" menu to find "Shuffle harbor".'])  # looked for, not picked


def test_form_unfinished_flags_a_submit_while_a_field_holds_another_value():
    from policy.grounding import form_unfinished
    form = Observation(screenshot=None, width=800, height=600, elements=[
        Element(index=0, role="textbox", text="Name", value="Olga Reyes", box=Box(20, 100, 300, 26)),
        Element(index=1, role="textbox", text="Full name", value="Lina Rossi", box=Box(20, 150, 300, 26)),
        Element(index=2, role="combobox", text="Country Preview village Fund", value="Preview village",
                box=Box(20, 200, 300, 26)),
        Element(index=3, role="textbox", text="Password", value="\u2022\u2022\u2022", box=Box(20, 250, 300, 26)),
        el(4, "button", "Save", 20, 300)])
    save = click(40, 310, 'Click the "Save" button to submit the completed form.')
    task = 'Provide Name "Olga Reyes", Full name "Lina Rossi", Password "x1" and Country "{}". Finish with Save.'
    assert form_unfinished(save, form, task.format("Fund"))  # the list still shows its first option
    assert not form_unfinished(save, form, task.format("Preview village"))
    assert not form_unfinished(click(40, 210, 'Pick "Fund" in "Country".'), form, task.format("Fund"))


def test_said_month_is_the_month_of_the_date_being_written_out():
    from policy.grounding import said_month
    assert said_month("Thought: 09/20/2016 is") == 9 and said_month("x 1/2/2016 is") == 1
    assert said_month("Thought: 09/20/2016 is September") is None and said_month("13/01/2016 is") is None


def test_against_state_flags_a_click_that_undoes_a_right_box():
    from policy.grounding import against_state

    boxes = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "checkbox", "Deep feature", 20, 100, checked=True), el(1, "checkbox", "Trail", 20, 150, checked=True),
        el(2, "checkbox", "Score", 20, 200, checked=False),
    ])
    task = 'Tick "Deep feature" and "Score", nothing more, and submit.'
    assert against_state(click(50, 110, '"Deep feature" is checked but not asked for; untick it.'), boxes, task)
    assert not against_state(click(50, 160, '"Deep feature" is ticked; "Trail" is checked but not asked for; '
                                           'untick it.'), boxes, task)
    assert against_state(click(50, 160, '"Deep feature" is ticked; "Score" is unchecked; untick it.'), boxes, task)
    assert against_state(click(50, 110, '"Deep feature" is unchecked; tick it.'), boxes, task)  # ticked already
    assert not against_state(click(50, 210, '"Deep feature" is ticked; "Score" is unchecked; tick it.'), boxes, task)
    assert not against_state(click(50, 110, 'Click the "Submit" button.'), boxes, task)
    more = dataclasses.replace(boxes, elements=boxes.elements + [el(3, "checkbox", "Previous system", 20, 250, checked=False)])
    extra = '"Deep feature" is ticked; "Score" is ticked; "Previous system" is unchecked; tick it.'
    assert against_state(click(50, 260, extra), more, task)  # a box the task's quotes do not ask for
    assert against_state(click(50, 260, 'Check "Previous system": the task lists it.'), more, task)
    assert not against_state(click(50, 210, '"Deep feature" is ticked; "Score" is unchecked; tick it.'), more, task)
    assert not against_state(click(50, 260, extra), more, "Select words similar to former and click Submit.")
    assert not against_state(click(50, 260, extra), more, 'Tick "Previous" and "Score", then submit.')  # a part
    assert not against_state(click(50, 260, extra), dataclasses.replace(more, elements=more.elements[1:2] + more.elements[3:]),
                             'Tick "Deep feature" only.')  # no box the task quotes in the list: its quotes may name other things
    feed = Observation(screenshot=None, width=800, height=600, elements=[  # a post's icons: one marked
        el(0, "icon", "reply", 20, 100, 16, 16, checked=True), el(1, "icon", "reply", 20, 200, 16, 16)])
    mark = 'This post is by @felis; click its "Reply" button (2 of 3).'
    assert against_state(click(28, 108, mark), feed, 'Click the "Reply" button on all posts by @felis.')
    assert not against_state(click(28, 208, mark), feed, 'Click the "Reply" button on all posts by @felis.')
    opened = Observation(screenshot=None, width=160, height=210, elements=[
        el(0, "icon", "more", 117, 83, 14, 14), el(1, "text", "Mute", 52, 100, 87, 17, interactive=False)])
    again = 'The last click did not register; this post is by @x; open its "more" menu to find "Mute".'
    assert against_state(click(124, 90, again), opened)  # the menu is open: a second click would close it
    assert not against_state(click(124, 90, again), dataclasses.replace(opened, elements=opened.elements[:1]))
    to = Observation(screenshot=None, width=160, height=210, elements=[el(0, "textbox", "to", 30, 60, 100, 15)])
    send = "The forward is addressed to Storm; click the send icon."
    assert against_state(click(140, 60, send), to)  # nothing typed into the field
    typed = dataclasses.replace(to, elements=[dataclasses.replace(to.elements[0], value="Storm")])
    assert not against_state(click(140, 60, send), typed)
    assert against_state(click(140, 60, send.replace("Storm", "St")), typed)
    submit = '"Submit" is in view: the feed is read to its end; click "Submit".'
    posts = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "text", "@felis", 20, 60, 60, 12, interactive=False), el(1, "icon", "reply", 20, 100, 16, 16),
        el(2, "button", "Submit", 20, 300, 60, 20)])
    all_by = 'Click the "Reply" button on all posts by @felis and then click Submit.'
    assert against_state(click(50, 310, submit), posts, all_by)  # the post in view is left unmarked
    shared = dataclasses.replace(posts.elements[1], checked=True)
    marked = dataclasses.replace(posts, elements=[posts.elements[0], shared, posts.elements[2]])
    assert not against_state(click(50, 310, submit), marked, all_by)
    assert not against_state(click(50, 310, submit), posts, all_by.replace("@felis", "@ante"))
    unmarked = 'This post is by @felis and its "Reply" button is not marked yet; click it.'
    assert against_state(click(28, 108, unmarked), feed, 'Click the "Reply" button on all posts by @felis.')
    assert not against_state(click(28, 208, unmarked), feed, 'Click the "Reply" button on all posts by @felis.')
    beside = Observation(screenshot=None, width=620, height=763, elements=[  # small boxes, labels drawn beside
        el(0, "checkbox", "Sponsor media", 49, 130, 15, 15, checked=True),
        el(1, "text", "Sponsor media", 74, 127, 100, 21, interactive=False),
        el(2, "checkbox", "Detach plugin", 49, 205, 15, 15, checked=True),
        el(3, "text", "Detach plugin", 74, 202, 92, 21, interactive=False)])
    only = 'Mark "Sponsor media" and no other options; finish with Save.'
    assert not against_state(click(56, 213, '"Sponsor media" is ticked; "Detach plugin" is checked but not asked '
                                            'for; untick it.'), beside, only)
    assert against_state(click(56, 138, '"Sponsor media" is checked but not asked for; untick it.'), beside, only)
    listed_done = 'Everything asked for is done; click "Submit".'
    assert against_state(click(50, 400, listed_done), boxes, "Select Trail, Score and click Submit.")  # Score unticked
    assert not against_state(click(50, 400, listed_done), boxes, "Select Trail, Deep feature and click Submit.")
    shades = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "swatch", "blue", 20, 100, 30, 30, checked=True), el(1, "swatch", "light blue", 60, 100, 30, 30),
        el(2, "swatch", "red", 100, 100, 30, 30)])
    assert against_state(click(50, 400, listed_done), shades, "Select all the shades of blue and press Submit.")
    assert not against_state(click(50, 400, listed_done), shades, "Select all the shades of green and press Submit.")
    blue = "Select all the shades of blue and press Submit."
    assert against_state(click(105, 115, 'Select the "red" square (2 of 2); select it.'), shades, blue)  # another hue
    assert not against_state(click(65, 115, 'A shade of blue not selected yet is the "light blue" square (2 of 2); '
                                            'select it.'), shades, blue)
    assert not against_state(click(105, 115, 'Deselect the "red" square: it is not blue.'), shades, blue)
    board = Observation(screenshot=None, width=160, height=210, elements=[  # X top-left; O top-middle and centre
        el(0, "icon", "mark x", 12, 62, 42, 42), el(1, "icon", "mark o", 56.8, 62, 42, 42),
        el(2, "icon", "mark o", 56.8, 106.8, 42, 42)])
    play = "Play X in the {} square: it {}."
    assert against_state(click(122.6, 172.6, play.format("bottom-right", "blocks O's line")), board)
    assert not against_state(click(77.8, 172.6, play.format("bottom-middle", "blocks O's line")), board)
    assert against_state(click(77.8, 172.6, play.format("bottom-middle", "completes a line of three X and wins")), board)
    assert not against_state(click(122.6, 172.6, play.format("bottom-right", "gives X the best chance")), board)
    listbox = Observation(screenshot=None, width=800, height=600, elements=[  # a list whose selection stopped short
        Element(index=0, role="listbox", text="", value="Laurice", box=Box(20, 100, 150, 90)),
        el(1, "option", "Sandye", 20, 100, 150, 17, checked=False), el(2, "option", "Laurice", 20, 117, 150, 17, checked=True)])
    assert against_state(click(50, 400, listed_done), listbox, "Select Ruthann from the scroll list and click Submit.")
    assert not against_state(click(50, 400, listed_done), listbox, "Select Laurice from the scroll list and click Submit.")
    tabs = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "tab", "Tab #2", 100, 20, checked=True), el(1, "tab", "Tab #3", 200, 20, checked=False)])
    nxt = '"massa" is not on "{}"; open the next tab, "{}", to look for it.'
    assert against_state(click(100, 20, nxt.format("Tab #1", "Tab #2")), tabs)  # shown open already
    assert not against_state(click(200, 20, nxt.format("Tab #2", "Tab #3")), tabs)
    posts = Observation(screenshot=None, width=800, height=600, elements=[  # two posts, each headed by its handle
        el(0, "text", "@felis", 60, 50), el(1, "icon", "reply", 20, 100, 16, 16),
        el(2, "text", "@vina", 60, 150), el(3, "icon", "reply", 20, 200, 16, 16)])
    assert not against_state(click(28, 108, mark), posts, 'Click "Reply" on all posts by @felis.')
    assert against_state(click(28, 208, mark), posts, 'Click "Reply" on all posts by @felis.')  # @vina's post
    assert not against_state(click(28, 20, mark), posts, 'Click "Reply" on all posts by @felis.')  # header out of sight
    read_on = Step(thought='No post by @felis in view is left unmarked, and "Submit" is not in view yet; scroll down.',
                   actions=[Scroll(point=Point(x=400, y=300), direction="down")])
    all_posts = 'Click the "Reply" button on all posts by @felis and then click Submit.'
    assert against_state(read_on, posts, all_posts)  # @felis's reply is unmarked
    marked = Observation(screenshot=None, width=800, height=600, elements=[  # @vina's unmarked: not the user's
        el(0, "text", "@felis", 60, 50), el(1, "icon", "reply", 20, 100, 16, 16, checked=True),
        el(2, "text", "@vina", 60, 150), el(3, "icon", "reply", 20, 200, 16, 16)])
    assert not against_state(read_on, marked, all_posts)
    cut = Observation(screenshot=None, width=800, height=600, elements=[  # @felis's buttons cut by the list's edge
        el(0, "text", "@vina", 60, 50), el(1, "icon", "reply", 20, 100, 16, 16, checked=True),
        el(2, "text", "@felis", 60, 150), el(3, "icon", "reply", 20, 200, 16, 9)])
    assert not against_state(read_on, cut, all_posts)
    buttons_cut = Step(thought='The post by "@felis" is in view but its buttons are cut off; scroll down.',
                       actions=[Scroll(point=Point(x=400, y=300), direction="down")])
    assert not against_state(buttons_cut, cut, 'For the user @felis, click on the "Like" button.')
    assert against_state(buttons_cut, posts, 'For the user @felis, click on the "Like" button.')  # shown whole
    listed = "Select Deep feature, Score and click Submit."  # MiniWoB++'s click-checkboxes: verb first
    assert against_state(click(50, 110, 'Check "Deep feature": the instruction lists exactly these.'), boxes, listed)
    assert not against_state(click(50, 210, 'Check "Score": the instruction lists exactly these.'), boxes, listed)
    assert against_state(click(50, 210, 'Uncheck "Score": the instruction does not list it.'), boxes, listed)
    assert against_state(click(50, 110, '"Score" is ticked; "Meter company" is checked but not asked for; untick it.'),
                         boxes, task)  # no such box
    done = '"Deep feature" is ticked; "Score" is ticked; no other box is checked; click the "Submit" button.'
    assert against_state(click(50, 400, done), boxes, task)  # "Trail" is checked and not asked for
    assert not against_state(click(50, 400, done), boxes, 'Tick "Deep feature", "Trail" and "Score", then submit.')
    listbox = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "option", "Loree", 20, 100), el(1, "option", "Ruthann", 20, 130, checked=True)])
    press = Step(thought='Press Down to move the selection towards "{}".', actions=[Hotkey(keys=["down"])])
    assert against_state(dataclasses.replace(press, thought=press.thought.format("Ruthann")), listbox)  # reached
    assert not against_state(dataclasses.replace(press, thought=press.thought.format("Loree")), listbox)
    # a part of an asked box's name, or a slip in copying it, names that box too
    assert against_state(click(50, 110, '"Score" is ticked; "Deep" is checked but not asked for; untick it.'), boxes, task)
    assert against_state(click(50, 110, '"Score" is ticked; "Deep featur" is checked but not asked for; untick it.'),
                         boxes, task)


def test_against_state_checks_a_count_of_marks_and_a_board_square():
    from policy.grounding import against_state

    picture = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "shape", "large black letter s", 20, 20, 20, 20), el(1, "shape", "small aqua triangle", 60, 20, 20, 20),
        el(2, "shape", "large yellow letter d", 100, 20, 20, 20), el(3, "shape", "small yellow letter d", 140, 20, 20, 20),
        el(4, "shape", "large yellow circle", 180, 20, 20, 20), el(5, "button", "1", 20, 200, 20, 20),
        el(6, "button", "2", 60, 200, 20, 20), el(7, "button", "0", 100, 200, 20, 20)])
    two = click(70, 210, 'The yellow ds are "large yellow letter d" and "small yellow letter d": 2; click "2".')
    assert not against_state(two, picture)
    assert against_state(click(30, 210, 'The yellow items are "large yellow letter d": 1; click "1".'), picture)
    assert against_state(click(110, 210, 'No mark is a small triangles: 0; click "0".'), picture)
    assert not against_state(click(110, 210, 'No mark is a small circle: 0; click "0".'), picture)
    circles = "How many small circles are there?"
    assert not against_state(click(110, 210, 'No mark is a small circle: 0; click "0".'), picture, circles)
    assert against_state(click(110, 210, 'No mark is a small c: 0; click "0".'), picture, circles)  # cut short
    assert not against_state(click(30, 210, 'Counting the small shapes in the picture gives 1; click "1".'), picture)
    assert against_state(click(30, 210, 'Counting the letters in the picture gives 1; click "1".'), picture)  # 3
    assert not against_state(click(30, 210, 'The letters are "a": 1; click "1".'), Observation(
        screenshot=None, width=800, height=600, elements=[]))  # no mark listed: not judged
    unsized = Observation(screenshot=None, width=800, height=600, elements=[  # no mark's size is named
        el(0, "shape", "green letter h", 20, 20, 7, 11), el(1, "shape", "red letter j", 60, 20, 3, 11),
        el(2, "button", "2", 60, 200, 20, 20)])
    small = 'The small letters are "green letter h" and "red letter j": 2; click "2".'
    assert not against_state(click(70, 210, small), unsized, "How many small letters are there?")
    assert against_state(click(70, 210, small), picture, "How many small letters are there?")  # sizes named
    board = Observation(screenshot=None, width=800, height=600, elements=[
        el(0, "icon", "mark o", 20, 20, 40, 40), el(1, "icon", "mark x", 60, 20, 40, 40)])
    assert against_state(click(40, 40, "Play X in the top-left square: it blocks O's line."), board)
    assert not against_state(click(140, 40, "Play X in the top-right square: it gives X the best chance to make a line."),
                             board)


def test_slide_to_value_aims_a_drag_by_the_slider_scale():
    from perception.observation import Range
    from policy.grounding import slide_to_value

    def slider(i, text, x, y, value, lo=0, hi=50, step=5):
        return Element(index=i, role="slider", text=text, box=Box(x, y, 216, 16), value=str(value),
                       range=Range(lo, hi, step, Box(x, y, 216, 16), inset=8))
    screen = Observation(screenshot=None, width=800, height=600, elements=[
        slider(0, "Volume 10", 100, 100, 10), slider(1, "Zoom 0", 100, 200, 0)])
    drag = Step(thought='The "Volume" slider is at 10; drag its thumb to 31.',
                actions=[Drag(start=Point(x=400, y=50), end=Point(x=500, y=50))])
    aimed, moved = slide_to_value(drag, screen)
    # 31 snaps to the step (30); the thumb's centre runs from x+8 to x+208 over 0..50
    assert moved and aimed.actions[0].start == Point(x=148, y=108) and aimed.actions[0].end == Point(x=228, y=108)
    zoom = Step(thought="Drag the thumb to 50.", actions=[Drag(start=Point(x=150, y=205), end=Point(x=9, y=9))])
    assert slide_to_value(zoom, screen)[0].actions[0].end == Point(x=308, y=208)  # the slider under its start
    lost = Step(thought="Drag the thumb to 50.", actions=[Drag(start=Point(x=700, y=500), end=Point(x=9, y=9))])
    assert slide_to_value(lost, screen) == (lost, False)  # two sliders, none named or pointed at
    plain = Step(thought='Drag "Save draft" to the bin.', actions=[Drag(start=Point(x=1, y=1), end=Point(x=9, y=9))])
    assert slide_to_value(plain, screen) == (plain, False)
    upright = Range(0, 10, 1, Box(0, 0, 20, 120), inset=10)  # a vertical slider's minimum is at the bottom
    assert upright.point_of(0) == (10, 110) and upright.point_of(10) == (10, 10) and upright.point_of(99) == (10, 10)
