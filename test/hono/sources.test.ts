/**
 * Redundant clocks through the app: which source delivered each slot (Vercel, QStash, a named
 * pinger, Cloudflare's scheduled event), QStash's signature in place of the bearer, the sources
 * in `GET /cron/:job/status`, and the `silent` alert. Real redis-server behind the bridge, real
 * @upstash/redis, a local HTTP receiver for the alerts, an injected clock.
 */
import { createHash, createHmac } from "node:crypto";
import type { Redis } from "@upstash/redis";
import { describe, expect, it } from "vitest";
import type { SourceReport } from "../../src/core/guard/sources.js";
import { createCronApp } from "../../src/hono/index.js";
import { alerts } from "../../src/hono/plugins/alerts.js";
import { qstashSignatureProblem } from "../../src/hono/qstash.js";
import { useAlertReceiver } from "../support/alert-receiver.js";
import { directRedis, upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "sources-s3cret";
const auth = { authorization: `Bearer ${SECRET}` };
const CURRENT_KEY = "sig_current_test_key_0123456789";
const NEXT_KEY = "sig_next_test_key_9876543210";
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 11, 7, 10, 0, 0);
const at = (minutes: number, seconds = 0) => T0 + minutes * MINUTE + seconds * 1_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");
const BASE_URL = "https://cron.example.com";

const b64url = (data: Buffer | string) => Buffer.from(data).toString("base64url");

