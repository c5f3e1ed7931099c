import { type Context, type Handler, Hono } from "hono";
import { describe, expect, it } from "vitest";
import { directRedis, upstash, useKeyPrefix } from "../../../test/support/harness.js";
import { ConfigError, createGuard } from "../../core/index.js";
import { cronGuard } from "./index.js";

const NOW = Date.UTC(2026, 10, 23, 10, 0, 2);

describe("cronGuard middleware", () => {
  const prefix = useKeyPrefix("mw");

  function appWith(handler: Handler) {
    const guard = createGuard({ redis: upstash(), prefix: prefix(), clock: () => NOW });
    const app = new Hono();
    app.get("/hourly", cronGuard({ guard, job: "hourly", cron: "0 * * * *" }), handler);
    return app;
  }

  it("lets the first invocation through with ran headers and skips the next with 204", async () => {
    const app = appWith((c) =>
      c.text(`slot ${c.get("cronGuard").slot} fence ${c.get("cronGuard").fence}`),
    );
    const ran = await app.request("/hourly");
    expect(ran.status).toBe(200);
    expect(await ran.text()).toMatch(/^slot 2026-11-23T10:00:00Z fence \d+$/);
    expect(ran.headers.get("cron-guard-status")).toBe("ran");
    expect(ran.headers.get("content-type")).toMatch(/text\/plain/);
    const skipped = await app.request("/hourly");
    expect(skipped.status).toBe(204);
    expect(skipped.headers.get("cron-guard-reason")).toBe("done");
  });

  it("records a handler's 5xx answer as a failure so a retry may run", async () => {
    let calls = 0;
    const app = appWith((c) => {
      calls += 1;
      return c.json({ error: "upstream down" }, calls === 1 ? 502 : 200);
    });
    const failed = await app.request("/hourly");
    expect(failed.status).toBe(500);
    expect(await failed.json()).toMatchObject({ error: expect.stringMatching(/HTTP 502/) });
    const retried = await app.request("/hourly");
    expect(retried.status).toBe(200);
    expect(calls).toBe(2);
  });

  it("answers 500 JSON when the handler throws", async () => {
    const app = appWith(() => {
      throw new Error("disk full");
    });
    const response = await app.request("/hourly");
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ error: expect.stringMatching(/disk full/) });
  });

  it("rejects an invalid job name or cron when the middleware is created", () => {
    const guard = createGuard({ redis: upstash(), prefix: prefix() });
    expect(() => cronGuard({ guard, job: "no spaces", cron: "* * * * *" })).toThrow(
      /invalid job name/,
    );
    expect(() => cronGuard({ guard, job: "ok", cron: "every minute" })).toThrow(/cron/);
  });

  it("rejects a skew tolerance of half the period or more when the middleware is created", async () => {
    const guard = createGuard({ redis: upstash(), prefix: prefix(), skewToleranceMs: 40_000 });
    let caught: unknown;
    try {
      cronGuard({ guard, job: "heartbeat", cron: "* * * * *" });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).option).toBe("skewToleranceMs");
    expect((caught as ConfigError).message).toMatch(/job "heartbeat".*40000 ms/);
    expect(() => cronGuard({ guard, job: "hourly", cron: "0 * * * *" })).not.toThrow();
  });

  it("rejects a too large tolerance of a per-request guard on its first request, writing nothing", async () => {
    const guard = createGuard({
      redis: upstash(),
      prefix: prefix(),
      clock: () => NOW,
      skewToleranceMs: 40_000,
    });
    const app = new Hono();
    let runs = 0;
    app.get(
      "/minutely",
      cronGuard({ guard: () => guard, job: "minutely", cron: "* * * * *" }),
      (c) => {
        runs += 1;
        return c.text("ran");
      },
    );
    const response = await app.request("/minutely");
    expect(response.status).toBe(500);
    expect(await response.text()).toMatch(/skewToleranceMs/);
    expect(runs).toBe(0);
    const redis = await directRedis();
    expect(await redis.keys(`${prefix()}*`)).toEqual([]);
  });

  it("never claims on HEAD or another method, even mounted with app.all: 405 JSON, nothing written", async () => {
    const guard = createGuard({ redis: upstash(), prefix: prefix(), clock: () => NOW });
    const app = new Hono();
    let runs = 0;
    const handler = (c: Context) => {
      runs += 1;
      return c.text("ran");
    };
    app.get("/hourly", cronGuard({ guard, job: "hourly", cron: "0 * * * *" }), handler);
    app.all("/any", cronGuard({ guard, job: "any", cron: "0 * * * *" }), handler);
    const cases: [string, string][] = [
      ["HEAD", "/hourly"],
      ["HEAD", "/hourly?slot=2026-11-23T09:00:00Z"],
      ["HEAD", "/any"],
      ["PUT", "/any"],
      ["DELETE", "/any"],
    ];
    for (const [method, path] of cases) {
      const response = await app.request(path, { method });
      expect(response.status, `${method} ${path}`).toBe(405);
      expect(response.headers.get("allow")).toBe("GET, POST");
      expect(response.headers.get("content-type")).toMatch(/application\/json/);
      if (method !== "HEAD") {
        expect(await response.json()).toEqual({ error: expect.stringMatching(/GET or POST/) });
      }
    }
    expect(runs).toBe(0);
    const redis = await directRedis();
    expect(await redis.keys(`${prefix()}*`)).toEqual([]);
    expect((await app.request("/any", { method: "POST" })).status).toBe(200);
  });
});
