/**
 * Missed fires of every schedule are found, not only of the first 100 (issue 18, finding 6): the
 * periodic check reads the schedules whose due time is older than the grace period (the due
 * sorted set, paged), however many there are; the dashboard pages through all schedules.
 */
import type { Redis } from "@upstash/redis";
import { describe, expect, it } from "vitest";
import { createCronApp } from "../../src/hono/index.js";
import { alerts } from "../../src/hono/plugins/alerts.js";
import { dashboard } from "../../src/hono/plugins/dashboard.js";
import { dynamicSchedules } from "../../src/hono/plugins/dynamic-schedules.js";
import type { DashboardData } from "../../src/hono/routes/dashboard.js";
import { useAlertReceiver } from "../support/alert-receiver.js";
import { upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "overdue-s3cret";
const auth = { authorization: `Bearer ${SECRET}` };
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const SCHEDULES = 300;

const receiver = useAlertReceiver();
const { received } = receiver;

describe("missed fires of many schedules", () => {
  const prefix = useKeyPrefix("overdue");

  function makeApp(clock: { now: number }) {
    return createCronApp<Redis>({
      plugins: [dynamicSchedules(), dashboard(), alerts()],
      redis: upstash(),
      jobs: [{ name: "heartbeat", cron: "* * * * *", handler: () => "ok" }],
      handlers: { record: () => "recorded" },
      cronSecret: () => SECRET,
      guardOptions: { prefix: prefix(), clock: () => clock.now },
      monitor: { graceMs: MINUTE },
      alerts: { url: receiver.url },
    });
  }

  async function createSchedules(app: ReturnType<typeof makeApp>) {
    for (let i = 0; i < SCHEDULES; i += 50) {
      const statuses = await Promise.all(
        Array.from({ length: 50 }, async (_, j) => {
          const response = await app.request(`/schedules/s${i + j}`, {
            method: "PUT",
            headers: { ...auth, "content-type": "application/json" },
            body: JSON.stringify({ cron: "* * * * *", handler: "record" }),
          });
          return response.status;
        }),
      );
      expect(statuses.every((status) => status === 201)).toBe(true);
    }
  }

  it("300 per-minute schedules, none dispatched, clock +5 min: the check alerts all 300", async () => {
    received.length = 0;
    const clock = { now: T0 + 1_000 };
    const app = makeApp(clock);
    await createSchedules(app);
    clock.now = T0 + 5 * MINUTE + 30_000; // 12:05:30: 12:01..12:04 are past their grace
    expect((await app.request("/cron/heartbeat", { method: "POST", headers: auth })).status).toBe(
      200,
    );
    const alerted = () =>
      new Set(
        received
          .filter((body) => body.kind === "missed" && body.source === "schedule")
          .map((body) => body.job),
      );
    for (let i = 0; i < 300 && alerted().size < SCHEDULES; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(alerted().size).toBe(SCHEDULES);
    const missed = received.filter((body) => body.kind === "missed" && body.job === "s299");
    expect(missed.flatMap((body) => body.slots).sort()).toEqual([
      "2026-11-25T12:01:00Z",
      "2026-11-25T12:02:00Z",
      "2026-11-25T12:03:00Z",
      "2026-11-25T12:04:00Z",
    ]);
  });

  it("the dashboard pages through all 300 schedules", async () => {
    const clock = { now: T0 + 1_000 };
    const app = makeApp(clock);
    await createSchedules(app);
    const ids = new Set<string>();
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor === null ? "?limit=100" : `?limit=100&cursor=${cursor}`;
      const response = await app.request(`/dashboard/data${query}`, { headers: auth });
      expect(response.status).toBe(200);
      const data = (await response.json()) as DashboardData;
      for (const schedule of data.schedules) ids.add(schedule.id);
      cursor = data.schedulesCursor;
      pages += 1;
    } while (cursor !== null && pages < 50);
    expect(ids.size).toBe(SCHEDULES);
    expect(
      (await app.request("/dashboard/data?cursor=99999999999999999999", { headers: auth })).status,
    ).toBe(400);
    expect((await app.request("/dashboard/data?limit=0", { headers: auth })).status).toBe(400);
  });
});
