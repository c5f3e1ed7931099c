/**
 * The local scheduler of `npm start`, on an injected clock: three minutes of every-minute fires
 * from 3 regions (each as Vercel GET and as a scheduled event) in well under a second, against
 * the example app on a real redis-server behind the bridge.
 */
import type { Redis } from "@upstash/redis";
import { describe, expect, it } from "vitest";
import { createCronApp } from "../../src/hono/index.js";
import { dynamicSchedules } from "../../src/hono/plugins/dynamic-schedules.js";
import { upstash, useKeyPrefix } from "../../test/support/harness.js";
import { exampleHandlers, exampleJobs, type HeartbeatRecord } from "../jobs.js";
import { createLocalScheduler, type FiredSlot } from "./scheduler.js";

const SECRET = "local-scheduler-secret";
const T0 = Date.UTC(2026, 10, 25, 23, 4, 30);

describe("local scheduler", () => {
  const prefix = useKeyPrefix("local-scheduler");

  it("3 minutes, 3 regions: each slot of the every-minute job ran exactly once, and its lines say so", async () => {
    const clock = { now: T0 };
    const redis = upstash();
    const keyPrefix = `${prefix()}:example`;
    const app = createCronApp<Redis>({
      plugins: [dynamicSchedules()],
      redis,
      jobs: exampleJobs({ keyPrefix }),
      handlers: exampleHandlers(),
      schedules: [
        { id: "rec", cron: "* * * * *", handler: "record", payload: { key: `${keyPrefix}:rec` } },
      ],
      cronSecret: () => SECRET,
      guardOptions: { prefix: prefix(), clock: () => clock.now },
    });
    const lines: string[] = [];
    const scheduler = createLocalScheduler({
      app,
      baseUrl: "http://local",
      secret: SECRET,
      regions: 3,
      clock: () => clock.now,
      sleepUntil: async (ms) => {
        clock.now = Math.max(clock.now, ms);
      },
      fetch: async (url, init) => app.request(url, init),
      onFired: (_fired, line) => lines.push(line),
    });
    const fired: FiredSlot[] = await scheduler.run({ fires: 3 });

    const heartbeats = fired.filter((entry) => entry.job === "heartbeat");
    expect(heartbeats.map((entry) => entry.slot)).toEqual([
      "2026-11-25T23:05:00Z",
      "2026-11-25T23:06:00Z",
      "2026-11-25T23:07:00Z",
    ]);
    for (const entry of heartbeats) {
      expect(entry).toMatchObject({ deliveries: 6, ran: 1, skipped: 5, failed: 0, errors: 0 });
    }
    expect(lines.filter((line) => line.startsWith("heartbeat"))).toEqual([
      "heartbeat 23:05Z: 1 ran, 5 skipped",
      "heartbeat 23:06Z: 1 ran, 5 skipped",
      "heartbeat 23:07Z: 1 ran, 5 skipped",
    ]);
    // the side effects agree: one record per slot
    const records = await redis.lrange<HeartbeatRecord>(`${keyPrefix}:heartbeat`, 0, -1);
    expect(records.map((record) => record.slot).sort()).toEqual(heartbeats.map((e) => e.slot));
    // scheduled events carry the region's env; Vercel GETs do not
    expect(
      records.every((record) => ["", "region-1", "region-2", "region-3"].includes(record.region)),
    ).toBe(true);
    // the dispatch tick ran from every region each minute, and the schedule ran once per fire
    const dispatches = fired.filter((entry) => entry.job === "dispatch");
    expect(dispatches).toHaveLength(3);
    for (const entry of dispatches) expect(entry).toMatchObject({ ran: 6, errors: 0 });
    expect(dispatches.map((entry) => entry.schedules?.ran)).toEqual([0, 1, 1]);
    expect(lines).toContain("dispatch 23:06Z: 6 ticks, schedules 1 ran");
    for (const slot of ["23:06", "23:07"]) {
      expect(await redis.get(`${keyPrefix}:rec:2026-11-25T${slot}:00Z`)).toBe(1);
    }
    // daily-digest (08:00) did not fire
    expect(fired.some((entry) => entry.job === "daily-digest")).toBe(false);
  });
});
