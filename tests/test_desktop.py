"""DesktopDriver on a private Xvfb display with a tiny Tk window: clicks and typing land."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actions.schema import Click, Hotkey, Navigate, Point, Type

APP = r'''
import sys, tkinter as tk
log = open(sys.argv[1], "a", buffering=1)
root = tk.Tk()
root.geometry("300x200+50+50")
tk.Button(root, text="Press", command=lambda: log.write("clicked\n")).place(x=10, y=10, width=100, height=30)
entry = tk.Entry(root)
entry.place(x=10, y=60, width=200, height=30)
entry.bind("<Return>", lambda e: log.write("entered:" + entry.get() + "\n"))
root.after(300, lambda: log.write("ready\n"))
root.mainloop()
'''


def _wait_for(path: Path, text: str, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and text in path.read_text():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def xvfb():
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (sudo apt-get install xvfb)")
    try:
        import tkinter  # noqa: F401
    except ImportError:
        pytest.skip("tkinter is not available for the test window")
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "640x480x24", "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        pytest.skip("Xvfb did not start")
    yield f":{number}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def app(xvfb, tmp_path_factory):
    log = tmp_path_factory.mktemp("desktop") / "events.log"
    script = log.with_name("app.py")
    script.write_text(APP)
    proc = subprocess.Popen([sys.executable, str(script), str(log)], env={**os.environ, "DISPLAY": xvfb})
    if not _wait_for(log, "ready"):
        proc.kill()
        pytest.fail("the Tk test window did not come up")
    yield log
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def desktop(xvfb):
    from actions.drivers.desktop import DesktopDriver

    return DesktopDriver(display=xvfb, pause=0.01)


def test_capture_shows_the_window(desktop, app):
    f = desktop.capture()
    assert (f.width, f.height) == (640, 480) and f.image.size == (640, 480) and f.elements == []
    assert f.image.getpixel((5, 5)) != f.image.getpixel((160, 75))  # the window is drawn on the root


def test_click_and_typing_land(desktop, app):
    assert desktop.execute(Click(point=Point(x=110, y=75))).ok
    assert _wait_for(app, "clicked")
    assert desktop.execute(Click(point=Point(x=160, y=125))).ok
    assert desktop.execute(Type(text="hello", submit=True)).ok
    assert _wait_for(app, "entered:hello")
    assert desktop.execute(Hotkey(keys=("ctrl", "a"))).ok


def test_model_errors(desktop):
    r = desktop.execute(Click(point=Point(x=700, y=10)))
    assert not r.ok and r.error == "point (700,10) is outside the 640x480 screen"
    assert not desktop.execute(Navigate(url="http://x")).ok
    assert not desktop.execute(Type(text="héllo")).ok
