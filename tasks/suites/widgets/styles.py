"""Random visual styles: fonts (installed DejaVu/Liberation only), sizes, colours, themes, spacing."""
from __future__ import annotations

import colorsys
import random
from dataclasses import dataclass

FONTS = ("DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "DejaVu Sans Condensed", "Liberation Sans",
         "Liberation Serif", "Liberation Mono", "Liberation Sans Narrow")


def _hex(h: float, s: float, l: float) -> str:
    r, g, b = colorsys.hls_to_rgb(h % 1.0, l, s)
    return "#{:02x}{:02x}{:02x}".format(round(r * 255), round(g * 255), round(b * 255))


@dataclass(frozen=True)
class Style:
    font: str
    font_size: int  # px
    dark: bool
    bg: str
    surface: str
    fg: str
    muted: str
    border: str
    accent: str
    accent_fg: str
    gap: int  # px, the spacing unit
    radius: int
    outline_buttons: bool

    @classmethod
    def random(cls, rng: random.Random) -> "Style":
        dark = rng.random() < 0.3
        hue = rng.random()
        sat = rng.uniform(0.0, 0.25)
        if dark:
            bg, surface = _hex(hue, sat, rng.uniform(0.06, 0.14)), _hex(hue, sat, rng.uniform(0.16, 0.22))
            fg, muted, border = "#eeeeee", "#b0b0b0", _hex(hue, sat, 0.35)
        else:
            bg, surface = _hex(hue, sat, rng.uniform(0.9, 0.98)), "#ffffff"
            fg, muted, border = _hex(hue, 0.2, 0.12), _hex(hue, 0.1, 0.4), _hex(hue, sat, 0.78)
        ahue = rng.random()
        accent = _hex(ahue, rng.uniform(0.5, 0.85), rng.uniform(0.55, 0.65) if dark else rng.uniform(0.32, 0.45))
        return cls(font=rng.choice(FONTS), font_size=rng.randint(12, 18), dark=dark, bg=bg, surface=surface,
                   fg=fg, muted=muted, border=border, accent=accent,
                   accent_fg="#111111" if dark else "#ffffff", gap=rng.randint(4, 14),
                   radius=rng.choice((0, 2, 4, 6, 8, 12)), outline_buttons=rng.random() < 0.3)

    def css(self) -> str:
        g, r = self.gap, self.radius
        btn_bg, btn_fg = ("transparent", self.accent) if self.outline_buttons else (self.accent, self.accent_fg)
        return f"""
* {{ box-sizing: border-box; }}
html, body {{ margin: 0; padding: 0; overscroll-behavior: none; }}  /* no swipe-back on sideways wheels */
body {{ font-family: "{self.font}"; font-size: {self.font_size}px; background: {self.bg}; color: {self.fg};
  line-height: 1.4; overflow-wrap: break-word; }}
header.site {{ display: flex; flex-wrap: wrap; gap: {g}px; align-items: center; padding: {g}px {2 * g}px;
  border-bottom: 1px solid {self.border}; background: {self.surface}; }}
header.site .brand {{ font-weight: bold; margin-right: {2 * g}px; }}
main {{ padding: {g}px {2 * g}px; max-width: 1200px; }}
.block, .card {{ background: {self.surface}; border: 1px solid {self.border}; border-radius: {r}px;
  padding: {g + 4}px; margin: {g}px 0; }}
.row {{ display: flex; flex-wrap: wrap; gap: {g}px; align-items: center; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: {g}px; }}
.sidebar-layout {{ display: flex; flex-wrap: wrap; gap: {2 * g}px; }}
.sidebar-layout > nav {{ flex: 0 0 160px; display: flex; flex-direction: column; gap: {g}px; }}
.sidebar-layout > section {{ flex: 1 1 260px; min-width: 0; }}
.muted {{ color: {self.muted}; }}
h1 {{ font-size: 1.5em; margin: {g}px 0; }} h2 {{ font-size: 1.2em; margin: {g}px 0; }}
a {{ color: {self.accent}; }}
button {{ font: inherit; color: {btn_fg}; background: {btn_bg}; border: 1px solid {self.accent};
  border-radius: {r}px; padding: {max(3, g // 2 + 2)}px {g + 6}px; cursor: pointer; }}
button.plain {{ background: transparent; color: {self.fg}; border-color: {self.border}; }}
label {{ display: block; margin: {g // 2 + 2}px 0; }}
.field {{ margin: {g}px 0; }}
.field > span {{ display: block; margin-bottom: 2px; }}
input[type=text], input[type=email], input[type=password], input[type=search], input[type=date],
textarea, select {{ font: inherit; color: {self.fg}; background: {self.bg}; border: 1px solid {self.border};
  border-radius: {min(r, 6)}px; padding: 4px 6px; width: 100%; max-width: 360px; }}
input[type=range] {{ width: 100%; max-width: 320px; }}
input[type=checkbox], input[type=radio] {{ width: 1.1em; height: 1.1em; vertical-align: middle; margin-right: 6px; }}
.check {{ display: flex; align-items: center; gap: 4px; margin: {g // 2 + 2}px 0; }}
.tabs {{ display: flex; flex-wrap: wrap; gap: 2px; border-bottom: 1px solid {self.border}; }}
.tabs button {{ background: transparent; color: {self.fg}; border-color: transparent; border-radius: {r}px {r}px 0 0; }}
.tabs button[aria-selected=true] {{ border-color: {self.border}; border-bottom-color: {self.surface};
  font-weight: bold; color: {self.accent}; }}
.acc-head {{ width: 100%; text-align: left; background: transparent; color: {self.fg}; border-color: {self.border}; margin-top: 4px; }}
.acc-body {{ padding: {g}px; border: 1px solid {self.border}; border-top: none; }}
.menubar {{ display: flex; flex-wrap: wrap; gap: {g}px; }}
.menu {{ position: relative; }}
.menu-list {{ position: absolute; z-index: 20; top: 100%; left: 0; min-width: 180px; background: {self.surface};
  border: 1px solid {self.border}; border-radius: {r}px; box-shadow: 0 4px 12px rgba(0,0,0,.25); padding: 4px 0; }}
.menu-list button {{ display: block; width: 100%; text-align: left; border: none; border-radius: 0;
  background: transparent; color: {self.fg}; }}
.overlay {{ position: fixed; inset: 0; background: rgba(0,0,0,.45); z-index: 50; display: flex;
  align-items: center; justify-content: center; }}
.dialog {{ background: {self.surface}; border: 1px solid {self.border}; border-radius: {r}px; padding: {2 * g}px;
  max-width: 90vw; width: 360px; }}
table {{ border-collapse: collapse; width: 100%; }}
td:nth-child(n+3) {{ white-space: nowrap; }}
th, td {{ border-bottom: 1px solid {self.border}; padding: {g // 2 + 2}px; text-align: left; }}
.table-wrap {{ overflow-x: auto; }}
.scroll-list {{ overflow-y: auto; border: 1px solid {self.border}; border-radius: {r}px; padding: 0; margin: 0;
  list-style: none; }}
.scroll-list li {{ border-bottom: 1px solid {self.border}; }}
.scroll-list li button {{ width: 100%; text-align: left; border: none; border-radius: 0; background: transparent;
  color: {self.fg}; padding: {g // 2 + 4}px {g + 4}px; }}
.results {{ list-style: none; padding: 0; }}
.results li {{ margin: {g}px 0; }}
output {{ font-weight: bold; margin-left: 6px; }}
.switch input {{ accent-color: {self.accent}; }}
[hidden] {{ display: none !important; }}
"""
