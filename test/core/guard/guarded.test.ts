import { describe, expect, it } from "vitest";
import { guarded, type JobContext } from "../../../src/core/index.js";
import { sleep } from "../../../src/core/sleep.js";
import { upstash, useKeyPrefix } from "../../support/harness.js";

describe("guarded()", () => {
  const prefix = useKeyPrefix("guarded");

  it("wraps a sync function: same arguments share a slot, different ones do not", async () => {
    const calls: string[] = [];
    const sendReport = (team: string, day: number) => {
      calls.push(`${team}:${day}`);
      return `${team} report`;
    };
    const options = { job: "report", prefix: prefix() };
    const instances = Array.from({ length: 10 }, () =>
      guarded(sendReport, { ...options, redis: upstash({ autoPipelining: false }) }),
    );
    const results = await Promise.all([
      ...instances.map((call) => call("sales", 1)),
      ...instances.map((call) => call("ops", 1)),
      ...instances.map((call) => call("sales", 2)),
    ]);
    expect(calls.sort()).toEqual(["ops:1", "sales:1", "sales:2"]);
    expect(
      results
        .filter((r) => r.status === "ran")
        .map((r) => r.status === "ran" && r.value)
        .sort(),
    ).toEqual(["ops report", "sales report", "sales report"]);
    expect(results.filter((r) => r.status === "skipped")).toHaveLength(27);
  });

  it("wraps an async function and hands it the job context as `this`", async () => {
    let runs = 0;
    const sync = guarded(
      async function (this: JobContext, userId: number) {
        runs += 1;
        await sleep(20);
        return { userId, fence: this.fence };
      },
      { job: "sync-user", redis: upstash(), prefix: prefix(), key: (userId) => `user-${userId}` },
    );
    const [a, b, c] = await Promise.all([sync(7), sync(7), sync(8)]);
    expect(runs).toBe(2);
    expect([a?.status, b?.status].sort()).toEqual(["ran", "skipped"]);
    expect(c).toMatchObject({ status: "ran", value: { userId: 8, fence: expect.any(Number) } });
  });

  it("with a cron, the same arguments run again in the next slot", async () => {
    let now = Date.UTC(2026, 10, 23, 10, 4, 59, 0);
    let runs = 0;
    const tick = guarded(() => ++runs, {
      job: "tick",
      redis: upstash(),
      prefix: prefix(),
      cron: "* * * * *",
      clock: () => now,
    });
    expect(await tick()).toMatchObject({
      status: "ran",
      slot: expect.stringMatching(/^2026-11-23T10:05:00Z\./),
    });
    now += 30_000;
    expect(await tick()).toMatchObject({ status: "skipped", reason: "done" });
    now += 30_000;
    expect(await tick()).toMatchObject({
      status: "ran",
      slot: expect.stringMatching(/^2026-11-23T10:06:00Z\./),
    });
    expect(runs).toBe(2);
  });

  it("refuses a key() that cannot be part of a Redis key", async () => {
    const bad = guarded(() => 1, {
      job: "bad",
      redis: upstash(),
      prefix: prefix(),
      key: () => "a b",
    });
    await expect(bad()).rejects.toThrow(/key\(\) returned "a b"/);
  });
});
