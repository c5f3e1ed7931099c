import { html, raw } from "hono/html";
import { HEADER_SAFE } from "../../core/secrets.js";

/** How often the page asks for fresh data, in ms. */
export const DASHBOARD_POLL_MS = 5_000;

const STYLE = `
:root { color-scheme: light; --ran:#1a7f37; --skipped:#6e7781; --failed:#cf222e; --lost:#bc4c00;
  --dead:#82071e; --missed:#8250df; --late:#9a6700; --running:#0969da; --released:#bc4c00; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; background: #f6f8fa; color: #1f2328; }
header { display: flex; gap: 1rem; align-items: baseline; padding: .8rem 1.2rem; background: #24292f; color: #fff; }
header h1 { font-size: 1.15rem; margin: 0; }
header #meta { font-size: .85rem; opacity: .85; }
main, #unlock { padding: 1rem 1.2rem; max-width: 1200px; }
h2 { font-size: 1rem; margin: 1.2rem 0 .5rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(540px, 1fr)); gap: .8rem; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: .7rem .9rem; }
.card h3 { margin: 0 0 .3rem; font-size: 1rem; display: flex; gap: .5rem; align-items: baseline; flex-wrap: wrap; }
.card p { margin: .2rem 0; color: #57606a; font-size: .85rem; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; background: #eff1f3; padding: 0 .3rem; border-radius: 4px; }
.actions { display: flex; gap: .4rem; margin: .5rem 0; flex-wrap: wrap; }
button { font: inherit; font-size: .85rem; padding: .2rem .6rem; border: 1px solid #d0d7de; border-radius: 6px; background: #f6f8fa; cursor: pointer; }
button:hover { background: #eaeef2; }
input { font: 12px ui-monospace, monospace; padding: .2rem .4rem; border: 1px solid #d0d7de; border-radius: 6px; width: 14rem; }
table { border-collapse: collapse; width: 100%; font-size: .82rem; }
th, td { text-align: left; padding: .15rem .4rem; border-top: 1px solid #eaeef2; white-space: nowrap; }
td.note { white-space: normal; color: #57606a; max-width: 16rem; overflow: hidden; text-overflow: ellipsis; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 2em; color: #fff; font-size: .75rem; font-weight: 600; }
.ran { background: var(--ran); } .skipped { background: var(--skipped); } .failed { background: var(--failed); }
.lost { background: var(--lost); } .dead { background: var(--dead); } .missed { background: var(--missed); }
.late { background: var(--late); } .running { background: var(--running); } .released { background: var(--released); }
.paused { background: #6e7781; } .active { background: var(--ran); }
tr.local td { background: #f6f8fa; }
#unlock label { display: block; margin-bottom: .4rem; }
#unlock input { width: 22rem; }
.error { color: var(--failed); }
#activity { font-size: .85rem; padding-left: 1.2rem; }
footer { padding: .5rem 1.2rem 1.5rem; font-size: .8rem; color: #57606a; }
`;

/**
 * Runs in the browser: asks for CRON_SECRET once (kept in sessionStorage for this tab, sent only as
 * `Authorization: Bearer`, never in a URL), polls `/dashboard/data`, renders with textContent only
 * (nothing from the store becomes markup), and sends the actions to the app's own routes.
 */
