/**
 * Alerts: a local HTTP receiver counts the webhook's POSTs. Each event is claimed in Redis (SET NX
 * under the job's hash tag) before it is sent, so many instances that see it send it once.
 */
import { createServer, type Server } from "node:http";
import type { Redis } from "@upstash/redis";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { AlertBody } from "../../src/core/monitoring/alerts.js";
import { createCronApp } from "../../src/hono/index.js";
import { upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "alerts-s3cret";
const auth = { authorization: `Bearer ${SECRET}` };
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const at = (minutes: number, seconds = 0) => T0 + minutes * MINUTE + seconds * 1_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");

let server: Server;
let url = "";
const received: AlertBody[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => {
      body += chunk.toString();
    });
    request.on("end", () => {
      received.push(JSON.parse(body) as AlertBody);
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/hook`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  received.length = 0;
});

const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

describe("alerts", () => {
  const prefix = useKeyPrefix("alerts");

  function makeApp(clock: { now: number }, alertUrl = url) {
    return createCronApp<Redis>({
      redis: upstash(),
      jobs: [
        {
          name: "boom",
          cron: "* * * * *",
          handler: () => {
            throw new Error("disk full");
          },
        },
        { name: "tick", cron: "* * * * *", handler: () => "ok" },
      ],
      handlers: {
        fail: () => {
          throw new Error("upstream 502");
        },
      },
      schedules: [{ id: "nightly-report", cron: "* * * * *", handler: "fail", maxAttempts: 1 }],
      cronSecret: () => SECRET,
      guardOptions: { prefix: prefix(), clock: () => clock.now, region: "iad1" },
      monitor: { graceMs: 60_000 },
      alerts: { url: alertUrl },
    });
  }

  it("a failing job with 20 concurrent deliveries posts exactly one alert", async () => {
    const clock = { now: at(0, 1) };
    const apps = Array.from({ length: 4 }, () => makeApp(clock));
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (apps[i % apps.length] as (typeof apps)[number]).request("/cron/boom", {
          headers: { ...auth, "x-vercel-cron-schedule": "* * * * *" },
        }),
      ),
    );
    const statuses = responses.map((response) => response.status);
    expect(statuses).toContain(500);
    expect(statuses.every((status) => status === 500 || status === 204)).toBe(true);
    await settle();
    expect(received).toHaveLength(1);
    expect(received[0]).toEqual({
      kind: "failed",
      job: "boom",
      source: "job",
      slot: iso(at(0)),
      slots: [iso(at(0))],
      fence: expect.any(Number),
      region: "iad1",
      error: "disk full",
      at: new Date(clock.now).toISOString(),
      prefix: prefix(),
      text: `cron-guard: job boom failed at ${iso(at(0))}: disk full`,
    });
  });

  it("a missed fire posts one alert however many instances see it", async () => {
    const clock = { now: at(0, 1) };
    const first = makeApp(clock);
    expect((await first.request("/cron/tick", { headers: auth })).status).toBe(200);
    clock.now = at(2, 30); // 12:01 is missed (grace 60 s); 12:02 is still within the grace
    const apps = Array.from({ length: 5 }, () => makeApp(clock));
    const statuses = await Promise.all(
      apps.flatMap((app) => [
        app.request("/cron/tick/status", { headers: auth }),
        app.request("/dashboard/data", { headers: auth }),
      ]),
    );
    expect(statuses.map((response) => response.status)).toEqual(Array(10).fill(200));
    await settle();
    const missed = received.filter((body) => body.kind === "missed" && body.job === "tick");
    expect(missed).toHaveLength(1);
    expect(missed[0]).toMatchObject({
      source: "job",
      slot: iso(at(1)),
      slots: [iso(at(1))],
      text: `cron-guard: job tick missed ${iso(at(1))}: no run started within the grace period`,
    });
    // a later sighting of the same fire sends nothing; a newly missed fire sends one more
    clock.now = at(3, 30);
    await (apps[0] as (typeof apps)[number]).request("/cron/tick/status", { headers: auth });
    await settle();
    expect(
      received.filter((body) => body.kind === "missed" && body.job === "tick").map((b) => b.slots),
    ).toEqual([[iso(at(1))], [iso(at(2))]]);
  });

  it("a dispatch tick alerts the failed attempt and the dead fire once, and the periodic check finds missed fires", async () => {
    const clock = { now: at(0, 1) };
    const apps = Array.from({ length: 3 }, () => makeApp(clock));
    // the code-declared schedule is stored (first fire 12:01) by the first request
    expect(
      (await (apps[0] as (typeof apps)[number]).request("/schedules", { headers: auth })).status,
    ).toBe(200);
    clock.now = at(1, 2);
    await Promise.all(apps.map((app) => app.request("/dispatch", { headers: auth })));
    await settle();
    const kinds = received.map((body) => [body.kind, body.job, body.slot]).sort();
    expect(kinds).toEqual([
      ["dead", "nightly-report", iso(at(1))],
      ["failed", "nightly-report", iso(at(1))],
    ]);
    expect(received.find((body) => body.kind === "dead")).toMatchObject({
      source: "schedule",
      attempts: 1,
      error: "upstream 502",
    });
    // ticks stop for two minutes; the next tick's periodic check (once a minute for all
    // instances) reports the schedule's missed fires
    received.length = 0;
    clock.now = at(4, 5);
    await Promise.all(apps.map((app) => app.request("/dispatch", { headers: auth })));
    await settle();
    const missed = received.filter((body) => body.kind === "missed");
    // each missed fire once, whether the check or the tick's catch-up event saw it first
    expect(missed.every((body) => body.job === "nightly-report")).toBe(true);
    expect(missed.flatMap((body) => body.slots).sort()).toEqual([iso(at(2)), iso(at(3))]);
  });

  it("sends nothing without a URL, and a failing webhook releases the claim for another try", async () => {
    const clock = { now: at(0, 1) };
    expect(
      (await makeApp(clock, "").request("/cron/boom", { method: "POST", headers: auth })).status,
    ).toBe(500);
    const down = makeApp(clock, "http://127.0.0.1:9/unreachable");
    clock.now = at(1, 1);
    expect((await down.request("/cron/boom", { method: "POST", headers: auth })).status).toBe(500);
    // alerts go out beside the answer, not before it: let the failed delivery release its claim
    await settle();
    // the same slot fails again (released) on an instance whose webhook works: it is alerted
    expect(
      (await makeApp(clock).request("/cron/boom", { method: "POST", headers: auth })).status,
    ).toBe(500);
    await settle();
    expect(received.map((body) => [body.kind, body.slot])).toEqual([["failed", iso(at(1))]]);
  });
});
