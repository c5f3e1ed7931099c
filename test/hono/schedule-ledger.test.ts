/**
 * The slot ledger for dynamic schedules over HTTP: a dashboard backfill of a fire that ran is a
 * 409, force=true runs it, and GET /schedules/:id/slots/:slot says what ran (every attempt).
 */
import type { Redis } from "@upstash/redis";
import { describe, expect, it } from "vitest";
import { exampleHandlers } from "../../examples/jobs.js";
import { createCronApp } from "../../src/hono/index.js";
import { dashboard } from "../../src/hono/plugins/dashboard.js";
import { dynamicSchedules } from "../../src/hono/plugins/dynamic-schedules.js";
import { directRedis, upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "s3cret-for-schedule-ledger";
const auth = { authorization: `Bearer ${SECRET}` };
const T0 = Date.UTC(2026, 11, 7, 12, 0, 30);
const MINUTE = 60_000;

function makeApp(prefix: string, clock: { now: number }) {
  return createCronApp<Redis>({
    plugins: [dynamicSchedules(), dashboard()],
    redis: upstash(),
    handlers: {
      ...exampleHandlers(),
      fails: () => {
        throw new Error("always");
      },
    },
    cronSecret: () => SECRET,
    guardOptions: { prefix, clock: () => clock.now },
    dispatch: { retryBackoffMs: 1_000 },
  });
}

const put = (body: unknown) => ({
  method: "PUT",
  headers: { ...auth, "content-type": "application/json" },
  body: JSON.stringify(body),
});

describe("the slot ledger for schedules", () => {
  const prefix = useKeyPrefix("http-schedule-ledger");

  it("backfills a fire once: 200, then 409 with the record, force=true runs it again", async () => {
    const clock = { now: T0 };
    const app = makeApp(prefix(), clock);
    const key = `${prefix()}:rec`;
    expect(
      (
        await app.request(
          "/schedules/rec",
          put({ cron: "* * * * *", handler: "record", payload: { key } }),
        )
      ).status,
    ).toBe(201);
    clock.now = T0 + 5 * MINUTE;
    const path = "/dashboard/schedules/rec/run?slot=2026-12-07T12:02:00Z";
    const first = await app.request(path, { method: "POST", headers: auth });
    expect(first.status).toBe(200);
    clock.now += 3 * MINUTE;
    await new Promise((resolve) => setTimeout(resolve, 5));
    const again = await app.request(path, { method: "POST", headers: auth });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({
      slot: "2026-12-07T12:02:00Z",
      reason: "done",
      status: "ran",
      recorded: { state: "done", runs: 1, forced: false },
    });
    const redis = await directRedis();
    expect(await redis.get(`${key}:2026-12-07T12:02:00Z`)).toBe("1");
    const bad = await app.request(`${path}&force=maybe`, { method: "POST", headers: auth });
    expect(bad.status).toBe(400);
    const forced = await app.request(`${path}&force=true`, { method: "POST", headers: auth });
    expect(forced.status).toBe(200);
    expect(await redis.get(`${key}:2026-12-07T12:02:00Z`)).toBe("2");

    const lookup = await app.request("/schedules/rec/slots/2026-12-07T12:02:00Z", {
      headers: auth,
    });
    expect(lookup.status).toBe(200);
    expect(await lookup.json()).toMatchObject({
      schedule: "rec",
      slot: "2026-12-07T12:02:00Z",
      status: "ran",
      attempts: [
        {
          slot: "2026-12-07T12:02:00Z",
          runs: [{ forced: false }, { forced: true }],
        },
      ],
    });
  });

  it("lists every attempt of a fire that failed and was retried", async () => {
    const clock = { now: T0 };
    const app = makeApp(prefix(), clock);
    await app.request(
      "/schedules/flaky",
      put({ cron: "* * * * *", handler: "fails", maxAttempts: 2 }),
    );
    clock.now = Date.UTC(2026, 11, 7, 12, 1, 1);
    await app.request("/dispatch", { method: "POST", headers: auth });
    clock.now += 5_000;
    await app.request("/dispatch", { method: "POST", headers: auth });
    const lookup = await app.request("/schedules/flaky/slots/2026-12-07T12:01:00Z", {
      headers: auth,
    });
    expect(await lookup.json()).toMatchObject({
      status: "failed",
      attempts: [
        { slot: "2026-12-07T12:01:00Z", status: "failed" },
        { slot: "2026-12-07T12:01:00Z.retry1", status: "failed" },
      ],
    });
  });

  it("answers 400 for a time that is not a fire, 404 for no schedule, 405 for other methods, HEAD without a body", async () => {
    const clock = { now: T0 };
    const app = makeApp(prefix(), clock);
    await app.request(
      "/schedules/s",
      put({ cron: "*/5 * * * *", handler: "record", payload: { key: "k" } }),
    );
    const never = await app.request("/schedules/s/slots/2026-12-07T12:05:00Z", { headers: auth });
    expect(await never.json()).toMatchObject({ status: "never" });
    expect(
      (await app.request("/schedules/s/slots/2026-12-07T12:03:00Z", { headers: auth })).status,
    ).toBe(400);
    expect((await app.request("/schedules/s/slots/%E2%9C%93", { headers: auth })).status).toBe(400);
    expect(
      (await app.request("/schedules/nope/slots/2026-12-07T12:05:00Z", { headers: auth })).status,
    ).toBe(404);
    expect(
      (await app.request("/schedules/a%20b/slots/2026-12-07T12:05:00Z", { headers: auth })).status,
    ).toBe(400);
    const head = await app.request("/schedules/s/slots/2026-12-07T12:05:00Z", {
      method: "HEAD",
      headers: auth,
    });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    for (const method of ["POST", "PUT", "DELETE"]) {
      const response = await app.request("/schedules/s/slots/2026-12-07T12:05:00Z", {
        method,
        headers: auth,
      });
      expect(response.status).toBe(405);
    }
    expect((await app.request("/schedules/s/slots/2026-12-07T12:05:00Z")).status).toBe(401);
  });
});