const SCRIPT = `
"use strict";
const KEY = "cron-guard-secret";
const POLL_MS = ${DASHBOARD_POLL_MS};
const base = location.pathname.replace(/\\/dashboard\\/?$/, "");
const $ = (id) => document.getElementById(id);
const drafts = new Map();
const localRows = new Map();
const activity = [];
let timer;
// The page of schedules shown: "0" is the first; /dashboard/data answers the next one's cursor.
let schedulesCursor = "0";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const short = (iso) => (iso ? iso.slice(5, 16).replace("T", " ") + "Z" : "");
const ms = (n) => (n === undefined || n === null ? "" : n < 1000 ? n + " ms" : n < 120000 ? (n / 1000).toFixed(n < 10000 ? 1 : 0) + " s" : n < 7200000 ? Math.round(n / 60000) + " min" : Math.round(n / 3600000) + " h");
const badge = (kind, text) => el("span", { class: "badge " + kind }, text || kind);

function lock(message) {
  sessionStorage.removeItem(KEY);
  clearInterval(timer);
  $("main").hidden = true;
  $("jobs").replaceChildren();
  $("schedules").replaceChildren();
  $("unlock").hidden = false;
  $("lockmsg").textContent = message || "";
  $("meta").textContent = "locked";
  $("secret").focus();
}

async function call(method, path) {
  const secret = sessionStorage.getItem(KEY);
  if (!secret) { lock(); throw new Error("locked"); }
  const response = await fetch(base + path, { method, headers: { authorization: "Bearer " + secret } });
  if (response.status === 401) {
    lock("The app refused that secret (401). Enter its CRON_SECRET.");
    throw new Error("unauthorized");
  }
  return response;
}

function rowOf(row, local) {
  const notes = [];
  if (row.lateMs !== undefined && row.lateMs !== null) notes.push("started " + ms(row.lateMs) + " late");
  if (row.outcome === "running" && row.leaseLeftMs !== null && row.leaseLeftMs !== undefined) notes.push("lease left " + ms(row.leaseLeftMs));
  if (row.summary) notes.push(row.summary);
  return el("tr", { "data-outcome": row.outcome, "data-slot": row.slot, "data-late": row.lateMs !== undefined && row.lateMs !== null, class: local ? "local" : undefined },
    el("td", {}, short(row.slot), row.slot.includes(".retry") ? " (" + row.slot.split(".")[1] + ")" : ""),
    el("td", {}, badge(row.outcome, row.outcome + (row.reason ? " (" + row.reason + ")" : "")), row.lateMs !== undefined && row.lateMs !== null ? [" ", badge("late")] : null),
    el("td", {}, ms(row.durationMs)),
    el("td", {}, row.region || ""),
    el("td", {}, row.fence === undefined || row.fence === null ? "" : String(row.fence)),
    el("td", { class: "note", title: notes.join("; ") }, notes.join("; ")));
}

function draftInput(key) {
  const input = el("input", { id: "slot-" + key, placeholder: "past slot: YYYY-MM-DDTHH:MMZ", "aria-label": "slot to backfill",
    oninput: (event) => drafts.set(key, event.target.value) });
  input.value = drafts.get(key) || "";
  return input;
}

async function act(label, method, path, key) {
  let entry;
  try {
    const response = await call(method, path);
    const status = response.headers.get("cron-guard-status") || String(response.status);
    const reason = response.headers.get("cron-guard-reason");
    const slot = response.headers.get("cron-guard-slot") || "";
    let detail = "";
    if (response.status >= 400) detail = ((await response.json().catch(() => ({}))).error) || "";
    entry = { label, http: response.status, status, reason, slot, detail };
    // 409: the slot ledger says this slot already ran (or cannot vouch for it); re-running it is
    // a deliberate second click that sends force=true.
    if (response.status === 409) entry.force = () => act("force " + label, method, path + (path.includes("?") ? "&" : "?") + "force=true", key);
    if (status === "skipped" && key) {
      const rows = localRows.get(key) || [];
      rows.unshift({ slot, outcome: "skipped", reason, summary: "this tab's " + label.split(" ")[0] + " (not stored)" });
      localRows.set(key, rows.slice(0, 3));
    }
  } catch (error) {
    if (error.message === "unauthorized" || error.message === "locked") return;
    entry = { label, http: 0, status: "error", detail: String(error) };
  }
  activity.unshift(Object.assign(entry, { at: new Date().toISOString() }));
  renderActivity();
  await refresh();
}

function renderActivity() {
  $("activity").replaceChildren(...activity.slice(0, 15).map((a) =>
    el("li", { "data-status": a.status }, short(a.at) + " " + a.label + ": ", badge(a.status === "ran" ? "ran" : a.status === "skipped" ? "skipped" : a.http >= 400 || a.status === "error" ? "failed" : "ran", a.status + (a.reason ? " (" + a.reason + ")" : "")),
      " HTTP " + a.http + (a.slot ? " slot " + a.slot : "") + (a.detail ? " — " + a.detail : ""),
      a.force ? [" ", el("button", { "data-action": "force", onclick: () => { const run = a.force; a.force = undefined; run(); } }, "Run it again anyway")] : null)));
}

function card(kind, item, data) {
  const key = kind + ":" + (item.name || item.id);
  const name = item.name || item.id;
  const enc = encodeURIComponent(name);
  const paused = kind === "schedule" && !item.enabled;
  const runPath = kind === "job" ? "/cron/" + enc : "/dashboard/schedules/" + enc + "/run";
  const holder = item.holder
    ? ["running ", short(item.holder.slot), " in ", item.holder.region || "?", ", fence ", String(item.holder.fence), item.holder.leaseLeftMs !== null ? ", lease left " + ms(item.holder.leaseLeftMs) : ""].join("")
    : "nobody";
  const rows = [...(localRows.get(key) || []).map((row) => rowOf(row, true)), ...item.rows.map((row) => rowOf(row, false))];
  return el("article", { class: "card", "data-kind": kind, "data-name": name, "data-enabled": kind === "schedule" ? String(item.enabled) : undefined },
    el("h3", {}, name, el("code", {}, item.cron), el("span", {}, item.timezone),
      kind === "schedule" ? badge(paused ? "paused" : "active", paused ? "paused" : "active") : null,
      kind === "schedule" ? el("span", {}, "handler ", el("code", {}, item.handler)) : null),
    el("p", {}, "next: ", item.next.length ? item.next.map(short).join(", ") : "none (paused)"),
    el("p", { "data-holder": item.holder ? "yes" : "no" }, "holder: ", holder),
    el("p", {}, "last " + ms(data.windowMs) + ": ", badge("missed", item.missed.length + " missed"), " ", badge("late", item.late.length + " late"),
      " (grace " + ms(kind === "job" ? item.graceMs : data.graceMs) + ", " + item.checked.fires + " fires checked)"),
    el("div", { class: "actions" },
      el("button", { "data-action": "run", onclick: () => act("run now " + name, "POST", runPath, key) }, "Run now"),
      draftInput(key.replace(":", "-")),
      el("button", { "data-action": "backfill", onclick: () => {
        const slot = ($("slot-" + key.replace(":", "-")).value || "").trim();
        if (!slot) return;
        act("backfill " + name + " " + slot, "POST", runPath + "?slot=" + encodeURIComponent(slot), key);
      } }, "Backfill"),
      kind === "schedule"
        ? el("button", { "data-action": paused ? "resume" : "pause", onclick: () => act((paused ? "resume " : "pause ") + name, "POST", "/schedules/" + enc + (paused ? "/resume" : "/pause")) }, paused ? "Resume" : "Pause")
        : null),
    el("table", {}, el("thead", {}, el("tr", {}, ...["slot", "outcome", "duration", "region", "fence", "note"].map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 6 }, "no runs yet")))));
}

function render(data) {
  const focused = document.activeElement && document.activeElement.id;
  $("jobs").replaceChildren(...data.jobs.map((job) => card("job", job, data)));
  const pager = el("p", { class: "pager" },
    schedulesCursor !== "0" ? el("button", { "data-action": "first-schedules", onclick: () => { schedulesCursor = "0"; refresh(); } }, "First schedules") : null,
    data.schedulesCursor ? [" ", el("button", { "data-action": "next-schedules", onclick: () => { schedulesCursor = data.schedulesCursor; refresh(); } }, "Next schedules")] : null);
  $("schedules").replaceChildren(...(data.schedules.length ? data.schedules.map((s) => card("schedule", s, data)) : [el("p", {}, "No schedules (the app registers no handlers).")]), pager);
  if (focused && $(focused)) $(focused).focus();
  $("meta").textContent = "updated " + data.now.slice(11, 19) + "Z · polling every " + POLL_MS / 1000 + " s · alerts " + (data.alerts ? "on" : "off") + " · " + data.jobs.length + " jobs, " + data.schedules.length + " schedules" + (data.schedulesCursor || schedulesCursor !== "0" ? " on this page" : "");
}

async function refresh() {
  try {
    const response = await call("GET", "/dashboard/data" + (schedulesCursor === "0" ? "" : "?cursor=" + encodeURIComponent(schedulesCursor)));
    if (response.status === 400 && schedulesCursor !== "0") { schedulesCursor = "0"; return refresh(); }
    if (!response.ok) { $("meta").textContent = "data: HTTP " + response.status; return; }
    render(await response.json());
  } catch (error) {
    if (error.message !== "unauthorized" && error.message !== "locked") $("meta").textContent = "offline: " + error.message;
  }
}

async function unlocked() {
  $("unlock").hidden = true;
  $("main").hidden = false;
  $("meta").textContent = "loading…";
  clearInterval(timer);
  timer = setInterval(refresh, POLL_MS);
  await refresh();
}

$("unlock").addEventListener("submit", (event) => {
  event.preventDefault();
  const secret = $("secret").value.trim();
  $("secret").value = "";
  if (!secret) return;
  // a header carries only printable ASCII, so no CRON_SECRET holds anything else (fetch would throw)
  if (!${HEADER_SAFE}.test(secret)) {
    lock("That is not the CRON_SECRET: it holds only printable ASCII.");
    return;
  }
  sessionStorage.setItem(KEY, secret);
  unlocked();
});
if (sessionStorage.getItem(KEY)) unlocked(); else lock();
`;

