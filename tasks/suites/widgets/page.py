"""HTML building blocks and page layouts. Every helper escapes its text; ids are page-unique."""
from __future__ import annotations

import random
from html import escape
from pathlib import Path

from tasks.suites.widgets import phrasings as P
from tasks.suites.widgets.styles import Style
from tasks.suites.widgets.vocab import Vocabulary

RUNTIME_JS = (Path(__file__).with_name("runtime.js")).read_text()
LAYOUTS = ("form", "toolbar", "cards", "grid", "nested", "sidebar")


def attr(v: str) -> str:
    return escape(v, quote=True)


class PageBuilder:
    """Holds one episode's Random, vocabulary split and style, and hands out unique ids/labels."""

    def __init__(self, rng: random.Random, vocab: Vocabulary, split: str, style: Style, viewport: tuple[int, int]):
        self.rng, self.vocab, self.split, self.style, self.viewport = rng, vocab, split, style, viewport
        self._n = 0
        self.used: set[str] = set()  # lower-case labels already on the page
        self.labels_used: list[str] = []  # every vocabulary-derived string shown (for split checks)
        self.overlays: list[str] = []  # dialogs, appended at the end of <body>

    # -- ids and labels ------------------------------------------------------------------------

    def nid(self, prefix: str = "g") -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def label(self, novel: bool = False) -> str:
        """A vocabulary label not yet on this page."""
        while True:
            lab = self.vocab.label(self.rng, self.split, novel=novel)
            if lab.lower() not in self.used:
                return self.take(lab)

    def labels(self, k: int, novel_first: bool = False) -> list[str]:
        return [self.label(novel=novel_first and i == 0) for i in range(k)]

    def take(self, text: str) -> str:
        """Reserve a string (fixed caption or vocabulary label) so no other element repeats it."""
        self.used.add(text.lower())
        self.labels_used.append(text)
        return text

    def caption(self, options: tuple[str, ...]) -> str:
        """A fixed caption (Submit, Cancel...) not yet on the page."""
        free = [o for o in options if o.lower() not in self.used]
        text = self.rng.choice(free or list(options))
        self.used.add(text.lower())
        return text

    @property
    def narrow(self) -> bool:
        return self.viewport[0] < 480

    # -- elements ------------------------------------------------------------------------------

    def button(self, text: str, id: str | None = None, commit: bool = True, cls: str = "", extra: str = "") -> tuple[str, str]:
        id = id or self.nid("b")
        c = f' data-g-commit="{id}"' if commit else ""
        k = f' class="{cls}"' if cls else ""
        return f'<button type="button" id="{id}"{k}{c}{extra}>{escape(text)}</button>', id

    def link(self, text: str, commit: bool = True) -> tuple[str, str]:
        id = self.nid("a")
        c = f' data-g-commit="{id}"' if commit else ""
        return f'<a href="#{id}" id="{id}"{c}>{escape(text)}</a>', id

    def text_input(self, label: str, kind: str = "text", value: str = "", textarea: bool = False) -> tuple[str, str]:
        id = self.nid("f")
        if textarea:
            ctl = f'<textarea id="{id}" data-g-field="{id}" rows="3">{escape(value)}</textarea>'
        else:
            ctl = f'<input type="{kind}" id="{id}" data-g-field="{id}" value="{attr(value)}" autocomplete="off">'
        return f'<label class="field" for="{id}"><span>{escape(label)}</span>{ctl}</label>', id

    def checkbox(self, label: str, checked: bool, cls: str = "check") -> tuple[str, str]:
        id = self.nid("c")
        ch = " checked" if checked else ""
        return (f'<label class="{cls}" for="{id}"><input type="checkbox" id="{id}" data-g-field="{id}"{ch}>'
                f'<span>{escape(label)}</span></label>'), id

    # -- page assembly -------------------------------------------------------------------------

    def distractor(self) -> str:
        """A block that is not part of the task: text, wrong buttons, wrong links, a stat card."""
        kind = self.rng.choice(("text", "buttons", "links", "stat", "text"))
        if kind == "text":
            body = f'<h2>{escape(self.label())}</h2><p class="muted">{escape(self.rng.choice(P.FILLER))}</p>'
        elif kind == "buttons":
            body = '<div class="row">' + "".join(self.button(self.label(), cls=self.rng.choice(("", "plain")))[0]
                                                 for _ in range(self.rng.randint(1, 3))) + "</div>"
        elif kind == "links":
            body = "<ul>" + "".join(f"<li>{self.link(self.label())[0]}</li>" for _ in range(self.rng.randint(2, 4))) + "</ul>"
        else:
            body = (f'<div class="muted">{escape(self.label())}</div>'
                    f'<div style="font-size:1.6em;font-weight:bold">{self.rng.randint(2, 9999):,}</div>')
        return f'<div class="block">{body}</div>'

    def filler(self) -> str:
        """A tall block that pushes the task below the fold."""
        h = self.rng.randint(self.viewport[1] // 2, self.viewport[1] + 200)
        paras = "".join(f'<p class="muted">{escape(self.rng.choice(P.FILLER))} {escape(self.rng.choice(P.FILLER))}</p>'
                        for _ in range(self.rng.randint(2, 6)))
        return f'<div class="block" style="min-height:{h}px"><h2>{escape(self.label())}</h2>{paras}</div>'

    def layout(self, task_html: str) -> tuple[str, str]:
        """Place the task block among distractors; returns (body html, layout name)."""
        rng = self.rng
        name = rng.choice(LAYOUTS)
        task = f'<div class="block" id="task">{task_html}</div>'
        before = [self.filler() for _ in range(rng.randint(1, 2))] if rng.random() < 0.25 else []
        if name == "form":
            inner = task + "".join(self.distractor() for _ in range(rng.randint(0, 2)))
        elif name == "toolbar":
            tools = "".join(self.button(self.label(), cls="plain")[0] for _ in range(rng.randint(1, 4)))
            inner = f'<div class="row block">{tools}</div>' + task
        elif name in ("cards", "grid"):
            cells = [self.distractor() for _ in range(rng.randint(1, 5 if name == "grid" else 3))]
            cells.insert(rng.randint(0, len(cells)), task)
            inner = f'<div class="grid">{"".join(cells)}</div>'
        elif name == "nested":
            inner = task
            for _ in range(rng.randint(1, 3)):
                inner = f'<div class="block"><h2>{escape(self.label())}</h2>{inner}</div>'
        else:  # sidebar
            nav = "".join(self.link(self.label())[0] for _ in range(rng.randint(2, 5)))
            inner = f'<div class="sidebar-layout"><nav>{nav}</nav><section>{task}</section></div>'
        nav = " ".join(self.link(self.label())[0] for _ in range(rng.randint(0, 4 if not self.narrow else 2)))
        header = f'<header class="site"><span class="brand">{escape(self.label())}</span>{nav}</header>'
        title = f"<h1>{escape(self.label())}</h1>" if rng.random() < 0.7 else ""
        return header + "<main>" + title + "".join(before) + inner + "</main>", name

    def document(self, body: str, title: str) -> str:
        return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<meta name=\"viewport\" content=\"width=device-width\"><title>{escape(title)}</title>"
                f"<style>{self.style.css()}</style></head><body>{body}{''.join(self.overlays)}"
                f"<script>{RUNTIME_JS}</script></body></html>")
