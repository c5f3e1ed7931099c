/**
 * The /schedules and /dispatch routes of the app, through app.request against a real redis-server
 * behind the bridge. Time is an injected clock; every bad input is checked to write nothing.
 */
import type { Redis } from "@upstash/redis";
import { describe, expect, it, vi } from "vitest";
import { exampleHandlers } from "../../examples/jobs.js";
import { createCronApp } from "../../src/hono/index.js";
import { dynamicSchedules } from "../../src/hono/plugins/dynamic-schedules.js";
import { directRedis, upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "s3cret-for-schedules";
const auth = { authorization: `Bearer ${SECRET}` };
const T0 = Date.UTC(2026, 10, 25, 12, 0, 30);

function makeApp(prefix: string, clock: { now: number }) {
  return createCronApp<Redis>({
    plugins: [dynamicSchedules()],
    redis: upstash(),
    jobs: [{ name: "nightly", cron: "0 3 * * *", handler: () => "job" }],
    handlers: {
      ...exampleHandlers(),
      fails: () => {
        throw new Error("always");
      },
    },
    cronSecret: () => SECRET,
    guardOptions: { prefix, clock: () => clock.now },
    dispatch: { retryBackoffMs: 30_000 },
  });
}

const put = (body: unknown) => ({
  method: "PUT",
  headers: { ...auth, "content-type": "application/json" },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

describe("/schedules and /dispatch", () => {
  const prefix = useKeyPrefix("http-schedules");
  const keysWritten = async () => (await directRedis()).keys(`${prefix()}*`);

  it("creates (201), leaves unchanged (200), reads, pages, pauses, resumes and deletes", async () => {
    const clock = { now: T0 };
    const app = makeApp(prefix(), clock);
    const body = { cron: "*/5 * * * *", handler: "record", payload: { key: `${prefix()}:rec` } };
    const created = await app.request("/schedules/report", put(body));
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({
      outcome: "created",
      schedule: { id: "report", next: "2026-11-25T12:05:00Z", enabled: true },
    });
    const again = await app.request("/schedules/report", put(body));
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ outcome: "unchanged" });
    const one = await app.request("/schedules/report", { headers: auth });
    expect(await one.json()).toMatchObject({ schedule: { id: "report" }, runs: [] });
    const list = await app.request("/schedules?limit=10", { headers: auth });
    expect(await list.json()).toMatchObject({ schedules: [{ id: "report" }], cursor: null });
    const paused = await app.request("/schedules/report/pause", { method: "POST", headers: auth });
    expect(await paused.json()).toMatchObject({ schedule: { enabled: false, next: null } });
    const resumed = await app.request("/schedules/report/resume", {
      method: "POST",
      headers: auth,
    });
    expect(await resumed.json()).toMatchObject({ schedule: { enabled: true } });
    const deleted = await app.request("/schedules/report", { method: "DELETE", headers: auth });
    expect(deleted.status).toBe(200);
    expect((await app.request("/schedules/report", { headers: auth })).status).toBe(404);
    expect(
      (await app.request("/schedules/report", { method: "DELETE", headers: auth })).status,
    ).toBe(404);
  });

  it.each([
    ["not JSON", "{cron:", "body"],
    ["an array", "[]", "body"],
    ["an invalid cron", { cron: "99 * * * *", handler: "record" }, "cron"],
    ["seconds in the cron", { cron: "0 * * * * *", handler: "record" }, "cron"],
    ["an unknown handler", { cron: "* * * * *", handler: "rm-rf" }, "handler"],
    [
      "a payload over 16 KiB",
      { cron: "* * * * *", handler: "record", payload: "x".repeat(20_000) },
      "payload",
    ],
    [
      "a bad time zone",
      { cron: "* * * * *", handler: "record", timezone: "Nowhere/City" },
      "timezone",
    ],
    ["an unknown field", { cron: "* * * * *", handler: "record", owner: "me" }, "owner"],
    ["another id in the body", { id: "other", cron: "* * * * *", handler: "record" }, "id"],
    ["maxAttempts 0", { cron: "* * * * *", handler: "record", maxAttempts: 0 }, "maxAttempts"],
    [
      "catchUp sometimes",
      { cron: "* * * * *", handler: "record", catchUp: "sometimes" },
      "catchUp",
    ],
  ])("refuses %s with 400 naming the field, writing nothing", async (_what, body, field) => {
    const app = makeApp(prefix(), { now: T0 });
    const response = await app.request("/schedules/report", put(body));
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ field });
    expect(await keysWritten()).toEqual([]);
  });

  it("refuses bad ids, cursors and limits with 400, and a body over 64 KiB", async () => {
    const app = makeApp(prefix(), { now: T0 });
    for (const path of [
      "/schedules/a%20b",
      "/schedules/%7Bx%7D",
      `/schedules/${"a".repeat(129)}`,
    ]) {
      expect((await app.request(path, put({ cron: "* * * * *", handler: "record" }))).status).toBe(
        400,
      );
      expect((await app.request(path, { headers: auth })).status).toBe(400);
    }
    const job = await app.request(
      "/schedules/nightly",
      put({ cron: "* * * * *", handler: "record" }),
    );
    expect(job.status).toBe(400);
    expect(await job.json()).toMatchObject({ field: "id", error: expect.stringMatching(/job/) });
    expect((await app.request("/schedules?cursor=abc", { headers: auth })).status).toBe(400);
    expect((await app.request("/schedules?limit=0", { headers: auth })).status).toBe(400);
    expect((await app.request("/schedules?limit=100000", { headers: auth })).status).toBe(400);
    const huge = put({ cron: "* * * * *", handler: "record", payload: { a: "x".repeat(70_000) } });
    expect((await app.request("/schedules/big", huge)).status).toBe(400);
    expect(await keysWritten()).toEqual([]);
  });

  it("needs the bearer on every route and answers other methods with 405, HEAD on /dispatch too", async () => {
    const app = makeApp(prefix(), { now: T0 });
    for (const [method, path] of [
      ["GET", "/schedules"],
      ["PUT", "/schedules/x"],
      ["PATCH", "/schedules/x"],
      ["GET", "/schedules/x"],
      ["DELETE", "/schedules/x"],
      ["POST", "/schedules/x/pause"],
      ["GET", "/dispatch"],
      ["POST", "/dispatch"],
    ] as const) {
      expect((await app.request(path, { method })).status).toBe(401);
    }
    for (const [method, path] of [
      ["HEAD", "/dispatch"],
      ["PUT", "/dispatch"],
      ["POST", "/schedules/x"],
      ["GET", "/schedules/x/pause"],
      ["DELETE", "/schedules"],
    ] as const) {
      const response = await app.request(path, { method, headers: auth });
      expect(response.status).toBe(405);
      expect(response.headers.get("allow")).toBeTruthy();
    }
    expect(await keysWritten()).toEqual([]);
  });

  it("10 concurrent GET /dispatch over 200 due schedules: each ran once, spread over the ticks", async () => {
    const clock = { now: T0 };
    const app = makeApp(prefix(), clock);
    for (let i = 0; i < 200; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          app.request(
            `/schedules/s${i + j}`,
            put({
              cron: "* * * * *",
              handler: "record",
              payload: { key: `${prefix()}:rec:s${i + j}` },
            }),
          ),
        ),
      );
    }
    clock.now = T0 + 60_000;
    // Each tick stops at its request budget (45 by default, Workers Free's 50 subrequests), if it
    // reaches it: rounds of 10 concurrent ticks drain the rest, as the next minutes' ticks would.
    const ticks: { ran: number; remaining: number }[] = [];
    for (let round = 0; round < 10; round += 1) {
      const results = await Promise.all(
        Array.from({ length: 10 }, async () => {
          const response = await app.request("/dispatch", { headers: auth });
          expect(response.status).toBe(200);
          return (await response.json()) as { ran: number; remaining: number; requests: number };
        }),
      );
      for (const result of results) expect(result.requests).toBeLessThanOrEqual(45);
      ticks.push(...results);
      if (results.every((result) => result.remaining === 0 && result.ran === 0)) break;
    }
    expect(ticks.reduce((sum, tick) => sum + tick.ran, 0)).toBe(200);
    expect(ticks.filter((tick) => tick.ran > 0).length).toBeGreaterThan(1);
    const redis = await directRedis();
    const effects = await redis.keys(`${prefix()}:rec:*`);
    expect(effects).toHaveLength(200);
    expect(new Set(await Promise.all(effects.map((key) => redis.get(key))))).toEqual(
      new Set(["1"]),
    );
  });

  it("runs the dispatch tick on Cloudflare's scheduled() for its cron, by meaning", async () => {
    const clock = { now: T0 };
    const app = makeApp(prefix(), clock);
    await app.request(
      "/schedules/cf",
      put({ cron: "* * * * *", handler: "record", payload: { key: `${prefix()}:rec` } }),
    );
    clock.now = T0 + 60_000;
    vi.spyOn(console, "error").mockImplementation(() => {});
    const runs = await app.runScheduled(
      { cron: "*/1 * * * *", scheduledTime: Date.UTC(2026, 10, 25, 12, 1) },
      {},
    );
    expect(runs).toMatchObject([{ job: null, result: { status: "dispatched", tick: { ran: 1 } } }]);
    vi.restoreAllMocks();
  });

  it("retries a failing schedule on later ticks and records it dead after maxAttempts", async () => {
    const clock = { now: T0 };
    const app = makeApp(prefix(), clock);
    await app.request(
      "/schedules/bad",
      put({ cron: "0 * * * *", handler: "fails", maxAttempts: 2 }),
    );
    clock.now = Date.UTC(2026, 10, 25, 13, 0, 5);
    const first = await (await app.request("/dispatch", { headers: auth })).json();
    const early = await (await app.request("/dispatch", { headers: auth })).json();
    clock.now += 31_000; // the retry's backoff has passed
    const second = await (await app.request("/dispatch", { headers: auth })).json();
    expect(early).toMatchObject({ ran: 0, failed: 0 });
    expect(first).toMatchObject({ failed: 1, dead: 0 });
    expect(second).toMatchObject({ failed: 1, dead: 1 });
    const status = (await (await app.request("/schedules/bad", { headers: auth })).json()) as {
      runs: { status: string }[];
    };
    expect(status).toMatchObject({ schedule: { next: "2026-11-25T14:00:00Z", attempt: 0 } });
    expect(status.runs.map((run) => run.status)).toEqual(["failed", "failed"]);
  });
});
