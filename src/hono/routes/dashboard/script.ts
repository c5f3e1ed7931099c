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
  forced?: boolean;
}

interface Holder {
  slot: string;
  region: string;
  fence: number | null;
  leaseLeftMs: number | null;
}

/** A job's or schedule's newest run of one kind, as /dashboard/data sends it. */
interface LastRun {
  slot: string;
  at: string | null;
  outcome: string;
  summary?: string;
}

/** The health words /dashboard/data sends (see DashboardHealth), as the badge shows them. */
const HEALTH: Record<string, { label: string; title: string }> = {
  ok: { label: "ok", title: "its newest fire ran" },
  failing: { label: "failing", title: "its newest fire failed or lost its lease" },
  dead: { label: "dead", title: "its newest fire failed its last attempt" },
  missed: { label: "missed", title: "its newest fire was not claimed within the grace period" },
  paused: { label: "paused", title: "paused: it does not fire" },
  idle: { label: "no runs yet", title: "no fire judged yet" },
};

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
  health: string;
  lastSuccess: LastRun | null;
  lastFailure: LastRun | null;
  /** Jobs only: how each trigger source delivered it (redundant clocks). */
  sources?: SourceRow[];
}

/** One trigger source of a job, as /dashboard/data sends it. */
interface SourceRow {
  source: string;
  deliveries: number;
  slots: number;
  duplicates: number;
  lagMedianMs: number;
  lagMaxMs: number;
  lastSlot: string;
  silentFires: number;
}

interface Data {
  now: string;
  graceMs: number;
  windowMs: number;
  alerts: boolean;
  jobs: Item[];
  schedules: Item[];
  schedulesCursor: string | null;
  /** With dynamic schedules: who delivered the dispatch tick, one slot per fire of its cron. */
  dispatch?: { cron: string; sources: SourceRow[] };
}

type Kind = "job" | "schedule";

/**
 * A slot that already ran (or failed, or the ledger cannot vouch for): running it again is a
 * deliberate, confirmed action that sends force=true. Offered on the card and in the activity
 * list; used once.
 */
interface RerunOffer {
  name: string;
  key: string;
  slot: string;
  reason: string;
  method: string;
  path: string;
  used: boolean;
}

