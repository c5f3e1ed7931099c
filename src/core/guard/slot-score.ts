import { fireTimeOfSlot } from "../cron/index.js";

/**
 * The slot index and the ledger order slots by fire time. A slot id that names a fire time (an
 * ISO timestamp, also with the dispatcher's `.retry<n>` suffix) is scored by it, so a backfill
 * by id is as old as the fire it names; any other id is scored by the claim's time.
 */
export function slotScore(slot: number | Date | string, nowMs: number): number {
  if (typeof slot === "number") return slot;
  if (slot instanceof Date) return slot.getTime();
  return (ISO_SLOT.test(slot) ? fireTimeOfSlot(slot) : undefined) ?? nowMs;
}

const ISO_SLOT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})(\.retry\d+)?$/;
