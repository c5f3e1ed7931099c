import {
  type CronSchedule,
  fireTimeOfSlot,
  latestFireAtOrBefore,
  RETRY_SUFFIX,
  slotId,
} from "../cron/index.js";
import { ConfigError } from "../errors.js";
import type { JobStatus } from "../guard/status.js";
import type { Guard } from "../guard/types.js";

/** Grace and window of the missed/late check, as cron monitors (Healthchecks.io, Sentry Crons) have. */
export interface MonitorOptions {
  /**
   * How long after its fire time a run may start, in ms. A fire with no claim this long after it
   * was due is `missed`; a claim that started later than this is `late`. Default 60 000. Vercel
   * Hobby fires anywhere inside the scheduled hour: give such jobs an hour.
   */
  graceMs?: number;
  /** How far back fire times are checked, in ms. Default 3 600 000 (1 h), at most 500 fires. */
  windowMs?: number;
  /**
   * Redundant clocks: alert (`silent`) when a trigger source that delivered a job before has not
   * delivered its last this many fires that another source did deliver. Default 3.
   */
  silentAfterFires?: number;
}

export interface ResolvedMonitorOptions {
  readonly graceMs: number;
  readonly windowMs: number;
  readonly silentAfterFires: number;
}

export const DEFAULT_GRACE_MS = 60_000;
export const DEFAULT_WINDOW_MS = 3_600_000;
/** Fire times checked per report at most: the newest ones of the window. */
export const MAX_CHECKED_FIRES = 500;

/** A claim of the job as the store remembers it: its slot, and when it started if still known. */
export interface ClaimSighting {
  slot: string;
  /** ms since the epoch; null once neither the slot key nor the run history holds it. */
  startedAtMs: number | null;
}

export interface LateRun {
  slot: string;
  startedAt: string;
  /** How long after the fire time the claim started, in ms. */
  lateMs: number;
}

/** Fire times without a claim, and claims that started late, in the checked window. */
export interface MonitorReport {
  graceMs: number;
  windowMs: number;
  /** The checked fire times lie in [from, to]; null when nothing could be checked yet. */
  from: string | null;
  to: string | null;
  /** How many fire times were checked. */
  checked: number;
  /** Fire times (slot ids) with no claim `graceMs` after they were due, oldest first. */
  missed: string[];
  /** Claims of fire times in the window that started more than `graceMs` after them, oldest first. */
  late: LateRun[];
}

export function resolveMonitorOptions(options: MonitorOptions = {}): ResolvedMonitorOptions {
  const check = (name: string, value: unknown, fallback: number, min: number) => {
    const chosen = value ?? fallback;
    if (typeof chosen !== "number" || !Number.isInteger(chosen) || chosen < min) {
      throw new ConfigError(
        name,
        `must be an integer of at least ${min}${name.endsWith("Ms") ? " ms" : ""}, got ${String(value)}`,
      );
    }
    return chosen;
  };
  return Object.freeze({
    graceMs: check("graceMs", options.graceMs, DEFAULT_GRACE_MS, 0),
    windowMs: check("windowMs", options.windowMs, DEFAULT_WINDOW_MS, 1_000),
    silentAfterFires: check("silentAfterFires", options.silentAfterFires, 3, 1),
  });
}

/**
 * What the store still knows about a job's claims, from one status read: the slot index (every
 * claimed slot id), the slot keys still alive (their `startedAt`) and the run history (finishedAt
 * minus duration for slots whose key has expired).
 */
export function claimsFromStatus(status: Pick<JobStatus, "slots" | "runs">): ClaimSighting[] {
  const started = new Map<string, number>();
  const earliest = (slot: string, ms: number | undefined) => {
    if (ms === undefined || !Number.isFinite(ms)) return;
    const known = started.get(slot);
    if (known === undefined || ms < known) started.set(slot, ms);
  };
  for (const run of status.runs) earliest(run.slot, run.finishedAt - run.durationMs);
  for (const { slot, state } of status.slots) earliest(slot, state?.startedAt);
  const slots = new Set([...status.slots.map(({ slot }) => slot), ...started.keys()]);
  return [...slots].map((slot) => ({ slot, startedAtMs: started.get(slot) ?? null }));
}

/**
 * Compares a schedule's fire times in `[max(now - windowMs, sinceMs), now - graceMs]` with the
 * claims the store holds. Pure: no store call, no clock.
 *
 * @param input.sinceMs Fires before this are not judged (the schedule's creation or resume, or the
 *   oldest claim the store remembers). Without it, the oldest claim's fire time; with neither,
 *   nothing is missed (a job that never ran has no history to compare with).
 */
