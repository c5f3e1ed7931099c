/**
 * Redundant clocks for the dispatch tick (issue 22): every tick records which source sent it
 * (Vercel, a named pinger, Cloudflare's scheduled event) for the dispatch cron's fire time, in a
 * key of its own; `GET /dispatch/sources` and the dashboard report it; a source that stopped
 * sending ticks is alerted `silent` once. Real redis-server behind the bridge, real
 * @upstash/redis, a local HTTP receiver for the alerts, an injected clock.
 */
import type { Redis } from "@upstash/redis";
import { describe, expect, it, vi } from "vitest";
import type { SourceReport } from "../../src/core/guard/sources.js";
import { createCronApp } from "../../src/hono/index.js";
import { alerts } from "../../src/hono/plugins/alerts.js";
import { dashboard } from "../../src/hono/plugins/dashboard.js";
import { dynamicSchedules } from "../../src/hono/plugins/dynamic-schedules.js";
import { useAlertReceiver } from "../support/alert-receiver.js";
import { directRedis, upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "dispatch-sources-s3cret";
const auth = { authorization: `Bearer ${SECRET}` };
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 11, 7, 10, 0, 0);
const at = (minutes: number, seconds = 0) => T0 + minutes * MINUTE + seconds * 1_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");
const vercel = { ...auth, "user-agent": "vercel-cron/1.0" };

const receiver = useAlertReceiver();
const { received } = receiver;

function makeApp(prefix: string, clock: { now: number }) {
  return createCronApp<Redis>({
    plugins: [dynamicSchedules(), dashboard(), alerts()],
    redis: upstash(),
    handlers: { record: () => "recorded" },
    cronSecret: () => SECRET,
    guardOptions: { prefix, clock: () => clock.now },
    monitor: { silentAfterFires: 3, windowMs: 30 * MINUTE },
    alerts: { url: receiver.url, secret: "alert-signing-secret" },
  });
}

type App = ReturnType<typeof makeApp>;

async function dispatchSources(app: App) {
  const response = await app.request("/dispatch/sources", { headers: auth });
  expect(response.status).toBe(200);
  return (await response.json()) as { cron: string; sources: SourceReport[] };
}

