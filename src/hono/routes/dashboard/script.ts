/**
 * The dashboard's browser script. Runs in the browser: asks for CRON_SECRET once (kept in
 * sessionStorage for this tab, sent only as `Authorization: Bearer`, never in a URL), polls
 * `/dashboard/data`, renders with textContent only (nothing from the store becomes markup), and
 * sends the actions to the app's own routes.
 *
 * Not imported by the server: scripts/build-dashboard.mjs bundles it into script.generated.ts,
 * which the page inlines under the request's CSP nonce. Longer than our other modules on purpose:
 * the page ships one script, and its parts (unlock, polling, cards, actions) share the page's
 * state, so splitting it would only add imports the bundle folds back together.
 */
import { HEADER_SAFE } from "../../../core/secrets.js";
import { DASHBOARD_POLL_MS } from "./poll.js";

/** One row of a job's or schedule's table, as /dashboard/data sends it (or this tab made it). */
interface Row {
  slot: string;
  outcome: string;
  reason?: string | null;
  lateMs?: number | null;
  leaseLeftMs?: number | null;
  durationMs?: number | null;
  region?: string | null;
  fence?: number | null;
  summary?: string | null;
}

interface Holder {
  slot: string;
  region: string;
  fence: number | null;
  leaseLeftMs: number | null;
}

/** A job or a schedule, as /dashboard/data sends it: what the page reads of it. */
interface Item {
  name?: string;
  id?: string;
  cron: string;
  timezone: string;
  handler?: string;
  enabled?: boolean;
  graceMs?: number;
  next: string[];
  holder: Holder | null;
  rows: Row[];
  missed: unknown[];
  late: unknown[];
  checked: { fires: number };
}

interface Data {
  now: string;
  graceMs: number;
  windowMs: number;
  alerts: boolean;
  jobs: Item[];
  schedules: Item[];
  schedulesCursor: string | null;
}

type Kind = "job" | "schedule";

/** One action of this tab, newest first in the activity list. */
interface Activity {
  label: string;
  http: number;
  status: string;
  reason?: string | null;
  slot?: string;
  detail: string;
  force?: (() => Promise<void>) | undefined;
  at?: string;
}

type AttributeValue = string | number | boolean | null | undefined | EventListener;
type Child = Node | string | number | boolean | null | undefined | Child[];

const KEY = "cron-guard-secret";
const POLL_MS = DASHBOARD_POLL_MS;
const base = location.pathname.replace(/\/dashboard\/?$/, "");
const $ = (id: string): HTMLElement | null => document.getElementById(id);
/** An element the page always has. */
const must = (id: string): HTMLElement => $(id) as HTMLElement;
const inputOf = (id: string): HTMLInputElement => $(id) as HTMLInputElement;
const drafts = new Map<string, string>();
const localRows = new Map<string, Row[]>();
const activity: Activity[] = [];
let timer: ReturnType<typeof setInterval> | undefined;
// The page of schedules shown: "0" is the first; /dashboard/data answers the next one's cursor.
let schedulesCursor = "0";

