"""The response parser and formatter: worked examples of every variant, errors, property tests."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actions import (ActionParseError, Back, CallUser, Click, DoubleClick, Drag, Finished, Hotkey, Hover,
                     Navigate, Point, RightClick, Scroll, Select, Type, Wait, format_step, parse_response,
                     to_uitars)
from actions.schema import KEY_NAMES
from perception.space import CoordinateSpace

# Absolute pixels with model == viewport: model coordinates are viewport pixels, easy to read.
PX = CoordinateSpace.absolute(1280, 720)
REL = CoordinateSpace.relative(1920, 1080)  # UI-TARS-1.0 / Doubao 0..1000 grid
SR = CoordinateSpace.smart_resize(1920, 1080)  # UI-TARS-1.5: 1932x1092 model image
SPACES = {
    "absolute": PX,
    "relative": CoordinateSpace.relative(1280, 720),
    "smart_resize": CoordinateSpace.smart_resize(1280, 720),
    "dpr2": CoordinateSpace.absolute(1280, 720, dpr=2),
}


def one(text: str, space=PX):
    step = parse_response(text, space)
    assert len(step.actions) == 1, step.actions
    return step.actions[0]


def P(x, y):
    return Point(x=x, y=y)


# ---------------------------------------------------------------- coordinates and point forms

@pytest.mark.parametrize("arg", [
    "start_box='<|box_start|>(100,200)<|box_end|>'",
    "start_box='(100,200)'",
    "start_box='(90,190,110,210)'",  # a box: its centre
    "start_box='<|box_start|>(90,190,110,210)<|box_end|>'",
    "start_box='[90, 190, 110, 210]'",
    "point='<point>100 200</point>'",
    "start_box='<bbox>90 190 110 210</bbox>'",
    "start_point='<point>100 200</point>'",
    "start_box=(100, 200)",  # unquoted
    "'(100,200)'",  # positional
    "100, 200",  # two bare numbers
    "start_box=\"(100.0,200.0)\"",
])
def test_click_point_forms(arg):
    assert one(f"Action: click({arg})") == Click(point=P(100, 200))


def test_relative_1000_maps_like_ui_tars_1():
    # README_v1: 1920x1080, output (235,512) -> (451,553)
    a = one("Thought: t\nAction: click(start_box='(235,512)')", REL)
    assert (round(a.point.x), round(a.point.y)) == (451, 553)


def test_smart_resize_maps_back_to_viewport():
    a = one("Action: click(start_box='(1932,1092)')", SR)
    assert a.point == P(1920, 1080)
    a = one("Action: click(start_box='(966,546)')", SR)
    assert a.point == P(960, 540)


def test_dpr2_absolute():
    a = one("Action: click(start_box='(1000,600)')", CoordinateSpace.absolute(1280, 720, dpr=2))
    assert a.point == P(500, 300)


def test_point_outside_the_screen_says_the_range():
    with pytest.raises(ActionParseError, match=r"outside the screen; x must be within 0\.\.1280 and y within 0\.\.720"):
        parse_response("Action: click(start_box='(1400,100)')", PX)
    with pytest.raises(ActionParseError, match=r"0\.\.1000"):
        parse_response("Action: click(point='<point>1200 5</point>')", REL)
    with pytest.raises(ActionParseError, match="outside"):
        parse_response("Action: click(start_box='(-30,5)')", PX)


def test_point_a_hair_past_the_edge_is_clamped():
    assert one("Action: click(start_box='(1290,-3)')").point == P(1280, 0)  # within 1 %
    assert one("Action: click(point='<point>1000 1000</point>')", REL).point == P(1920, 1080)


# ---------------------------------------------------------------- every action name

@pytest.mark.parametrize("text,expected", [
    ("click(start_box='(5,6)')", Click(point=P(5, 6))),
    ("left_single(start_box='(5,6)')", Click(point=P(5, 6))),
    ("left_double(start_box='(5,6)')", DoubleClick(point=P(5, 6))),
    ("double_click(point='<point>5 6</point>')", DoubleClick(point=P(5, 6))),
    ("right_single(start_box='(5,6)')", RightClick(point=P(5, 6))),
    ("right_click(start_box='(5,6)')", RightClick(point=P(5, 6))),
    ("hover(start_box='(5,6)')", Hover(point=P(5, 6))),
    ("move_to(point='<point>5 6</point>')", Hover(point=P(5, 6))),
    ("drag(start_box='(1,2)', end_box='(3,4)')", Drag(start=P(1, 2), end=P(3, 4))),
    ("drag(start_point='<point>1 2</point>', end_point='<point>3 4</point>')", Drag(start=P(1, 2), end=P(3, 4))),
    ("select(start_box='(1,2)', end_box='(3,4)')", Drag(start=P(1, 2), end=P(3, 4))),
    ("scroll(start_box='(5,6)', direction='down')", Scroll(point=P(5, 6), direction="down")),
    ("scroll(point='<point>5 6</point>', direction='Left')", Scroll(point=P(5, 6), direction="left")),
    ("scroll(start_box='(5,6)', direction='up', amount=3)", Scroll(point=P(5, 6), direction="up", amount=3)),
    ("scroll(start_box='(5,6)', direction='up', amount='12')", Scroll(point=P(5, 6), direction="up", amount=12)),
    ("scroll(direction='up')", Scroll(point=P(640, 360), direction="up")),  # no point: mid-screen
    ("type(content='hello')", Type(text="hello")),
    ("type(content='hello\\n')", Type(text="hello", submit=True)),
    ("type(content='')", Type(text="")),
    ("type(content='a\\n', submit='false')", Type(text="a\n")),
    ("hotkey(key='ctrl c')", Hotkey(keys=("ctrl", "c"))),
    ("hotkey(key='ctrl+c')", Hotkey(keys=("ctrl", "c"))),
    ("hotkey(key='Ctrl+Shift+T')", Hotkey(keys=("ctrl", "shift", "t"))),
    ("hotkey(key='enter')", Hotkey(keys=("enter",))),
    ("hotkey(key='ctrl +')", Hotkey(keys=("ctrl", "+"))),
    ("press(key='enter')", Hotkey(keys=("enter",))),
    ("press('tab')", Hotkey(keys=("tab",))),
    ("wait()", Wait()),
    ("wait(seconds='2')", Wait(seconds=2)),
    ("wait(seconds=0.5)", Wait(seconds=0.5)),
    ("finished()", Finished()),
    ("finished(content='The price is $5.')", Finished(answer="The price is $5.")),
    ("call_user()", CallUser()),
    ("call_user(content='Which account?')", CallUser(question="Which account?")),
    ("navigate(url='http://127.0.0.1:8000/a?b=1')", Navigate(url="http://127.0.0.1:8000/a?b=1")),
    ("navigate(content='https://example.com')", Navigate(url="https://example.com")),
    ("navigate_back()", Back()),
    ("back()", Back()),
    ("select_option(start_box='(5,6)', option='Two')", Select(point=P(5, 6), option="Two")),
    ("select(start_box='(5,6)', option='Two')", Select(point=P(5, 6), option="Two")),
])
def test_every_action(text, expected):
    assert one(f"Thought: t\nAction: {text}") == expected
    assert one(text) == expected  # the bare call, no "Action:" at all


# ---------------------------------------------------------------- strings

@pytest.mark.parametrize("literal,text", [
    (r"'it\'s'", "it's"),
    (r'"say \"hi\""', 'say "hi"'),
    (r"'back\\slash'", "back\\slash"),
    (r"'two\nlines'", "two\nlines"),
    (r"'tab\there'", "tab\there"),
    (r"'win\path'", "win\\path"),  # unknown escapes stay literal
    ("\"it's\"", "it's"),
    ("'it's fine'", "it's fine"),  # an unescaped quote, as models write them
    ("'He said 'hi', then left'", "He said 'hi', then left"),
    ("'日本語 ✓ émoji 🎉'", "日本語 ✓ émoji 🎉"),
    ("'real\nnewline'", "real\nnewline"),
    ("'a) b'", "a) b"),
])
def test_type_strings(literal, text):
    assert one(f"Action: type(content={literal})") == Type(text=text)


def test_typed_action_marker_inside_content_is_text():
    step = parse_response("Thought: t\nAction: type(content='Action: click(start_box=\\'(1,1)\\')')", PX)
    assert step.actions == [Type(text="Action: click(start_box='(1,1)')")]


# ---------------------------------------------------------------- whole responses

def test_ui_tars_15_response():
    text = ("Thought: I need to open the search box at the top of the page, then type the query. "
            "The search field is the wide white bar in the header.\n"
            "Action: click(start_box='<|box_start|>(966,58)<|box_end|>')")
    step = parse_response(text, SR)
    assert step.thought.startswith("I need to open the search box")
    assert step.actions == [Click(point=P(960, 58 * 1080 / 1092))]
    assert step.raw == text and not step.is_terminal


def test_doubao_response_multi_action():
    text = ("Thought: 我需要先点击搜索框，然后输入关键词。\n"
            "Action: click(point='<point>500 100</point>')\n\n"
            "type(content='weather in Paris\\n')")
    step = parse_response(text, REL)
    assert step.thought == "我需要先点击搜索框，然后输入关键词。"
    assert step.actions == [Click(point=P(960, 108)), Type(text="weather in Paris", submit=True)]


def test_reflection_and_summary():
    text = ("Reflection: The last click missed the button.\n"
            "Action_Summary: Click the blue Submit button.\n"
            "Action: click(start_box='(10,20)')")
    step = parse_response(text, PX)
    assert step.reflection == "The last click missed the button."
    assert step.summary == "Click the blue Submit button."
    assert step.thought == "Click the blue Submit button."


def test_think_prefix_and_fullwidth_colon():
    step = parse_response("<think>The form is done.</think>\nThought: submit\nAction：hotkey(key='enter')", PX)
    assert step.thought == "submit" and step.actions == [Hotkey(keys=("enter",))]
    step = parse_response("<think>\nonly reasoning\n</think>Action: wait()", PX)
    assert step.thought == "only reasoning" and step.actions == [Wait()]
    step = parse_response("dropped open tag</think>Action: wait()", PX)
    assert step.thought == "dropped open tag"


def test_thought_without_action_marker_then_call():
    step = parse_response("Thought: Scroll to see more.\nscroll(start_box='(5,5)', direction='down')", PX)
    assert step.thought == "Scroll to see more." and step.actions == [Scroll(point=P(5, 5))]


def test_action_word_in_thought_prose():
    text = ("Thought: My next Action: click the OK button.\n"
            "Action: click(start_box='(3,4)')")
    step = parse_response(text, PX)
    assert step.actions == [Click(point=P(3, 4))]
    assert step.thought == "My next Action: click the OK button."


def test_repeated_action_markers_and_code_fences():
    text = "Thought: t\nAction: click(start_box='(1,1)')\n\nAction: type(content='x')"
    assert parse_response(text, PX).actions == [Click(point=P(1, 1)), Type(text="x")]
    text = "Thought: t\nAction:\n```python\nclick(start_box='(1,1)')\n```"
    assert parse_response(text, PX).actions == [Click(point=P(1, 1))]
    assert parse_response("**Thought:** t\n**Action:** `wait()`", PX).actions == [Wait()]


def test_finished_is_terminal():
    step = parse_response("Thought: done\nAction: finished(content='42')", PX)
    assert step.is_terminal and step.actions == [Finished(answer="42")]


# ---------------------------------------------------------------- JSON form

def test_json_forms():
    step = parse_response('{"thought": "go", "actions": [{"kind": "click", "x": 10, "y": 20}, '
                          '{"action": "type", "text": "hi", "submit": true}]}', PX)
    assert step.thought == "go"
    assert step.actions == [Click(point=P(10, 20)), Type(text="hi", submit=True)]
    assert one('{"action": "click", "point": [235, 512]}', REL) == Click(point=P(451.2, 552.96))
    assert one('[{"action": "hotkey", "keys": ["ctrl", "a"]}]') == Hotkey(keys=("ctrl", "a"))
    assert one('{"action": "drag", "start_box": [1, 2], "end_box": "(3,4)"}') == Drag(start=P(1, 2), end=P(3, 4))
    assert one('{"action": "scroll", "args": {"point": [5, 5], "direction": "up", "amount": 2}}') == \
        Scroll(point=P(5, 5), direction="up", amount=2)
    assert one('```json\n{"action": "finished", "answer": "ok"}\n```') == Finished(answer="ok")
    step = parse_response('Thought: t\nAction: {"action": "wait", "seconds": 3}', PX)
    assert step.thought == "t" and step.actions == [Wait(seconds=3)]


@pytest.mark.parametrize("text,message", [
    ('{"thought": "x", "actions": [{"action": "click"}]}', "click needs start_box"),
    ('{"thought": "x", "actions": []}', "no actions"),
    ('{"thought": "x", "plan": 1, "actions": []}', "unknown JSON keys"),
    ('{"thought": "x", "actions": [', "invalid JSON"),
    ('{"action": "click", "point": [NaN, 1]}', "invalid JSON"),
    ('{"action": "click", "point": [1, 2, 3]}', "must be a point"),
    ('{"action": "click", "point": [true, 2]}', "must be a point"),
    ('{"actions": [{"point": [1, 2]}]}', 'exactly one "action"'),
])
def test_json_errors(text, message):
    with pytest.raises(ActionParseError, match=message):
        parse_response(text, PX)


# ---------------------------------------------------------------- errors shown to the model

@pytest.mark.parametrize("text,message", [
    ("", "empty"),
    ("   \n", "empty"),
    ("I think I should click the button.", "no action found"),
    ("Thought: t\nAction: ", "'Action:' is empty"),
    ("Action: click()", r"click needs start_box='\(x,y\)'"),
    ("Action: click(start_box='(5,5)'", r"missing its closing '\)'"),
    ("Action: type(content='abc", "unterminated string"),
    ("Action: click(start_box='(a,b)')", r"must be a point like '\(x,y\)'"),
    ("Action: click(start_box='(1,2,3)')", "must be a point"),
    ("Action: long_press(start_box='(5,5)')", "unknown action 'long_press'; use one of: click"),
    ("Action: click(start_box='(5,5)', button='left')", "unexpected argument"),
    ("Action: click(start_box='(5,5)', start_box='(6,6)')", "twice"),
    ("Action: click(start_box='(5,5)', point='(6,6)')", "only one of"),
    ("Action: scroll(start_box='(5,5)', direction='sideways')", "direction must be one of"),
    ("Action: scroll(start_box='(5,5)', amount='lots')", "amount must be a number"),
    ("Action: scroll(start_box='(5,5)', amount=500)", "amount"),
    ("Action: hotkey(key='ctrl banana')", "unknown key 'banana'"),
    ("Action: press(key='ctrl c')", "single key"),
    ("Action: wait(seconds=-1)", "seconds"),
    ("Action: navigate(url='')", "url"),
    ("Action: click(start_box='(5,5)') and then submit", "unexpected text"),
    ("Action: finished()\n\nclick(start_box='(1,1)')", "must be the last action"),
    ("Action: type(content='x', submit='maybe')", "true or false"),
])
def test_errors(text, message):
    with pytest.raises(ActionParseError, match=message):
        parse_response(text, PX)


@pytest.mark.parametrize("text", [
    "Action: " * 5000,
    "Action: type(content='" + "' " * 20000,
    "Action: click(" + "(" * 50000,
    "click(start_box='(1,1)')\n" * 5000,
])
def test_pathological_input_is_rejected_quickly(text):
    import time
    t0 = time.perf_counter()
    with pytest.raises(ActionParseError):
        parse_response(text, PX)
    assert time.perf_counter() - t0 < 2.0


def test_error_is_a_model_error_and_value_error():
    from actions.errors import ModelError
    with pytest.raises(ModelError):
        parse_response("nonsense", PX)
    with pytest.raises(ValueError):
        parse_response("nonsense", PX)


def test_non_text_response_is_a_parse_error():
    with pytest.raises(ActionParseError):
        parse_response(None, PX)  # type: ignore[arg-type]


def test_bad_space_is_our_bug():
    with pytest.raises(TypeError):
        parse_response("Action: wait()", object())


# ---------------------------------------------------------------- the formatter

def test_to_uitars_examples():
    assert to_uitars(Click(point=P(235.4, 511.6)), PX) == "click(start_box='(235,512)')"
    assert to_uitars(Click(point=P(451.2, 552.96)), REL) == "click(start_box='(235,512)')"
    assert to_uitars(Click(point=P(1, 2)), PX, box_tokens=True) == \
        "click(start_box='<|box_start|>(1,2)<|box_end|>')"
    assert to_uitars(DoubleClick(point=P(1, 2)), PX) == "left_double(start_box='(1,2)')"
    assert to_uitars(RightClick(point=P(1, 2)), PX) == "right_single(start_box='(1,2)')"
    assert to_uitars(Hover(point=P(1, 2)), PX) == "hover(start_box='(1,2)')"
    assert to_uitars(Drag(start=P(1, 2), end=P(3, 4)), PX) == "drag(start_box='(1,2)', end_box='(3,4)')"
    assert to_uitars(Scroll(point=P(1, 2)), PX) == "scroll(start_box='(1,2)', direction='down')"
    assert to_uitars(Scroll(point=P(1, 2), direction="up", amount=3), PX) == \
        "scroll(start_box='(1,2)', direction='up', amount='3')"
    assert to_uitars(Type(text="ab'c", submit=True), PX) == "type(content='ab\\'c\\n')"
    assert to_uitars(Type(text="a\\b"), PX) == "type(content='a\\\\b')"
    assert to_uitars(Hotkey(keys=("ctrl", "c")), PX) == "hotkey(key='ctrl c')"
    assert to_uitars(Wait(), PX) == "wait()"
    assert to_uitars(Wait(seconds=2), PX) == "wait(seconds='2')"
    assert to_uitars(Finished(answer="42"), PX) == "finished(content='42')"
    assert to_uitars(Finished(), PX) == "finished()"
    assert to_uitars(CallUser(), PX) == "call_user()"
    assert to_uitars(Navigate(url="http://x/"), PX) == "navigate(url='http://x/')"
    assert to_uitars(Back(), PX) == "navigate_back()"
    assert to_uitars(Select(point=P(1, 2), option="Two"), PX) == "select_option(start_box='(1,2)', option='Two')"


def test_format_step():
    text = format_step("Open it.", [Click(point=P(1, 2)), Type(text="x", submit=True)], PX)
    assert text == "Thought: Open it.\nAction: click(start_box='(1,2)')\n\ntype(content='x\\n')"
    step = parse_response(text, PX)
    assert step.thought == "Open it." and step.actions == [Click(point=P(1, 2)), Type(text="x", submit=True)]
    with pytest.raises(ValueError):
        format_step("t", [], PX)


# ---------------------------------------------------------------- property tests

# Strings built from the pieces that break naive quoting: quotes, backslash escapes, newlines.
TRICKY = ["'", '"', "\\", "\\n", "\\'", "\\\\", "\n", "\r", "\t", ")", "(", ",", "=", " ", "')",
          "', x='", "Action: ", "<point>", "é", "日本", "🎉"]
TEXT = st.lists(st.one_of(st.sampled_from(TRICKY), st.characters(exclude_categories=("Cs",))),
                max_size=12).map("".join)
SINGLE_KEYS = st.sampled_from(list("abcxyz019+-=,./;'\\[]`"))
KEYS = st.lists(st.one_of(st.sampled_from(sorted(KEY_NAMES)), SINGLE_KEYS), min_size=1, max_size=4)


def actions_in(space):
    """Actions whose points are images of integer model coordinates, so rounding is exact."""
    mw, mh = int(space.model_width), int(space.model_height)
    points = st.builds(lambda x, y: Point(**dict(zip("xy", space.to_viewport(x, y)))),
                       st.integers(0, mw), st.integers(0, mh))
    return st.one_of(
        st.builds(Click, point=points), st.builds(DoubleClick, point=points),
        st.builds(RightClick, point=points), st.builds(Hover, point=points),
        st.builds(Drag, start=points, end=points),
        st.builds(Scroll, point=points, direction=st.sampled_from(["up", "down", "left", "right"]),
                  amount=st.integers(1, 100)),
        st.builds(Type, text=TEXT, submit=st.booleans()),
        st.builds(Hotkey, keys=KEYS.map(tuple)),
        st.builds(Select, point=points, option=TEXT),
        st.builds(Wait, seconds=st.one_of(st.just(1.0), st.integers(0, 60).map(float),
                                          st.floats(0, 60, allow_nan=False))),
        st.builds(Navigate, url=TEXT.filter(bool)),
        st.just(Back()),
        st.builds(Finished, answer=TEXT), st.builds(CallUser, question=TEXT),
    )


@pytest.mark.parametrize("kind", sorted(SPACES))
def test_round_trip(kind):
    space = SPACES[kind]

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(actions=st.lists(actions_in(space), min_size=1, max_size=3), box_tokens=st.booleans())
    def check(actions, box_tokens):
        for a in actions:
            assert parse_response(to_uitars(a, space, box_tokens), space).actions == [a]
        thought = "Plan: step one, then two."
        # a terminal action may only come last, as in real steps
        actions = [a for a in actions if a.kind not in ("finished", "call_user")] or actions[:1]
        step = parse_response(format_step(thought, actions, space, box_tokens), space)
        assert step.actions == actions and step.thought == thought

    check()


def test_an_action_marker_inside_a_string_is_not_the_action():
    space = SPACES["absolute"]
    step = parse_response("select_option(start_box='(10,20)', option='Action: A(\\'')", space)
    assert [a.kind for a in step.actions] == ["select"] and step.actions[0].option == "Action: A('"
    with pytest.raises(ActionParseError, match="unknown action 'frobnicate'"):
        parse_response("Thought: x\nAction: frobnicate(1)", space)


FRAGMENTS = ["click(", "start_box='", "(", ")", "<point>", "</point>", "'", '"', "\\", "Action:", "Action：",
             "Thought:", "\n\n", ",", "=", "1", "100", "-5", "type(content=", "hotkey(key=", "<think>",
             "</think>", "{", "}", "[", "]", '"action"', ":", "<|box_start|>", "<|box_end|>", "finished()",
             "wait()", "drag(", "end_box=", "1e999", "NaN", "scroll(", "direction=", "`", " ", "select_option("]


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=25))
def test_fuzz_raises_only_parse_errors(parts):
    text = "".join(parts)
    for space in (PX, REL):
        try:
            step = parse_response(text, space)
        except ActionParseError as e:
            assert str(e)
        else:
            assert step.actions  # a parsed step always has an action


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_fuzz_arbitrary_text(text):
    try:
        parse_response(text, SR)
    except ActionParseError:
        pass
