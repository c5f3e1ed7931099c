import { type Context, Hono, type MiddlewareHandler } from "hono";
import {
  nextFireTimes,
  parseExplicitSlot,
  parseSchedule,
  periodMsOf,
  slotFromCron,
  slotId,
} from "../../core/cron/index.js";
import { messageOf, SlotError } from "../../core/errors.js";
import { isValidJobName } from "../../core/guard/keys.js";
import type { SourceReport } from "../../core/guard/sources.js";
import type { JobStatus, SlotState } from "../../core/index.js";
import type { LateRun } from "../../core/monitoring/monitor.js";
import type { RegistryEvent, ScheduleView } from "../../core/schedules/registry.js";
import type { GuardStore } from "../../core/store.js";
import { forceOf, refusedBackfill } from "../backfill.js";
import type { Deployment } from "../deployment.js";
import { readDispatchSources } from "../dispatch-sources.js";
import { jsonError, methodNotAllowed, validated } from "../http.js";
import { type MonitoredStatus, monitoringOf } from "../monitoring.js";
import { DashboardDataQuery } from "../request-schemas.js";
import type { Bindings, CronAppOptions } from "../types.js";
import { type HealthReport, healthOf } from "./dashboard/health.js";
import { dashboardPage } from "./dashboard-page.js";

export type { DashboardHealth, DashboardLastRun } from "./dashboard/health.js";

/** What a row of the dashboard shows: one slot of a job or schedule and how it went. */
export interface DashboardRow {
  slot: string;
  outcome: "ran" | "failed" | "lost" | "running" | "released" | "missed" | "dead";
  fence?: number;
  region?: string;
  durationMs?: number;
  /** When it finished (or started, while running), ISO. */
  at?: string;
  summary?: string;
  /** Set when the claim started later than the grace period after the fire time. */
  lateMs?: number;
  /** While running: how long the lease has left, in ms. */
  leaseLeftMs?: number | null;
  /** Set on a run started with `force` (a deliberate re-run of a slot that had run). */
  forced?: boolean;
}

/** The holder of a job's slot right now. */
export interface DashboardHolder {
  slot: string;
  region: string;
  fence: number | null;
  startedAt: string | null;
  leaseLeftMs: number | null;
}

/**
 * One job's or schedule's card. `health` (see DashboardHealth) and the last success and failure are
 * computed from all its remembered runs, missed fires and dead events, not only the rows shown.
 */
interface MonitoredView extends HealthReport {
  next: string[];
  fence: number;
  holder: DashboardHolder | null;
  rows: DashboardRow[];
  missed: string[];
  late: LateRun[];
  checked: { from: string | null; to: string | null; fires: number };
}

export interface DashboardData {
  now: string;
  graceMs: number;
  windowMs: number;
  alerts: boolean;
  jobs: (MonitoredView & {
    name: string;
    cron: string;
    timezone: string;
    graceMs: number;
    /** How each trigger source delivered the job (redundant clocks), most deliveries first. */
    sources: SourceReport[];
  })[];
  schedules: (MonitoredView & {
    id: string;
    cron: string;
    timezone: string;
    handler: string;
    enabled: boolean;
    attempt: number;
    catchUp: string;
  })[];
  /**
   * With dynamic schedules: the dispatch cron and how each trigger source delivered its ticks
   * (one slot per tick, see dispatch-sources.ts).
   */
  dispatch?: { cron: string; sources: SourceReport[] };
  /** Dead and missed fires the dispatcher recorded, newest first. */
  events: RegistryEvent[];
  /**
   * The schedules come a page at a time (`?limit=`, 1-500, default 100): pass this as `?cursor=`
   * for the next page; null on the last one.
   */
  schedulesCursor: string | null;
}

const ROWS = 20;

function holderOf(status: JobStatus): DashboardHolder | null {
  const live = [
    ...(status.running ? [{ state: status.running, ttlMs: null as number | null }] : []),
    ...status.slots.filter(({ state }) => state?.state === "running"),
  ];
  const first = live[0];
  if (!first?.state) return null;
  const state = first.state as SlotState;
  const entry = status.slots.find((slot) => slot.state?.token === state.token);
  return {
    slot: state.slot ?? entry?.slot ?? "",
    region: state.region ?? "",
    fence: state.fence ?? null,
    startedAt: state.startedAt ? new Date(state.startedAt).toISOString() : null,
    leaseLeftMs: entry?.ttlMs ?? first.ttlMs,
  };
}