describe("the dispatch tick's trigger sources", () => {
  const prefix = useKeyPrefix("dispatch-sources");

  it("two sources tick the same minutes with different lags: both recorded, the second as duplicates, in the tick's one request", async () => {
    const clock = { now: at(0) };
    const app = makeApp(prefix(), clock);
    const requests: number[] = [];
    for (let minute = 0; minute < 3; minute += 1) {
      clock.now = at(minute, 2);
      const first = await app.request("/dispatch", { headers: vercel });
      expect(first.status).toBe(200);
      requests.push(((await first.json()) as { requests: number }).requests);
      clock.now = at(minute, 20);
      const second = await app.request("/dispatch?source=uptime-robot", {
        method: "POST",
        headers: auth,
      });
      expect(second.status).toBe(200);
      requests.push(((await second.json()) as { requests: number }).requests);
    }
    // Nothing is due: the tick's one look, with the record riding in the same request (the
    // first ticks of a process may need more: the scripts' digests and Redis's script cache).
    expect(requests.slice(-2)).toEqual([1, 1]);

    const { cron, sources } = await dispatchSources(app);
    expect(cron).toBe("* * * * *");
    const bySource = Object.fromEntries(sources.map((s) => [s.source, s]));
    expect(Object.keys(bySource).sort()).toEqual(["uptime-robot", "vercel"]);
    expect(bySource.vercel).toEqual({
      source: "vercel",
      deliveries: 3,
      slots: 3,
      first: 3,
      duplicates: 0,
      lagMedianMs: 2_000,
      lagMaxMs: 2_000,
      lastSlot: iso(at(2)),
      lastSlotMs: at(2),
      silentFires: 0,
    });
    expect(bySource["uptime-robot"]).toMatchObject({
      deliveries: 3,
      slots: 3,
      first: 0,
      duplicates: 3,
      lagMedianMs: 20_000,
      lagMaxMs: 20_000,
    });
    // Its own key, beside no job's.
    const keys = await (await directRedis()).keys(`${prefix()}*`);
    expect(keys.filter((key) => key.endsWith(":sources"))).toEqual([
      `${prefix()}:dispatch:sources`,
    ]);
  });

  it("a scheduled event's tick is recorded as cloudflare, at the event's fire time", async () => {
    const clock = { now: at(0, 1) };
    const app = makeApp(prefix(), clock);
    const runs = await app.runScheduled({ cron: "* * * * *", scheduledTime: at(0) }, {});
    expect(runs.map((run) => run.result.status)).toEqual(["dispatched"]);
    const { sources } = await dispatchSources(app);
    expect(sources.map((s) => [s.source, s.deliveries, s.lastSlot, s.lagMedianMs])).toEqual([
      ["cloudflare", 1, iso(at(0)), 1_000],
    ]);
  });

  it("a bad ?source= is a 400 that ticks nothing and writes nothing", async () => {
    const clock = { now: at(0, 2) };
    const app = makeApp(prefix(), clock);
    for (const [path, headers] of [
      ["/dispatch?source=Bad%20Name!", auth],
      ["/dispatch?source=a&source=b", auth],
      ["/dispatch", { ...auth, "cron-guard-source": "x".repeat(33) }],
    ] as const) {
      const response = await app.request(path, { method: "POST", headers });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ error: expect.stringMatching(/source/) });
    }
    expect(await (await directRedis()).keys(`${prefix()}*`)).toEqual([]);
  });

  it("GET /dispatch/sources needs the bearer, answers { cron, sources } and refuses other methods", async () => {
    const clock = { now: at(0, 2) };
    const app = makeApp(prefix(), clock);
    expect(await dispatchSources(app)).toEqual({ cron: "* * * * *", sources: [] });
    const anonymous = await app.request("/dispatch/sources");
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({ error: expect.any(String) });
    const wrong = await app.request("/dispatch/sources", {
      headers: { authorization: "Bearer not-it" },
    });
    expect(wrong.status).toBe(401);
    // HEAD as the other GET routes: the GET's status, no body.
    const head = await app.request("/dispatch/sources", { method: "HEAD", headers: auth });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    for (const method of ["POST", "PUT", "DELETE"]) {
      const response = await app.request("/dispatch/sources", { method, headers: auth });
      expect(response.status).toBe(405);
      expect(response.headers.get("allow")).toBe("GET");
      expect(await response.json()).toEqual({ error: expect.any(String) });
    }
    expect(await (await directRedis()).keys(`${prefix()}*`)).toEqual([]);
  });

  it("the dashboard's data carries the dispatch clocks", async () => {
    const clock = { now: at(0, 3) };
    const app = makeApp(prefix(), clock);
    await app.request("/dispatch", { headers: vercel });
    const response = await app.request("/dashboard/data", { headers: auth });
    expect(response.status).toBe(200);
    const data = (await response.json()) as { dispatch: { cron: string; sources: SourceReport[] } };
    expect(data.dispatch.cron).toBe("* * * * *");
    expect(data.dispatch.sources).toMatchObject([
      { source: "vercel", deliveries: 1, lastSlot: iso(at(0)), lagMedianMs: 3_000 },
    ]);
  });

  it("a failed record never fails the tick", async () => {
    const clock = { now: at(0, 2) };
    const app = makeApp(prefix(), clock);
    // A key of the wrong type: the record's HGET is refused, the tick still runs.
    const redis = await directRedis();
    await redis.set(`${prefix()}:dispatch:sources`, "not a hash");
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const response = await app.request("/dispatch", { headers: vercel });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ ran: 0, errors: 0 });
    expect(logged.mock.calls.flat().join(" ")).toMatch(/source vercel was not recorded/);
    logged.mockRestore();
  });

  it("a source that stopped ticking is alerted silent once, by one of two racing instances", async () => {
    const clock = { now: at(0) };
    const first = makeApp(prefix(), clock);
    const second = makeApp(prefix(), clock);
    const pinger = { ...auth, "cron-guard-source": "pinger" };
    const tick = async (app: App, headers: Record<string, string>) =>
      expect((await app.request("/dispatch", { headers })).status).toBe(200);
    // A one-off tick with the bearer is no clock: never alerted silent.
    clock.now = at(0, 1);
    await tick(first, auth);
    // Both clocks tick minutes 0-4; Vercel then goes quiet, the pinger ticks 3-4 alone: two
    // silent fires, under the threshold (3). Every tick runs the periodic check.
    for (let minute = 0; minute < 5; minute += 1) {
      clock.now = at(minute, 3);
      if (minute < 3) await tick(first, vercel);
      clock.now = at(minute, 40);
      await tick(second, pinger);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received.filter((a) => a.kind === "silent")).toEqual([]);

    // The third silent fire: both instances tick (and check) minute 5 and 6.
    for (let minute = 5; minute < 7; minute += 1) {
      clock.now = at(minute, 3);
      await Promise.all([tick(second, pinger), tick(first, pinger)]);
      clock.now = at(minute, 45);
      await Promise.all([tick(first, pinger), tick(second, pinger)]);
    }
    const deadline = Date.now() + 10_000;
    while (received.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    const silent = received.filter((a) => a.kind === "silent");
    expect(silent).toHaveLength(1);
    expect(silent[0]).toMatchObject({
      kind: "silent",
      job: "dispatch",
      source: "dispatch",
      trigger: "vercel",
      slot: iso(at(3)),
      fires: 3,
      lastSlot: iso(at(2)),
    });
    expect(silent[0]?.text).toBe(
      `cron-guard: source vercel has not delivered the dispatch tick for 3 fires (last ${iso(at(2))}); another source delivered them`,
    );
    const { sources } = await dispatchSources(first);
    expect(sources.find((s) => s.source === "vercel")).toMatchObject({
      silentFires: 4,
      silentSinceSlot: iso(at(3)),
    });
    expect(sources.find((s) => s.source === "http")).toMatchObject({ slots: 1, silentFires: 6 });
  });
});