/** One action of this tab, newest first in the activity list. */
interface Activity {
  label: string;
  http: number;
  status: string;
  reason?: string | null;
  slot?: string;
  fence?: string | null;
  detail: string;
  rerun?: RerunOffer;
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
const rerunOffers = new Map<string, RerunOffer>();
let timer: ReturnType<typeof setInterval> | undefined;
// The page of schedules shown: "0" is the first; /dashboard/data answers the next one's cursor.
let schedulesCursor = "0";
// Only the newest refresh renders: a poll sent before a page change must not show the old page.
let refreshes = 0;

function el(tag: string, attrs: Record<string, AttributeValue>, ...children: Child[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = String(value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value as EventListener);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of (children as unknown[]).flat(Number.POSITIVE_INFINITY)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const short = (iso: string | null | undefined): string =>
  iso ? `${iso.slice(5, 16).replace("T", " ")}Z` : "";

/** The viewer's time zone, from the browser; UTC-like zones show UTC only. */
const VIEWER_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const isUtc = (zone: string): boolean => /^(Etc\/)?(UTC|GMT|Universal|Zulu|UCT)$/.test(zone);
const formats = new Map<string, Intl.DateTimeFormat>();

/** `iso` in `zone`: its day (`MM-DD`) and time (`HH:MM`, with `:SS` when `seconds`). */
function partsIn(zone: string, ms: number, seconds: boolean): { day: string; time: string } {
  const cacheKey = `${zone} ${seconds}`;
  let format = formats.get(cacheKey);
  if (!format) {
    format = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone,
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: seconds ? "2-digit" : undefined,
      hourCycle: "h23",
    });
    formats.set(cacheKey, format);
  }
  const part = Object.fromEntries(format.formatToParts(ms).map(({ type, value }) => [type, value]));
  const time = `${part.hour}:${part.minute}${seconds ? `:${part.second}` : ""}`;
  return { day: `${part.month}-${part.day}`, time };
}

/** `Europe/Berlin` as `Berlin`, `America/New_York` as `New York`. */
const placeOf = (zone: string): string => (zone.split("/").pop() || zone).replace(/_/g, " ");

/** `iso` in `zone` with the place's name, the day only when it is not `iso`'s UTC day. */
function inZone(iso: string, ms: number, zone: string, seconds = false): string {
  const { day, time } = partsIn(zone, ms, seconds);
  return `${day === iso.slice(5, 10) ? "" : `${day} `}${time} ${placeOf(zone)}`;
}

/**
 * A time as the page shows it: UTC (`11-25 06:00Z`), then the viewer's local time
 * (`07:00 Berlin`), then, for a schedule's fire times, the schedule's own zone when it is neither.
 */
function when(iso: string | null | undefined, scheduleZone?: string): string {
  return iso ? [short(iso), ...localTimes(iso, scheduleZone)].join(" · ") : "";
}

/** What `when` adds to UTC: the viewer's local time, and the schedule's own when it differs. */
function localTimes(iso: string, scheduleZone?: string): string[] {
  const ms = Date.parse(iso.replace(/\.retry\d+$/, ""));
  if (!Number.isFinite(ms)) return [];
  const shown: string[] = [];
  if (!isUtc(VIEWER_ZONE)) shown.push(inZone(iso, ms, VIEWER_ZONE));
  if (scheduleZone && !isUtc(scheduleZone) && scheduleZone !== VIEWER_ZONE) {
    shown.push(`${inZone(iso, ms, scheduleZone)} (schedule's zone)`);
  }
  return shown;
}

/** The page's clock line: `12:00:05Z · 13:00:05 Berlin`. */
function clockOf(iso: string): string {
  const utc = `${iso.slice(11, 19)}Z`;
  return isUtc(VIEWER_ZONE) ? utc : `${utc} · ${inZone(iso, Date.parse(iso), VIEWER_ZONE, true)}`;
}
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
  if (row.forced) notes.push("forced re-run");
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
      localTimes(row.slot).length
        ? el("small", { class: "zone" }, localTimes(row.slot).join(" · "))
        : null,
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

/**
 * Runs an offered slot again once the viewer confirms it: the same route with that slot and
 * force=true, which the slot ledger records as a forced run. Cancelled, nothing is sent.
 */
async function rerun(offer: RerunOffer): Promise<void> {
  if (offer.used) return;
  const what =
    offer.reason === "unvouched"
      ? "is older than the slot ledger remembers, so it may have run"
      : offer.reason === "failed"
        ? "already ran and failed"
        : "already ran";
  const question = `Run ${offer.name} again for slot ${when(offer.slot)}?\n\nThat slot ${what}. Its handler runs once more for it (force=true).`;
  if (!confirm(question)) return;
  offer.used = true;
  if (rerunOffers.get(offer.key) === offer) rerunOffers.delete(offer.key);
  await act(`run again ${offer.name}`, offer.method, offer.path, offer.key);
}

async function act(label: string, method: string, path: string, key?: string): Promise<void> {
  let entry: Activity;
  try {
    const response = await call(method, path);
    const status = response.headers.get("cron-guard-status") || String(response.status);
    const reason = response.headers.get("cron-guard-reason");
    const slot = response.headers.get("cron-guard-slot") || "";
    const fence = response.headers.get("cron-guard-fence");
    let detail = "";
    if (response.status >= 400) {
      detail = ((await response.json().catch(() => ({}))) as { error?: string }).error || "";
    }
    entry = { label, http: response.status, status, reason, slot, fence, detail };
    // The slot already ran, failed, or the ledger cannot vouch for it: a backfill answers 409, a
    // run now 204 skipped (done or failed). Running it again is offered, confirmed, with force=true.
    const settled = reason === "done" || reason === "failed" || reason === "unvouched";
    if (key && slot && status === "skipped" && settled && !path.includes("force=")) {
      const forced = path.includes("?")
        ? `${path}&force=true`
        : `${path}?slot=${encodeURIComponent(slot)}&force=true`;
      const name = key.slice(key.indexOf(":") + 1);
      const offer: RerunOffer = { name, key, slot, reason, method, path: forced, used: false };
      entry.rerun = offer;
      rerunOffers.set(key, offer);
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
    ...activity
      .slice(0, 15)
      .map((a) =>
        el(
          "li",
          { "data-status": a.status },
          `${when(a.at)} ${a.label}: `,
          badge(activityBadge(a), a.status + (a.reason ? ` (${a.reason})` : "")),
          ` HTTP ${a.http}${a.slot ? ` slot ${when(a.slot)}` : ""}`,
          a.fence ? `, fence ${a.fence}` : "",
          a.detail ? ` — ${a.detail}` : "",
          a.rerun && !a.rerun.used
            ? [
                " ",
                el(
                  "button",
                  { "data-action": "force", onclick: () => a.rerun && rerun(a.rerun) },
                  "Run it again anyway…",
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
        when(item.holder.slot),
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
  const offer = rerunOffers.get(key);
  const health = HEALTH[item.health] ?? { label: item.health, title: "" };
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
      el(
        "span",
        {
          class: `badge health ${item.health}`,
          "data-health": item.health,
          title: `health: ${health.title}`,
        },
        health.label,
      ),
      kind === "schedule" ? el("span", {}, "handler ", el("code", {}, item.handler)) : null,
    ),
    el(
      "p",
      { "data-next": "" },
      "next: ",
      item.next.length
        ? item.next
            .map((next) => when(next, kind === "schedule" ? item.timezone : undefined))
            .join(", ")
        : "none (paused)",
    ),
    lastLine("last success", "success", item.lastSuccess),
    lastLine("last failure", "failure", item.lastFailure),
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
    kind === "job" ? sourcesTable(item.sources) : null,
    el(
      "div",
      { class: "actions" },
      el(
        "button",
        { "data-action": "run", onclick: () => act(`run now ${name}`, "POST", runPath, key) },
        "Run now",
      ),
      offer && !offer.used
        ? el(
            "button",
            { "data-action": "rerun", "data-slot": offer.slot, onclick: () => rerun(offer) },
            `Run ${short(offer.slot)} again…`,
          )
        : null,
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
      "div",
      { class: "table-wrap" },
      el(
        "table",
        {},
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ...["slot", "outcome", "duration", "region", "fence", "note"].map((h) =>
              el("th", {}, h),
            ),
          ),
        ),
        el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 6 }, "no runs yet"))),
      ),
    ),
  );
}

