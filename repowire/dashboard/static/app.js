// The Jobs view: polls a cheap version endpoint, re-renders on change, acts through POSTs.
"use strict";

const TOKEN = document.querySelector('meta[name="repowire-token"]').content;
const ACTIVE = ["queued", "running"];
const FINISHED = ["succeeded", "failed", "canceled"];
let state = { templates: [], jobs: [], version: null, inbox: [] };
let filter = "all";
let openId = null;
let logOffset = 0;

const $ = (sel) => document.querySelector(sel);
const esc = (text) => String(text ?? "").replace(/[&<>"']/g,
  (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const badge = (s) => `<span class="state ${esc(s)}">${esc(s)}</span>`;

function ago(iso) {
  if (!iso) return "-";
  const secs = Math.round((Date.now() - Date.parse(iso)) / 1000);
  const a = Math.abs(secs);
  const text = a < 60 ? `${a}s` : a < 3600 ? `${Math.floor(a / 60)}m` :
    a < 86400 ? `${Math.floor(a / 3600)}h` : `${Math.floor(a / 86400)}d`;
  return a < 1 ? "now" : secs > 0 ? `${text} ago` : `in ${text}`;
}

function duration(job) {
  if (!job.started_at) return "-";
  const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  const secs = Math.max(0, Math.round((end - Date.parse(job.started_at)) / 1000));
  return secs < 60 ? `${secs}s` : secs < 3600 ? `${Math.floor(secs / 60)}m${secs % 60}s` :
    `${Math.floor(secs / 3600)}h${Math.floor((secs % 3600) / 60)}m`;
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { "X-Repowire-Token": TOKEN } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

async function act(kind, id, verb) {
  const response = await fetch(`/api/${kind}/${encodeURIComponent(id)}/${verb}`, {
    method: "POST", headers: { "X-Repowire-Token": TOKEN },
  });
  const body = await response.json();
  await refresh(true);  // first, so that the answer below is the last word on the page
  if (!response.ok) {
    say(body.error || response.statusText, false);
  } else {
    say(saidOf(id, verb, body), true);
  }
}

// What an action did, in words: a template's run is fired, not done, when the answer comes.
function saidOf(id, verb, body) {
  if (verb === "run") return `${id}: fired ${body.id}; a runner starts it (follow it in Jobs)`;
  const words = { cancel: "canceled", retry: "queued again", pause: "paused", resume: "resumed" };
  return `${id}: ${words[verb] || verb}`;
}

function say(text, ok) {
  const box = $("#message");
  box.textContent = text;
  box.className = ok ? "ok" : "";
  box.hidden = false;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { box.hidden = true; }, ok ? 2500 : 8000);
}

function matches(item) {
  const needle = $("#search").value.trim().toLowerCase();
  if (!needle) return true;
  return [item.id, item.name, item.template, item.result_summary, item.error, item.cron,
    item.schedule, item.state].some((v) => String(v ?? "").toLowerCase().includes(needle));
}

function jobVisible(job) {
  if (filter === "inbox") return (state.inbox || []).includes(job.id);
  if (filter === "active") return ACTIVE.includes(job.state);
  if (filter === "attention") return job.state === "failed" || job.state === "invalid";
  if (filter === "recurring") return Boolean(job.template);
  if (filter === "finished") return FINISHED.includes(job.state);
  return true;
}

function jobActions(job) {
  const out = [];
  if (ACTIVE.includes(job.state)) out.push(`<button class="action danger" data-act="jobs:cancel:${esc(job.id)}">Cancel</button>`);
  if (job.state === "failed" || job.state === "canceled") out.push(`<button class="action" data-act="jobs:retry:${esc(job.id)}">Retry</button>`);
  return out.join("");
}

function templateActions(t) {
  if (t.state === "invalid") return "";
  const out = [`<button class="action" data-act="templates:run:${esc(t.id)}">Run now</button>`];
  out.push(t.state === "paused"
    ? `<button class="action" data-act="templates:resume:${esc(t.id)}">Resume</button>`
    : `<button class="action" data-act="templates:pause:${esc(t.id)}">Pause</button>`);
  return out.join("");
}

function money(amount) {
  if (typeof amount !== "number") return "-";
  return amount >= 1 || amount === 0 ? `$${amount.toFixed(2)}` : `$${amount.toFixed(4)}`;
}

function render() {
  const showTemplates = filter === "all" || filter === "recurring" || filter === "attention";
  $("#unread").textContent = String((state.inbox || []).length);
  const templates = state.templates.filter(matches)
    .filter((t) => filter !== "attention" || t.state === "invalid");
  $("#templates-section").hidden = !showTemplates || templates.length === 0;
  $("#templates tbody").innerHTML = templates.map((t) => {
    if (t.state === "invalid") {
      return `<tr data-id="${esc(t.id)}"><td data-label="Name">${esc(t.id)}</td>
        <td colspan="4" class="error" data-label="Error">${esc(t.error)}</td>
        <td>${badge("invalid")}</td><td></td></tr>`;
    }
    const next = (t.next_fires || [])[0];
    const last = (t.recent_runs || [])[0];
    return `<tr data-id="${esc(t.id)}" data-kind="template">
      <td data-label="Name"><strong>${esc(t.name || t.id)}</strong><div class="muted">${esc(t.id)}</div></td>
      <td data-label="Schedule">${esc(t.schedule)}<div class="muted"><code>${esc(t.cron)}</code> ${esc(t.timezone)}</div></td>
      <td data-label="Next fire">${next ? esc(ago(next.utc)) : "-"}</td>
      <td data-label="Last run">${last ? `${badge(last.state)} <span class="muted">${esc(ago(last.updated_at))}</span>` : "-"}</td>
      <td data-label="Cost, 30 days" class="cost">${esc(money(t.usage?.last_30_days?.cost_usd))}</td>
      <td data-label="State">${badge(t.state)}</td>
      <td>${templateActions(t)}</td></tr>`;
  }).join("");
  const jobs = state.jobs.filter(jobVisible).filter(matches).slice().reverse();
  $("#empty").hidden = jobs.length > 0;
  $("#jobs tbody").innerHTML = jobs.map((j) => {
    if (j.state === "invalid") {
      return `<tr data-id="${esc(j.id)}"><td data-label="Name">${esc(j.id)}</td><td>${badge("invalid")}</td>
        <td colspan="6" class="error" data-label="Error">${esc(j.error)}</td><td></td></tr>`;
    }
    const waits = (j.waiting_for || []).length ? `<span class="waiting">waiting for ${esc(j.waiting_for.join(", "))}</span>` : "";
    const result = j.state === "failed" || j.state === "canceled" ? `<span class="error">${esc(j.error)}</span>` : waits || esc(j.result_summary);
    return `<tr data-id="${esc(j.id)}">
      <td data-label="Name"><strong>${esc(j.name || j.id)}</strong><div class="muted">${esc(j.id)}</div></td>
      <td data-label="State">${badge(j.state)}</td>
      <td data-label="Template">${esc(j.template || "-")}</td>
      <td data-label="Attempt">${esc(j.attempt ?? 0)}</td>
      <td data-label="Started">${esc(ago(j.started_at))}</td>
      <td data-label="Duration">${esc(duration(j))}</td>
      <td data-label="Cost" class="cost">${esc(j.usage ? money(j.usage.cost_usd) : "-")}</td>
      <td data-label="Result" class="summary">${result || "-"}</td>
      <td>${jobActions(j)}</td></tr>`;
  }).join("");
}

function renderRunner() {
  const box = $("#runner");
  const runners = state.runners || [];
  if (runners.length) {
    const r = runners[0];
    box.textContent = `runner pid ${r.pid} on ${r.host}, since ${ago(r.started_at)}`;
    box.className = "runner on";
  } else {
    box.textContent = "no runner is serving this root; start one with 'repowire runner'";
    box.className = "runner off";
  }
}

let started = 0;  // refreshes started, and the newest whose answer is shown: a slow answer
let shown = 0;    // to an older refresh never replaces a newer one

async function refresh(force) {
  const mine = ++started;
  try {
    const { version } = await getJSON("/api/version");
    if (!force && version === state.version) return;
    const fresh = await getJSON("/api/state");
    if (mine < shown) return;
    shown = mine;
    state = fresh;
    render();
    renderRunner();
    if (openId) await showDetail(openId, false);
  } catch (error) {
    say(`Cannot reach the dashboard server: ${error.message}`, false);
  }
}

function definition(data) {
  const skip = new Set(["notes", "log", "result", "recent_runs", "next_fires", "skipped", "executor", "worktree"]);
  return `<dl>${Object.entries(data).filter(([k, v]) => !skip.has(k) && v !== null && v !== "")
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${k === "state" ? badge(v) : esc(typeof v === "object" ? JSON.stringify(v) : v)}</dd>`).join("")}</dl>`;
}

function worktree(tree) {
  if (!tree) return "";
  const head = tree.head === undefined ? "(still working)" : tree.head || "(no changes)";
  const rows = [["branch", tree.branch], ["base", tree.base], ["head", head],
    ["files changed", tree.files_changed ?? "-"], ["folder", tree.path]];
  return `<h3>Worktree</h3><dl class="worktree">${rows.map(([k, v]) =>
    `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("")}</dl>`;
}

async function markSeen(id) {
  // Opening a finished run marks it seen (the inbox's unread count goes down).
  if (!(state.inbox || []).includes(id)) return;
  await fetch(`/api/jobs/${encodeURIComponent(id)}/read`, {
    method: "POST", headers: { "X-Repowire-Token": TOKEN },
  });
  await refresh(true);
}

async function showDetail(id, reset) {
  openId = id;
  markSeen(id);
  let data;
  try {
    data = await getJSON(`/api/jobs/${encodeURIComponent(id)}`);
  } catch (error) {
    $("#detail-body").innerHTML = `<p class="error">${esc(error.message)}</p>`;
    $("#detail").hidden = false;
    return;
  }
  const notes = (data.notes || []).map((n) =>
    `<li><span class="muted">${esc(n.at)}</span> ${n.state ? badge(n.state) : ""} ${esc(n.text)}</li>`).join("");
  let html = `<h2>${esc(data.name || data.id)}</h2>`;
  html += data.kind === "template" ? templateActions(data) : jobActions(data);
  html += definition(data) + worktree(data.worktree);
  if (data.kind === "template") {
    html += `<h3>Next fires</h3><ul>${(data.next_fires || []).map((f) => `<li>${esc(f.local)} <span class="muted">${esc(f.utc)}</span></li>`).join("")}</ul>`;
    html += `<h3>Skipped slots</h3><ul>${(data.skipped || []).map((s) => `<li>${esc(s.slot)} ${esc(s.reason)}${s.count ? ` (×${esc(s.count)})` : ""}</li>`).join("") || "<li class=muted>none</li>"}</ul>`;
  } else {
    html += `<h3>Timeline</h3><ol class="timeline">${notes || "<li class=muted>no notes</li>"}</ol>`;
    if (data.result) html += `<h3>Result</h3><pre>${esc(data.result)}</pre>`;
    html += `<h3>Log</h3><pre id="log">${esc(data.log.text)}</pre>`;
  }
  $("#detail-body").innerHTML = html;
  $("#detail").hidden = false;
  if (data.log) {
    if (reset || !logOffset) logOffset = data.log.offset;
    const pre = $("#log");
    pre.scrollTop = pre.scrollHeight;
  }
}

async function followLog() {
  if (!openId || $("#detail").hidden || !$("#log")) return;
  const job = state.jobs.find((j) => j.id === openId);
  if (!job || job.state !== "running") return;
  try {
    const chunk = await getJSON(`/api/jobs/${encodeURIComponent(openId)}/log?offset=${logOffset}`);
    if (chunk.text) {
      const pre = $("#log");
      pre.textContent += chunk.text;
      pre.scrollTop = pre.scrollHeight;
    }
    logOffset = chunk.offset;
  } catch (error) { /* the next poll tries again */ }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-act]");
  if (button) {
    event.stopPropagation();
    const [kind, verb, ...rest] = button.dataset.act.split(":");
    act(kind, rest.join(":"), verb);
    return;
  }
  const row = event.target.closest("tbody tr[data-id]");
  if (row) { logOffset = 0; showDetail(row.dataset.id, true); }
  const chip = event.target.closest("#filters button");
  if (chip) {
    filter = chip.dataset.filter;
    document.querySelectorAll("#filters button").forEach((b) => b.classList.toggle("on", b === chip));
    render();
  }
});
$("#close").addEventListener("click", () => { $("#detail").hidden = true; openId = null; });
$("#search").addEventListener("input", render);

refresh(true);
setInterval(() => refresh(false), 1000);
setInterval(followLog, 1000);
