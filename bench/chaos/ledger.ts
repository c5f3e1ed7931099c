import type { GuardResult, JobContext } from "../../src/core/index.js";

/** What happened to the job bodies of each slot, as the bodies themselves saw it. */
export class Ledger {
  private readonly slots = new Map<string, { active: number; maxActive: number; ok: number }>();
  /** Body invocations; each must come back to its caller as a ran or failed result. */
  bodyStarts = 0;
  /** Results that reported a body run (ran, or failed after the body started). */
  reportedRuns = 0;
  /** Deliveries whose failure the caller saw: a failed result, a thrown error, a ran-with-warning. */
  errorsSurfaced = 0;
  skipped = 0;
  deliveries = 0;

  expect(slot: string): void {
    if (!this.slots.has(slot)) this.slots.set(slot, { active: 0, maxActive: 0, ok: 0 });
  }

  /** Call when a body starts; call the returned function when it ends (ok = it succeeded). */
  start(slot: string): (ok: boolean) => void {
    this.expect(slot);
    const entry = this.slots.get(slot) as { active: number; maxActive: number; ok: number };
    this.bodyStarts += 1;
    entry.active += 1;
    entry.maxActive = Math.max(entry.maxActive, entry.active);
    let ended = false;
    return (ok) => {
      if (ended) return;
      ended = true;
      entry.active -= 1;
      if (ok) entry.ok += 1;
    };
  }

  /** Counts one delivery's outcome: a result, or what `run` threw. */
  record(outcome: { result: GuardResult<unknown> } | { thrown: unknown }, bodyStarted: boolean) {
    this.deliveries += 1;
    if ("thrown" in outcome) {
      this.errorsSurfaced += 1;
      return;
    }
    const { result } = outcome;
    if (result.status === "skipped") {
      this.skipped += 1;
      return;
    }
    if (bodyStarted) this.reportedRuns += 1;
    if (result.status === "failed" || result.warning) this.errorsSurfaced += 1;
  }

  successes(slot: string): number {
    return this.slots.get(slot)?.ok ?? 0;
  }

  /** Slots whose body succeeded more than once, or ran twice at the same time. */
  duplicates(): number {
    return [...this.slots.values()].filter((s) => s.ok > 1 || s.maxActive > 1).length;
  }

  /** Slots with no successful run. */
  lost(): number {
    return [...this.slots.values()].filter((s) => s.ok === 0).length;
  }

  slotCount(): number {
    return this.slots.size;
  }

  successCount(): number {
    return [...this.slots.values()].reduce((sum, s) => sum + s.ok, 0);
  }
}

/** Runs one delivery and books it; never throws. */
export async function deliver(
  ledger: Ledger,
  slot: string,
  run: (fn: (context: JobContext) => Promise<void>) => Promise<GuardResult<unknown>>,
  body: (context: JobContext) => Promise<void>,
): Promise<GuardResult<unknown> | Error> {
  let started = false;
  try {
    const result = await run(async (context) => {
      started = true;
      const end = ledger.start(slot);
      try {
        await body(context);
        end(true);
      } catch (error) {
        end(false);
        throw error;
      }
    });
    ledger.record({ result }, started);
    return result;
  } catch (thrown) {
    ledger.record({ thrown }, started);
    return thrown instanceof Error ? thrown : new Error(String(thrown));
  }
}
