"""BrowserDriver against real headless Chromium on local pages: every action kind, capture, elements."""
from __future__ import annotations

import time

import pytest

from actions.drivers.browser import BrowserDriver, find_chromium, playwright_key
from actions.errors import BrowserNotFound, EnvironmentFailure
from actions.schema import (Back, Click, DoubleClick, Drag, Finished, Hotkey, Hover, Navigate, Point, RightClick,
                            Scroll, Select, Type, Wait)
from perception import CoordinateSpace, observe, render_elements


def P(x: float, y: float) -> Point:
    return Point(x=x, y=y)


def center(d: BrowserDriver, selector: str) -> Point:
    x, y = d.page.evaluate("(s) => { const r = document.querySelector(s).getBoundingClientRect();"
                           " return [r.left + r.width / 2, r.top + r.height / 2]; }", selector)
    return P(x, y)


def result_text(d: BrowserDriver) -> str:
    return d.page.evaluate("document.getElementById('result').textContent")


@pytest.fixture
def actions_page(driver, server):
    driver.goto(server.url("actions.html"))
    return driver


# -- pointer ---------------------------------------------------------------------------------

def test_click_counts(actions_page):
    d = actions_page
    for _ in range(2):
        assert d.execute(Click(point=center(d, "#count"))).ok
    assert d.page.evaluate("count.textContent") == "Count 2"


def test_click_settles_after_deferred_work(actions_page):
    """The settle wait covers a handler's timers (and the timers they start), not only DOM quiet."""
    d = actions_page
    t0 = time.perf_counter()
    assert d.execute(Click(point=center(d, "#later"))).ok
    assert result_text(d) == "later | chained"
    assert time.perf_counter() - t0 >= 0.2
    assert d.execute(Click(point=center(d, "#count"))).ok
    assert d.page.evaluate("count.textContent") == "Count 1"


def test_double_and_right_click(actions_page):
    d = actions_page
    assert d.execute(DoubleClick(point=center(d, "#dbl"))).ok
    assert d.execute(RightClick(point=center(d, "#ctx"))).ok
    assert result_text(d) == "dblclick | contextmenu"


def test_hover(actions_page):
    d = actions_page
    assert d.execute(Hover(point=center(d, "#hover"))).ok
    assert result_text(d) == "hovered"
    assert d.page.evaluate("getComputedStyle(hover).backgroundColor") == "rgb(153, 204, 153)"


def test_drag_with_pointer_events(actions_page):
    d = actions_page
    start = center(d, "#drag")
    assert d.execute(Drag(start=start, end=P(start.x + 200, start.y + 50))).ok
    left, top = d.page.evaluate("[drag.offsetLeft, drag.offsetTop]")
    assert (left, top) == (220, 350)
    assert "dropped" in result_text(d)


def test_html5_drag_and_drop(driver, server):
    driver.goto(server.url("dnd.html"))
    assert driver.execute(Drag(start=center(driver, "#src"), end=center(driver, "#dst"))).ok
    assert driver.page.evaluate("document.getElementById('dst').textContent") == "dropped src"


def test_scroll_window_and_inner_div(actions_page):
    d = actions_page
    assert d.execute(Scroll(point=P(300, 300), direction="down", amount=3)).ok
    assert d.page.evaluate("scrollY") == 300
    assert d.execute(Scroll(point=P(300, 300), direction="up", amount=1)).ok
    assert d.page.evaluate("scrollY") == 200
    d.page.evaluate("scrollTo(0, 0)")
    inner = center(d, "#inner")
    assert d.execute(Scroll(point=inner, direction="down", amount=2)).ok
    assert d.execute(Scroll(point=inner, direction="right", amount=1)).ok
    assert d.page.evaluate("[inner.scrollTop, inner.scrollLeft, scrollY]") == [200, 100, 0]
    # Beside the list, where nothing scrolls sideways: the wheel goes to the nearest area that does.
    r = d.execute(Scroll(point=P(100, 300), direction="right", amount=1))
    assert r.ok and "scrolled the nearest area" in r.info["warning"]
    assert d.page.evaluate("[inner.scrollLeft, scrollX]") == [200, 0]
    r = d.execute(Scroll(point=P(100, 300), direction="down", amount=1))  # the page scrolls down: as asked
    assert "warning" not in r.info and d.page.evaluate("[inner.scrollTop, scrollY]") == [200, 100]


