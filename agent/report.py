"""Self-contained HTML reports of run directories: one file, readable offline, no external assets.

A report is a timeline per run: each step's screenshot (downscaled JPEG, inline base64), a marker
where each pointer action landed (HTML/CSS over the image), the thought, the action, timings,
feedback and errors; then the final screen and the verdict. Midscene's reports grew to hundreds of
MB because every step embedded a full PNG (midscene #548); here a step costs ~10-20 KB, and a
screenshot identical to an earlier one is embedded once and referenced after that.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from PIL import Image

from actions.errors import ConfigError
from agent.trajectory import FINAL_SCREENSHOT, Run, StepRecord, load_run

MAX_WIDTH = 640
JPEG_QUALITY = 60
CALL_FILE = "call.json"  # written by agent.session beside each run (kind, cache status, dpr)


@dataclass
class _Image:
    key: str
    uri: str | None  # None: already embedded, reference ``key``
    width: int
    height: int
    css_width: float  # the screenshot's width in CSS px (points are in CSS px)
    css_height: float


class _ImageStore:
    """Encodes screenshots once each (by content hash of the file)."""

    def __init__(self, max_width: int, quality: int):
        self.max_width, self.quality = max_width, quality
        self.seen: dict[str, tuple[int, int, int, int]] = {}

    def get(self, path: Path, dpr: float) -> _Image | None:
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        key = "i" + hashlib.blake2b(raw, digest_size=8).hexdigest()
        if key in self.seen:
            w, h, ow, oh = self.seen[key]
            return _Image(key, None, w, h, ow / dpr, oh / dpr)
        try:
            img = Image.open(io.BytesIO(raw))
            img.load()
        except Exception:
            return None
        ow, oh = img.size
        if ow > self.max_width:
            img = img.convert("RGB")
            factor = ow // self.max_width
            if factor >= 2:  # a box shrink by an integer factor is ~10x cheaper than a filtered resize
                img = img.reduce(factor)
            if img.width != self.max_width:
                img = img.resize((self.max_width, max(1, round(oh * self.max_width / ow))), Image.BILINEAR)
        buf = io.BytesIO()
        img.convert("RGB").save(buf, "JPEG", quality=self.quality, optimize=True)
        self.seen[key] = (img.width, img.height, ow, oh)
        uri = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        return _Image(key, uri, img.width, img.height, ow / dpr, oh / dpr)


_CSS = """
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;
color:#1f2933;background:#f5f7fa}header{background:#102a43;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:19px}header .meta{opacity:.8;font-size:13px}main{padding:16px 24px;max-width:1200px}
nav.toc{margin:10px 0 18px;display:flex;flex-wrap:wrap;gap:6px}nav.toc a{text-decoration:none;padding:2px 8px;
border-radius:10px;font-size:12px;color:#fff}a.ok,.badge.ok{background:#2f8132}a.fail,.badge.fail{background:#c0392b}
section.run{background:#fff;border:1px solid #d9e2ec;border-radius:8px;margin:0 0 22px;padding:14px 18px}
section.run>h2{margin:0 0 4px;font-size:16px}.badge{display:inline-block;color:#fff;border-radius:9px;
padding:0 8px;font-size:12px;margin-right:6px;vertical-align:1px}.badge.kind{background:#486581}
.badge.cache{background:#8e44ad}.runmeta{color:#52606d;font-size:13px;margin-bottom:10px}
.error{color:#c0392b;white-space:pre-wrap}.warn{color:#b7791f;white-space:pre-wrap}
.step{display:flex;gap:16px;border-top:1px solid #e4e7eb;padding:10px 0}.step.bad .idx{background:#c0392b}
.idx{flex:0 0 auto;background:#334e68;color:#fff;border-radius:50%;width:26px;height:26px;text-align:center;
line-height:26px;font-size:12px}figure{position:relative;margin:0;flex:0 0 auto;border:1px solid #bcccdc;
line-height:0;align-self:flex-start}figure img{display:block;max-width:100%}.mark{position:absolute;width:18px;
height:18px;margin:-9px 0 0 -9px;border:3px solid #e12d39;border-radius:50%;background:rgba(225,45,57,.25);
box-shadow:0 0 0 2px #fff;pointer-events:none}.mark.end{border-color:#2186eb;background:rgba(33,134,235,.25)}
.text{flex:1 1 auto;min-width:0}.thought{color:#334e68;white-space:pre-wrap}pre.action{background:#f0f4f8;
padding:6px 8px;border-radius:4px;white-space:pre-wrap;word-break:break-word;margin:6px 0;font-size:12.5px}
.times{color:#829ab1;font-size:12px}.final h3{font-size:14px;margin:12px 0 6px}
"""

# Screenshots seen before are embedded once; later <img data-same=KEY> copy their source.
_JS = """document.querySelectorAll('img[data-same]').forEach(function(i){
var s=document.getElementById(i.getAttribute('data-same'));if(s)i.src=s.src;});"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _img_tag(img: _Image, alt: str, used: set[str]) -> str:
    size = f'width="{img.width}" height="{img.height}"'
    if img.uri is not None and img.key not in used:
        used.add(img.key)
        return f'<img id="{img.key}" src="{img.uri}" {size} alt="{_e(alt)}">'
    return f'<img data-same="{img.key}" {size} alt="{_e(alt)}">'


def _markers(rec: StepRecord, img: _Image) -> str:
    out = []
    for action in rec.actions:
        points = []
        if isinstance(action.get("point"), dict):
            points.append(("", action["point"]))
        for name, cls in (("start", ""), ("end", " end")):
            if isinstance(action.get(name), dict):
                points.append((cls, action[name]))
        for cls, p in points:
            try:
                left = 100.0 * float(p["x"]) / img.css_width
                top = 100.0 * float(p["y"]) / img.css_height
            except (KeyError, TypeError, ValueError, ZeroDivisionError):
                continue
            out.append(f'<span class="mark{cls}" style="left:{left:.2f}%;top:{top:.2f}%" '
                       f'title="{_e(action.get("kind", ""))} ({float(p["x"]):.0f},{float(p["y"]):.0f})"></span>')
    return "".join(out)


def _step_html(rec: StepRecord, run: Run, store: _ImageStore, dpr: float, used: set[str],
               replayed: set[int]) -> str:
    bad = bool(rec.error or rec.feedback)
    parts = [f'<div class="step{" bad" if bad else ""}" data-step="{rec.index}">',
             f'<div class="idx">{rec.index}</div>']
    if "dpr" in rec.model_fields_set:  # recorded per step since the loop writes it
        dpr = rec.dpr
    img = store.get(run.run_dir / rec.screenshot, dpr) if rec.screenshot else None
    if img is not None:
        parts.append(f"<figure>{_img_tag(img, f'step {rec.index}', used)}{_markers(rec, img)}</figure>")
    parts.append('<div class="text">')
    if rec.index in replayed:
        parts.append('<span class="badge cache">replayed from cache</span>')
        if img is None:
            parts.append('<div class="times">no screenshot: a replayed step is checked against the page\'s '
                         'elements</div>')
    if rec.thought:
        parts.append(f'<div class="thought">{_e(rec.thought)}</div>')
    action = rec.response or (json.dumps(rec.actions) if rec.actions else "")
    if action:
        parts.append(f'<pre class="action">{_e(action)}</pre>')
    for target in rec.targets:
        if target:
            parts.append(f'<div class="times">on {_e(target.get("role", ""))} {_e(repr(target.get("text", "")))}</div>')
    if rec.feedback:
        parts.append(f'<div class="error">feedback: {_e(rec.feedback)}</div>')
    if rec.warning:
        parts.append(f'<div class="warn">{_e(rec.warning)}</div>')
    if rec.error:
        parts.append(f'<div class="error">error: {_e(rec.error)}</div>')
    timing = f"policy {rec.policy_s:.2f}s · env {rec.env_s:.2f}s"
    if rec.usage.get("total_tokens"):
        timing += f" · {rec.usage['total_tokens']} tokens"
    if rec.url:
        timing += f" · {_e(rec.url)}"
    parts.append(f'<div class="times">{timing}</div></div></div>')
    return "".join(parts)


def _read_call(run_dir: Path) -> dict:
    try:
        data = json.loads((run_dir / CALL_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _run_ok(run: Run, call: dict) -> bool:
    if "ok" in call:
        return bool(call["ok"])
    return bool(run.summary and run.summary.success and not run.summary.error)


def _run_html(n: int, run: Run, store: _ImageStore, used: set[str]) -> str:
    call = _read_call(run.run_dir)
    s = run.summary
    ok = _run_ok(run, call)
    kind = call.get("kind") or "run"
    title = call.get("instruction") or (s.instruction if s else "") or (s.task if s else run.run_dir.name)
    dpr = float(call.get("dpr") or 1.0)
    replayed = set(call.get("replayed") or [])
    meta = [f"{len(run.records)} steps"]
    if s is not None:
        meta.append(f"{s.seconds:.2f}s")
        if s.stop_reason:
            meta.append(f"stopped: {_e(s.stop_reason)}")
        if s.policy:
            meta.append(f"policy {_e(s.policy)}")
        if s.task and kind == "run":
            meta.append(f"task {_e(s.task)}")
    else:
        meta.append("no summary (the run was killed?)")
    cache = ""
    if call.get("cache") and call["cache"] != "off":
        cache = f'<span class="badge cache">cache {_e(call["cache"])}</span>'
        if call.get("policy_calls") is not None:
            meta.append(f"{int(call['policy_calls'])} policy calls")
    verdict = "passed" if ok else "failed"
    parts = [f'<section class="run {"ok" if ok else "fail"}" id="run-{n}" data-verdict="{verdict}">',
             f'<h2><span class="badge {"ok" if ok else "fail"}">{verdict}</span>'
             f'<span class="badge kind">{_e(kind)}</span>{cache}{_e(title)}</h2>',
             f'<div class="runmeta">{" · ".join(meta)} · <code>{_e(run.run_dir)}</code></div>']
    if s is not None and s.error:
        parts.append(f'<div class="error">{_e(s.error)}</div>')
    if call.get("mismatch"):
        parts.append(f'<div class="warn">cache mismatch, the policy took over: {_e(call["mismatch"])}</div>')
    if s is not None and s.finished_answer:
        parts.append(f'<div class="runmeta">answer: <b>{_e(s.finished_answer)}</b></div>')
    parts.extend(_step_html(rec, run, store, dpr, used, replayed) for rec in run.records)
    final = run.run_dir / FINAL_SCREENSHOT
    if final.is_file():
        img = store.get(final, dpr)
        if img is not None:
            parts.append(f'<div class="final"><h3>final screen</h3><figure>{_img_tag(img, "final screen", used)}'
                         f"</figure></div>")
    parts.append("</section>")
    return "".join(parts)


def _expand(run_dirs: Iterable[str | Path]) -> list[Path]:
    """Run directories as given; a folder that is not one stands for the run directories inside it."""
    out: list[Path] = []
    for d in run_dirs:
        d = Path(d)
        if (d / "steps.jsonl").is_file():
            out.append(d)
        elif d.is_dir():
            inner = sorted(p for p in d.iterdir() if (p / "steps.jsonl").is_file())
            if not inner:
                raise ConfigError(f"{d}: not a run directory (no steps.jsonl) and holds none")
            out.extend(inner)
        else:
            raise ConfigError(f"{d}: no such run directory")
    return out


def build_report(run_dirs: Sequence[str | Path] | str | Path, out_file: str | Path, *, title: str | None = None,
                 max_width: int = MAX_WIDTH, quality: int = JPEG_QUALITY) -> Path:
    """Write one self-contained HTML report of ``run_dirs`` (in order) to ``out_file``; returns its path."""
    if isinstance(run_dirs, (str, Path)):
        run_dirs = [run_dirs]
    dirs = _expand(run_dirs)
    runs = [load_run(d) for d in dirs]
    store, used = _ImageStore(max_width, quality), set()
    oks = [_run_ok(r, _read_call(r.run_dir)) for r in runs]
    if title is None:
        title = runs[0].run_dir.name if len(runs) == 1 else f"galago report — {len(runs)} runs"
    toc = "".join(f'<a class="{"ok" if ok else "fail"}" href="#run-{i}">{i}</a>' for i, ok in enumerate(oks))
    body = "".join(_run_html(i, r, store, used) for i, r in enumerate(runs))
    passed = sum(oks)
    doc = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
           f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}</style></head><body>'
           f'<header><h1>{_e(title)}</h1><div class="meta" id="verdict">{passed} of {len(runs)} passed · '
           f'{sum(len(r.records) for r in runs)} steps · generated {_e(time.strftime("%Y-%m-%d %H:%M:%S"))}'
           f'</div></header><main><nav class="toc">{toc}</nav>{body}</main><script>{_JS}</script></body></html>')
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(out)
    return out


@dataclass
class IndexEntry:
    """One test in a per-session index."""

    name: str
    outcome: str  # passed, failed, skipped, error
    seconds: float = 0.0
    report: str | None = None  # path of the test's report, relative to the index when possible
    message: str = ""


def build_index(entries: Sequence[IndexEntry], out_file: str | Path, title: str = "galago test session") -> Path:
    """An HTML index linking each test's report (the pytest plugin writes one per session)."""
    out = Path(out_file)
    rows = []
    for e in entries:
        link = f'<a href="{_e(e.report)}">report</a>' if e.report else ""
        cls = "ok" if e.outcome == "passed" else ("fail" if e.outcome in ("failed", "error") else "kind")
        rows.append(f'<tr data-outcome="{_e(e.outcome)}"><td><span class="badge {cls}">{_e(e.outcome)}</span></td>'
                    f'<td>{_e(e.name)}</td><td>{e.seconds:.2f}s</td><td>{link}</td>'
                    f'<td class="error">{_e(e.message[:300])}</td></tr>')
    passed = sum(e.outcome == "passed" for e in entries)
    doc = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
           f"<style>{_CSS}table{{border-collapse:collapse;background:#fff}}td{{border-bottom:1px solid #e4e7eb;"
           f"padding:6px 10px;vertical-align:top}}</style></head><body><header><h1>{_e(title)}</h1>"
           f'<div class="meta">{passed} of {len(entries)} passed · generated {_e(time.strftime("%Y-%m-%d %H:%M:%S"))}'
           f"</div></header><main><table>{''.join(rows)}</table></main></body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    return out
