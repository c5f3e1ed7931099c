/**
 * The guard's contract as a suite that any store must pass (ShedLock's idea: one contract test suite
 * for every provider). `guardContract(name, instance)` registers it inside the caller's file;
 * `instance(options)` must hand out a guard on its own clients, like a separate deployment, with a
 * key prefix that isolates the suite.
 */
import { describe, expect, it } from "vitest";
import type { Guard, GuardOptions, GuardResult } from "../../src/core/index.js";
import { sleep } from "../../src/core/sleep.js";

/** A recent whole minute: the slot ledger vouches for slots within its age bound (7 days). */
const SLOT = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;

export function tally(results: GuardResult<unknown>[]) {
  const count = { ran: 0, skipped: 0, failed: 0, reasons: {} as Record<string, number> };
  for (const result of results) {
    count[result.status] += 1;
    if (result.status === "skipped") {
      count.reasons[result.reason] = (count.reasons[result.reason] ?? 0) + 1;
    }
  }
  return count;
}

export function guardContract(
  name: string,
  instance: (options?: Partial<GuardOptions>) => Guard,
): void {
  describe(`guard contract: ${name}`, () => {
    it("runs a slot exactly once when 50 instances race for it, 5 times over", async () => {
      for (let round = 0; round < 5; round += 1) {
        let sideEffects = 0;
        const results = await Promise.all(
          Array.from({ length: 50 }, () =>
            instance().run("race", SLOT + round * 60_000, async () => {
              sideEffects += 1;
              await sleep(5);
              return "sent";
            }),
          ),
        );
        const count = tally(results);
        expect(count).toMatchObject({ ran: 1, skipped: 49, failed: 0 });
        expect(sideEffects).toBe(1);
        for (const result of results) {
          if (result.status === "skipped") expect(["running", "done"]).toContain(result.reason);
        }
      }
    });

    it("skips a late duplicate as done", async () => {
      const guard = instance({ retentionMs: 5_000 });
      let runs = 0;
      expect(await guard.run("late", SLOT, () => ++runs)).toMatchObject({
        status: "ran",
        value: 1,
      });
      for (const delayMs of [1, 300]) {
        await sleep(delayMs);
        expect(await instance().run("late", SLOT, () => ++runs)).toMatchObject({
          status: "skipped",
          reason: "done",
        });
      }
      expect(runs).toBe(1);
    });

    it("lets exactly one later duplicate run a failed slot under the release policy", async () => {
      const boom = new Error("smtp down");
      const failed = await instance({ onFailure: "release" }).run("mail", SLOT, () => {
        throw boom;
      });
      expect(failed).toMatchObject({ status: "failed", error: boom, lockLost: false });
      let runs = 0;
      const retries = await Promise.all(
        Array.from({ length: 20 }, () => instance().run("mail", SLOT, () => ++runs)),
      );
      expect(tally(retries).ran).toBe(1);
      expect(runs).toBe(1);
    });

    it("lets nobody run before a crashed holder's lease ends and exactly one after", async () => {
      let started = 0;
      void instance({ leaseMs: 600, heartbeatMs: 0 }).run("crash", SLOT, () => {
        started += 1;
        return new Promise(() => {});
      });
      await sleep(50);
      let runs = 0;
      const early = await Promise.all(
        Array.from({ length: 10 }, () => instance().run("crash", SLOT, () => ++runs)),
      );
      expect(tally(early).reasons.running).toBe(10);
      await sleep(700);
      const late = await Promise.all(
        Array.from({ length: 20 }, () => instance().run("crash", SLOT, () => ++runs)),
      );
      expect(tally(late).ran).toBe(1);
      expect(runs).toBe(1);
      expect(started).toBe(1);
    });

    it("hands out strictly increasing fencing tokens, and status reports the last", async () => {
      const fences: number[] = [];
      for (let i = 0; i < 15; i += 1) {
        const result = await instance().run("fenced", SLOT + i * 60_000, ({ fence }) => fence);
        expect(result.status).toBe("ran");
        if (result.status === "ran") fences.push(result.fence as number);
      }
      for (let i = 1; i < fences.length; i += 1) {
        expect(fences[i]).toBeGreaterThan(fences[i - 1] as number);
      }
      const concurrent = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          instance().run("fenced", SLOT + (100 + i) * 60_000, ({ fence }) => fence),
        ),
      );
      const values = concurrent.map((r) => (r.status === "ran" ? (r.fence as number) : -1));
      expect(new Set(values).size).toBe(30);
      expect(Math.min(...values)).toBeGreaterThan(fences.at(-1) as number);
      const status = await instance().status("fenced", { slots: 3, runs: 3 });
      expect(status.fence).toBe(Math.max(...values));
      expect(status.runs).toHaveLength(3);
      expect(status.slots.map((s) => s.state?.state)).toEqual(["done", "done", "done"]);
    });
  });
}
