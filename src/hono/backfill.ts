import { SlotError } from "../core/errors.js";
import type { Guard } from "../core/guard/guard.js";

/**
 * `?force=true` (or `1`): run the slot even though the ledger says it already ran (or cannot vouch
 * for it). Absent, `false` or `0`: don't. Anything else, or given twice, is a SlotError (400).
 */
export function forceOf(request: Request): boolean {
  const values = new URL(request.url).searchParams.getAll("force");
  if (values.length > 1) throw new SlotError(`give one ?force=, not ${values.length}`);
  const value = values[0];
  if (value === undefined || value === "false" || value === "0") return false;
  if (value === "true" || value === "1") return true;
  throw new SlotError(
    `?force= must be true, 1, false or 0, got ${JSON.stringify(value.slice(0, 20))}`,
  );
}

/**
 * The 409 of a backfill (`?slot=`) the slot ledger turned away: the slot already ran (or failed
 * under "keep"), or is older than the ledger can vouch for. Says what is recorded and how to run
 * it anyway.
 */
export async function refusedBackfill(
  guard: Guard,
  job: string,
  slot: string,
  reason: "done" | "failed" | "unvouched",
  kind: "job" | "schedule" = "job",
): Promise<Response> {
  const record = await guard.lookup(job, slot).catch(() => undefined);
  const last = record?.runs[record.runs.length - 1];
  const what =
    reason === "unvouched"
      ? "is older than the slot ledger remembers, so nobody can tell whether it ran"
      : `already ${reason === "done" ? "ran" : "failed"}${last ? ` (fence ${last.fence}, finished ${last.finishedAt}${record && record.runs.length > 1 ? `, ${record.runs.length} runs` : ""})` : ""}`;
  return new Response(
    JSON.stringify({
      error: `slot ${slot} of ${kind} ${job} ${what}: add force=true to run it again on purpose`,
      job,
      slot,
      reason,
      ...(record ? { status: record.status, runs: record.runs } : {}),
    }),
    {
      status: 409,
      headers: {
        "content-type": "application/json; charset=UTF-8",
        "cron-guard-status": "skipped",
        "cron-guard-reason": reason,
        "cron-guard-slot": slot,
      },
    },
  );
}
