import { fireTimeOfSlot, RETRY_SUFFIX } from "../../../core/cron/index.js";

/**
 * How a job or schedule is doing, in one word the dashboard shows as a badge:
 * - `paused`: a paused schedule (whatever its last fire did);
 * - `idle`: no fire judged yet (never ran, nothing missed);
 * - otherwise the newest judged fire decides: `ok` (it ran), `failing` (its latest attempt failed
 *   or lost its lease; a schedule may still retry it), `dead` (a schedule's fire failed its last
 *   attempt), `missed` (nobody claimed it within the grace period).
 * A slot running right now is not judged (the holder line shows it): the fire before it decides.
 */
export type DashboardHealth = "ok" | "failing" | "dead" | "missed" | "paused" | "idle";

/** The newest run of one kind: which slot, and when it finished (ISO; null when not known). */
export interface DashboardLastRun {
  slot: string;
  at: string | null;
  outcome: "ran" | "failed" | "lost" | "dead";
  summary?: string;
}

/** What health reads of a row (a DashboardRow). */
export interface JudgedRow {
  slot: string;
  outcome: string;
  at?: string;
  summary?: string;
}

export interface HealthReport {
  health: DashboardHealth;
  lastSuccess: DashboardLastRun | null;
  lastFailure: DashboardLastRun | null;
}

const FAILURES = new Set(["failed", "lost", "dead"]);
const JUDGED = new Set(["ran", "failed", "lost", "dead", "missed"]);
const VERDICT: Record<string, DashboardHealth> = {
  ran: "ok",
  failed: "failing",
  lost: "failing",
  dead: "dead",
  missed: "missed",
};

const attemptOf = (slot: string): number => Number(RETRY_SUFFIX.exec(slot)?.[0].slice(6) ?? 0);
const isDead = (row: JudgedRow): number => (row.outcome === "dead" ? 1 : 0);

/**
 * Newest first: the later fire time; within one fire a dead event, then the later attempt, then
 * the later finish (a forced re-run of the same slot).
 */
function newestFirst(a: JudgedRow, b: JudgedRow): number {
  return (
    (fireTimeOfSlot(b.slot) ?? 0) - (fireTimeOfSlot(a.slot) ?? 0) ||
    isDead(b) - isDead(a) ||
    attemptOf(b.slot) - attemptOf(a.slot) ||
    (b.at ?? "").localeCompare(a.at ?? "")
  );
}

function lastOf(rows: JudgedRow[]): DashboardLastRun | null {
  const row = rows[0];
  if (!row) return null;
  return {
    slot: row.slot,
    at: row.at ?? null,
    outcome: row.outcome as DashboardLastRun["outcome"],
    ...(row.summary ? { summary: row.summary } : {}),
  };
}

/**
 * The health of a job or schedule from all its rows (runs, missed fires, dead events), and its
 * last success and last failure. Rows are grouped by fire time (a schedule's retries `.retryN`
 * belong to their fire); within the newest fire a dead event wins, else its latest attempt.
 */
export function healthOf(rows: readonly JudgedRow[], paused: boolean): HealthReport {
  const judged = rows.filter((row) => JUDGED.has(row.outcome)).sort(newestFirst);
  const lastSuccess = lastOf(judged.filter((row) => row.outcome === "ran"));
  const lastFailure = lastOf(judged.filter((row) => FAILURES.has(row.outcome)));
  const newest = judged[0];
  const health = paused ? "paused" : newest ? (VERDICT[newest.outcome] ?? "idle") : "idle";
  return { health, lastSuccess, lastFailure };
}