function el(tag: string, attrs: Record<string, AttributeValue>, ...children: Child[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = String(value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value as EventListener);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of (children as unknown[]).flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const short = (iso: string | undefined): string =>
  iso ? `${iso.slice(5, 16).replace("T", " ")}Z` : "";
const ms = (n: number | null | undefined): string =>
  n === undefined || n === null
    ? ""
    : n < 1000
      ? `${n} ms`
      : n < 120000
        ? `${(n / 1000).toFixed(n < 10000 ? 1 : 0)} s`
        : n < 7200000
          ? `${Math.round(n / 60000)} min`
          : `${Math.round(n / 3600000)} h`;
const badge = (kind: string, text?: string): HTMLElement =>
  el("span", { class: `badge ${kind}` }, text || kind);

function lock(message?: string): void {
  sessionStorage.removeItem(KEY);
  clearInterval(timer);
  must("main").hidden = true;
  must("jobs").replaceChildren();
  must("schedules").replaceChildren();
  must("unlock").hidden = false;
  must("lockmsg").textContent = message || "";
  must("meta").textContent = "locked";
  must("secret").focus();
}

async function call(method: string, path: string): Promise<Response> {
  const secret = sessionStorage.getItem(KEY);
  if (!secret) {
    lock();
    throw new Error("locked");
  }
  const response = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${secret}` },
  });
  if (response.status === 401) {
    lock("The app refused that secret (401). Enter its CRON_SECRET.");
    throw new Error("unauthorized");
  }
  return response;
}

const isLate = (row: Row): boolean => row.lateMs !== undefined && row.lateMs !== null;

function rowOf(row: Row, local: boolean): HTMLElement {
  const notes: string[] = [];
  if (isLate(row)) notes.push(`started ${ms(row.lateMs)} late`);
  if (row.outcome === "running" && row.leaseLeftMs !== null && row.leaseLeftMs !== undefined) {
    notes.push(`lease left ${ms(row.leaseLeftMs)}`);
  }
  if (row.summary) notes.push(row.summary);
  return el(
    "tr",
    {
      "data-outcome": row.outcome,
      "data-slot": row.slot,
      "data-late": isLate(row),
      class: local ? "local" : undefined,
    },
    el(
      "td",
      {},
      short(row.slot),
      row.slot.includes(".retry") ? ` (${row.slot.split(".")[1]})` : "",
    ),
    el(
      "td",
      {},
      badge(row.outcome, row.outcome + (row.reason ? ` (${row.reason})` : "")),
      isLate(row) ? [" ", badge("late")] : null,
    ),
    el("td", {}, ms(row.durationMs)),
    el("td", {}, row.region || ""),
    el("td", {}, row.fence === undefined || row.fence === null ? "" : String(row.fence)),
    el("td", { class: "note", title: notes.join("; ") }, notes.join("; ")),
  );
}

function draftInput(key: string): HTMLInputElement {
  const input = el("input", {
    id: `slot-${key}`,
    placeholder: "past slot: YYYY-MM-DDTHH:MMZ",
    "aria-label": "slot to backfill",
    oninput: (event: Event) => drafts.set(key, (event.target as HTMLInputElement).value),
  }) as HTMLInputElement;
  input.value = drafts.get(key) || "";
  return input;
}

async function act(label: string, method: string, path: string, key?: string): Promise<void> {
  let entry: Activity;
  try {
    const response = await call(method, path);
    const status = response.headers.get("cron-guard-status") || String(response.status);
    const reason = response.headers.get("cron-guard-reason");
    const slot = response.headers.get("cron-guard-slot") || "";
    let detail = "";
    if (response.status >= 400) {
      detail = ((await response.json().catch(() => ({}))) as { error?: string }).error || "";
    }
    entry = { label, http: response.status, status, reason, slot, detail };
    // 409: the slot ledger says this slot already ran (or cannot vouch for it); re-running it is
    // a deliberate second click that sends force=true.
    if (response.status === 409) {
      const forced = `${path + (path.includes("?") ? "&" : "?")}force=true`;
      entry.force = () => act(`force ${label}`, method, forced, key);
    }
    if (status === "skipped" && key) {
      const rows = localRows.get(key) || [];
      rows.unshift({
        slot,
        outcome: "skipped",
        reason,
        summary: `this tab's ${label.split(" ")[0]} (not stored)`,
      });
      localRows.set(key, rows.slice(0, 3));
    }
  } catch (error) {
    const message = (error as Error).message;
    if (message === "unauthorized" || message === "locked") return;
    entry = { label, http: 0, status: "error", detail: String(error) };
  }
  activity.unshift(Object.assign(entry, { at: new Date().toISOString() }));
  renderActivity();
  await refresh();
}

function activityBadge(a: Activity): string {
  if (a.status === "ran") return "ran";
  if (a.status === "skipped") return "skipped";
  return a.http >= 400 || a.status === "error" ? "failed" : "ran";
}

function renderActivity(): void {
  must("activity").replaceChildren(
    ...activity.slice(0, 15).map((a) =>
      el(
        "li",
        { "data-status": a.status },
        `${short(a.at)} ${a.label}: `,
        badge(activityBadge(a), a.status + (a.reason ? ` (${a.reason})` : "")),
        ` HTTP ${a.http}${a.slot ? ` slot ${a.slot}` : ""}${a.detail ? ` — ${a.detail}` : ""}`,
        a.force
          ? [
              " ",
              el(
                "button",
                {
                  "data-action": "force",
                  onclick: () => {
                    const run = a.force;
                    a.force = undefined;
                    run?.();
                  },
                },
                "Run it again anyway",
              ),
            ]
          : null,
      ),
    ),
  );
}