def test_point_outside_area_is_a_model_error(actions_page):
    r = actions_page.execute(Click(point=P(801, 10)))
    assert not r.ok and r.error == "point (801,10) is outside the 800x600 screen"
    r = actions_page.execute(Drag(start=P(10, 10), end=P(10, -2.5)))
    assert not r.ok and "(10,-2.5)" in r.error


# -- keyboard --------------------------------------------------------------------------------

def test_type_and_submit(actions_page):
    d = actions_page
    d.execute(Click(point=center(d, "#q")))
    r = d.execute(Type(text="hello wörld", submit=True))
    assert r.ok and not r.info
    assert d.page.evaluate("q.value") == "hello wörld"
    assert result_text(d) == "submitted:hello wörld"


def test_type_without_focus_warns_but_types(actions_page):
    d = actions_page
    r = d.execute(Type(text="ab"))
    assert r.ok and r.info == {"warning": "no focused input"}
    assert d.page.evaluate("window.keys") == ["a", "b"]


def test_ctrl_a_then_type_replaces(actions_page):
    d = actions_page
    d.execute(Click(point=center(d, "#ta")))
    assert d.execute(Hotkey(keys=("ctrl", "a"))).ok
    d.execute(Type(text="new"))
    assert d.page.evaluate("ta.value") == "new"


def test_tab_moves_focus_and_keys_release(actions_page):
    d = actions_page
    d.execute(Click(point=center(d, "#q")))
    assert d.execute(Hotkey(keys=("tab",))).ok
    assert d.page.evaluate("document.activeElement.id") == "q2"
    d.execute(Hotkey(keys=("shift", "tab")))
    assert d.page.evaluate("document.activeElement.id") == "q"
    d.execute(Type(text="x"))  # shift was released: a lowercase x
    assert d.page.evaluate("q.value") == "x"


def test_key_names():
    assert playwright_key("ctrl") == "Control" and playwright_key("cmd") == "Meta"
    assert playwright_key("esc") == "Escape" and playwright_key("arrowup") == "ArrowUp"
    assert playwright_key("pageup") == "PageUp" and playwright_key("f5") == "F5"
    assert playwright_key("a", with_modifier=True) == "KeyA" and playwright_key("a") == "a"
    with pytest.raises(ValueError):
        playwright_key("hyper")


# -- select ----------------------------------------------------------------------------------

def test_select_native_fires_change(actions_page):
    d = actions_page
    r = d.execute(Select(point=center(d, "#fruit"), option="Date"))
    assert r.ok, r.error
    assert d.page.evaluate("fruit.value") == "d"
    assert result_text(d) == "change:d"  # one change event, no intermediate ones
    r = d.execute(Select(point=center(d, "#fruit"), option="apple"))  # case-insensitive
    assert r.ok and d.page.evaluate("fruit.value") == "a"


def test_select_errors_and_listbox(actions_page):
    d = actions_page
    r = d.execute(Select(point=center(d, "#fruit"), option="Mango"))
    assert not r.ok and "'Banana'" in r.error
    r = d.execute(Select(point=center(d, "#fruit"), option="Cherry"))
    assert not r.ok and "disabled" in r.error
    r = d.execute(Select(point=center(d, "#count"), option="x"))
    assert not r.ok and "no drop-down" in r.error
    assert d.execute(Select(point=center(d, "#multi"), option="Blue")).ok
    assert d.page.evaluate("multi.value") == "Blue" and "multi:Blue" in result_text(d)


