/**
 * The dashboard sub-app and the missed/late reports of the status routes, through app.request
 * against a real redis-server behind the bridge, with an injected clock.
 */
import type { Redis } from "@upstash/redis";
import { describe, expect, it } from "vitest";
import { exampleHandlers } from "../../examples/jobs.js";
import { createCronApp } from "../../src/hono/index.js";
import { dashboard } from "../../src/hono/plugins/dashboard.js";
import { dynamicSchedules } from "../../src/hono/plugins/dynamic-schedules.js";
import type { DashboardData } from "../../src/hono/routes/dashboard.js";
import { upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "dashboard-s3cret";
const auth = { authorization: `Bearer ${SECRET}` };
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const at = (minutes: number, seconds = 0) => T0 + minutes * MINUTE + seconds * 1_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");

function makeApp(prefix: string, clock: { now: number }) {
  return createCronApp<Redis>({
    plugins: [dynamicSchedules(), dashboard()],
    redis: upstash(),
    jobs: [
      { name: "tick", cron: "* * * * *", handler: () => "ok" },
      { name: "nightly", cron: "0 2 * * *", handler: () => "ok" },
    ],
    handlers: {
      ...exampleHandlers(),
      fail: () => {
        throw new Error("always fails");
      },
    },
    schedules: [
      { id: "always-fails", cron: "*/5 * * * *", handler: "fail", maxAttempts: 1 },
      { id: "rec", cron: "* * * * *", handler: "record", payload: { key: `${prefix}:rec` } },
    ],
    cronSecret: () => SECRET,
    guardOptions: { prefix, clock: () => clock.now, region: "test-1" },
    monitor: { graceMs: 30_000 },
  });
}

describe("/dashboard", () => {
  const prefix = useKeyPrefix("dashboard");

  it("serves the page without data, and every data call needs the secret", async () => {
    const clock = { now: at(0, 5) };
    const app = makeApp(prefix(), clock);
    await app.request("/cron/tick", { method: "POST", headers: auth });
    const page = await app.request("/dashboard");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(page.headers.get("content-security-policy")).toMatch(/script-src 'nonce-/);
    const text = await page.text();
    expect(text).toContain("cron-guard dashboard");
    expect(text).toContain("sessionStorage");
    // The page carries no job data: names, crons, slots only come from /dashboard/data.
    expect(text).not.toMatch(/nightly|always-fails|2026-11-25/);
    const attempts: Record<string, string>[] = [
      {},
      { authorization: "Bearer wrong" },
      { authorization: SECRET },
    ];
    for (const headers of attempts) {
      const data = await app.request("/dashboard/data", { headers });
      expect(data.status).toBe(401);
      const body = await data.text();
      expect(body).not.toMatch(/tick|nightly|always-fails/);
      const run = await app.request("/dashboard/schedules/always-fails/run", {
        method: "POST",
        headers,
      });
      expect(run.status).toBe(401);
    }
    expect((await app.request("/dashboard/data", { method: "POST", headers: auth })).status).toBe(
      405,
    );
  });

  it("lists jobs and schedules with next fires, rows coloured by outcome, holder and missed", async () => {
    const clock = { now: at(0, 2) };
    const app = makeApp(prefix(), clock);
    expect((await app.request("/cron/tick", { method: "POST", headers: auth })).status).toBe(200);
    clock.now = at(1, 45); // 12:01 claimed 45 s late
    expect((await app.request("/cron/tick", { method: "POST", headers: auth })).status).toBe(200);
    const failed = await app.request("/dashboard/schedules/always-fails/run", {
      method: "POST",
      headers: auth,
    });
    expect(failed.status).toBe(500);
    expect(failed.headers.get("cron-guard-status")).toBe("failed");
    const again = await app.request("/dashboard/schedules/always-fails/run", {
      method: "POST",
      headers: auth,
    });
    expect(again.status).toBe(204);
    expect(again.headers.get("cron-guard-reason")).toBe("failed");
    const bad = await app.request("/dashboard/schedules/always-fails/run?slot=2026-11-25T12:01Z", {
      method: "POST",
      headers: auth,
    });
    expect(bad.status).toBe(400);
    clock.now = at(5, 10); // 12:02, 12:03, 12:04 missed (12:05 within the grace)

    const response = await app.request("/dashboard/data", { headers: auth });
    expect(response.status).toBe(200);
    const data = (await response.json()) as DashboardData;
    expect(data).toMatchObject({ graceMs: 30_000, alerts: false });
    const tick = data.jobs.find((job) => job.name === "tick");
    expect(tick).toMatchObject({
      cron: "* * * * *",
      timezone: "UTC",
      next: [iso(at(6)), iso(at(7)), iso(at(8))],
      missed: [iso(at(2)), iso(at(3)), iso(at(4))],
      late: [{ slot: iso(at(1)), lateMs: 45_000 }],
      holder: null,
    });
    expect(tick?.rows.map((row) => [row.slot, row.outcome])).toEqual([
      [iso(at(4)), "missed"],
      [iso(at(3)), "missed"],
      [iso(at(2)), "missed"],
      [iso(at(1)), "ran"],
      [iso(at(0)), "ran"],
    ]);
    expect(tick?.rows[3]).toMatchObject({ region: "test-1", fence: 2, lateMs: 45_000 });
    expect(data.jobs.find((job) => job.name === "nightly")).toMatchObject({
      timezone: "UTC",
      next: [
        iso(Date.UTC(2026, 10, 26, 2)),
        iso(Date.UTC(2026, 10, 27, 2)),
        iso(Date.UTC(2026, 10, 28, 2)),
      ],
    });
    const fails = data.schedules.find((schedule) => schedule.id === "always-fails");
    expect(fails).toMatchObject({ enabled: true, handler: "fail" });
    expect(fails?.rows[0]).toMatchObject({ slot: iso(at(0)), outcome: "failed" });
    expect(fails?.rows[0]?.summary).toMatch(/always fails/);

    // pause: shown paused, no next fire, nothing missed
    await app.request("/schedules/rec/pause", { method: "POST", headers: auth });
    const paused = (await (
      await app.request("/dashboard/data", { headers: auth })
    ).json()) as DashboardData;
    expect(paused.schedules.find((s) => s.id === "rec")).toMatchObject({
      enabled: false,
      next: [],
      missed: [],
    });
  });

  it("notes a run by the handler's value whichever trigger ran it (HTTP or scheduled event)", async () => {
    const clock = { now: at(0, 2) };
    const app = createCronApp<Redis>({
      plugins: [dashboard()],
      redis: upstash(),
      jobs: [{ name: "tick", cron: "* * * * *", handler: ({ slot }) => ({ sent: 3, slot }) }],
      cronSecret: () => SECRET,
      guardOptions: { prefix: prefix(), clock: () => clock.now, region: "test-1" },
    });
    expect((await app.request("/cron/tick", { method: "POST", headers: auth })).status).toBe(200);
    clock.now = at(1, 2);
    const [scheduled] = await app.runScheduled({ cron: "* * * * *", scheduledTime: at(1) }, {});
    expect(scheduled?.result).toMatchObject({ status: "ran" });
    const data = (await (
      await app.request("/dashboard/data", { headers: auth })
    ).json()) as DashboardData;
    expect(data.jobs[0]?.rows.map((row) => [row.slot, row.summary])).toEqual([
      [iso(at(1)), JSON.stringify({ sent: 3, slot: iso(at(1)) })],
      [iso(at(0)), JSON.stringify({ sent: 3, slot: iso(at(0)) })],
    ]);
    // The card's sources table: which clock delivered which slot, with its lag.
    expect(
      data.jobs[0]?.sources.map((s) => [s.source, s.lastSlot, s.lagMedianMs, s.silentFires]),
    ).toEqual([
      ["cloudflare", iso(at(1)), 2_000, 0],
      ["http", iso(at(0)), 2_000, 1],
    ]);
  });

  it("gives each card a health from its newest fire, with its last success and last failure", async () => {
    const clock = { now: at(0, 1) };
    let flakyFails = false;
    const app = createCronApp<Redis>({
      plugins: [dynamicSchedules(), dashboard()],
      redis: upstash(),
      jobs: [
        { name: "tick", cron: "* * * * *", handler: () => "ok" },
        {
          name: "flaky",
          cron: "* * * * *",
          handler: () => {
            if (flakyFails) throw new Error("upstream 502");
            return "fine";
          },
        },
        { name: "nightly", cron: "0 2 * * *", handler: () => "ok" },
      ],
      handlers: {
        ...exampleHandlers(),
        fail: () => {
          throw new Error("always fails");
        },
      },
      schedules: [
        { id: "always-fails", cron: "*/5 * * * *", handler: "fail", maxAttempts: 1 },
        { id: "rec", cron: "* * * * *", handler: "record", payload: { key: `${prefix()}:rec` } },
      ],
      cronSecret: () => SECRET,
      guardOptions: { prefix: prefix(), clock: () => clock.now, region: "test-1" },
      monitor: { graceMs: 30_000 },
    });
    const post = (path: string) => app.request(path, { method: "POST", headers: auth });
    for (const minute of [0, 1]) {
      clock.now = at(minute, 1);
      expect((await post("/cron/tick")).status).toBe(200);
      expect((await post("/cron/flaky")).status).toBe(200);
      expect((await post("/dispatch")).status).toBe(200);
    }
    flakyFails = true;
    clock.now = at(2, 1);
    expect((await post("/cron/flaky")).status).toBe(500);
    // the schedules were registered at 12:00:01: always-fails first fires at 12:05, dead at once
    clock.now = at(5, 1);
    expect(await (await post("/dispatch")).json()).toMatchObject({ dead: 1 });
    await post("/schedules/rec/pause");
    clock.now = at(5, 10); // tick missed 12:02-12:04; flaky missed 12:03-12:04

    const data = (await (
      await app.request("/dashboard/data", { headers: auth })
    ).json()) as DashboardData;
    const job = (name: string) => data.jobs.find((entry) => entry.name === name);
    const schedule = (id: string) => data.schedules.find((entry) => entry.id === id);
    expect(job("tick")).toMatchObject({
      health: "missed",
      lastSuccess: { slot: iso(at(1)), outcome: "ran", summary: '"ok"' },
      lastFailure: null,
    });
    expect(job("tick")?.lastSuccess?.at).toBe(new Date(at(1, 1)).toISOString());
    expect(job("flaky")).toMatchObject({
      health: "missed",
      lastSuccess: { slot: iso(at(1)) },
      lastFailure: { slot: iso(at(2)), outcome: "failed", summary: "Error: upstream 502" },
    });
    expect(job("nightly")).toMatchObject({ health: "idle", lastSuccess: null, lastFailure: null });
    expect(schedule("always-fails")).toMatchObject({
      enabled: true,
      health: "dead",
      lastSuccess: null,
      lastFailure: { slot: iso(at(5)), outcome: "dead" },
    });
    expect(schedule("always-fails")?.lastFailure?.summary).toMatch(/always fails/);
    expect(schedule("rec")).toMatchObject({ enabled: false, health: "paused" });

    // the newest fire decides: flaky fails at 12:05 (failing), then runs at 12:06 (ok again)
    clock.now = at(5, 12);
    expect((await post("/cron/flaky")).status).toBe(500);
    const failing = (await (
      await app.request("/dashboard/data", { headers: auth })
    ).json()) as DashboardData;
    expect(failing.jobs.find((entry) => entry.name === "flaky")).toMatchObject({
      health: "failing",
      lastFailure: { slot: iso(at(5)), outcome: "failed" },
    });
    flakyFails = false;
    clock.now = at(6, 1);
    expect((await post("/cron/flaky")).status).toBe(200);
    const healed = (await (
      await app.request("/dashboard/data", { headers: auth })
    ).json()) as DashboardData;
    expect(healed.jobs.find((entry) => entry.name === "flaky")).toMatchObject({
      health: "ok",
      lastSuccess: { slot: iso(at(6)), summary: '"fine"' },
      lastFailure: { slot: iso(at(5)) },
    });
  });

  it("runs a schedule's slot that ran again only with force=true, and marks that run forced", async () => {
    const clock = { now: at(0, 5) };
    const keys = prefix();
    const app = makeApp(keys, clock);
    const run = (query = "") =>
      app.request(`/dashboard/schedules/rec/run${query}`, { method: "POST", headers: auth });
    const first = await run();
    expect(first.status).toBe(200);
    expect(first.headers.get("cron-guard-fence")).toBe("1");
    const again = await run();
    expect(again.status).toBe(204);
    expect(again.headers.get("cron-guard-reason")).toBe("done");
    const slot = again.headers.get("cron-guard-slot") as string;
    expect(slot).toBe(iso(at(0)));
    const forced = await run(`?slot=${encodeURIComponent(slot)}&force=true`);
    expect(forced.status).toBe(200);
    expect(Number(forced.headers.get("cron-guard-fence"))).toBe(2);
    // the record handler counts its runs of the slot: the forced one is the second
    expect(await upstash().get(`${keys}:rec:${slot}`)).toBe(2);
    const data = (await (
      await app.request("/dashboard/data", { headers: auth })
    ).json()) as DashboardData;
    const rows = data.schedules.find((schedule) => schedule.id === "rec")?.rows ?? [];
    expect(rows.map((row) => [row.slot, row.outcome, row.fence, row.forced])).toEqual([
      [slot, "ran", 2, true],
      [slot, "ran", 1, undefined],
    ]);
  });

  it("shows the holder of a running slot with its lease left", async () => {
    const clock = { now: at(0, 1) };
    let release = () => {};
    const app = createCronApp<Redis>({
      plugins: [dashboard()],
      redis: upstash(),
      jobs: [
        {
          name: "slow",
          cron: "* * * * *",
          leaseMs: 20_000,
          handler: () => new Promise<void>((resolve) => (release = resolve)),
        },
      ],
      cronSecret: () => SECRET,
      guardOptions: { prefix: prefix(), clock: () => clock.now, region: "fra1" },
    });
    const running = app.request("/cron/slow", { method: "POST", headers: auth });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const data = (await (
      await app.request("/dashboard/data", { headers: auth })
    ).json()) as DashboardData;
    const slow = data.jobs[0];
    expect(slow?.holder).toMatchObject({ slot: iso(at(0)), region: "fra1", fence: 1 });
    expect(slow?.holder?.leaseLeftMs).toBeGreaterThan(15_000);
    expect(slow?.rows[0]).toMatchObject({ outcome: "running" });
    expect(data.schedules).toEqual([]);
    release();
    expect((await running).status).toBe(200);
  });
});

describe("missed and late in the status routes", () => {
  const prefix = useKeyPrefix("status-monitor");

  it("a scheduler stopped for 3 fires shows 3 missed in /cron/:job/status and /schedules/:id", async () => {
    const clock = { now: at(0, 1) };
    const app = makeApp(prefix(), clock);
    for (const minute of [0, 1]) {
      clock.now = at(minute, 1);
      expect((await app.request("/cron/tick", { headers: auth })).status).toBe(200);
      expect((await app.request("/dispatch", { method: "POST", headers: auth })).status).toBe(200);
    }
    // stopped for 12:02, 12:03, 12:04; back at 12:05 with a claim 40 s late
    clock.now = at(5, 40);
    expect((await app.request("/cron/tick", { headers: auth })).status).toBe(200);
    clock.now = at(6, 0);
    const status = (await (await app.request("/cron/tick/status", { headers: auth })).json()) as {
      monitor: { missed: string[]; late: { slot: string; lateMs: number }[]; graceMs: number };
      slots: unknown[];
    };
    expect(status.monitor.missed).toEqual([iso(at(2)), iso(at(3)), iso(at(4))]);
    expect(status.monitor.late).toMatchObject([{ slot: iso(at(5)), lateMs: 40_000 }]);
    expect(status.slots.length).toBeLessThanOrEqual(5);

    const schedule = (await (await app.request("/schedules/rec", { headers: auth })).json()) as {
      monitor: { missed: string[] };
    };
    // the schedule was created at 12:00:01 and dispatched at 12:01 only (its first fire)
    expect(schedule.monitor.missed).toEqual([iso(at(2)), iso(at(3)), iso(at(4)), iso(at(5))]);
  });
});
