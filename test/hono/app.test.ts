import { Redis } from "@upstash/redis";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigError } from "../../src/core/index.js";
import {
  type Bindings,
  type CronAppOptions,
  type CronJob,
  createCronApp,
} from "../../src/hono/index.js";
import { directRedis, upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "correct horse battery staple";
const NOW = Date.UTC(2026, 10, 23, 10, 7, 30);
const auth = { authorization: `Bearer ${SECRET}` };

/** The `error` field of a JSON error response. */
async function errorOf(response: Response): Promise<unknown> {
  const body = (await response.json()) as { error?: unknown };
  return body.error;
}

describe("createCronApp", () => {
  const prefix = useKeyPrefix("app");
  afterEach(() => {
    vi.restoreAllMocks();
  });

  function makeApp(
    options: { secret?: string | undefined; redis?: Redis; clock?: () => number } = {},
  ) {
    const runs: string[] = [];
    const jobs: CronJob<Bindings, Redis>[] = [
      {
        name: "tick",
        cron: "*/5 * * * *",
        handler: ({ slot, trigger }) => {
          runs.push(slot);
          return { slot, trigger };
        },
      },
      {
        name: "boom",
        cron: "0 * * * *",
        handler: () => {
          throw new Error("kaput");
        },
      },
    ];
    const app = createCronApp({
      jobs,
      redis: options.redis ?? upstash(),
      cronSecret: () => ("secret" in options ? options.secret : SECRET),
      guardOptions: { prefix: prefix(), clock: options.clock ?? (() => NOW) },
    });
    return { app, runs };
  }

  async function keysWritten() {
    const redis = await directRedis();
    return redis.keys(`${prefix()}*`);
  }

  describe("rejects options that cannot be right when the app is created, not when a job fires", () => {
    const job = (extra: Record<string, unknown>): CronJob<Bindings, Redis> =>
      ({ name: "heartbeat", cron: "* * * * *", handler: () => "ran", ...extra }) as CronJob<
        Bindings,
        Redis
      >;

    function creationError(options: Partial<CronAppOptions<Redis>>): ConfigError {
      let caught: unknown;
      try {
        createCronApp({
          jobs: [job({})],
          redis: upstash(),
          cronSecret: () => SECRET,
          ...options,
          guardOptions: { prefix: prefix(), clock: () => NOW, ...options.guardOptions },
        });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      return caught as ConfigError;
    }

    it.each([
      [{ skewToleranceMs: 40_000 }, "skewToleranceMs"],
      [{ skewToleranceMs: 30_000 }, "skewToleranceMs"],
      [{ leaseMs: 50 }, "leaseMs"],
      [{ onFailure: "relase" }, "onFailure"],
      [{ overlap: "queue" }, "overlap"],
      [{ heartbeatMs: 5 }, "heartbeatMs"],
      [{ retentionMs: -1 }, "retentionMs"],
      [{ timezone: "Mars/Olympus" }, "timezone"],
    ])("a job with %o: ConfigError naming the job and %s", async (extra, option) => {
      const error = creationError({ jobs: [job({}), { ...job(extra), name: "nightly" }] });
      expect(error.option).toBe(option);
      expect(error.message).toContain(option);
      expect(error.message).toContain('job "nightly"');
      expect(await keysWritten()).toEqual([]);
    });

    it.each([
      [{ skewToleranceMs: 40_000 }, "skewToleranceMs"],
      [{ leaseMs: 50 }, "leaseMs"],
      [{ onFailure: "relase" }, "onFailure"],
      [{ onStoreError: "ignore" }, "onStoreError"],
      [{ prefix: "has space" }, "prefix"],
      [{ region: "x".repeat(65) }, "region"],
      [{ historyLength: 0 }, "historyLength"],
    ])("shared guard options %o: ConfigError naming %s", async (guard, option) => {
      const error = creationError({ guardOptions: guard as CronAppOptions<Redis>["guardOptions"] });
      expect(error.option).toBe(option);
      expect(error.message).toContain(option);
      expect(error.message).toMatch(/job "heartbeat"|guard options/);
      expect(await keysWritten()).toEqual([]);
    });

    it.each([
      [{ redis: { get: () => null } }, "redis"],
      [{ jobs: "heartbeat" }, "jobs"],
      [{ jobs: [null] }, "jobs"],
      [{ cronSecret: "s3cret" }, "cronSecret"],
    ])("app option %o: ConfigError naming %s", (options, option) => {
      const error = creationError(options as unknown as Partial<CronAppOptions<Redis>>);
      expect(error.option).toBe(option);
    });

    it("validates even when redis is a function of env, without calling it", () => {
      let built = 0;
      const redis = () => {
        built += 1;
        return upstash();
      };
      const error = creationError({ redis, jobs: [job({ leaseMs: 50 })] });
      expect(error.option).toBe("leaseMs");
      expect(built).toBe(0);
    });

    it("accepts a tolerance just under half the period and a job overriding the shared options", async () => {
      const app = createCronApp({
        jobs: [job({ skewToleranceMs: 29_999 }), { ...job({ leaseMs: 1_000 }), name: "other" }],
        redis: upstash(),
        cronSecret: () => SECRET,
        guardOptions: { prefix: prefix(), clock: () => NOW, leaseMs: 50_000, onFailure: "keep" },
      });
      const response = await app.request("/cron/heartbeat", { headers: auth });
      expect(response.status).toBe(200);
    });
  });

  it("runs a job once: 200 with the handler's JSON, then 204 for the duplicate", async () => {
    const { app, runs } = makeApp();
    const first = await app.request("/cron/tick", { method: "POST", headers: auth });
    expect(first.status).toBe(200);
    expect(first.headers.get("cron-guard-status")).toBe("ran");
    expect(first.headers.get("cron-guard-slot")).toBe("2026-11-23T10:05:00Z");
    expect(Number(first.headers.get("cron-guard-fence"))).toBeGreaterThan(0);
    expect(await first.json()).toMatchObject({
      status: "ran",
      job: "tick",
      slot: "2026-11-23T10:05:00Z",
      value: { slot: "2026-11-23T10:05:00Z", trigger: "http" },
    });
    const duplicate = await app.request("/cron/tick", { headers: auth });
    expect(duplicate.status).toBe(204);
    expect(await duplicate.text()).toBe("");
    expect(duplicate.headers.get("cron-guard-status")).toBe("skipped");
    expect(duplicate.headers.get("cron-guard-reason")).toBe("done");
    expect(duplicate.headers.get("cron-guard-slot")).toBe("2026-11-23T10:05:00Z");
    expect(runs).toEqual(["2026-11-23T10:05:00Z"]);
  });

  it("answers 100 concurrent deliveries of one slot with one 200 and 99 204s", async () => {
    const { app, runs } = makeApp();
    const responses = await Promise.all(
      Array.from({ length: 100 }, () => app.request("/cron/tick", { headers: auth })),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 204)).toHaveLength(99);
    expect(runs).toHaveLength(1);
  });

  it("takes Vercel's GET with x-vercel-cron-schedule and refuses a schedule that is not the job's", async () => {
    const { app, runs } = makeApp();
    const vercel = await app.request("/cron/tick", {
      headers: {
        ...auth,
        "x-vercel-cron-schedule": "*/5 * * * *",
        "user-agent": "vercel-cron/1.0",
      },
    });
    expect(vercel.status).toBe(200);
    expect(await vercel.json()).toMatchObject({ value: { trigger: "vercel" } });
    const mismatch = await app.request("/cron/tick", {
      headers: { ...auth, "x-vercel-cron-schedule": "0 * * * *" },
    });
    expect(mismatch.status).toBe(400);
    expect(await errorOf(mismatch)).toMatch(/not this job's schedule/);
    expect(runs).toHaveLength(1);
  });

  it("backfills an explicit ?slot= that is a fire time, and 400s one that is not", async () => {
    const { app, runs } = makeApp();
    const backfill = await app.request("/cron/tick?slot=2026-11-23T09:55:00Z", {
      method: "POST",
      headers: auth,
    });
    expect(backfill.status).toBe(200);
    expect(backfill.headers.get("cron-guard-slot")).toBe("2026-11-23T09:55:00Z");
    for (const slot of ["2026-11-23T09:56:00Z", "yesterday", ""]) {
      const bad = await app.request(`/cron/tick?slot=${encodeURIComponent(slot)}`, {
        headers: auth,
      });
      expect(bad.status).toBe(400);
      expect(bad.headers.get("content-type")).toMatch(/application\/json/);
      expect(typeof (await errorOf(bad))).toBe("string");
    }
    expect(runs).toEqual(["2026-11-23T09:55:00Z"]);
  });

  it("refuses a future ?slot= with 400 naming it and the latest allowed; the real delivery still runs", async () => {
    let nowMs = NOW;
    const { app, runs } = makeApp({ clock: () => nowMs });
    for (const slot of ["2026-11-24T08:00:00Z", "2026-11-23T10:10:00Z", "9999-12-31T23:55:00Z"]) {
      const future = await app.request(`/cron/tick?slot=${slot}`, {
        method: "POST",
        headers: auth,
      });
      expect(future.status, slot).toBe(400);
      expect(await errorOf(future)).toBe(
        `slot "${slot}" is in the future: ?slot= backfills past fire times; the latest allowed is 2026-11-23T10:05:00Z (now 2026-11-23T10:07:30Z plus 5000 ms skew tolerance)`,
      );
    }
    expect(runs).toEqual([]);
    expect(await keysWritten()).toEqual([]);
    nowMs = Date.UTC(2026, 10, 24, 8, 0, 1);
    const delivery = await app.request("/cron/tick", { headers: auth });
    expect(delivery.status).toBe(200);
    expect(delivery.headers.get("cron-guard-slot")).toBe("2026-11-24T08:00:00Z");
  });

  it("takes a ?slot= within the skew tolerance ahead: it is the slot a plain call derives", async () => {
    const { app, runs } = makeApp({ clock: () => Date.UTC(2026, 10, 23, 10, 9, 57) });
    const manual = await app.request("/cron/tick?slot=2026-11-23T10:10:00Z", { headers: auth });
    expect(manual.status).toBe(200);
    const plain = await app.request("/cron/tick", { headers: auth });
    expect(plain.status).toBe(204);
    expect(runs).toEqual(["2026-11-23T10:10:00Z"]);
  });

  it.each([
    ["1970 at the epoch", "1970-01-01T00:00:00Z", /at or before 1970-01-01T00:00:00Z/],
    ["before the epoch", "1969-12-31T23:55:00Z", /at or before 1970-01-01T00:00:00Z/],
    ["year 0001", "0001-01-01T00:00:00Z", /at or before 1970-01-01T00:00:00Z/],
    ["empty", "", /is empty/],
    ["a + sent unencoded (a space)", "2026-11-23T11:05:00+01:00", /send \+ as %2B/],
    ["a date without time", "2026-11-23", /not an ISO-8601 timestamp/],
    ["a huge string", "9".repeat(20_000), /20000 characters/],
  ])("answers 400 JSON to ?slot= %s, writing nothing", async (_label, slot, reason) => {
    const { app, runs } = makeApp();
    const response = await app.request(`/cron/tick?slot=${slot}`, { headers: auth });
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    expect(error).toMatch(reason);
    expect((error as string).length).toBeLessThan(300);
    expect(runs).toEqual([]);
    expect(await keysWritten()).toEqual([]);
  });

  it("answers 400 to two ?slot= values, and decodes an encoded one", async () => {
    const { app, runs } = makeApp();
    const twice = await app.request(
      "/cron/tick?slot=2026-11-23T09:55:00Z&slot=2026-11-23T10:00:00Z",
      { headers: auth },
    );
    expect(twice.status).toBe(400);
    expect(await errorOf(twice)).toMatch(/one \?slot=/);
    expect(await keysWritten()).toEqual([]);
    const encoded = await app.request(
      `/cron/tick?slot=${encodeURIComponent("2026-11-23T10:55:00+01:00")}`,
      { headers: auth },
    );
    expect(encoded.status).toBe(200);
    expect(encoded.headers.get("cron-guard-slot")).toBe("2026-11-23T09:55:00Z");
    const old = await app.request("/cron/tick?slot=1970-01-01T00:05:00Z", { headers: auth });
    expect(old.status).toBe(200);
    expect(runs).toEqual(["2026-11-23T09:55:00Z", "1970-01-01T00:05:00Z"]);
  });

  it.each([
    ["no header", {}],
    ["a wrong secret", { authorization: "Bearer wrong" }],
    ["the secret with a suffix", { authorization: `Bearer ${SECRET}x` }],
    ["another scheme", { authorization: `Basic ${SECRET}` }],
  ])("answers 401 JSON to %s and writes nothing", async (_label, headers) => {
    const { app, runs } = makeApp();
    for (const path of ["/cron/tick", "/cron", "/cron/tick/status", "/cron/nope"]) {
      const response = await app.request(path, { headers });
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ error: expect.stringMatching(/Unauthorized/) });
    }
    expect(runs).toEqual([]);
    expect(await keysWritten()).toEqual([]);
  });

  it.each([
    ["a trailing newline (a secrets file)", "s3cret\n"],
    ["surrounding spaces and tabs", " \ts3cret \r\n"],
  ])(
    "takes a CRON_SECRET with %s: trimmed, as Vercel's header can carry no such whitespace",
    async (_label, raw) => {
      const runs: string[] = [];
      const app = createCronApp({
        jobs: [{ name: "tick", cron: "*/5 * * * *", handler: ({ slot }) => runs.push(slot) }],
        redis: upstash(),
        guardOptions: { prefix: prefix(), clock: () => NOW },
      });
      const env = { CRON_SECRET: raw };
      const vercel = await app.request(
        "/cron/tick",
        { headers: { authorization: `Bearer ${raw}`, "x-vercel-cron-schedule": "*/5 * * * *" } },
        env,
      );
      expect(vercel.status).toBe(200);
      const trimmed = await app.request(
        "/cron",
        { headers: { authorization: "Bearer s3cret" } },
        env,
      );
      expect(trimmed.status).toBe(200);
      const wrong = await app.request("/cron", { headers: { authorization: "Bearer s3cre" } }, env);
      expect(wrong.status).toBe(401);
      expect(runs).toEqual(["2026-11-23T10:05:00Z"]);
    },
  );

  it("treats a CRON_SECRET of only whitespace as not configured: 500 naming it, nothing written", async () => {
    const { app, runs } = makeApp({ secret: " \n" });
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const response = await app.request("/cron/tick", { headers: { authorization: "Bearer x" } });
    expect(response.status).toBe(500);
    expect(await errorOf(response)).toMatch(/CRON_SECRET is not configured/);
    expect(errors).toHaveBeenCalled();
    expect(runs).toEqual([]);
    expect(await keysWritten()).toEqual([]);
  });

  it.each([
    ["non-ASCII letters", "pässwörd-Ω"],
    ["a NUL inside", "s3\u0000cret"],
    ["a newline inside", "s3\ncret"],
    ["DEL inside", "s3\u007fcret"],
  ])(
    "treats a CRON_SECRET with %s as not configured: no header can carry it, so 500 without quoting it, nothing written",
    async (_label, secret) => {
      const { app, runs } = makeApp({ secret });
      const errors = vi.spyOn(console, "error").mockImplementation(() => {});
      // what a client can send: the UTF-8 bytes, read back as Latin-1
      const sent = Buffer.from(secret, "utf8")
        .toString("latin1")
        .replace(/[\0\n\x7f]/g, "");
      const response = await app.request("/cron/tick", {
        headers: { authorization: `Bearer ${sent}` },
      });
      expect(response.status).toBe(500);
      const error = await errorOf(response);
      expect(error).toMatch(/CRON_SECRET is not configured .*cannot carry; use printable ASCII/);
      expect(error).not.toContain(secret);
      expect(errors).toHaveBeenCalled();
      expect(runs).toEqual([]);
      expect(await keysWritten()).toEqual([]);
    },
  );

  it("takes a CRON_SECRET with spaces and tabs inside (printable ASCII is enough)", async () => {
    const { app, runs } = makeApp({ secret: "two words\tand a tab" });
    const response = await app.request("/cron/tick", {
      headers: { authorization: "Bearer two words\tand a tab" },
    });
    expect(response.status).toBe(200);
    expect(runs).toHaveLength(1);
  });

  it("says only its name on GET / without authentication: no job names", async () => {
    const { app } = makeApp();
    const response = await app.request("/");
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ name: "cron-guard" });
    expect(text).not.toMatch(/tick|boom/);
  });

  it("refuses to run at all when CRON_SECRET is not configured", async () => {
    const { app, runs } = makeApp({ secret: undefined });
    const response = await app.request("/cron/tick", { headers: auth });
    expect(response.status).toBe(500);
    expect(await errorOf(response)).toMatch(/CRON_SECRET is not configured/);
    expect(runs).toEqual([]);
    expect(await keysWritten()).toEqual([]);
  });

  it("answers unknown jobs 404, other methods 405, all JSON, writing nothing", async () => {
    const { app } = makeApp();
    const cases: [string, string, number][] = [
      ["GET", "/cron/nope", 404],
      ["GET", "/cron/bad%20name", 404],
      ["GET", "/cron/nope/status", 404],
      ["PUT", "/cron/tick", 405],
      ["PATCH", "/cron/tick", 405],
      ["OPTIONS", "/cron/tick", 405],
      ["DELETE", "/cron/tick", 405],
      ["POST", "/cron", 405],
      ["POST", "/cron/tick/status", 405],
      ["GET", "/elsewhere", 404],
    ];
    for (const [method, path, status] of cases) {
      const response = await app.request(path, { method, headers: auth });
      expect(response.status, `${method} ${path}`).toBe(status);
      expect(typeof (await errorOf(response))).toBe("string");
    }
    expect(await keysWritten()).toEqual([]);
  });

  it("never claims on HEAD: 405 JSON with Allow on /cron/:job, even with a past ?slot=, nothing written", async () => {
    const { app, runs } = makeApp();
    for (const path of ["/cron/tick", "/cron/tick?slot=2026-11-23T09:55:00Z", "/cron/nope"]) {
      const response = await app.request(path, { method: "HEAD", headers: auth });
      expect(response.status, path).toBe(405);
      expect(response.headers.get("allow")).toBe("GET, POST");
      expect(response.headers.get("content-type")).toMatch(/application\/json/);
      expect(response.headers.get("cron-guard-status")).toBeNull();
    }
    const unauthenticated = await app.request("/cron/tick", { method: "HEAD" });
    expect(unauthenticated.status).toBe(401);
    expect(runs).toEqual([]);
    expect(await keysWritten()).toEqual([]);
    // The same path with GET still runs: HEAD did not take the slot.
    const get = await app.request("/cron/tick?slot=2026-11-23T09:55:00Z", { headers: auth });
    expect(get.status).toBe(200);
  });

  it("answers HEAD on the read-only routes like GET without a body, writing nothing", async () => {
    const { app, runs } = makeApp();
    const cases: [string, Record<string, string>, number][] = [
      ["/", {}, 200],
      ["/cron", auth, 200],
      ["/cron", {}, 401],
      ["/cron/tick/status", auth, 200],
      ["/cron/tick/status", {}, 401],
      ["/cron/nope/status", auth, 404],
      ["/elsewhere", {}, 404],
    ];
    for (const [path, headers, status] of cases) {
      const response = await app.request(path, { method: "HEAD", headers });
      expect(response.status, `HEAD ${path}`).toBe(status);
      expect(await response.text()).toBe("");
    }
    expect(runs).toEqual([]);
    expect(await keysWritten()).toEqual([]);
  });

  it("lists jobs with their next fire times", async () => {
    const { app } = makeApp();
    const response = await app.request("/cron", { headers: auth });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      jobs: [
        {
          name: "tick",
          cron: "*/5 * * * *",
          timezone: "UTC",
          next: ["2026-11-23T10:10:00Z", "2026-11-23T10:15:00Z", "2026-11-23T10:20:00Z"],
        },
        {
          name: "boom",
          cron: "0 * * * *",
          timezone: "UTC",
          next: ["2026-11-23T11:00:00Z", "2026-11-23T12:00:00Z", "2026-11-23T13:00:00Z"],
        },
      ],
    });
  });

  it("answers 500 JSON when the handler throws, records it, and lets a retry run (release)", async () => {
    const { app } = makeApp();
    const first = await app.request("/cron/boom", { headers: auth });
    expect(first.status).toBe(500);
    expect(first.headers.get("cron-guard-status")).toBe("failed");
    expect(await first.json()).toMatchObject({
      error: expect.stringMatching(/kaput/),
      job: "boom",
    });
    const retry = await app.request("/cron/boom", { headers: auth });
    expect(retry.status).toBe(500);
    const status = (await (await app.request("/cron/boom/status", { headers: auth })).json()) as {
      runs: { status: string }[];
    };
    expect(status.runs.map((r) => r.status)).toEqual(["failed", "failed"]);
  });

  it("answers 503 JSON when the store is down and does not run the job", async () => {
    const down = new Redis({ url: "http://127.0.0.1:9", token: "x", retry: false });
    const { app, runs } = makeApp({ redis: down });
    const response = await app.request("/cron/tick", { headers: auth });
    expect(response.status).toBe(503);
    expect(await errorOf(response)).toMatch(/store unreachable: the job did not run/);
    expect(runs).toEqual([]);
  });

  it("answers 503 with what happens to the slot, never the store's message or the command", async () => {
    const real = upstash({ autoPipelining: false });
    await makeApp({ redis: real }).app.request("/cron/tick?slot=2026-11-23T09:00:00Z", {
      headers: auth,
    }); // loads the scripts, so the fault below hits the claim that runs
    let lost = 0;
    const losesClaimAnswers = {
      eval: real.eval.bind(real),
      async evalsha<A extends unknown[], T>(sha: string, keys: string[], args: A): Promise<T> {
        const reply = await real.evalsha<A, T>(sha, keys, args);
        if (keys[0]?.includes(":slot:") && keys.length === 7 && lost === 0) {
          lost += 1;
          throw new Error(`Redis unavailable: timeout, command was: ${JSON.stringify(args)}`);
        }
        return reply;
      },
    } as unknown as Redis;
    vi.spyOn(console, "error").mockImplementation(() => {});
    const { app, runs } = makeApp({ redis: losesClaimAnswers });
    const response = await app.request("/cron/tick", { headers: auth });
    expect(response.status).toBe(503);
    const text = await response.text();
    expect(text).not.toMatch(/command was|evalsha|[0-9a-f]{8}-[0-9a-f]{4}-/);
    expect(JSON.parse(text)).toMatchObject({
      reason: "unreachable",
      claim: "withdrawing",
      job: "tick",
      slot: "2026-11-23T10:05:00Z",
    });
    expect(JSON.parse(text).error).toMatch(/did not run.*being withdrawn.*free again by/);
    expect(runs).toEqual([]);
    // The withdrawal landed: the next delivery runs the slot instead of skipping it as running.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const retry = await makeApp({ redis: real }).app.request("/cron/tick", { headers: auth });
    expect(retry.status).toBe(200);
  });

  it("answers 503 rejected, not unreachable, when the store refuses the claim", async () => {
    const redis = await directRedis();
    await redis.hSet(`${prefix()}:{tick}:slot:2026-11-23T10:05:00Z`, "not", "a string");
    vi.spyOn(console, "error").mockImplementation(() => {});
    const { app, runs } = makeApp();
    const response = await app.request("/cron/tick", { headers: auth });
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ reason: "rejected", claim: "none" });
    expect(runs).toEqual([]);
  });

  it("runs Cloudflare scheduled events once per scheduledTime for every job on that cron", async () => {
    const { app, runs } = makeApp();
    const event = { cron: "*/5 * * * *", scheduledTime: Date.UTC(2026, 10, 23, 10, 5) };
    const [a, b] = await Promise.all([app.runScheduled(event, {}), app.runScheduled(event, {})]);
    const statuses = [...(a ?? []), ...(b ?? [])].map((run) => run.result.status).sort();
    expect(statuses).toEqual(["ran", "skipped"]);
    expect(runs).toEqual(["2026-11-23T10:05:00Z"]);
  });

  it("matches scheduled events to jobs by meaning: */1 is *, 00 08 is 0 8, MON is 1", async () => {
    const ran: string[] = [];
    const job = (name: string, cron: string): CronJob<Bindings, Redis> => ({
      name,
      cron,
      handler: ({ slot }) => {
        ran.push(`${name}@${slot}`);
      },
    });
    const app = createCronApp({
      jobs: [job("minutely", "* * * * *"), job("daily", "0 8 * * *"), job("monday", "0 8 * * 1")],
      redis: upstash(),
      cronSecret: () => SECRET,
      guardOptions: { prefix: prefix(), clock: () => NOW },
    });
    const monday8 = Date.UTC(2026, 10, 23, 8, 0);
    const runs = [
      ...(await app.runScheduled({ cron: "*/1 * * * *", scheduledTime: monday8 }, {})),
      ...(await app.runScheduled({ cron: "00 08 * * *", scheduledTime: monday8 }, {})),
      ...(await app.runScheduled({ cron: "0 8 * * MON", scheduledTime: monday8 }, {})),
    ];
    expect(runs.map((run) => [run.job, run.result.status])).toEqual([
      ["minutely", "ran"],
      ["daily", "ran"],
      ["monday", "ran"],
    ]);
    expect(ran).toEqual([
      "minutely@2026-11-23T08:00:00Z",
      "daily@2026-11-23T08:00:00Z",
      "monday@2026-11-23T08:00:00Z",
    ]);
  });

  it("reports a scheduled cron that matches no job loudly and in the result, writing nothing", async () => {
    const { app, runs } = makeApp();
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const scheduledTime = Date.UTC(2026, 10, 23, 10, 7);
    const result = await app.runScheduled({ cron: "7 * * * *", scheduledTime }, {});
    expect(result).toEqual([
      {
        job: null,
        slot: "2026-11-23T10:07:00Z",
        result: {
          status: "unmatched",
          cron: "7 * * * *",
          jobs: [
            { name: "tick", cron: "*/5 * * * *" },
            { name: "boom", cron: "0 * * * *" },
          ],
          error: expect.stringMatching(/"7 \* \* \* \*" matches no job/),
        },
      },
    ]);
    expect(errors).toHaveBeenCalledTimes(1);
    const logged = String(errors.mock.calls[0]?.[0]);
    expect(logged).toContain("7 * * * *");
    expect(logged).toContain("tick: */5 * * * *");
    expect(logged).toContain("boom: 0 * * * *");
    const garbage = await app.runScheduled({ cron: "every minute", scheduledTime }, {});
    expect(garbage[0]?.result.status).toBe("unmatched");
    expect(runs).toEqual([]);
    expect(await keysWritten()).toEqual([]);
  });

  it("accepts an x-vercel-cron-schedule that means the job's schedule", async () => {
    const { app, runs } = makeApp();
    const equivalent = await app.request("/cron/tick", {
      headers: { ...auth, "x-vercel-cron-schedule": "0-59/5 * * * *" },
    });
    expect(equivalent.status).toBe(200);
    expect(await equivalent.json()).toMatchObject({ value: { trigger: "vercel" } });
    for (const schedule of ["*/10 * * * *", "every five minutes"]) {
      const other = await app.request("/cron/tick", {
        headers: { ...auth, "x-vercel-cron-schedule": schedule },
      });
      expect(other.status, schedule).toBe(400);
      expect(await errorOf(other)).toMatch(/not this job's schedule/);
    }
    expect(runs).toEqual(["2026-11-23T10:05:00Z"]);
  });

  it("snaps an unaligned scheduledTime (wrangler dev) to the schedule, so HTTP triggers dedupe with it", async () => {
    const { app, runs } = makeApp();
    const [scheduled] = await app.runScheduled(
      { cron: "*/5 * * * *", scheduledTime: Date.UTC(2026, 10, 23, 10, 7, 12, 345) },
      {},
    );
    expect(scheduled).toMatchObject({ job: "tick", slot: "2026-11-23T10:05:00Z" });
    expect(scheduled?.result.status).toBe("ran");
    const manual = await app.request("/cron/tick", { method: "POST", headers: auth });
    expect(manual.status).toBe(204);
    expect(manual.headers.get("cron-guard-slot")).toBe("2026-11-23T10:05:00Z");
    expect(runs).toEqual(["2026-11-23T10:05:00Z"]);
  });
});
