import type { SlotLookup } from "../core/guard/lookup.js";
import type { SlotState } from "../core/guard/result.js";
import type { JobStatus, RunRecord } from "../core/guard/status.js";
import type { MonitorReport } from "../core/monitoring/monitor.js";
import type { ScheduleView } from "../core/schedules/registry.js";
import type {
  RunJson,
  ScheduleJson,
  ScheduleStatusJson,
  SlotLookupJson,
  SlotStateJson,
} from "./response-schemas.js";

/**
 * The one serializer of the /schedules answers: each object is built field by field in the order
 * of its schema in response-schemas.ts, so a client sees the same key order every time; every
 * timestamp is ISO-8601 (the store keeps ms since the epoch); a run's `summary` is the JSON value
 * the handler returned, not JSON inside a string. The dashboard has its own view of the same
 * records (routes/dashboard.ts) and does not go through here.
 */

/** ms since the epoch as ISO-8601; null for a missing or broken time. */
function isoOf(ms: number | undefined): string | null {
  return typeof ms === "number" && Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

/**
 * The guard keeps what a handler returned as its JSON text (cut at a few hundred characters) and
 * an error as `Name: message`: the value when the text is JSON, null for nothing, else the text.
 */
export function summaryValue(text: string | undefined): unknown {
  if (text === undefined || text === "") return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function scheduleJson(schedule: ScheduleView): ScheduleJson {
  return {
    id: schedule.id,
    handler: schedule.handler,
    cron: schedule.cron,
    timezone: schedule.timezone,
    enabled: schedule.enabled,
    next: schedule.next,
    attempt: schedule.attempt,
    payload: schedule.payload,
    catchUp: schedule.catchUp,
    catchUpLimit: schedule.catchUpLimit,
    maxAttempts: schedule.maxAttempts,
    version: schedule.version,
    fingerprint: schedule.fingerprint,
    createdAt: isoOf(schedule.createdAt) as string,
    updatedAt: isoOf(schedule.updatedAt) as string,
  };
}

/** A slot key's state without its claim token (which only its holder needs). */
export function slotStateJson(state: SlotState): SlotStateJson {
  return {
    state: state.state,
    slot: state.slot,
    fence: state.fence,
    region: state.region,
    startedAt: isoOf(state.startedAt) ?? undefined,
    finishedAt: isoOf(state.finishedAt) ?? undefined,
    durationMs: state.durationMs,
    attempt: state.attempt,
    attempts: state.attempts,
    forced: state.forced,
    ledger: state.ledger,
    summary: state.summary === undefined ? undefined : summaryValue(state.summary),
    raw: state.raw,
  };
}

export function runJson(run: RunRecord): RunJson {
  return {
    id: run.id,
    slot: run.slot,
    status: run.status,
    forced: run.forced,
    fence: run.fence,
    region: run.region,
    finishedAt: isoOf(run.finishedAt),
    durationMs: run.durationMs,
    summary: summaryValue(run.summary),
  };
}

function monitorJson(monitor: MonitorReport): ScheduleStatusJson["monitor"] {
  return {
    graceMs: monitor.graceMs,
    windowMs: monitor.windowMs,
    from: monitor.from,
    to: monitor.to,
    checked: monitor.checked,
    missed: monitor.missed,
    late: monitor.late.map((late) => ({
      slot: late.slot,
      startedAt: late.startedAt,
      lateMs: late.lateMs,
    })),
  };
}

/** `GET /schedules/:id`: the schedule, its running claim, latest slots and runs, missed fires. */
export function scheduleStatusJson(
  schedule: ScheduleView,
  status: Pick<JobStatus, "running" | "slots" | "runs"> & { monitor: MonitorReport },
): ScheduleStatusJson {
  return {
    schedule: scheduleJson(schedule),
    running: status.running ? slotStateJson(status.running) : null,
    slots: status.slots.map((entry) => ({
      slot: entry.slot,
      state: entry.state ? slotStateJson(entry.state) : null,
      ttlMs: entry.ttlMs,
    })),
    runs: status.runs.map(runJson),
    monitor: monitorJson(status.monitor),
  };
}

export function slotLookupJson(lookup: SlotLookup): SlotLookupJson {
  return {
    job: lookup.job,
    slot: lookup.slot,
    status: lookup.status,
    runs: lookup.runs.map((run) => ({
      outcome: run.outcome,
      fence: run.fence,
      finishedAt: run.finishedAt,
      attempt: run.attempt,
      forced: run.forced,
    })),
    holder: lookup.holder ? slotStateJson(lookup.holder) : null,
  };
}