export function detectMissedAndLate(input: {
  schedule: CronSchedule;
  nowMs: number;
  claims: readonly ClaimSighting[];
  sinceMs?: number;
  options?: MonitorOptions;
}): MonitorReport {
  const { graceMs, windowMs } = resolveMonitorOptions(input.options);
  const { schedule, nowMs, claims } = input;
  const claimed = new Map<number, ClaimSighting[]>();
  let oldestClaim: number | undefined;
  for (const claim of claims) {
    const fireMs = fireTimeOfSlot(claim.slot);
    if (fireMs === undefined) continue;
    claimed.set(fireMs, [...(claimed.get(fireMs) ?? []), claim]);
    if (oldestClaim === undefined || fireMs < oldestClaim) oldestClaim = fireMs;
  }
  const since = input.sinceMs ?? oldestClaim;
  const report: MonitorReport = {
    graceMs,
    windowMs,
    from: null,
    to: null,
    checked: 0,
    missed: [],
    late: [],
  };
  if (since === undefined) return report;
  const fromMs = Math.max(nowMs - windowMs, since);
  const toMs = nowMs - graceMs;

  const fires: number[] = [];
  for (let at = toMs; fires.length < MAX_CHECKED_FIRES; ) {
    const fire = at > 0 ? latestFireAtOrBefore(schedule, at) : undefined;
    if (fire === undefined || fire < fromMs) break;
    fires.push(fire);
    at = fire - 1;
  }
  fires.reverse();
  if (fires.length > 0) {
    report.from = slotId(fires[0] as number);
    report.to = slotId(fires[fires.length - 1] as number);
  }
  report.checked = fires.length;
  report.missed = fires.filter((fire) => !claimed.has(fire)).map(slotId);

  // Late: first attempts (retries are late on purpose) of fires in the window, however recent.
  for (const [fireMs, sightings] of [...claimed].sort(([a], [b]) => a - b)) {
    if (fireMs < Math.max(nowMs - windowMs, since) || fireMs > nowMs) continue;
    const first = sightings.filter((claim) => !RETRY_SUFFIX.test(claim.slot));
    const starts = first.map((claim) => claim.startedAtMs).filter((ms) => ms !== null);
    if (starts.length === 0) continue;
    const startedAtMs = Math.min(...starts);
    if (startedAtMs - fireMs > graceMs) {
      report.late.push({
        slot: slotId(fireMs),
        startedAt: new Date(startedAtMs).toISOString(),
        lateMs: startedAtMs - fireMs,
      });
    }
  }
  return report;
}

/** How many slots and runs a status read needs to cover the window. */
export function statusDepth(schedule: CronSchedule, nowMs: number, windowMs: number): number {
  let count = 0;
  for (let at = nowMs; count < MAX_CHECKED_FIRES; count += 1) {
    const fire = at > 0 ? latestFireAtOrBefore(schedule, at) : undefined;
    if (fire === undefined || fire < nowMs - windowMs) break;
    at = fire - 1;
  }
  return Math.min(MAX_CHECKED_FIRES, count + 10);
}

/**
 * A job's status with its missed and late fires, in one store round trip (the status script).
 *
 * @param options.sinceMs See {@link detectMissedAndLate}. Default: when the job first claimed a
 *   slot, as its ledger remembers (else its oldest claim's fire time).
 */
export async function monitorJob(
  guard: Guard,
  job: string,
  schedule: CronSchedule,
  options: MonitorOptions & { sinceMs?: number } = {},
): Promise<JobStatus & { monitor: MonitorReport }> {
  const { windowMs } = resolveMonitorOptions(options);
  const nowMs = guard.options.clock();
  const depth = statusDepth(schedule, nowMs, windowMs);
  const status = await guard.status(job, { slots: depth, runs: depth * 2 });
  const monitor = detectMissedAndLate({
    schedule,
    nowMs,
    claims: claimsFromStatus(status),
    // From the fire that was current when the job first claimed a slot (its ledger's record), not
    // from its oldest claimed slot: a backfill of an earlier slot must not turn the fires between
    // it and the job's start into missed ones.
    sinceMs:
      options.sinceMs ??
      (status.sinceMs === null ? undefined : latestFireAtOrBefore(schedule, status.sinceMs)),
    options,
  });
  return { ...status, monitor };
}