function card(kind: Kind, item: Item, data: Data): HTMLElement {
  const name = item.name || item.id || "";
  const key = `${kind}:${name}`;
  const enc = encodeURIComponent(name);
  const paused = kind === "schedule" && !item.enabled;
  const runPath = kind === "job" ? `/cron/${enc}` : `/dashboard/schedules/${enc}/run`;
  const holder = item.holder
    ? [
        "running ",
        short(item.holder.slot),
        " in ",
        item.holder.region || "?",
        ", fence ",
        String(item.holder.fence),
        item.holder.leaseLeftMs !== null ? `, lease left ${ms(item.holder.leaseLeftMs)}` : "",
      ].join("")
    : "nobody";
  const rows = [
    ...(localRows.get(key) || []).map((row) => rowOf(row, true)),
    ...item.rows.map((row) => rowOf(row, false)),
  ];
  const draftKey = key.replace(":", "-");
  return el(
    "article",
    {
      class: "card",
      "data-kind": kind,
      "data-name": name,
      "data-enabled": kind === "schedule" ? String(item.enabled) : undefined,
    },
    el(
      "h3",
      {},
      name,
      el("code", {}, item.cron),
      el("span", {}, item.timezone),
      kind === "schedule"
        ? badge(paused ? "paused" : "active", paused ? "paused" : "active")
        : null,
      kind === "schedule" ? el("span", {}, "handler ", el("code", {}, item.handler)) : null,
    ),
    el("p", {}, "next: ", item.next.length ? item.next.map(short).join(", ") : "none (paused)"),
    el("p", { "data-holder": item.holder ? "yes" : "no" }, "holder: ", holder),
    el(
      "p",
      {},
      `last ${ms(data.windowMs)}: `,
      badge("missed", `${item.missed.length} missed`),
      " ",
      badge("late", `${item.late.length} late`),
      ` (grace ${ms(kind === "job" ? item.graceMs : data.graceMs)}, ${item.checked.fires} fires checked)`,
    ),
    el(
      "div",
      { class: "actions" },
      el(
        "button",
        { "data-action": "run", onclick: () => act(`run now ${name}`, "POST", runPath, key) },
        "Run now",
      ),
      draftInput(draftKey),
      el(
        "button",
        {
          "data-action": "backfill",
          onclick: () => {
            const slot = (inputOf(`slot-${draftKey}`).value || "").trim();
            if (!slot) return;
            const path = `${runPath}?slot=${encodeURIComponent(slot)}`;
            act(`backfill ${name} ${slot}`, "POST", path, key);
          },
        },
        "Backfill",
      ),
      kind === "schedule"
        ? el(
            "button",
            {
              "data-action": paused ? "resume" : "pause",
              onclick: () =>
                act(
                  (paused ? "resume " : "pause ") + name,
                  "POST",
                  `/schedules/${enc}${paused ? "/resume" : "/pause"}`,
                ),
            },
            paused ? "Resume" : "Pause",
          )
        : null,
    ),
    el(
      "table",
      {},
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ...["slot", "outcome", "duration", "region", "fence", "note"].map((h) => el("th", {}, h)),
        ),
      ),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 6 }, "no runs yet"))),
    ),
  );
}

function render(data: Data): void {
  const focused = document.activeElement?.id;
  must("jobs").replaceChildren(...data.jobs.map((job) => card("job", job, data)));
  const pager = el(
    "p",
    { class: "pager" },
    schedulesCursor !== "0"
      ? el(
          "button",
          {
            "data-action": "first-schedules",
            onclick: () => {
              schedulesCursor = "0";
              refresh();
            },
          },
          "First schedules",
        )
      : null,
    data.schedulesCursor
      ? [
          " ",
          el(
            "button",
            {
              "data-action": "next-schedules",
              onclick: () => {
                schedulesCursor = data.schedulesCursor ?? "0";
                refresh();
              },
            },
            "Next schedules",
          ),
        ]
      : null,
  );
  must("schedules").replaceChildren(
    ...(data.schedules.length
      ? data.schedules.map((s) => card("schedule", s, data))
      : [el("p", {}, "No schedules (the app registers no handlers).")]),
    pager,
  );
  if (focused) $(focused)?.focus();
  const paged = data.schedulesCursor || schedulesCursor !== "0" ? " on this page" : "";
  must("meta").textContent =
    `updated ${data.now.slice(11, 19)}Z · polling every ${POLL_MS / 1000} s · alerts ` +
    `${data.alerts ? "on" : "off"} · ${data.jobs.length} jobs, ${data.schedules.length} schedules${paged}`;
}

async function refresh(): Promise<void> {
  try {
    const query = schedulesCursor === "0" ? "" : `?cursor=${encodeURIComponent(schedulesCursor)}`;
    const response = await call("GET", `/dashboard/data${query}`);
    if (response.status === 400 && schedulesCursor !== "0") {
      schedulesCursor = "0";
      return refresh();
    }
    if (!response.ok) {
      must("meta").textContent = `data: HTTP ${response.status}`;
      return;
    }
    render((await response.json()) as Data);
  } catch (error) {
    const message = (error as Error).message;
    if (message !== "unauthorized" && message !== "locked") {
      must("meta").textContent = `offline: ${message}`;
    }
  }
}

async function unlocked(): Promise<void> {
  must("unlock").hidden = true;
  must("main").hidden = false;
  must("meta").textContent = "loading…";
  clearInterval(timer);
  timer = setInterval(refresh, POLL_MS);
  await refresh();
}

must("unlock").addEventListener("submit", (event) => {
  event.preventDefault();
  const secret = inputOf("secret").value.trim();
  inputOf("secret").value = "";
  if (!secret) return;
  // a header carries only printable ASCII, so no CRON_SECRET holds anything else (fetch would throw)
  if (!HEADER_SAFE.test(secret)) {
    lock("That is not the CRON_SECRET: it holds only printable ASCII.");
    return;
  }
  sessionStorage.setItem(KEY, secret);
  unlocked();
});
if (sessionStorage.getItem(KEY)) unlocked();
else lock();
