import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  measureBridgeOverhead,
  measureLateDuplicates,
  measureRoundTrips,
  measureStorm,
} from "../../bench/measure.js";
import { type BenchStack, percentile, startBenchStack } from "../../bench/support.js";

// The benchmark's measurements at a small size, so `npm run bench` cannot rot unnoticed.
describe("bench measurements at a small size", () => {
  let stack: BenchStack;
  beforeAll(async () => {
    // A redis-server of its own: the round trips flush the script cache, which must not reach
    // other test files' script-cache assertions.
    stack = await startBenchStack();
  });
  afterAll(async () => {
    await stack.close();
  });

  it("storms run the job once per slot, in-process and over HTTP", async () => {
    for (const mode of ["in-process", "http"] as const) {
      const storm = await measureStorm(stack, mode, 50, 2);
      expect(storm.runsPerSlot).toEqual([1, 1]);
      expect(storm.decisionsPerSecond).toBeGreaterThan(0);
      expect(storm.skippedP99Ms).toBeGreaterThanOrEqual(storm.skippedP50Ms);
    }
  });

  it("counts two requests per winner, one per loser, four for a winner after SCRIPT FLUSH", async () => {
    const trips = await measureRoundTrips(stack, 3);
    expect(trips.winnerRequests).toEqual([2, 2, 2]);
    expect(trips.loserRequests).toEqual([1, 1, 1]);
    expect(trips.coldWinnerRequests).toBe(4);
  });

  it("sees every late duplicate under @upstash/lock and none under cron-guard", async () => {
    const late = await measureLateDuplicates(stack, 20, 200, 20);
    expect(late.cronGuardDuplicateRuns).toBe(0);
    expect(late.upstashLockDuplicateRuns).toBe(20);
  });

  it("measures the bridge against the direct client for both operations", async () => {
    const rows = await measureBridgeOverhead(stack, 50, 4);
    expect(rows.map((r) => [r.operation, r.concurrency])).toEqual([
      ["SET NX PX", 1],
      ["SET NX PX", 4],
      ["EVALSHA claim", 1],
      ["EVALSHA claim", 4],
    ]);
    for (const row of rows) expect(row.ratio).toBeGreaterThan(0);
  });

  it("takes nearest-rank percentiles", () => {
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile([5, 1, 4, 2, 3], 99)).toBe(5);
    expect(Number.isNaN(percentile([], 50))).toBe(true);
  });
});