/** Which clocks delivered the job: source, last slot seen, lag, duplicates absorbed, silence. */
function sourcesTable(sources: SourceRow[] | undefined): HTMLElement | null {
  if (!sources || sources.length === 0) return null;
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      { "data-sources": "" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ...["source", "last seen", "lag (median / max)", "duplicates", "silent"].map((h) =>
            el("th", {}, h),
          ),
        ),
      ),
      el(
        "tbody",
        {},
        ...sources.map((s) =>
          el(
            "tr",
            { "data-source": s.source },
            el("td", {}, el("code", {}, s.source)),
            el("td", {}, when(s.lastSlot)),
            el("td", {}, `${ms(s.lagMedianMs)} / ${ms(s.lagMaxMs)}`),
            el("td", {}, `${s.duplicates} of ${s.deliveries}`),
            el("td", {}, s.silentFires > 0 ? badge("missed", `${s.silentFires} fires`) : "no"),
          ),
        ),
      ),
    ),
  );
}

/** The dispatch tick's clocks, above the schedules: the same table as a job's sources. */
function dispatchClocks(dispatch: Data["dispatch"]): HTMLElement | null {
  if (!dispatch) return null;
  return el(
    "section",
    { class: "card", "data-dispatch": "" },
    el("h3", {}, "Dispatch clocks"),
    el("p", {}, "ticks of ", el("code", {}, dispatch.cron), " by source"),
    sourcesTable(dispatch.sources) ?? el("p", {}, "No tick has recorded its source yet."),
  );
}

/** `last success: slot … , finished …` (or the failure's outcome and error), or `none remembered`. */
function lastLine(title: string, kind: string, last: LastRun | null): HTMLElement {
  return el(
    "p",
    { "data-last": kind, "data-slot": last?.slot },
    `${title}: `,
    last
      ? [
          "slot ",
          when(last.slot),
          last.at ? `, ${last.outcome === "dead" ? "dead" : "finished"} ${when(last.at)}` : "",
          kind === "failure" ? [" ", badge(last.outcome)] : null,
          kind === "failure" && last.summary ? ` ${last.summary}` : "",
        ]
      : "none remembered",
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
    ...[dispatchClocks(data.dispatch)].filter((clocks) => clocks !== null),
    ...(data.schedules.length
      ? data.schedules.map((s) => card("schedule", s, data))
      : [el("p", {}, "No schedules (the app registers no handlers).")]),
    pager,
  );
  if (focused) $(focused)?.focus();
  const paged = data.schedulesCursor || schedulesCursor !== "0" ? " on this page" : "";
  must("meta").textContent =
    `updated ${clockOf(data.now)} · polling every ${POLL_MS / 1000} s · alerts ` +
    `${data.alerts ? "on" : "off"} · ${data.jobs.length} jobs, ${data.schedules.length} schedules${paged}`;
}

async function refresh(): Promise<void> {
  refreshes += 1;
  const mine = refreshes;
  try {
    const query = schedulesCursor === "0" ? "" : `?cursor=${encodeURIComponent(schedulesCursor)}`;
    const response = await call("GET", `/dashboard/data${query}`);
    if (mine !== refreshes) return;
    if (response.status === 400 && schedulesCursor !== "0") {
      schedulesCursor = "0";
      return refresh();
    }
    if (!response.ok) {
      must("meta").textContent = `data: HTTP ${response.status}`;
      return;
    }
    const data = (await response.json()) as Data;
    if (mine === refreshes) render(data);
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
