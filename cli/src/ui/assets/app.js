// snap's page script: sends forms as JSON with the session header, asks
// before anything is deleted, follows the running task over server-sent
// events, and shows times in the browser's own locale.
"use strict";
(() => {
  const session = document.querySelector('meta[name="snap-session"]').content;

  async function post(url, body) {
    let r;
    try {
      r = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-Snap-Session": session },
        body: JSON.stringify(body),
      });
    } catch (e) {
      return { ok: false, message: "snap ui does not answer: is it still running? (" + e.message + ")" };
    }
    try {
      return await r.json();
    } catch (e) {
      return { ok: false, message: "the server answered " + r.status + ": " + (await r.text().catch(() => "")) };
    }
  }

  // A form's fields as one object: checkboxes marked data-many make a
  // list of the checked values, other checkboxes a boolean; the button
  // pressed adds its own name and value ("true"/"false" as booleans).
  function fields(form, button) {
    const o = {};
    for (const el of form.elements) {
      if (!el.name || el.tagName === "BUTTON" || el.disabled) continue;
      if (el.type === "checkbox") {
        if ("many" in el.dataset) {
          (o[el.name] = o[el.name] || []);
          if (el.checked) o[el.name].push(el.value);
        } else {
          o[el.name] = el.checked;
        }
      } else if (el.type === "radio") {
        if (el.checked) o[el.name] = el.value;
      } else {
        o[el.name] = el.value;
      }
    }
    if (button && button.name) {
      o[button.name] = button.value === "true" ? true : button.value === "false" ? false : button.value;
    }
    return o;
  }

  function localTimes(root) {
    for (const t of root.querySelectorAll("time[datetime]")) {
      const d = new Date(t.dateTime);
      if (isNaN(d)) continue;
      // The same shape as the server's (views::when), in this browser's
      // time zone: one date format on every page.
      const two = (n) => String(n).padStart(2, "0");
      t.textContent = d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) +
        " " + two(d.getHours()) + ":" + two(d.getMinutes());
    }
  }

  document.addEventListener("submit", async (ev) => {
    const form = ev.target;
    if (!form.dataset.action) return;
    ev.preventDefault();
    const button = ev.submitter;
    const out = form.querySelector(".result");
    const body = fields(form, button);
    // A form that acts on chosen items says so when none is chosen,
    // before asking to confirm nothing.
    const needs = form.dataset.needs;
    if (needs && !(body[needs] && body[needs].length)) {
      if (out) { out.className = "result bad"; out.textContent = "Choose at least one first."; }
      return;
    }
    let question = (button && button.dataset.confirm) || form.dataset.confirm;
    // The question names what it deletes.
    if (needs && question) {
      const chosen = [...form.querySelectorAll("input[data-describe]:checked")].map((e) => "• " + e.dataset.describe);
      if (chosen.length) {
        question = "Delete " + (chosen.length === 1 ? "this snapshot" : "these " + chosen.length + " snapshots") +
          "?\n" + chosen.join("\n") + "\n\n" + question;
      }
    }
    if (question && !window.confirm(question)) return;
    const action = (button && button.getAttribute("formaction")) || form.dataset.action;
    // Results of earlier actions elsewhere on the page go: "deleted
    // snapshot …" once stayed under a list that had changed since.
    for (const r of document.querySelectorAll("form .result")) {
      if (r !== out && !r.dataset.started && !r.closest("#job")) {
        r.textContent = "";
        r.className = "result";
      }
    }
    // Errors of an earlier try, beside their fields, go.
    for (const e of form.querySelectorAll(".field-error")) e.remove();
    for (const e of form.querySelectorAll("[aria-invalid]")) e.removeAttribute("aria-invalid");
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    if (out) { out.className = "result busy"; out.textContent = "Working…"; }
    let reply = await post(action, body);
    // The server asks first (a restore that deletes most of its target):
    // sent again with the count agreed to.
    if (reply.confirm && window.confirm(reply.confirm)) {
      body.confirmed = reply.confirm_count;
      reply = await post(action, body);
    }
    buttons.forEach((b) => (b.disabled = false));
    if (out) {
      out.className = "result " + (reply.ok ? "ok" : reply.info ? "info" : "bad");
      out.textContent = reply.message || "";
      if (reply.html) {
        const more = document.createElement("div");
        more.innerHTML = reply.html; // rendered and escaped by the server
        out.appendChild(more);
        localTimes(more);
      }
      // Keyboard users land on what happened, not the top of the page.
      out.setAttribute("tabindex", "-1");
      out.focus();
    }
    // A refusal about one field is said beside it, and the field takes
    // the focus.
    const field = reply.field && form.querySelector('[name="' + CSS.escape(reply.field) + '"]');
    if (field && !reply.ok) {
      const note = document.createElement("p");
      note.className = "field-error";
      note.id = "error-" + reply.field + "-" + Math.random().toString(36).slice(2);
      note.textContent = reply.message;
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", note.id);
      field.insertAdjacentElement("afterend", note);
      field.focus();
    }
    if (reply.show) {
      document.querySelectorAll('[data-show="' + reply.show + '"]').forEach((e) => (e.hidden = false));
    }
    if (reply.job) {
      // "started" is true only until the task ends (render clears it).
      if (out) out.dataset.started = "1";
      document.getElementById("job").scrollIntoView({ block: "nearest" });
      follow();
    }
    if (reply.refresh) refresh();
    if (reply.ok && "reload" in form.dataset) setTimeout(() => location.reload(), 1200);
    if (reply.redirect) location.assign(reply.redirect);
    else if (reply.reload) setTimeout(() => location.reload(), reply.ok ? 600 : 0);
  });

  // "Use s3://bucket/family": a repository found near the place typed
  // goes into the form's field; Connect then tries it at once.
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-fill]");
    if (!b) return;
    const form = b.closest("form");
    const field = form && form.querySelector('[name="' + CSS.escape(b.dataset.fill) + '"]');
    if (!field) return;
    field.value = b.dataset.value;
    field.focus();
    if ("fillSubmits" in form.dataset) form.requestSubmit();
  });

  // The folder picker: this computer's folders from /api/folders, built
  // with textContent only (folder names are not markup); "Add this folder"
  // puts the folder shown on its own line in the field.
  const picker = document.getElementById("picker");
  async function show(path) {
    let r;
    try {
      r = await fetch("/api/folders?path=" + encodeURIComponent(path), { credentials: "same-origin" });
    } catch (e) { return; }
    const v = await r.json().catch(() => ({ error: "snap ui did not answer" }));
    const note = picker.querySelector(".note");
    const notes = [];
    if (v.truncated) notes.push("Only the first folders by name are shown: type the path for the others.");
    if (v.unnamed) notes.push(v.unnamed + " folder(s) with names this page cannot show are left out: type their path.");
    note.hidden = !v.error && !notes.length;
    note.textContent = v.error || notes.join(" ");
    if (v.error) return;
    picker.dataset.path = v.path;
    picker.querySelector(".where").textContent = v.path;
    const places = picker.querySelector(".places");
    places.replaceChildren(...v.places.map((p) => {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = p.name; b.dataset.go = p.path;
      return b;
    }));
    const list = picker.querySelector("ul.folders");
    const items = [];
    if (v.parent) {
      const li = document.createElement("li"), b = document.createElement("button");
      b.type = "button"; b.textContent = "↑ Up"; b.dataset.go = v.parent;
      li.append(b); items.push(li);
    }
    for (const f of v.folders) {
      const li = document.createElement("li"), b = document.createElement("button");
      b.type = "button"; b.textContent = f.name + "/"; b.dataset.go = f.path;
      li.append(b); items.push(li);
    }
    list.replaceChildren(...items);
  }
  if (picker) {
    document.addEventListener("click", (ev) => {
      const open = ev.target.closest("button[data-picker]");
      if (open) {
        picker.dataset.field = open.dataset.picker;
        picker.showModal();
        show("");
        return;
      }
      if (!picker.contains(ev.target)) return;
      const go = ev.target.closest("button[data-go]");
      if (go) { show(go.dataset.go); return; }
      if (ev.target.closest("button[data-close]")) { picker.close(); return; }
      if (ev.target.closest("button[data-pick]")) {
        const field = document.getElementById(picker.dataset.field);
        const have = field.value.split("\n").map((l) => l.trim()).filter(Boolean);
        if (!have.includes(picker.dataset.path)) have.push(picker.dataset.path);
        field.value = have.join("\n");
        picker.close();
        field.focus();
      }
    });
  }

  // Schedule: how much history the chosen interval and keep-last-N leave,
  // in the server's words for every choice (data-history).
  document.addEventListener("change", (ev) => {
    const form = ev.target.closest("form[data-action='/api/schedule']");
    const out = form && form.querySelector("[data-history]");
    if (!out) return;
    const words = JSON.parse(out.dataset.history);
    out.textContent = words[form.elements.interval.value + ":" + form.elements.keep_last.value] || "";
  });

  // Fragments filled in after the page (repository statistics).
  for (const el of document.querySelectorAll("[data-fragment]")) {
    fetch(el.dataset.fragment, { credentials: "same-origin" })
      .then((r) => r.text())
      .then((t) => { el.innerHTML = t; localTimes(el); })
      .catch(() => { el.textContent = "could not load"; });
  }

  // After an action changed them, the lists and counts are loaded again
  // in place, and the result stays where the user clicked.
  async function refresh() {
    for (const el of document.querySelectorAll("[data-src], [data-fragment]")) {
      try {
        const r = await fetch(el.dataset.src || el.dataset.fragment, { credentials: "same-origin" });
        if (!r.ok) continue;
        el.innerHTML = await r.text(); // rendered and escaped by the server
        localTimes(el);
      } catch (e) { /* the next action or a reload shows it */ }
    }
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  }

  // The task box follows /api/events.
  let source = null;
  function render(status) {
    const box = document.querySelector("#job .job");
    const v = status.job;
    if (!box || !v) return;
    // A task that ended before this page loaded belongs to its own page.
    const since = Number(box.dataset.since || 0);
    if (!v.running && v.id <= since && box.dataset.job !== String(v.id)) return;
    const changed = box.dataset.job !== String(v.id) || box.dataset.running !== String(v.running);
    box.dataset.job = String(v.id);
    box.dataset.running = String(v.running);
    box.className = "job " + (v.running ? "running" : v.ok ? "ok" : "bad");
    box.querySelector(".title").textContent = v.title;
    const bar = box.querySelector("progress");
    bar.hidden = !v.running;
    if (v.total_bytes) bar.value = Math.min(100, (100 * v.bytes) / v.total_bytes);
    else bar.removeAttribute("value");
    box.querySelector(".text").textContent = v.progress_text;
    const cancel = box.querySelector("form.cancel");
    if (cancel) {
      cancel.hidden = !v.running;
      cancel.querySelector("input[name=id]").value = String(v.id);
    }
    if (changed && !v.running) {
      let started = false;
      for (const r of document.querySelectorAll(".result[data-started]")) {
        r.className = "result " + (v.ok ? "ok" : "bad");
        r.textContent = (v.ok ? "Done: " : "Failed: ") + (v.message || "");
        delete r.dataset.started;
        started = true;
      }
      if (started) refresh();
    }
    if (changed) {
      const html = box.querySelector(".html");
      html.innerHTML = v.html || ""; // rendered and escaped by the server
      localTimes(html);
    }
    for (const [name, e] of Object.entries(status.schedule || {})) {
      const cell = document.querySelector('[data-schedule-result="' + CSS.escape(name) + '"]');
      if (cell && e.last_result) {
        cell.textContent = e.last_result;
        cell.className = e.failing ? "bad" : "";
      }
    }
  }
  function follow() {
    if (source) return;
    source = new EventSource("/api/events");
    source.onmessage = (e) => render(JSON.parse(e.data));
    // No reconnecting by itself: once snap ui has stopped, whatever program
    // takes its port would get this page's cookie with every retry.
    source.onerror = () => {
      source.close();
      const job = document.getElementById("job");
      if (job) job.insertAdjacentHTML("afterbegin",
        "<p class=\"small\">The connection to snap ui ended. Reload the page once it runs again.</p>");
    };
  }
  if (document.getElementById("job")) follow();
  localTimes(document);
})();
