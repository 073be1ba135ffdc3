// The widget world's in-page recorder. It only *records* what the user does; the success check
// lives in Python (goal.py), so no goal data is ever shipped to the page.
//   window.__galago = {done, commit, values, log}
//   done   -- true after the first "commit" (a click on any [data-g-commit] element, or submitting
//             a form that carries data-g-commit); later commits are ignored, like MiniWoB's endEpisode
//   commit -- the key of the element that ended the episode
//   values -- a snapshot of every [data-g-field] control at commit time
//   log    -- the user's events, in order
(function () {
  const G = (window.__galago = { done: false, commit: null, values: null, log: [] });
  const log = (type, id, extra) => { if (G.log.length < 1000) G.log.push(Object.assign({ type: type, id: id || "" }, extra || {})); };

  function snapshot() {
    const v = {};
    document.querySelectorAll("[data-g-field]").forEach((el) => {
      const k = el.dataset.gField;
      if (el.type === "checkbox") v[k] = el.checked;
      else if (el.type === "radio") { if (el.checked) v[k] = el.value; else if (!(k in v)) v[k] = null; }
      else v[k] = el.value;
    });
    return v;
  }
  function commit(key) {
    if (G.done) return;
    G.values = snapshot();
    G.commit = key;
    G.done = true;
    log("commit", key);
    document.body.setAttribute("data-g-done", "1");
  }
  function closeMenus(except) {
    document.querySelectorAll(".menu-list").forEach((m) => { if (m !== except) m.hidden = true; });
    document.querySelectorAll("[data-g-menu]").forEach((b) => {
      if (!except || b.dataset.gMenu !== except.id) b.setAttribute("aria-expanded", "false");
    });
  }

  document.addEventListener("click", (e) => {
    const t = e.target instanceof Element ? e.target : null;
    if (!t) return;
    const el = t.closest("button, a, input, select, textarea, label, li, [role]");
    log("click", el ? (el.id || el.tagName.toLowerCase()) : "", { x: Math.round(e.clientX), y: Math.round(e.clientY) });
    const link = t.closest("a[href]");
    if (link) e.preventDefault(); // links never leave the page

    const menuBtn = t.closest("[data-g-menu]");
    if (menuBtn) {
      const m = document.getElementById(menuBtn.dataset.gMenu);
      const open = m.hidden;
      closeMenus(open ? m : null);
      m.hidden = !open;
      menuBtn.setAttribute("aria-expanded", String(open));
      return;
    }
    if (!t.closest(".menu-list")) closeMenus(null);

    const tab = t.closest("[data-g-tab]");
    if (tab) {
      const set = tab.closest("[data-g-tabset]");
      set.querySelectorAll("[data-g-tab]").forEach((b) => {
        const on = b === tab;
        b.setAttribute("aria-selected", String(on));
        document.getElementById(b.dataset.gTab).hidden = !on;
      });
      return;
    }
    const tog = t.closest("[data-g-toggle]");
    if (tog) {
      const body = document.getElementById(tog.dataset.gToggle);
      body.hidden = !body.hidden;
      tog.setAttribute("aria-expanded", String(!body.hidden));
      return;
    }
    const opener = t.closest("[data-g-open]");
    if (opener) { document.getElementById(opener.dataset.gOpen).hidden = false; return; }
    const closer = t.closest("[data-g-close]");
    if (closer) { closer.closest(".overlay").hidden = true; return; }

    const c = t.closest("[data-g-commit]");
    if (c && c.tagName !== "FORM") { e.preventDefault(); commit(c.dataset.gCommit); }
  }, true);

  document.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = e.target;
    log("submit", f.id);
    if (f.dataset.gCommit) { commit(f.dataset.gCommit); return; }
    if (f.dataset.gSearch !== undefined) {
      const q = f.querySelector("input").value.trim().toLowerCase();
      const box = document.getElementById(f.dataset.gSearch);
      let n = 0;
      box.querySelectorAll("li[data-g-text]").forEach((li) => {
        const hit = q.length > 0 && li.dataset.gText.toLowerCase().includes(q);
        li.hidden = !hit;
        if (hit) n++;
      });
      box.querySelector(".none").hidden = n > 0;
      box.hidden = false;
      log("search", f.id, { q: q, n: n });
    }
  }, true);

  document.addEventListener("input", (e) => {
    const el = e.target;
    if (el.dataset && el.dataset.gOutput) document.getElementById(el.dataset.gOutput).textContent = el.value;
  }, true);
  document.addEventListener("change", (e) => {
    const el = e.target;
    log("change", el.id, { value: el.type === "checkbox" || el.type === "radio" ? el.checked : el.value });
  }, true);
})();
