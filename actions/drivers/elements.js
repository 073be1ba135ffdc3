// galago's page-side element extractor. browser.py passes this whole file to page.evaluate as one
// function, so a capture costs one round trip. It returns the observed area (viewport CSS px), the
// scroll offset (CDP screenshot clips are in document coordinates) and the visible elements in
// reading order with boxes relative to the area. Pure DOM reads: it never changes the page.
({selector, maxElements, maxText}) => {
  const MAX_NODES = 30000;  // bound the walk on huge pages; capture must stay fast
  const STRONG_TAGS = new Set(["A", "BUTTON", "INPUT", "TEXTAREA", "SELECT", "SUMMARY"]);
  const ROLES = new Set(["button", "link", "checkbox", "radio", "tab", "menuitem", "menuitemcheckbox",
    "menuitemradio", "option", "slider", "switch", "combobox", "textbox", "searchbox", "treeitem",
    "spinbutton"]);
  const SKIP = new Set(["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "HEAD", "META", "LINK", "TITLE", "svg",
    "BR", "HR", "DATALIST"]);
  // Inline formatting that belongs to the surrounding text, not an element of its own.
  const INLINE = new Set(["B", "I", "EM", "STRONG", "SPAN", "CODE", "SMALL", "SUP", "SUB", "MARK", "U", "S",
    "ABBR", "Q", "KBD", "TIME", "BR", "WBR", "FONT"]);
  const HEADINGS = new Set(["H1", "H2", "H3", "H4", "H5", "H6"]);
  const NATIVE_CONTROLS = "input:not([type=hidden]),textarea,select,button,a[href]";
  const CONTROLS = NATIVE_CONTROLS + "," + [...ROLES].map((r) => `[role=${r}]`).join(",");

  let area;
  if (selector) {
    const el = document.querySelector(selector);
    if (!el) return {error: `no element matches the observed-area selector ${JSON.stringify(selector)}`};
    const r = el.getBoundingClientRect();
    area = {x: r.left, y: r.top, width: r.width, height: r.height};
  } else {
    area = {x: 0, y: 0, width: window.innerWidth, height: window.innerHeight};
  }
  const vv = window.visualViewport;
  const scroll = {x: vv ? vv.pageLeft : window.scrollX, y: vv ? vv.pageTop : window.scrollY};

  const clean = (s) => (s || "").replace(/\s+/g, " ").trim();
  const clip = (s) => { s = clean(s); return s.length > maxText ? s.slice(0, maxText - 1) + "\u2026" : s; };

  const deepActive = () => {
    let a = document.activeElement;
    while (a) {
      if (a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
      else if (a.tagName === "IFRAME") {
        try { const d = a.contentDocument; if (d && d.activeElement && d.activeElement !== d.body) { a = d.activeElement; continue; } } catch (e) {}
        break;
      } else break;
    }
    return a;
  };
  const active = deepActive();

  const cssPath = (el) => {
    const parts = [];
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
      if (n.id && /^[A-Za-z][\w-]*$/.test(n.id)) { parts.unshift("#" + n.id); break; }
      let i = 1;
      for (let s = n.previousElementSibling; s; s = s.previousElementSibling) if (s.tagName === n.tagName) i++;
      parts.unshift(n.tagName.toLowerCase() + (i > 1 ? `:nth-of-type(${i})` : ""));
    }
    return parts.join(" > ");
  };

  const role = (el) => {
    const r = (el.getAttribute("role") || "").trim().split(/\s+/)[0];
    if (r) return r;
    const t = el.tagName;
    if (t === "A") return "link";
    if (t === "BUTTON" || t === "SUMMARY") return "button";
    if (t === "TEXTAREA") return "textbox";
    if (t === "SELECT") return (el.multiple || el.size > 1) ? "listbox" : "combobox";
    if (t === "OPTION") return "option";
    if (t === "LABEL") return "label";
    if (t === "IMG") return "image";
    if (HEADINGS.has(t)) return "heading";
    if (t === "INPUT") {
      const ty = (el.type || "text").toLowerCase();
      if (ty === "checkbox" || ty === "radio") return ty;
      if (ty === "range") return "slider";
      if (["submit", "button", "reset", "image"].includes(ty)) return "button";
      if (ty === "file") return "button";
      return "textbox";
    }
    if (el.isContentEditable) return "textbox";
    return "clickable";
  };

  const labelOf = (el) => {
    const aria = el.getAttribute("aria-label");
    if (aria) return aria;
    const by = el.getAttribute("aria-labelledby");
    if (by) {
      const t = by.split(/\s+/).map((id) => { const n = el.getRootNode().getElementById?.(id); return n ? n.textContent : ""; }).join(" ");
      if (clean(t)) return t;
    }
    if (el.labels && el.labels.length) return Array.from(el.labels).map((l) => l.innerText).join(" ");
    return "";
  };

  // Icons: a small element with no text that shows a picture (an <img> without alt, CSS
  // `content: url(...)`, a background image, an icon font's ::before, an <svg>). Named by what the
  // page says about it: aria-label, title, alt, its classes (`fa-heart`, `like active`), the
  // picture's file name (`reply-hover.png`), its id.
  const ICON_MAX = 64, SVG_ICON_MAX = 40;
  const GENERIC_CLASS = /^(fa[srlbdk]?|icon|icons|glyphicon|material-icons(-\w+)?|bi|mdi|ion|ti|la|svg|img|image|active|inactive|hide|hidden|show|shown|selected|clicked|checked|pressed|hover|focus|open|closed|disabled|enabled|btn|button|pull-(left|right)|float-(left|right)|left|right|small|large|sm|lg|xs|md|xl|ng-\S+|css-\S+|sc-\S+|jsx-\S+)$/i;
  const ICON_STATE_CLASS = /^(active|clicked|selected|checked|pressed|on)$/i;
  const words = (s) => clean(s.replace(/([a-z])([A-Z])/g, "$1 $2").replace(/[-_.]+/g, " ")).toLowerCase();
  const urlOf = (v) => { const m = /url\(["']?([^"')]+)["']?\)/.exec(v || ""); return m ? m[1] : ""; };
  const pictureOf = (el, style) => {
    if (el.tagName === "IMG") return el.currentSrc || el.src || "?";
    if (el.tagName === "svg") return "?";
    const c = urlOf(style.content) || urlOf(style.backgroundImage);
    if (c) return c;
    const before = getComputedStyle(el, "::before").content;
    if (before && before !== "none" && before !== "normal" && !el.children.length) return "?";
    return "";
  };
  const isIcon = (el, style) => {
    if (/resize$/.test(style.cursor)) return false;  // a window's resize grip: dragged, not clicked
    if (el.tagName === "svg" ? el.querySelector("text") : (clean(el.textContent) || el.querySelector("*:not(br)"))) return false;
    const r = el.getBoundingClientRect();
    const max = el.tagName === "svg" ? SVG_ICON_MAX : ICON_MAX;  // a bigger <svg> is a drawing, not an icon
    if (r.width < 4 || r.height < 4 || r.width > max || r.height > max) return false;
    return !!pictureOf(el, style);
  };
  const iconName = (el, style) => {
    const own = labelOf(el) || el.getAttribute("title") || el.getAttribute("alt");
    if (own) return own;
    if (el.tagName === "svg") {
      const t = el.querySelector("title");
      if (t && clean(t.textContent)) return t.textContent;
      const u = el.querySelector("use");
      const h = u && (u.getAttribute("href") || u.getAttribute("xlink:href") || "");
      if (h && h.includes("#")) return words(h.split("#").pop().replace(/^(icon|ico|svg)[-_]/i, ""));
    }
    // jQuery UI: `ui-icon ui-icon-triangle-1-n` names the icon, its other `ui-*` classes are plumbing.
    const cls = Array.from(el.classList).filter((c) => !GENERIC_CLASS.test(c) && (!/^ui-/i.test(c) || /^ui-icon-/i.test(c)))
      .map((c) => c.replace(/^(ui-icon|fa|icon|ico|glyphicon|bi|mdi|ion|ti|la)[-_]/i, ""));
    if (cls.length) return [...new Set(words(cls.join(" ")).split(" "))].join(" ");
    const pic = pictureOf(el, style);
    if (pic && pic !== "?") {
      const base = pic.split(/[?#]/)[0].split("/").pop().replace(/\.\w+$/, "")
        .replace(/[-_](hover|active|clicked|selected|white|black|dark|light|on|off|\d+(x\d+)?)$/i, "");
      if (base && !/^data:/.test(pic)) return words(base);
    }
    if (el.id && /^[A-Za-z][A-Za-z-_]{1,30}$/.test(el.id)) return words(el.id);
    return "";
  };
  // Swatches: a small box with no text and no picture whose own solid colour stands out from what
  // is behind it, or framed by a border (a colour choice, a product variant), named by its colour.
  const COLORS = {black: [0, 0, 0], white: [255, 255, 255], grey: [128, 128, 128], silver: [192, 192, 192],
    red: [255, 0, 0], maroon: [128, 0, 0], orange: [255, 165, 0], gold: [255, 215, 0], yellow: [255, 255, 0],
    olive: [128, 128, 0], lime: [0, 255, 0], green: [0, 128, 0], teal: [0, 128, 128], cyan: [0, 255, 255],
    blue: [0, 0, 255], navy: [0, 0, 128], purple: [128, 0, 128], magenta: [255, 0, 255], pink: [255, 192, 203],
    brown: [165, 42, 42]};
  const rgba = (c) => { const m = /rgba?\(([^)]+)\)/.exec(c || ""); if (!m) return null;
    const v = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number); return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1]; };
  const backdrop = (el) => {
    for (let n = el.parentElement; n; n = n.parentElement) {
      const c = rgba(getComputedStyle(n).backgroundColor);
      if (c && c[3] > 0.5) return c;
    }
    return [255, 255, 255, 1];
  };
  // A named colour when it is one (within a few units), else the hue's family ("dark green").
  const HUES = [[15, "red"], [40, "orange"], [70, "yellow"], [165, "green"], [195, "cyan"], [255, "blue"],
    [285, "purple"], [345, "magenta"], [360, "red"]];
  const colorName = (c) => {
    for (const [name, v] of Object.entries(COLORS)) {
      if (Math.abs(c[0] - v[0]) + Math.abs(c[1] - v[1]) + Math.abs(c[2] - v[2]) <= 12) return name;
    }
    const [r, g, b] = c.slice(0, 3).map((v) => v / 255);
    const hi = Math.max(r, g, b), lo = Math.min(r, g, b), l = (hi + lo) / 2, d = hi - lo;
    if (d < 0.12) return l > 0.85 ? "white" : l < 0.15 ? "black" : "grey";
    let h = hi === r ? ((g - b) / d) % 6 : hi === g ? (b - r) / d + 2 : (r - g) / d + 4;
    h = (h * 60 + 360) % 360;
    const hue = HUES.find(([end]) => h < end)[1];
    return (l > 0.7 ? "light " : l < 0.3 ? "dark " : "") + hue;
  };
  const swatchColor = (el, style) => {
    if (el.children.length || clean(el.textContent) || pictureOf(el, style)) return "";
    const r = el.getBoundingClientRect();
    if (r.width < 8 || r.height < 8 || r.width > 120 || r.height > 120) return "";
    if (r.width > 2 * r.height || r.height > 2 * r.width) return "";  // a bar or a strip: layout
    const c = rgba(style.backgroundColor);
    if (!c || c[3] <= 0.5) return "";
    const b = backdrop(el), edge = rgba(style.borderTopColor);
    const framed = parseFloat(style.borderTopWidth) >= 1 && style.borderTopStyle !== "none" && edge && edge[3] > 0.5;
    if (!framed && Math.abs(c[0] - b[0]) + Math.abs(c[1] - b[1]) + Math.abs(c[2] - b[2]) < 30) return "";
    return colorName(c);
  };

  // Drawings: an <svg> bigger than an icon is a picture whose marks a user points at. Each shape or
  // one-character glyph is `shape "large blue circle"` / `shape "small red letter a"`: a size word
  // when the drawing's marks differ in size (large from the geometric mean of its smallest and
  // largest), the colour the page names in its fill (else the painted colour's name), the form.
  // Longer text in a drawing (a chart's label, an axis tick) stays text.
  const MARKS = "rect,circle,ellipse,polygon,path,text";  // strokes (line, polyline) are not things to point at
  const paint = (el, style) => {
    const own = (el.getAttribute("fill") || "").trim().toLowerCase();
    if (/^[a-z]+$/.test(own) && own !== "none" && own !== "currentcolor") return own;
    const c = rgba(style.fill) || rgba(style.stroke);
    return c && c[3] > 0.3 ? colorName(c) : "";
  };
  const formOf = (el) => {
    const t = el.tagName.toLowerCase();
    if (t === "text") {
      const g = clean(el.textContent);
      return /^\p{L}$/u.test(g) ? "letter " + g : /^\d$/.test(g) ? "digit " + g : "";
    }
    if (t === "rect") return "rectangle";
    if (t === "circle") return "circle";
    if (t === "ellipse") { const b = el.getBBox(); return Math.abs(b.width - b.height) < 1 ? "circle" : "ellipse"; }
    if (t === "polygon") { const n = el.points ? el.points.numberOfItems : 0; return n === 3 ? "triangle" : n === 4 ? "quadrilateral" : "polygon"; }
    return "shape";
  };
  const drawing = (svg, ox, oy, frameClip, frameEl) => {
    const marks = [];
    for (const el of svg.querySelectorAll(MARKS)) {
      if (el.closest("defs,clipPath,mask,marker,pattern,symbol")) continue;
      const style = getComputedStyle(el);
      if (style.display === "none") continue;
      const form = formOf(el);
      if (!form) {  // text longer than one character
        if (clean(el.textContent)) emit(el, "text", ox, oy, frameClip, frameEl, el.textContent);
        continue;
      }
      const r = el.getBoundingClientRect();
      if (r.width < 2 && r.height < 2) continue;
      marks.push({el, form, color: paint(el, style), size: Math.max(r.width, r.height)});
    }
    const sizes = marks.map((m) => m.size), lo = Math.min(...sizes), hi = Math.max(...sizes), mid = Math.sqrt(lo * hi);
    for (const m of marks) {
      const size = hi >= 1.5 * lo ? (m.size >= mid ? "large" : "small") : "";
      emit(m.el, "shape", ox, oy, frameClip, frameEl, [size, m.color, m.form].filter(Boolean).join(" "));
    }
  };

  const iconState = (el) => (Array.from(el.classList).some((c) => ICON_STATE_CLASS.test(c)) ? true : null);

  const textOf = (el, r) => {
    const t = el.tagName;
    if (t === "INPUT") {
      const ty = (el.type || "text").toLowerCase();
      if (["submit", "button", "reset"].includes(ty)) return el.value || labelOf(el) || ty;
      return labelOf(el) || el.placeholder || el.title || el.name || "";
    }
    if (t === "TEXTAREA") return labelOf(el) || el.placeholder || el.title || "";
    if (t === "SELECT") return labelOf(el) || el.title || el.name || "";
    if (t === "IMG") return el.alt || el.title || "";
    if (el.isContentEditable && r === "textbox") return labelOf(el) || el.getAttribute("placeholder") || "";
    return labelOf(el) || el.innerText || el.title || el.value || "";
  };

  const valueOf = (el) => {
    const t = el.tagName;
    if (t === "SELECT") { const o = el.selectedOptions; return o && o.length ? Array.from(o).map((x) => x.text).join(", ") : ""; }
    if (t === "INPUT") {
      const ty = (el.type || "text").toLowerCase();
      if (["checkbox", "radio", "submit", "button", "reset", "image", "file"].includes(ty)) return "";
      return ty === "password" ? "\u2022".repeat(Math.min(el.value.length, 16)) : el.value;  // never leak secrets
    }
    if (t === "TEXTAREA") return el.value;
    if (el.getAttribute("role") === "slider") return el.getAttribute("aria-valuenow") || "";
    if (el.isContentEditable) return el.innerText;
    return "";
  };

  // A slider's scale, so a drag can be aimed at a value: min, max, step (null: any) and the track
  // its thumb moves along (an ARIA slider's handle moves along its parent) with the thumb's inset.
  const rangeOf = (el, ox, oy) => {
    const num = (v, d) => { const n = parseFloat(v); return Number.isFinite(n) ? n : d; };
    const r = el.getBoundingClientRect();
    if (el.tagName === "INPUT" && (el.type || "").toLowerCase() === "range") {
      const lo = num(el.min, 0), hi = num(el.max, 100);
      if (!(hi > lo)) return null;
      const st = el.step === "any" ? null : num(el.step, 1);
      return {min: lo, max: hi, step: st, track: [r.left + ox, r.top + oy, r.width, r.height],
        inset: Math.min(8, Math.min(r.width, r.height) / 2)};  // Chromium's default thumb: 16 px
    }
    if (el.getAttribute("role") !== "slider") return null;
    const lo = num(el.getAttribute("aria-valuemin"), NaN), hi = num(el.getAttribute("aria-valuemax"), NaN);
    if (!(hi > lo)) return null;
    const p = el.parentElement && el.parentElement.getBoundingClientRect();
    const t = p && (p.width > 2 * r.width || p.height > 2 * r.height) ? p : r;  // a handle moves along its parent
    return {min: lo, max: hi, step: null, track: [t.left + ox, t.top + oy, t.width, t.height], inset: 0};
  };

  const checkedOf = (el) => {
    if (el.tagName === "INPUT" && (el.type === "checkbox" || el.type === "radio")) return el.checked;
    if (el.tagName === "OPTION") return el.selected;
    const a = el.getAttribute("aria-checked") ?? el.getAttribute("aria-selected") ?? el.getAttribute("aria-pressed");
    if (a === "true" || a === "mixed") return true;
    if (a === "false") return false;
    if (el.tagName === "DETAILS") return el.open;
    return null;
  };

  const classify = (el, style) => {
    const t = el.tagName;
    if (t === "INPUT") return el.type === "hidden" ? null : "strong";
    if (t === "A") return el.hasAttribute("href") || el.hasAttribute("onclick") ? "strong" : null;
    if (STRONG_TAGS.has(t)) return "strong";
    const r = el.getAttribute("role");
    if (r && ROLES.has(r)) return "strong";
    if (el.isContentEditable && (!el.parentElement || !el.parentElement.isContentEditable)) return "strong";
    if (t === "LABEL" || el.hasAttribute("onclick") || typeof el.onclick === "function") return "weak";
    if (style.cursor === "pointer" && !(el.parentElement && getComputedStyle(el.parentElement).cursor === "pointer")) return "weak";
    return null;
  };

  const found = [];
  let visited = 0;

  // The visible part of a rect inside the area (and inside its frame's clip), in viewport px.
  const visibleBox = (r, ox, oy, frameClip) => {
    let x1 = Math.max(r.left + ox, area.x, frameClip.x1), y1 = Math.max(r.top + oy, area.y, frameClip.y1);
    let x2 = Math.min(r.right + ox, area.x + area.width, frameClip.x2, window.innerWidth);
    let y2 = Math.min(r.bottom + oy, area.y + area.height, frameClip.y2, window.innerHeight);
    if (x2 - x1 < 1 || y2 - y1 < 1) return null;
    return {x1, y1, x2, y2};
  };

  // Is el what a user would hit at the centre of its visible box? (drops occluded elements)
  const onTop = (el, box, ox, oy, frameEl, interactive) => {
    const cx = (box.x1 + box.x2) / 2, cy = (box.y1 + box.y2) / 2;
    if (frameEl) {
      if (document.elementFromPoint(cx, cy) !== frameEl) return false;
    }
    const root = el.getRootNode();
    const hit = (root.elementFromPoint ? root : el.ownerDocument).elementFromPoint(cx - ox, cy - oy);
    if (!hit) return false;
    if (hit === el || el.contains(hit)) return true;
    const lab = hit.closest && hit.closest("label");
    if (lab && lab.control === el) return true;
    // Text under pointer-events:none still reads as text; a control there could not be clicked.
    if (!interactive && hit.contains(el)) return true;
    return false;
  };

  // ``as``: what a wrapper says its one control is ({role, checked}), for a control that only presents.
  const emit = (el, kind, ox, oy, frameClip, frameEl, textOverride, as) => {
    if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true})) return;
    const interactive = kind !== "text";
    // An inline element broken across lines (a link wrapping in running text) has one rect a line:
    // their bounding box spans both lines and its centre lies on other words, so the element is
    // placed at its largest piece on top instead (a click there hits it).
    const rects = el.getClientRects();
    const pieces = rects.length > 1
      ? Array.from(rects, (q) => visibleBox(q, ox, oy, frameClip)).filter((q) => q)
          .sort((a, b) => (b.x2 - b.x1) * (b.y2 - b.y1) - (a.x2 - a.x1) * (a.y2 - a.y1))
      : [visibleBox(el.getBoundingClientRect(), ox, oy, frameClip)].filter((q) => q);
    const box = pieces.find((q) => onTop(el, q, ox, oy, frameEl, interactive));
    if (!box) return;
    let rl = as ? as.role : interactive ? role(el) : (HEADINGS.has(el.tagName) ? "heading" : (el.tagName === "IMG" ? "image" : "text"));
    if (kind === "icon" || kind === "swatch" || kind === "shape") { rl = kind; as = as || {role: rl, checked: kind === "shape" ? null : iconState(el)}; }
    const text = clip(textOverride !== undefined ? textOverride : textOf(el, rl));
    if (!interactive && !text) return;
    found.push({
      role: rl, text, tag: el.tagName.toLowerCase(),
      box: [box.x1 - area.x, box.y1 - area.y, box.x2 - box.x1, box.y2 - box.y1],
      value: interactive ? clip(valueOf(el)) : "",
      checked: interactive ? (as && checkedOf(el) === null ? as.checked : checkedOf(el)) : null,
      disabled: interactive ? !!(el.disabled || el.getAttribute("aria-disabled") === "true") : false,
      focused: el === active || (el.tagName === "OPTION" && !!el.closest("select") &&
                                 el.closest("select").__galagoFocus === el.index),  // (_MARK_JS follows it)
      interactive,
      range: interactive ? rangeOf(el, ox, oy) : null,
      selector: (frameEl ? cssPath(frameEl) + " >>> " : "") + (el.getRootNode() instanceof ShadowRoot ? cssPath(el.getRootNode().host) + " >>> " : "") + cssPath(el),
    });
  };

  const directText = (el) => {
    let s = "";
    for (const n of el.childNodes) if (n.nodeType === 3) s += n.data + " ";
    return clean(s);
  };
  // Text made of inline formatting only reads as one element, unless a piece of it is clickable on
  // its own (a MiniWoB .alink span, a cursor:pointer word wired with addEventListener).
  const onlyInline = (el, cursor) => {
    for (const c of el.children) {
      if (!INLINE.has(c.tagName)) return false;
      if (c.matches(NATIVE_CONTROLS) || c.hasAttribute("onclick") || c.hasAttribute("role")) return false;
      const cs = getComputedStyle(c), cc = cs.cursor;
      if (cc === "pointer" && cursor !== "pointer") return false;
      if (!c.children.length && (isIcon(c, cs) || swatchColor(c, cs))) return false;  // a picture in the text
      if (c.children.length && !onlyInline(c, cc)) return false;
    }
    return true;
  };

  const children = (el) => {
    if (el.shadowRoot) return Array.from(el.shadowRoot.children);
    if (el.tagName === "SLOT") { const a = el.assignedElements({flatten: true}); return a.length ? a : Array.from(el.children); }
    return Array.from(el.children);
  };

  const visit = (el, ox, oy, frameClip, frameEl) => {
    if (++visited > MAX_NODES || (SKIP.has(el.tagName) && el.tagName !== "svg")) return;
    const style = getComputedStyle(el);
    if (style.display === "none") return;
    if (el.tagName === "svg") {
      if (isIcon(el, style)) emit(el, "icon", ox, oy, frameClip, frameEl, iconName(el, style));
      else drawing(el, ox, oy, frameClip, frameEl);
      return;
    }
    if (el.tagName === "IFRAME") {
      let doc = null;
      try { doc = el.contentDocument; } catch (e) {}  // cross-origin frames are opaque: skip them
      if (doc && doc.body) {
        const r = el.getBoundingClientRect();
        const fx = ox + r.left + el.clientLeft, fy = oy + r.top + el.clientTop;
        const clipBox = {x1: Math.max(frameClip.x1, fx), y1: Math.max(frameClip.y1, fy),
          x2: Math.min(frameClip.x2, fx + el.clientWidth), y2: Math.min(frameClip.y2, fy + el.clientHeight)};
        visit(doc.body, fx, fy, clipBox, frameEl || el);
      }
      return;
    }
    // Descendants of a scroll/clip container are only visible inside its padding box.
    if (style.overflowX !== "visible" || style.overflowY !== "visible") {
      if (el !== document.body && el !== document.documentElement) {
        const r = el.getBoundingClientRect();
        const x1 = ox + r.left + el.clientLeft, y1 = oy + r.top + el.clientTop;
        frameClip = {x1: Math.max(frameClip.x1, x1), y1: Math.max(frameClip.y1, y1),
          x2: Math.min(frameClip.x2, x1 + el.clientWidth), y2: Math.min(frameClip.y2, y1 + el.clientHeight)};
      }
    }
    const kind = classify(el, style);
    if (kind === "strong") {
      const r = el.getAttribute("role");
      // An ARIA wrapper around native controls (combobox > input): the controls are what gets used.
      if (r && !STRONG_TAGS.has(el.tagName) && el.querySelector(NATIVE_CONTROLS)) {
        const inner = el.querySelectorAll(NATIVE_CONTROLS);
        const presents = inner.length === 1 && ["presentation", "none"].includes(inner[0].getAttribute("role"));
        if (presents && getComputedStyle(inner[0]).display !== "none") {
          // jQuery UI's tabs: <li role=tab aria-selected> around <a role=presentation>. The link is
          // what gets clicked; the wrapper says what it is and whether it is the selected one.
          emit(inner[0], "control", ox, oy, frameClip, frameEl, undefined, {role: r, checked: checkedOf(el)});
          return;
        }
        for (const c of children(el)) visit(c, ox, oy, frameClip, frameEl);
        return;
      }
      emit(el, "control", ox, oy, frameClip, frameEl);
      if (el.tagName === "SELECT" && (el.multiple || el.size > 1)) {
        for (const o of el.options) emit(o, "control", ox, oy, frameClip, frameEl, o.text);
      }
      return;
    }
    if (kind !== "strong" && isIcon(el, style)) { emit(el, "icon", ox, oy, frameClip, frameEl, iconName(el, style)); return; }
    const swatch = kind !== "strong" && swatchColor(el, style);
    if (swatch) { emit(el, "swatch", ox, oy, frameClip, frameEl, swatch); return; }
    if (kind === "weak") {
      // A wrapper with several lines of text (a hover-pointer box around an open menu's items) or
      // none of its own around pictures: what a user sees and clicks is its parts.
      const lines = /\n\s*\S/.test(el.innerText.trim());
      const blank = el.children.length > 0 && !clean(el.innerText) && !labelOf(el) && !el.title;
      if (el.querySelector(CONTROLS) || el.shadowRoot || lines || blank) {
        // A label or clickable wrapper around real controls (jQuery UI's menu: a cursor:pointer <li>
        // around its <div role=menuitem> and its submenu's): list the controls, keep its own text.
        const t = directText(el);
        if (t) emit(el, "text", ox, oy, frameClip, frameEl, t);
        for (const c of children(el)) visit(c, ox, oy, frameClip, frameEl);
        return;
      }
      emit(el, "control", ox, oy, frameClip, frameEl);
      return;
    }
    if (el.tagName === "IMG") { if (el.alt) emit(el, "text", ox, oy, frameClip, frameEl, el.alt); return; }
    const t = directText(el);
    if (t) {
      if (!el.shadowRoot && onlyInline(el, style.cursor)) { emit(el, "text", ox, oy, frameClip, frameEl, el.innerText); return; }
      emit(el, "text", ox, oy, frameClip, frameEl, t);
    }
    for (const c of children(el)) visit(c, ox, oy, frameClip, frameEl);
  };

  const fullClip = {x1: -1e9, y1: -1e9, x2: 1e9, y2: 1e9};
  if (document.body) visit(document.body, 0, 0, fullClip, null);

  // Reading order: rows top to bottom (elements whose tops are within half a height share a row),
  // left to right inside a row.
  found.sort((a, b) => a.box[1] - b.box[1] || a.box[0] - b.box[0]);
  const rows = [];
  for (const e of found) {
    const row = rows[rows.length - 1];
    if (row && e.box[1] - row.top <= Math.max(4, Math.min(row.h, e.box[3]) / 2)) row.items.push(e);
    else rows.push({top: e.box[1], h: e.box[3], items: [e]});
  }
  let ordered = [];
  for (const row of rows) ordered.push(...row.items.sort((a, b) => a.box[0] - b.box[0]));

  const total = ordered.length;
  if (ordered.length > maxElements) {
    // Over the cap, controls win over text (a policy can act on them); reading order is kept.
    const nInteractive = ordered.filter((e) => e.interactive).length;
    let textBudget = Math.max(0, maxElements - nInteractive), kept = 0;
    ordered = ordered.filter((e) => {
      if (kept >= maxElements) return false;
      if (!e.interactive) { if (textBudget <= 0) return false; textBudget--; }
      kept++;
      return true;
    });
  }
  ordered.forEach((e, i) => {
    e.index = i;
    if (e.range === null) delete e.range;
    else e.range.track = e.range.track.map((v, k) => Math.round((k === 0 ? v - area.x : k === 1 ? v - area.y : v) * 10) / 10);
    e.box = e.box.map((v) => Math.round(v * 10) / 10);
  });
  return {area, scroll, elements: ordered, total, title: document.title, visited, dpr: window.devicePixelRatio};
}