/** The dashboard: one self-contained page (no build step, no CDN); all data comes from /dashboard/data. */
export function dashboardPage(nonce: string) {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>cron-guard dashboard</title>
<style nonce="${nonce}">${raw(STYLE)}</style>
</head>
<body>
<header><h1>cron-guard</h1><span id="meta">locked</span></header>
<form id="unlock" autocomplete="off">
  <label for="secret">This page shows nothing without the app's <code>CRON_SECRET</code>. It is kept in this tab only (sessionStorage) and sent as a bearer header.</label>
  <input id="secret" type="password" placeholder="CRON_SECRET" autocomplete="off">
  <button type="submit">Show</button>
  <p id="lockmsg" class="error" role="alert"></p>
</form>
<main id="main" hidden>
  <h2>Jobs</h2>
  <div id="jobs" class="cards"></div>
  <h2>Schedules</h2>
  <div id="schedules" class="cards"></div>
  <h2>Activity in this tab</h2>
  <ol id="activity"></ol>
</main>
<footer>Outcomes: <span class="badge ran">ran</span> <span class="badge skipped">skipped</span> <span class="badge failed">failed</span> <span class="badge lost">lost</span> <span class="badge dead">dead</span> <span class="badge missed">missed</span> <span class="badge late">late</span> <span class="badge running">running</span>. Skipped deliveries are not stored (a duplicate costs one round trip and writes nothing): they show for this tab's own actions.</footer>
<script nonce="${nonce}">${raw(SCRIPT)}</script>
</body>
</html>`;
}
