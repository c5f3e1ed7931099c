import { Redis } from "@upstash/redis";
import { describe, expect, it } from "vitest";
import { type Bindings, type CronJob, createCronApp } from "../../src/hono/index.js";
import { directRedis, upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "ledger secret";
const auth = { authorization: `Bearer ${SECRET}` };
const MINUTE = 60_000;
const DAY = 86_400_000;

describe("the slot ledger over HTTP", () => {
  const prefix = useKeyPrefix("http-ledger");

  function makeApp(clock: () => number, redis: Redis = upstash()) {
    const runs: string[] = [];
    const jobs: CronJob<Bindings, Redis>[] = [
      {
        name: "heartbeat",
        cron: "* * * * *",
        handler: ({ slot }) => {
          runs.push(slot);
          return { slot };
        },
      },
    ];
    const app = createCronApp({
      jobs,
      redis,
      cronSecret: () => SECRET,
      guardOptions: { prefix: prefix(), clock },
    });
    return { app, runs };
  }

  async function snapshot() {
    const redis = await directRedis();
    const keys = (await redis.keys(`${prefix()}*`)).sort();
    const values: Record<string, unknown> = {};
    for (const key of keys) {
      const type = await redis.type(key);
      values[key] =
        type === "hash"
          ? await redis.hGetAll(key)
          : type === "string"
            ? await redis.get(key)
            : type === "zset"
              ? await redis.zRange(key, 0, -1)
              : await redis.xLen(key);
    }
    return values;
  }

  it("answers 409 with the record to a backfill of a slot that ran long ago, runs it only with force=true", async () => {
    let nowMs = Date.UTC(2026, 11, 7, 9, 40, 2);
    const { app, runs } = makeApp(() => nowMs);
    expect((await app.request("/cron/heartbeat", { headers: auth })).status).toBe(200);
    nowMs += 2 * MINUTE; // the 09:40 slot key's retention (60 s) is over
    const backfill = await app.request("/cron/heartbeat?slot=2026-12-07T09:40:00Z", {
      method: "POST",
      headers: auth,
    });
    expect(backfill.status).toBe(409);
    expect(backfill.headers.get("cron-guard-reason")).toBe("done");
    const body = (await backfill.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      job: "heartbeat",
      slot: "2026-12-07T09:40:00Z",
      reason: "done",
      status: "ran",
      recorded: { state: "done", fence: 1, runs: 1, forced: false },
    });
    expect(String(body.error)).toMatch(/already ran \(fence 1, finished .*force=true/);
    expect(runs).toEqual(["2026-12-07T09:40:00Z"]);

    // A platform redelivery of the same slot is an ordinary duplicate: 204 done.
    nowMs = Date.UTC(2026, 11, 7, 9, 40, 50);
    const redelivery = await app.request("/cron/heartbeat", {
      headers: { ...auth, "x-vercel-cron-schedule": "* * * * *" },
    });
    expect(redelivery.status).toBe(204);
    expect(redelivery.headers.get("cron-guard-reason")).toBe("done");

    nowMs += 2 * MINUTE;
    const forced = await app.request("/cron/heartbeat?slot=2026-12-07T09:40:00Z&force=true", {
      method: "POST",
      headers: auth,
    });
    expect(forced.status).toBe(200);
    expect(forced.headers.get("cron-guard-fence")).toBe("2");
    const lookup = await app.request("/cron/heartbeat/slots/2026-12-07T09:40:00Z", {
      headers: auth,
    });
    expect(lookup.status).toBe(200);
    expect(await lookup.json()).toMatchObject({
      job: "heartbeat",
      slot: "2026-12-07T09:40:00Z",
      status: "ran",
      runs: [
        { outcome: "done", fence: 1, forced: false, attempt: 0 },
        { outcome: "done", fence: 2, forced: true, attempt: 1 },
      ],
    });
    expect(runs).toEqual(["2026-12-07T09:40:00Z", "2026-12-07T09:40:00Z"]);
  });

  it("answers a refused backfill from the claim's one round trip, like any skipped delivery", async () => {
    let calls = 0;
    const counting = () => {
      const real = upstash();
      return {
        eval: (...args: Parameters<Redis["eval"]>) => {
          calls += 1;
          return real.eval(...args);
        },
        evalsha: (...args: Parameters<Redis["evalsha"]>) => {
          calls += 1;
          return real.evalsha(...args);
        },
      } as unknown as Redis;
    };
    const nowMs = Date.UTC(2026, 11, 7, 9, 40, 2);
    const { app } = makeApp(() => nowMs, counting());
    const path = "/cron/heartbeat?slot=2026-12-07T09:39:00Z";
    expect((await app.request(path, { method: "POST", headers: auth })).status).toBe(200);
    // Another isolate (its own client) asks Redis: the claim's one round trip, no lookup after it.
    const other = makeApp(() => nowMs, counting());
    calls = 0;
    expect((await other.app.request(path, { method: "POST", headers: auth })).status).toBe(409);
    expect(calls).toBe(1);
    // The isolate that ran the slot remembers it finished (single flight): no round trip at all.
    calls = 0;
    expect((await app.request(path, { method: "POST", headers: auth })).status).toBe(409);
    expect(calls).toBe(0);
  });

  it("refuses a backfill older than the ledger can vouch for with 409, and runs it with force", async () => {
    const nowMs = Date.UTC(2026, 11, 7, 9, 40, 2);
    const { app, runs } = makeApp(() => nowMs);
    expect((await app.request("/cron/heartbeat", { headers: auth })).status).toBe(200);
    const redis = await directRedis();
    // An upgrade: the job had claimed slots before its ledger existed.
    await redis.hDel(`${prefix()}:{heartbeat}:ledger`, "~fence0");
    const old = new Date(nowMs - 8 * DAY).toISOString().slice(0, 16);
    const refused = await app.request(`/cron/heartbeat?slot=${old}:00Z`, {
      method: "POST",
      headers: auth,
    });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ reason: "unvouched", status: "unknown" });
    const forced = await app.request(`/cron/heartbeat?slot=${old}:00Z&force=1`, {
      method: "POST",
      headers: auth,
    });
    expect(forced.status).toBe(200);
    expect(runs).toHaveLength(2);
  });

  it("never reports fires before the job's first claim as missed, even after a backfill of an older slot", async () => {
    let nowMs = Date.UTC(2026, 12 - 1, 7, 9, 15, 2);
    const { app } = makeApp(() => nowMs);
    expect((await app.request("/cron/heartbeat", { headers: auth })).status).toBe(200);
    nowMs += 10_000;
    const backfill = await app.request("/cron/heartbeat?slot=2026-12-07T09:10:00Z", {
      method: "POST",
      headers: auth,
    });
    expect(backfill.status).toBe(200);
    nowMs = Date.UTC(2026, 11, 7, 9, 16, 1);
    expect((await app.request("/cron/heartbeat", { headers: auth })).status).toBe(200);
    nowMs = Date.UTC(2026, 11, 7, 9, 18, 30);
    const status = (await (
      await app.request("/cron/heartbeat/status", { headers: auth })
    ).json()) as { monitor: { missed: string[] }; sinceMs: number };
    expect(status.sinceMs).toBe(Date.UTC(2026, 11, 7, 9, 15, 2));
    // 09:17 is really missed (the job existed and nobody ran it); 09:11-09:14 are not.
    expect(status.monitor.missed).toEqual(["2026-12-07T09:17:00Z"]);
  });

  it.each([
    ["force=yes", /force= must be true, 1, false or 0/],
    ["force=1&force=1", /give one \?force=/],
    ["force=", /force= must be/],
    ["force=TRUE", /force= must be/],
  ])("answers 400 to ?%s and writes nothing", async (query, message) => {
    const { app, runs } = makeApp(() => Date.UTC(2026, 11, 7, 9, 40, 2));
    const before = await snapshot();
    const response = await app.request(`/cron/heartbeat?${query}`, {
      method: "POST",
      headers: auth,
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toMatch(message);
    expect(runs).toEqual([]);
    expect(await snapshot()).toEqual(before);
  });

  it("serves GET /cron/:job/slots/:slot: never, 400 for a non-fire time, 404, HEAD without a body, 405 otherwise", async () => {
    const { app } = makeApp(() => Date.UTC(2026, 11, 7, 9, 40, 2));
    const never = await app.request("/cron/heartbeat/slots/2026-12-07T09:39:00Z", {
      headers: auth,
    });
    expect(await never.json()).toMatchObject({ status: "never", runs: [], holder: null });
    const encoded = await app.request("/cron/heartbeat/slots/2026-12-07T10%3A39%3A00%2B01%3A00", {
      headers: auth,
    });
    expect(await encoded.json()).toMatchObject({ slot: "2026-12-07T09:39:00Z" });
    const bad = await app.request("/cron/heartbeat/slots/2026-12-07T09:39:30Z", { headers: auth });
    expect(bad.status).toBe(400);
    expect((await app.request("/cron/heartbeat/slots/not-a-time", { headers: auth })).status).toBe(
      400,
    );
    expect(
      (await app.request(`/cron/heartbeat/slots/${"9".repeat(5_000)}`, { headers: auth })).status,
    ).toBe(400);
    expect(
      (await app.request("/cron/nope/slots/2026-12-07T09:39:00Z", { headers: auth })).status,
    ).toBe(404);
    const head = await app.request("/cron/heartbeat/slots/2026-12-07T09:39:00Z", {
      method: "HEAD",
      headers: auth,
    });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const response = await app.request("/cron/heartbeat/slots/2026-12-07T09:39:00Z", {
        method,
        headers: auth,
      });
      expect(response.status).toBe(405);
      expect(response.headers.get("allow")).toBe("GET");
    }
    expect((await app.request("/cron/heartbeat/slots/2026-12-07T09:39:00Z")).status).toBe(401);
    expect(await snapshot()).toEqual({});
  });

  it("answers 503 JSON, not 500, when the store is down for a lookup or a status read", async () => {
    const down = new Redis({ url: "http://127.0.0.1:9", token: "t", retry: false });
    const { app } = makeApp(() => Date.UTC(2026, 11, 7, 9, 40, 2), down);
    for (const path of ["/cron/heartbeat/slots/2026-12-07T09:39:00Z", "/cron/heartbeat/status"]) {
      const response = await app.request(path, { headers: auth });
      expect(response.status).toBe(503);
      const body = (await response.json()) as { error: string };
      expect(body.error).toMatch(/store unreachable/);
      expect(body.error).not.toMatch(/EVALSHA|evalsha|127\.0\.0\.1/);
    }
  });
});
