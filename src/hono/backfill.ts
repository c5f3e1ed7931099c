import { SlotError } from "../core/errors.js";
import type { SlotState } from "../core/guard/result.js";

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
 * under "keep"), or is older than the ledger can vouch for. Says what the claim's answer holds
 * (fence, when it finished, how many runs) and how to run it anyway. Built from the one round trip
 * the claim already made: a refused backfill costs no more than any other skipped delivery;
 * `GET .../slots/<slot>` has every run.
 */
export function refusedBackfill(
  job: string,
  slot: string,
  reason: "done" | "failed" | "unvouched",
  holder: SlotState | undefined,
  kind: "job" | "schedule" = "job",
): Response {
  const finishedAt =
    typeof holder?.finishedAt === "number" ? new Date(holder.finishedAt).toISOString() : undefined;
  const runs = holder?.attempts ?? (typeof holder?.attempt === "number" ? holder.attempt + 1 : 1);
  const what =
    reason === "unvouched"
      ? "is older than the slot ledger remembers, so nobody can tell whether it ran"
      : `already ${reason === "done" ? "ran" : "failed"}${holder?.fence !== undefined ? ` (fence ${holder.fence}${finishedAt ? `, finished ${finishedAt}` : ""}${runs > 1 ? `, ${runs} runs` : ""})` : ""}`;
  const recorded =
    reason === "unvouched"
      ? undefined
      : {
          state: holder?.state,
          fence: holder?.fence,
          finishedAt,
          runs,
          forced: holder?.forced === true,
        };
  return new Response(
    JSON.stringify({
      error: `slot ${slot} of ${kind} ${job} ${what}: add force=true to run it again on purpose`,
      job,
      slot,
      reason,
      status: reason === "done" ? "ran" : reason === "failed" ? "failed" : "unknown",
      ...(recorded ? { recorded } : {}),
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
