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
      if (!isNaN(d)) t.textContent = d.toLocaleString();
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
    const question = (button && button.dataset.confirm) || form.dataset.confirm;
    if (question && !window.confirm(question)) return;
    const action = (button && button.getAttribute("formaction")) || form.dataset.action;
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    if (out) { out.className = "result busy"; out.textContent = "Working…"; }
    let reply = await post(action, body);
    // The server asks first (a restore that deletes most of its target):
    // sent again with the count agreed to.
    if (reply.confirm && window.confirm(reply.confirm)) {
      body.deletions_confirmed = reply.confirm_count;
      reply = await post(action, body);
    }
    buttons.forEach((b) => (b.disabled = false));
    if (out) {
      out.className = "result " + (reply.ok ? "ok" : "bad");
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
    if (reply.show) {
      document.querySelectorAll('[data-show="' + reply.show + '"]').forEach((e) => (e.hidden = false));
    }
    if (reply.job) {
      // "started" is true only until the task ends (render clears it).
      if (out) out.dataset.started = "1";
      document.getElementById("job").scrollIntoView({ block: "nearest" });
      follow();
    }
    if (reply.ok && "reload" in form.dataset) setTimeout(() => location.reload(), 1200);
    if (reply.redirect) location.assign(reply.redirect);
    else if (reply.reload) setTimeout(() => location.reload(), reply.ok ? 600 : 0);
  });

  // Fragments filled in after the page (repository statistics).
  for (const el of document.querySelectorAll("[data-fragment]")) {
    fetch(el.dataset.fragment, { credentials: "same-origin" })
      .then((r) => r.text())
      .then((t) => { el.innerHTML = t; localTimes(el); })
      .catch(() => { el.textContent = "could not load"; });
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
      for (const r of document.querySelectorAll(".result[data-started]")) {
        r.textContent = "";
        delete r.dataset.started;
      }
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
