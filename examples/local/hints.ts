import { latestFireAtOrBefore, parseSchedule, slotId } from "../../src/core/cron/index.js";
import type { SlotLookup } from "../../src/core/guard/lookup.js";
import type { LocalStack } from "./stack.js";

/** A backfill `npm start` suggests: the URL, and a heading that says what it will answer. */
export interface BackfillHint {
  heading: string;
  url: string;
}

/** How far back `npm start` looks for a fire time that has not run. */
const MAX_LOOKUPS = 30;

/**
 * A past fire time of `job` to backfill, found by asking the app (`GET /cron/:job/slots/:slot`)
 * instead of assumed, so the heading is true when printed: the latest fire before the storm's slot
 * that never ran (200, then 409, then a forced 200), else the latest one with what it will answer.
 */
export async function backfillHint(
  stack: Pick<LocalStack, "appUrl" | "secret" | "jobs" | "storms">,
  job: string,
): Promise<BackfillHint> {
  const cron = stack.jobs.find((candidate) => candidate.name === job)?.cron;
  if (cron === undefined) throw new Error(`no example job ${JSON.stringify(job)}`);
  const schedule = parseSchedule(cron);
  const stormSlot = stack.storms.find((storm) => storm.job === job)?.slot;
  let beforeMs = (Date.parse(stormSlot ?? "") || Date.now()) - 1;
  let latest: SlotLookup | undefined;
  for (let lookups = 0; lookups < MAX_LOOKUPS; lookups++) {
    const fireMs = latestFireAtOrBefore(schedule, beforeMs);
    if (fireMs === undefined) break;
    const lookup = await lookupSlot(stack, job, slotId(fireMs));
    latest ??= lookup;
    if (lookup.status === "never") {
      return {
        heading: `Backfill a past slot that has not run (${lookup.slot}): 200 the first time, then 409 with what ran; add &force=true to run it again on purpose (200):`,
        url: backfillUrl(stack, job, lookup.slot),
      };
    }
    beforeMs = fireMs - 1;
  }
  if (latest === undefined) throw new Error(`job ${job} has no fire time before ${stormSlot}`);
  return {
    heading: `Backfill a past slot (${latest.slot}; the ledger says "${latest.status}", so expect 409 with what it holds; add &force=true to run it again on purpose, 200 unless it is running):`,
    url: backfillUrl(stack, job, latest.slot),
  };
}

async function lookupSlot(
  stack: Pick<LocalStack, "appUrl" | "secret">,
  job: string,
  slot: string,
): Promise<SlotLookup> {
  const response = await fetch(`${stack.appUrl}/cron/${job}/slots/${encodeURIComponent(slot)}`, {
    headers: { authorization: `Bearer ${stack.secret}` },
  });
  if (!response.ok) {
    throw new Error(`looking up ${job} ${slot}: HTTP ${response.status} ${await response.text()}`);
  }
  return (await response.json()) as SlotLookup;
}

function backfillUrl(stack: Pick<LocalStack, "appUrl">, job: string, slot: string): string {
  return `${stack.appUrl}/cron/${job}?slot=${slot}`;
}