def test_a_list_boxs_keyboard_focus_is_in_the_element_list(actions_page):
    # Chrome draws the focus ring inside a list box but the DOM keeps no trace of it: the driver
    # follows presses and arrow keys, and the element list marks the option "focused".
    d = actions_page

    def focused() -> list[str]:
        return [e["text"] for e in d.capture().elements if e["role"] == "option" and e.get("focused")]
    d.page.evaluate("""() => { const s = document.createElement('select'); s.id = 'many'; s.multiple = true;
        s.size = 4; s.className = 'abs'; s.style.cssText = 'left:300px;top:170px;width:120px';
        s.innerHTML = '<option>Ash</option><option>Birch</option><option>Cedar</option>';
        document.body.appendChild(s); }""")
    assert focused() == []
    assert d.execute(Click(point=center(d, "#many option:nth-child(1)"))).ok
    assert focused() == ["Ash"]
    assert d.execute(Hotkey(keys=("ctrl", "down"))).ok
    assert d.execute(Hotkey(keys=("ctrl", "down"))).ok
    assert focused() == ["Cedar"]
    assert d.execute(Hotkey(keys=("ctrl", "space"))).ok  # Ctrl+Space adds the focused option
    assert d.page.evaluate("[...many.selectedOptions].map(o => o.text)") == ["Ash", "Cedar"]
    d.execute(Hotkey(keys=("down",)))
    assert focused() == ["Cedar"]  # held at the end
    d.execute(Hotkey(keys=("home",)))
    assert focused() == ["Ash"]


def test_select_aria_listbox(driver, server):
    driver.goto(server.url("aria.html"))
    r = driver.execute(Select(point=center(driver, "#combo"), option="Two"))
    assert r.ok, r.error
    assert driver.page.evaluate("document.getElementById('combo').textContent") == "Two"


# -- navigation ------------------------------------------------------------------------------

def test_navigate_back_and_wait(actions_page, server):
    d = actions_page
    r = d.execute(Navigate(url="page2.html"))  # relative to the current page
    assert r.ok and r.info["url"].endswith("/page2.html")
    assert d.page.title() == "Page two"
    assert d.execute(Back()).ok and d.page.url.endswith("/actions.html")
    t = time.perf_counter()
    assert d.execute(Wait(seconds=0.3)).ok
    assert time.perf_counter() - t >= 0.3
    assert d.execute(Finished(answer="done")).ok


def test_back_without_history(driver, server):
    r = driver.execute(Back())
    assert not r.ok and "no previous page" in r.error
    r = driver.execute(Navigate(url="javascript:alert(1)"))
    assert not r.ok and "javascript" in r.error


def test_click_that_navigates_settles_on_new_page(actions_page):
    d = actions_page
    assert d.execute(Click(point=center(d, "#next"))).ok
    assert d.page.url.endswith("/page2.html")
    assert any(e["text"] == "Second page" for e in d.capture().elements)


def test_allow_list_refuses_navigate_and_link_clicks(make_driver, server, other_server):
    d = make_driver(allowed_origins=[server.origin])
    d.goto(server.url("actions.html"))
    r = d.execute(Navigate(url=other_server.url("page2.html")))
    assert not r.ok and "refused" in r.error and d.page.url.endswith("/actions.html")
    d.page.evaluate("(u) => document.getElementById('away').href = u", other_server.url("page2.html"))
    r = d.execute(Click(point=center(d, "#away")))
    assert not r.ok and "refused" in r.error and other_server.origin in r.error
    assert d.page.url.endswith("/actions.html") and d.page.evaluate("!!document.getElementById('count')")
    assert d.execute(Click(point=center(d, "#next"))).ok  # same origin still works
    assert d.page.url.endswith("/page2.html")


# -- capture ---------------------------------------------------------------------------------

def test_capture_viewport_and_observe(actions_page):
    f = actions_page.capture()
    assert f.image.mode == "RGB" and f.image.size == (800, 600) and (f.width, f.height, f.dpr) == (800, 600, 1.0)
    assert f.url.endswith("/actions.html") and f.title == "Actions" and f.offset == (0.0, 0.0)
    obs = observe(f)
    assert obs.space == CoordinateSpace.absolute(800, 600, 1.0)
    assert [e.index for e in obs.elements] == list(range(len(obs.elements)))
    btn = obs.element_at(70, 35)
    assert btn.role == "button" and btn.text == "Count" and btn.selector == "#count"