function rowsOf(status: MonitoredStatus, events: RegistryEvent[] = []): DashboardRow[] {
  const late = new Map(status.monitor.late.map(({ slot, lateMs }) => [slot, lateMs]));
  const rows: DashboardRow[] = status.runs.map((run) => ({
    slot: run.slot,
    outcome: run.status === "done" ? "ran" : run.status,
    fence: run.fence,
    region: run.region,
    durationMs: run.durationMs,
    at: Number.isFinite(run.finishedAt) ? new Date(run.finishedAt).toISOString() : undefined,
    summary: run.summary,
    lateMs: late.get(run.slot),
    ...(run.forced ? { forced: true } : {}),
  }));
  for (const { slot, state, ttlMs } of status.slots) {
    if (state?.state !== "running" && state?.state !== "released") continue;
    if (state.state === "released" && rows.some((row) => row.slot === slot)) continue;
    rows.push({
      slot,
      outcome: state.state,
      fence: state.fence,
      region: state.region,
      at: state.startedAt ? new Date(state.startedAt).toISOString() : undefined,
      lateMs: late.get(slot),
      leaseLeftMs: ttlMs,
    });
  }
  for (const slot of status.monitor.missed) rows.push({ slot, outcome: "missed" });
  for (const { id, event } of events) {
    if (event.kind !== "dead") continue;
    // an event's stream id starts with the ms it was recorded at
    const recordedMs = Number.parseInt(id, 10);
    const at = Number.isFinite(recordedMs) ? new Date(recordedMs).toISOString() : undefined;
    rows.push({ slot: event.fire, outcome: "dead", at, summary: event.error });
  }
  return rows.sort((a, b) => (a.slot < b.slot ? 1 : a.slot > b.slot ? -1 : 0));
}

function monitoredView(
  status: MonitoredStatus,
  next: number[],
  paused: boolean,
  events?: RegistryEvent[],
): MonitoredView {
  const rows = rowsOf(status, events);
  return {
    ...healthOf(rows, paused),
    next: next.map(slotId),
    fence: status.fence,
    holder: holderOf(status),
    rows: rows.slice(0, ROWS),
    missed: status.monitor.missed,
    late: status.monitor.late,
    checked: { from: status.monitor.from, to: status.monitor.to, fires: status.monitor.checked },
  };
}

function waitUntilOf(c: Context): ((promise: Promise<unknown>) => void) | undefined {
  try {
    return c.executionCtx.waitUntil.bind(c.executionCtx);
  } catch {
    return undefined;
  }
}

/**
 * `/dashboard`: `GET /` is the page (it holds no data, so it needs no secret); `GET /data` is what
 * it polls and `POST /schedules/:id/run[?slot=]` runs a schedule's current (or a past) fire now,
 * both behind `requireSecret`. Jobs run through `POST /cron/:job`, pauses through `/schedules`.
 */