/** What QStash sends: an HS256 JWT over the signing key's bytes, as @upstash/qstash's Receiver checks it. */
function qstashSignature(
  key: string,
  url: string,
  body: string,
  nowS = Math.floor(Date.now() / 1000),
) {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = b64url(
    JSON.stringify({
      iss: "Upstash",
      sub: url,
      exp: nowS + 300,
      nbf: nowS,
      iat: nowS,
      jti: `msg_${Math.random().toString(36).slice(2)}`,
      body: createHash("sha256").update(body).digest("base64url"),
    }),
  );
  const mac = createHmac("sha256", key).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${mac}`;
}

const receiver = useAlertReceiver();
const { received } = receiver;

function makeApp(prefix: string, clock: { now: number }, runs: string[] = []) {
  return createCronApp<Redis>({
    redis: upstash(),
    jobs: [
      {
        name: "beat",
        cron: "* * * * *",
        handler: ({ slot }) => {
          runs.push(slot);
          return "ok";
        },
      },
    ],
    cronSecret: () => SECRET,
    guardOptions: { prefix, clock: () => clock.now },
    monitor: { silentAfterFires: 3, windowMs: 30 * MINUTE },
    alerts: { url: receiver.url },
    plugins: [alerts()],
  });
}

const qstashEnv = { QSTASH_CURRENT_SIGNING_KEY: CURRENT_KEY, QSTASH_NEXT_SIGNING_KEY: NEXT_KEY };

async function keysUnder(prefix: string): Promise<string[]> {
  return (await directRedis()).keys(`${prefix}:*`);
}

describe("redundant clocks through the app", () => {
  const prefix = useKeyPrefix("sources-app");

  it("a QStash-signed request runs the job without the bearer; a bad signature is 401 and writes nothing", async () => {
    const clock = { now: at(0, 4) };
    const runs: string[] = [];
    const app = makeApp(prefix(), clock, runs);
    const url = `${BASE_URL}/cron/beat`;
    const body = "";

    const bad = [
      qstashSignature("not-the-key", url, body), // another key
      qstashSignature(CURRENT_KEY, `${BASE_URL}/cron/other`, body), // another route
      qstashSignature(CURRENT_KEY, url, "tampered"), // another body
      qstashSignature(CURRENT_KEY, url, body, Math.floor(Date.now() / 1000) - 3_600), // expired
      "not.a.jwt",
    ];
    for (const signature of bad) {
      const refused = await app.request(
        url,
        { method: "POST", headers: { "upstash-signature": signature, ...auth }, body },
        qstashEnv,
      );
      expect(refused.status).toBe(401);
      expect(await refused.json()).toMatchObject({
        error: expect.stringMatching(/Upstash-Signature/),
      });
    }
    expect(runs).toEqual([]);
    expect(await keysUnder(prefix())).toEqual([]);

    // Signed with the next key (a rotation under way): no bearer needed.
    const signed = await app.request(
      url,
      {
        method: "POST",
        headers: { "upstash-signature": qstashSignature(NEXT_KEY, url, body) },
        body,
      },
      qstashEnv,
    );
    expect(signed.status).toBe(200);
    expect(runs).toEqual([iso(at(0))]);
    // Without the keys configured, a signature is no credential: the bearer decides.
    const unconfigured = await app.request(url, {
      method: "POST",
      headers: { "upstash-signature": qstashSignature(CURRENT_KEY, url, body) },
    });
    expect(unconfigured.status).toBe(401);

    const status = await app.request("/cron/beat/status", { headers: auth });
    const { sources } = (await status.json()) as { sources: SourceReport[] };
    expect(sources).toEqual([
      expect.objectContaining({ source: "qstash", deliveries: 1, slots: 1, lagMedianMs: 4_000 }),
    ]);
  });

  it("the verifier agrees with the JWT QStash sends, and refuses what @upstash/qstash's Receiver refuses", async () => {
    const url = `${BASE_URL}/dispatch`;
    const keys = { currentSigningKey: CURRENT_KEY, nextSigningKey: NEXT_KEY };
    expect(
      await qstashSignatureProblem(keys, qstashSignature(CURRENT_KEY, url, "{}"), "{}", url),
    ).toBeUndefined();
    // The host may differ behind a proxy; the path and query may not.
    expect(
      await qstashSignatureProblem(
        keys,
        qstashSignature(CURRENT_KEY, url, "{}"),
        "{}",
        "http://internal:8787/dispatch",
      ),
    ).toBeUndefined();
    expect(
      await qstashSignatureProblem(
        keys,
        qstashSignature(CURRENT_KEY, url, "{}"),
        "{}",
        `${url}?slot=x`,
      ),
    ).toMatch(/another URL/);
    const unsignedAlg = qstashSignature(CURRENT_KEY, url, "{}").replace(
      /^[^.]+/,
      b64url('{"alg":"none"}'),
    );
    expect(await qstashSignatureProblem(keys, unsignedAlg, "{}", url)).toMatch(/HS256/);
  });

  it("two sources deliver the same slots with different lags: both recorded, duplicates absorbed, one run per slot", async () => {
    const clock = { now: at(0) };
    const runs: string[] = [];
    const app = makeApp(prefix(), clock, runs);
    const vercel = { ...auth, "user-agent": "vercel-cron/1.0" };
    for (let minute = 0; minute < 3; minute += 1) {
      clock.now = at(minute, 2);
      expect((await app.request("/cron/beat", { headers: vercel })).status).toBe(200);
      clock.now = at(minute, 20);
      const pinger = await app.request("/cron/beat?source=uptime-robot", { headers: auth });
      expect(pinger.status).toBe(204);
      expect(pinger.headers.get("cron-guard-reason")).toBe("done");
    }
    // A bad source name is a 400 that writes nothing new.
    clock.now = at(3, 1);
    const bad = await app.request("/cron/beat", {
      headers: { ...auth, "cron-guard-source": "Bad Name!" },
    });
    expect(bad.status).toBe(400);
    expect(runs).toHaveLength(3);

    const status = await app.request("/cron/beat/status", { headers: auth });
    const { sources } = (await status.json()) as { sources: SourceReport[] };
    const bySource = Object.fromEntries(sources.map((s) => [s.source, s]));
    expect(bySource.vercel).toMatchObject({
      deliveries: 3,
      slots: 3,
      first: 3,
      duplicates: 0,
      lagMedianMs: 2_000,
      lagMaxMs: 2_000,
      silentFires: 0,
    });
    expect(bySource["uptime-robot"]).toMatchObject({
      deliveries: 3,
      slots: 3,
      first: 0,
      duplicates: 3,
      lagMedianMs: 20_000,
    });
    expect(Object.keys(bySource).sort()).toEqual(["uptime-robot", "vercel"]);
  });

  it("Cloudflare's scheduled event is recorded as cloudflare", async () => {
    const clock = { now: at(0, 1) };
    const app = makeApp(prefix(), clock);
    await app.runScheduled({ cron: "* * * * *", scheduledTime: at(0) }, {});
    const status = await app.request("/cron/beat/status", { headers: auth });
    const { sources } = (await status.json()) as { sources: SourceReport[] };
    expect(sources.map((s) => [s.source, s.deliveries, s.lagMedianMs])).toEqual([
      ["cloudflare", 1, 1_000],
    ]);
  });

  it("a source silent for N fires is alerted once, by one of two racing instances", async () => {
    const clock = { now: at(0) };
    const first = makeApp(prefix(), clock);
    const second = makeApp(prefix(), clock);
    const vercel = { ...auth, "user-agent": "vercel-cron/1.0" };
    const pinger = { ...auth, "cron-guard-source": "pinger" };
    // A one-off call with the bearer is no clock: never alerted silent.
    clock.now = at(0, 1);
    await first.request("/cron/beat", { headers: auth });
    // Both clocks deliver minutes 0-2; then Vercel goes quiet and only the pinger delivers 3-4.
    for (let minute = 0; minute < 5; minute += 1) {
      clock.now = at(minute, 3);
      if (minute < 3) await first.request("/cron/beat", { headers: vercel });
      await second.request("/cron/beat", { headers: pinger });
    }
    const statusOf = async (app: typeof first) =>
      (
        (await (await app.request("/cron/beat/status", { headers: auth })).json()) as {
          sources: SourceReport[];
        }
      ).sources;
    // Two silent fires: under the threshold (3), no alert.
    clock.now = at(4, 30);
    await Promise.all([statusOf(first), statusOf(second)]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received.filter((a) => a.kind === "silent")).toEqual([]);

    clock.now = at(5, 3);
    await second.request("/cron/beat", { headers: pinger });
    clock.now = at(5, 30);
    const [seen] = await Promise.all([
      statusOf(first),
      statusOf(second),
      statusOf(first),
      statusOf(second),
    ]);
    expect(seen.find((s) => s.source === "vercel")).toMatchObject({
      silentFires: 3,
      silentSinceSlot: iso(at(3)),
      lastSlot: iso(at(2)),
    });
    expect(seen.find((s) => s.source === "http")).toMatchObject({ slots: 1, silentFires: 5 });
    const deadline = Date.now() + 10_000;
    while (received.length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const silent = received.filter((a) => a.kind === "silent");
    expect(silent).toHaveLength(1);
    expect(silent[0]).toMatchObject({
      kind: "silent",
      job: "beat",
      trigger: "vercel",
      slot: iso(at(3)),
      fires: 3,
      lastSlot: iso(at(2)),
    });
    expect(silent[0]?.text).toBe(
      `cron-guard: source vercel has not delivered job beat for 3 fires (last ${iso(at(2))}); another source delivered them`,
    );

    // A longer silence is the same silence: no second alert. The pinger is never silent.
    clock.now = at(6, 3);
    await first.request("/cron/beat", { headers: pinger });
    clock.now = at(6, 30);
    await Promise.all([statusOf(first), statusOf(second)]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received.filter((a) => a.kind === "silent")).toHaveLength(1);
  });
});
