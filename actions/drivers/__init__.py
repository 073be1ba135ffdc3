"""Drivers execute actions: ``BrowserDriver`` (Playwright) and ``DesktopDriver`` (pyautogui).

They are imported lazily so ``import actions.drivers`` needs neither Playwright nor an X display.
"""
from actions.drivers.base import Driver, Frame

__all__ = ["Driver", "Frame", "BrowserDriver", "DesktopDriver", "find_chromium"]


def __getattr__(name: str):
    if name in ("BrowserDriver", "find_chromium"):
        from actions.drivers import browser

        return getattr(browser, name)
    if name == "DesktopDriver":
        from actions.drivers.desktop import DesktopDriver

        return DesktopDriver
    raise AttributeError(name)