export function dashboardRoutes<TRedis extends GuardStore>(
  deployment: Deployment<TRedis>,
  options: Pick<CronAppOptions<TRedis>, "handlers">,
  requireSecret: MiddlewareHandler,
): Hono<{ Bindings: Bindings }> {
  const routes = new Hono<{ Bindings: Bindings }>();
  const monitoring = monitoringOf(deployment);
  const { clock } = deployment.settings;
  const _storeOf = (env: Bindings | undefined): GuardStore =>
    (deployment as { store?: (env: Bindings | undefined) => GuardStore }).store?.(env) ??
    deployment.redis(env);

  routes.get("/", (c) => {
    const nonce = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    c.header(
      "content-security-policy",
      `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`,
    );
    c.header("referrer-policy", "no-referrer");
    c.header("cache-control", "no-store");
    return c.html(dashboardPage(nonce));
  });
  routes.all("/", (c) => methodNotAllowed(c, "GET"));

  routes.use("/data", requireSecret);
  routes.use("/schedules/*", requireSecret);

  routes.get("/data", validated("query", DashboardDataQuery), async (c) => {
    const { cursor, limit } = c.req.valid("query");
    const waitUntil = waitUntilOf(c);
    const nowMs = clock();
    const jobs = await Promise.all(
      [...deployment.jobs.values()].map(async (entry) => {
        const status = await monitoring.jobStatus(c.env, entry.job.name, waitUntil);
        return {
          name: entry.job.name,
          cron: entry.job.cron,
          timezone: entry.schedule.timezone,
          graceMs: monitoring.graceMsOf(entry as never),
          ...monitoredView(status, nextFireTimes(entry.schedule, nowMs, 3), false),
          sources: status.sources ?? [],
        };
      }),
    );
    let schedules: DashboardData["schedules"] = [];
    let events: RegistryEvent[] = [];
    let schedulesCursor: string | null = null;
    let dispatch: DashboardData["dispatch"];
    if (deployment.dynamic) {
      const registry = await deployment.dynamic.registry(c.env);
      const [page, recent, clocks] = await Promise.all([
        registry.list({ cursor, limit }),
        registry.events(50),
        readDispatchSources(deployment, c.env),
      ]);
      dispatch = clocks;
      events = recent;
      schedulesCursor = page.cursor;
      const listed = [...page.schedules].sort((a, b) => (a.id < b.id ? -1 : 1));
      schedules = await Promise.all(
        listed.map(async (schedule: ScheduleView) => {
          const status = await monitoring.scheduleStatus(c.env, schedule, waitUntil);
          const cron = parseSchedule(schedule.cron, { timezone: schedule.timezone });
          const next = schedule.enabled ? nextFireTimes(cron, nowMs, 3) : [];
          return {
            id: schedule.id,
            cron: schedule.cron,
            timezone: schedule.timezone,
            handler: schedule.handler,
            enabled: schedule.enabled,
            attempt: schedule.attempt,
            catchUp: schedule.catchUp,
            ...monitoredView(
              status,
              next,
              !schedule.enabled,
              recent.filter((event) => event.schedule === schedule.id),
            ),
          };
        }),
      );
    }
    const data: DashboardData = {
      now: new Date(nowMs).toISOString(),
      graceMs: monitoring.options.graceMs,
      windowMs: monitoring.options.windowMs,
      alerts: monitoring.alertsEnabled(c.env),
      jobs,
      schedules,
      ...(dispatch ? { dispatch } : {}),
      events: events.slice(0, 20),
      schedulesCursor,
    };
    c.header("cache-control", "no-store");
    return c.json(data);
  });
  routes.all("/data", (c) => methodNotAllowed(c, "GET"));

  routes.post("/schedules/:id/run", async (c) => {
    const id = c.req.param("id");
    const dynamic = deployment.dynamic;
    if (!dynamic || !isValidJobName(id))
      return jsonError(c, 404, `no schedule ${JSON.stringify(id)}`);
    const schedule = await (await dynamic.registry(c.env)).get(id);
    if (!schedule) return jsonError(c, 404, `no schedule ${JSON.stringify(id)}`);
    const handler = options.handlers?.[schedule.handler];
    if (!handler) return jsonError(c, 500, `handler "${schedule.handler}" is not registered`);
    // The dispatcher's guard: a failed fire is kept, so the dispatcher retries it as an attempt.
    const guard = deployment.scheduleGuard(c.env, "dispatch");
    const cron = parseSchedule(schedule.cron, { timezone: schedule.timezone });
    const nowMs = guard.options.clock();
    const { skewToleranceMs } = guard.options;
    const explicit = c.req.query("slot");
    let slotMs: number;
    let force: boolean;
    try {
      force = forceOf(c.req.raw);
      slotMs =
        explicit === undefined
          ? slotFromCron(cron, nowMs, { skewToleranceMs })
          : parseExplicitSlot(explicit, cron, { nowMs, skewToleranceMs });
    } catch (error) {
      if (error instanceof SlotError) return jsonError(c, 400, error.message);
      throw error;
    }
    const slot = slotId(slotMs);
    const waitUntil = waitUntilOf(c);
    const result = await guard.run(
      id,
      slot,
      (context) =>
        handler({
          ...context,
          schedule,
          payload: schedule.payload,
          attempt: 0,
          waitUntil,
          redis: deployment.redis(c.env),
          env: c.env ?? {},
          trigger: "dispatch",
        }),
      { waitUntil, periodMs: periodMsOf(cron, slotMs), force },
    );
    // Hands the alert to waitUntil (or detaches it): the answer never waits for the webhook.
    await monitoring.runFinished(c.env, "schedule", result, waitUntil);
    const headers: Record<string, string> = {
      "cron-guard-status": result.status,
      "cron-guard-slot": slot,
    };
    if (result.status === "ran" && result.fence !== null) {
      headers["cron-guard-fence"] = String(result.fence);
    }
    if (
      result.status === "skipped" &&
      explicit !== undefined &&
      (result.reason === "done" || result.reason === "failed" || result.reason === "unvouched")
    ) {
      return refusedBackfill(id, slot, result.reason, result.holder, "schedule");
    }
    if (result.status === "skipped") {
      return c.body(null, 204, { ...headers, "cron-guard-reason": result.reason });
    }
    if (result.status === "failed") {
      return c.json(
        { error: `schedule ${id} failed: ${messageOf(result.error)}`, schedule: id, slot },
        500,
        headers,
      );
    }
    return c.json(
      { status: "ran", schedule: id, slot, fence: result.fence, value: result.value ?? null },
      200,
      headers,
    );
  });
  routes.all("/schedules/:id/run", (c) => methodNotAllowed(c, "POST"));
  return routes;
}