def test_dpr2_screenshot(make_driver, server):
    d = make_driver(viewport=(400, 300), dpr=2.0)
    d.goto(server.url("colors.html"))
    f = d.capture()
    assert f.image.size == (800, 600) and (f.width, f.height, f.dpr) == (400, 300, 2.0)
    assert f.image.getpixel((150, 150)) == (255, 0, 0) and f.image.getpixel((250, 150)) == (0, 0, 255)
    d.execute(Scroll(point=P(10, 10)))  # nothing to scroll; the crop stays right
    assert d.capture().image.getpixel((50, 50)) == (255, 0, 0)


def test_observed_area_offset_mapping(driver, server):
    driver.goto(server.url("wob.html"))
    driver.set_observed_area("#wrap")
    f = driver.capture()
    assert (f.width, f.height, f.offset) == (160, 210, (50.0, 40.0)) and f.image.size == (160, 210)
    assert f.image.getpixel((5, 5)) == (255, 255, 0)  # the yellow #wrap, not the page corner
    texts = [e["text"] for e in f.elements]
    assert texts == ["Inside"]  # the button outside the area is left out
    inside = f.elements[0]
    assert inside["box"] == [20, 60, 60, 30]
    assert driver.execute(Click(point=P(50, 75))).ok
    assert driver.page.evaluate("log.textContent") == "click 100,115 inside"
    r = driver.execute(Click(point=P(161, 10)))
    assert not r.ok and r.error == "point (161,10) is outside the 160x210 screen"
    driver.page.evaluate("document.body.style.height = '3000px'; scrollTo(0, 20)")  # crop follows scrolling
    f = driver.capture()
    assert f.offset == (50.0, 20.0) and f.image.getpixel((5, 5)) == (255, 255, 0)
    driver.set_observed_area("#missing")
    with pytest.raises(EnvironmentFailure, match="#missing"):
        driver.capture()


def test_elements_roles_order_and_filters(driver, server):
    driver.goto(server.url("elements.html"))
    els = driver.capture().elements
    by_text = {e["text"]: e for e in els}
    texts = [e["text"] for e in els]
    # Reading order: the heading, then the row of buttons left to right (tops differ by 2 px).
    assert texts[:3] == ["Title here", "First button", "Second"]
    assert by_text["Title here"]["role"] == "heading" and not by_text["Title here"]["interactive"]
    assert "button" not in texts and "First" not in texts  # inner spans are not separate elements
    assert by_text["Some bold text"]["role"] == "text"
    # A clickable word inside a sentence (cursor:pointer, a listener the DOM can't show) is its own element.
    assert by_text["the docs"]["role"] == "clickable" and by_text["Read now"]["role"] == "text"
    cb = by_text["Remember me"]
    assert cb["role"] == "checkbox" and cb["checked"] is True
    name = by_text["Your name"]
    assert name["role"] == "textbox" and name["value"] == "Ada"
    pw = by_text["Password"]
    assert pw["value"] != "secret"  # never leak a password's value to a policy
    assert by_text["Tab one"]["role"] == "tab" and by_text["Tab one"]["checked"] is True
    # jQuery UI's tabs: the <li role=tab> says what its <a role=presentation> is and which is selected.
    assert [(by_text[t]["role"], by_text[t]["tag"], by_text[t]["checked"]) for t in ("Tab two", "Tab three")] == \
        [("tab", "a", False), ("tab", "a", True)]
    assert by_text["Clickable div"]["role"] == "clickable"
    # jQuery UI's menu: a cursor:pointer <li> around its <div role=menuitem> and its open submenu
    # lists each item on its own, not one "Marylinda Nicol" element the submenu's item is lost in.
    assert [(by_text[t]["role"], by_text[t]["tag"]) for t in ("Cathrine", "Marylinda", "Nicol")] == \
        [("menuitem", "div")] * 3
    assert by_text["Disabled"]["disabled"] is True
    assert "Hidden" not in texts and "Covered" not in texts and "Below the fold" not in texts
    assert by_text["Shadow button"]["role"] == "button"
    fb = by_text["Frame button"]
    assert fb["box"][0] >= 300 and fb["box"][1] >= 300  # iframe offset applied


def test_icons_and_hover_wrappers(driver, server):
    driver.goto(server.url("elements.html"))
    icons = [(e["role"], e["text"], e.get("checked")) for e in driver.capture().elements if e["role"] == "icon"]
    # Named by class (the state class says it is on), by the picture's file name, by an icon font's
    # class, by an <svg>'s <title>; a 100 px picture is not an icon, nor a resize grip.
    assert icons == [("icon", "like", True), ("icon", "reply", None), ("icon", "heart o", None),
                     ("icon", "Close", None)]
    # Swatches: a blank box in a colour of its own is named by it (a named colour, else the hue's
    # family), also inside a line of text; one in its backdrop's colour, without a border, is layout.
    swatches = [(e["text"], e.get("checked")) for e in driver.capture().elements if e["role"] == "swatch"]
    assert swatches == [("red", None), ("dark green", True), ("white", None)]
    # A box that turns cursor:pointer under the mouse, around lines of text (an open menu's items):
    # each line is its own element, not one clickable holding them all.
    driver.page.hover("#pop")
    texts = {e["text"]: e["role"] for e in driver.capture().elements}
    assert texts["Alpha item"] == "text" and texts["Beta item"] == "text" and "Alpha item Beta item" not in texts


def test_capture_waits_for_a_picture_still_loading(make_driver, tmp_path):
    # An icon whose picture (CSS ``content: url(...)``) is still on its way has no size yet: the
    # capture waits for the picture requests in flight, so the icon is in the element list and the
    # screenshot. The server sends the picture 0.6 s late.
    import shutil
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
    from pathlib import Path

    pages = Path(__file__).parent / "pages"
    shutil.copy(pages / "icons" / "reply-hover.png", tmp_path / "slow.png")
    (tmp_path / "late.html").write_text("<html><body><p>Inbox</p></body></html>")

    class Slow(SimpleHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/slow.png"):
                time.sleep(0.6)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Slow, directory=str(tmp_path)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        driver = make_driver()
        driver.goto(f"http://127.0.0.1:{httpd.server_address[1]}/late.html")
        # added after the load event, as a task's script renders its rows
        driver.page.evaluate("""() => { const s = document.createElement('span'); s.className = 'star';
            s.style.cssText = 'content: url(slow.png); height: 12px; display: inline-block';
            document.body.appendChild(s); }""")
        icons = [e["text"] for e in driver.capture().elements if e["role"] == "icon"]
        assert icons == ["star"]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_drawing_marks(driver, server):
    driver.goto(server.url("drawing.html"))
    els = driver.capture().elements
    shapes = [e["text"] for e in els if e["role"] == "shape"]
    # Each mark of a drawing: a size word where its marks differ in size, the colour the page names
    # (else the painted colour's name), the form; a one-character glyph is a letter or a digit. A
    # chart's label stays text; <defs> draw nothing; marks all of one size get no size word.
    assert shapes == ["large aqua circle", "small red rectangle", "large blue triangle", "large black digit 7",
                      "small green letter a", "yellow circle", "magenta circle"]
    assert any(e["role"] == "text" and e["text"] == "Sales 2024" for e in els)


def test_slider_scale_aims_a_drag(driver, server):
    from actions.schema import Drag, Point, Step
    from policy.grounding import slide_to_value

    driver.goto(server.url("slider.html"))
    obs = observe(driver.capture())
    q = next(e for e in obs.elements if e.role == "slider" and e.text.startswith("Quality"))
    assert (q.range.lo, q.range.hi, q.range.step, q.value) == (0, 200, 5, "35")
    level = next(e for e in obs.elements if e.text == "Level")  # an ARIA handle moves along its parent
    assert (level.range.lo, level.range.hi, level.range.track.width) == (0, 10, 300)
    for target in ("140", "5", "200"):
        step = Step(thought=f'The "Quality" slider is at {q.value}; drag its thumb to {target}.',
                    actions=[Drag(start=Point(x=5, y=5), end=Point(x=6, y=6))])  # points off the slider
        aimed, moved = slide_to_value(step, obs)
        assert moved
        driver.execute(aimed.actions[0])
        assert driver.page.input_value("#q") == target
        obs = observe(driver.capture())
        q = next(e for e in obs.elements if e.role == "slider" and e.text.startswith("Quality"))


def test_elements_cap_and_render(make_driver, server):
    driver = make_driver(viewport=(1280, 720))
    driver.goto(server.url("elements.html?many=400"))
    driver.max_elements = 50
    els = driver.capture().elements
    assert len(els) == 50 and all(e["interactive"] for e in els)  # controls win over text when capped
    driver.max_elements = 200
    obs = observe(driver.capture())
    assert len(obs.elements) == 200
    text = render_elements(obs.elements, CoordinateSpace.relative(1280, 720), max_elements=5)
    lines = text.splitlines()
    e0 = obs.elements[0]
    x, y = e0.box.center
    assert lines[0] == f'[0] {e0.role} "{e0.text}" ({round(x * 1000 / 1280)},{round(y * 1000 / 720)})'
    assert lines[0].startswith('[0] button "First button"')  # over the cap, the heading text gave way
    assert lines[-1] == "... 195 more elements not shown"


def test_a_link_wrapping_across_lines_is_listed_where_a_click_hits_it(driver, server):
    driver.goto(server.url("elements.html"))
    driver.page.set_content(
        '<p style="width:240px;font:16px sans-serif;line-height:2;margin:8px">Words that fill the first line '
        '<a href="#w" id="w">Cheap media</a> and more words after the link on its second line.</p>')
    pieces = driver.page.evaluate("Array.from(document.getElementById('w').getClientRects(), r => [r.left, r.top])")
    assert len(pieces) == 2 and pieces[0][1] < pieces[1][1]  # the link does wrap: "Cheap" | "media"
    link = next(e for e in driver.capture().elements if e["text"] == "Cheap media")
    assert link["role"] == "link"
    x, y, w, h = link["box"]
    assert h < 40  # one line's piece, not the box around both lines
    assert driver.page.evaluate(f"document.elementFromPoint({x + w / 2}, {y + h / 2}).id") == "w"


def test_focused_and_clipped_text(driver, server):
    driver.goto(server.url("elements.html"))
    driver.page.evaluate("document.getElementById('name').value = 'x'.repeat(200); document.getElementById('name').focus()")
    name = next(e for e in driver.capture().elements if e["text"] == "Your name")
    assert name["focused"] is True and len(name["value"]) == 80 and name["value"].endswith("\u2026")


# -- environment -----------------------------------------------------------------------------

def test_closed_browser_raises_environment_failure(server):
    d = BrowserDriver.launch(viewport=(400, 300))
    d.goto(server.url("page2.html"))
    d._owned[1].close()  # the browser goes away under the driver
    with pytest.raises(EnvironmentFailure):
        d.capture()
    with pytest.raises(EnvironmentFailure):
        d.execute(Click(point=P(10, 10)))
    d.close()
    with pytest.raises(EnvironmentFailure, match="closed"):
        d.capture()


def test_find_chromium_env(monkeypatch, tmp_path):
    monkeypatch.setenv("GALAGO_CHROMIUM", str(tmp_path / "nope"))
    with pytest.raises(BrowserNotFound, match="GALAGO_CHROMIUM"):
        find_chromium()
    monkeypatch.delenv("GALAGO_CHROMIUM")
    assert find_chromium()
