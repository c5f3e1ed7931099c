import { type Context, type Handler, Hono } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { describe, expect, it } from "vitest";
import { directRedis, upstash, useKeyPrefix } from "../../../test/support/harness.js";
import { ConfigError, createGuard } from "../../core/index.js";
import { cronGuard } from "./index.js";

const NOW = Date.UTC(2026, 10, 23, 10, 0, 2);
const SECRET = "middleware-test-secret";

/** A request that carries the middleware's bearer secret. */
function authorized(init: RequestInit = {}): RequestInit {
  return { ...init, headers: { authorization: `Bearer ${SECRET}`, ...init.headers } };
}

describe("cronGuard middleware", () => {
  const prefix = useKeyPrefix("mw");

  function appWith(handler: Handler) {
    const guard = createGuard({ redis: upstash(), prefix: prefix(), clock: () => NOW });
    const app = new Hono();
    app.get(
      "/hourly",
      cronGuard({ secret: SECRET, guard, job: "hourly", cron: "0 * * * *" }),
      handler,
    );
    return app;
  }

  it("lets the first invocation through with ran headers and skips the next with 204", async () => {
    const app = appWith((c) =>
      c.text(`slot ${c.get("cronGuard").slot} fence ${c.get("cronGuard").fence}`),
    );
    const ran = await app.request("/hourly", authorized());
    expect(ran.status).toBe(200);
    expect(await ran.text()).toMatch(/^slot 2026-11-23T10:00:00Z fence \d+$/);
    expect(ran.headers.get("cron-guard-status")).toBe("ran");
    expect(ran.headers.get("content-type")).toMatch(/text\/plain/);
    const skipped = await app.request("/hourly", authorized());
    expect(skipped.status).toBe(204);
    expect(skipped.headers.get("cron-guard-reason")).toBe("done");
  });

  it("records a handler's 5xx answer as a failure so a retry may run", async () => {
    let calls = 0;
    const app = appWith((c) => {
      calls += 1;
      return c.json({ error: "upstream down" }, calls === 1 ? 502 : 200);
    });
    const failed = await app.request("/hourly", authorized());
    expect(failed.status).toBe(500);
    expect(await failed.json()).toMatchObject({ error: expect.stringMatching(/HTTP 502/) });
    const retried = await app.request("/hourly", authorized());
    expect(retried.status).toBe(200);
    expect(calls).toBe(2);
  });

  it("answers 500 JSON when the handler throws", async () => {
    const app = appWith(() => {
      throw new Error("disk full");
    });
    const response = await app.request("/hourly", authorized());
    expect(response.status).toBe(500);
    expect(await response.json()).toMatchObject({ error: expect.stringMatching(/disk full/) });
  });

  it("rejects an invalid job name or cron when the middleware is created", () => {
    const guard = createGuard({ redis: upstash(), prefix: prefix() });
    expect(() => cronGuard({ secret: SECRET, guard, job: "no spaces", cron: "* * * * *" })).toThrow(
      /invalid job name/,
    );
    expect(() => cronGuard({ secret: SECRET, guard, job: "ok", cron: "every minute" })).toThrow(
      /cron/,
    );
  });

  it("rejects a skew tolerance of half the period or more when the middleware is created", async () => {
    const guard = createGuard({ redis: upstash(), prefix: prefix(), skewToleranceMs: 40_000 });
    let caught: unknown;
    try {
      cronGuard({ secret: SECRET, guard, job: "heartbeat", cron: "* * * * *" });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).option).toBe("skewToleranceMs");
    expect((caught as ConfigError).message).toMatch(/job "heartbeat".*40000 ms/);
    expect(() =>
      cronGuard({ secret: SECRET, guard, job: "hourly", cron: "0 * * * *" }),
    ).not.toThrow();
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
      cronGuard({ secret: SECRET, guard: () => guard, job: "minutely", cron: "* * * * *" }),
      (c) => {
        runs += 1;
        return c.text("ran");
      },
    );
    const response = await app.request("/minutely", authorized());
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
    app.get(
      "/hourly",
      cronGuard({ secret: SECRET, guard, job: "hourly", cron: "0 * * * *" }),
      handler,
    );
    app.all("/any", cronGuard({ secret: SECRET, guard, job: "any", cron: "0 * * * *" }), handler);
    const cases: [string, string][] = [
      ["HEAD", "/hourly"],
      ["HEAD", "/hourly?slot=2026-11-23T09:00:00Z"],
      ["HEAD", "/any"],
      ["PUT", "/any"],
      ["DELETE", "/any"],
    ];
    for (const [method, path] of cases) {
      const response = await app.request(path, authorized({ method }));
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
    expect((await app.request("/any", authorized({ method: "POST" }))).status).toBe(200);
  });

  describe("is secure by default", () => {
    it("refuses to be created without a secret or an explicit allowUnauthenticated", () => {
      const guard = createGuard({ redis: upstash(), prefix: prefix() });
      const attempts: [string, () => unknown][] = [
        ["neither", () => cronGuard({ guard, job: "hourly", cron: "0 * * * *" })],
        [
          "both",
          () =>
            cronGuard({
              guard,
              job: "hourly",
              cron: "0 * * * *",
              secret: SECRET,
              allowUnauthenticated: true,
            }),
        ],
        ["blank", () => cronGuard({ guard, job: "hourly", cron: "0 * * * *", secret: "  " })],
        [
          "non-ASCII",
          () => cronGuard({ guard, job: "hourly", cron: "0 * * * *", secret: "geheimnis-ä" }),
        ],
        [
          "opt-out false",
          () => cronGuard({ guard, job: "hourly", cron: "0 * * * *", allowUnauthenticated: false }),
        ],
      ];
      for (const [what, create] of attempts) {
        let caught: unknown;
        try {
          create();
        } catch (error) {
          caught = error;
        }
        expect(caught, what).toBeInstanceOf(ConfigError);
        expect((caught as ConfigError).option, what).toBe("secret");
      }
    });

    it("answers 401 to a missing or wrong bearer, a backfill included, and runs and writes nothing", async () => {
      const guard = createGuard({ redis: upstash(), prefix: prefix(), clock: () => NOW });
      const app = new Hono();
      let runs = 0;
      const handler = (c: Context) => {
        runs += 1;
        return c.text("ran");
      };
      app.on(
        ["GET", "POST"],
        "/hourly",
        cronGuard({ secret: SECRET, guard, job: "hourly", cron: "0 * * * *" }),
        handler,
      );
      const cases: [string, RequestInit][] = [
        ["/hourly", {}],
        ["/hourly", { method: "POST" }],
        ["/hourly?slot=2026-11-23T09:00:00Z", {}],
        ["/hourly?slot=2026-11-23T09:00:00Z&force=true", { method: "POST" }],
        ["/hourly", { headers: { authorization: "Bearer wrong" } }],
        ["/hourly", { headers: { authorization: `Bearer ${SECRET}x` } }],
        ["/hourly", { headers: { authorization: `Basic ${btoa(`u:${SECRET}`)}` } }],
        ["/hourly", { headers: { authorization: "Bearer" } }],
      ];
      for (const [path, init] of cases) {
        const response = await app.request(path, init);
        expect(response.status, `${path} ${JSON.stringify(init)}`).toBe(401);
        expect(await response.json()).toEqual({ error: expect.stringMatching(/Bearer/) });
      }
      expect(runs).toBe(0);
      const redis = await directRedis();
      expect(await redis.keys(`${prefix()}*`)).toEqual([]);
      expect((await app.request("/hourly", authorized())).status).toBe(200);
      expect(runs).toBe(1);
    });

    it("reads a per-request secret (Worker bindings) and answers 500 without one, writing nothing", async () => {
      const guard = createGuard({ redis: upstash(), prefix: prefix(), clock: () => NOW });
      const app = new Hono<{ Bindings: { CRON_SECRET?: string } }>();
      app.get(
        "/hourly",
        cronGuard({
          secret: (c) => c.env.CRON_SECRET,
          guard,
          job: "hourly",
          cron: "0 * * * *",
        }),
        (c) => c.json({ fence: c.get("cronGuard").fence }),
      );
      const unconfigured = await app.request("/hourly", authorized(), {});
      expect(unconfigured.status).toBe(500);
      expect(await unconfigured.json()).toEqual({ error: expect.stringMatching(/not configured/) });
      const redis = await directRedis();
      expect(await redis.keys(`${prefix()}*`)).toEqual([]);
      const ran = await app.request("/hourly", authorized(), { CRON_SECRET: `${SECRET}\n` });
      expect(ran.status).toBe(200);
      expect(await ran.json()).toEqual({ fence: expect.any(Number) });
    });

    it("runs behind the app's own auth with allowUnauthenticated: true", async () => {
      const guard = createGuard({ redis: upstash(), prefix: prefix(), clock: () => NOW });
      const app = new Hono();
      app.use("/jobs/*", bearerAuth({ token: "own-token" }));
      app.post(
        "/jobs/cleanup",
        cronGuard({ allowUnauthenticated: true, guard, job: "cleanup", cron: "0 * * * *" }),
        (c) => c.text(`fence ${c.get("cronGuard").fence}`),
      );
      expect((await app.request("/jobs/cleanup", { method: "POST" })).status).toBe(401);
      const ran = await app.request("/jobs/cleanup", {
        method: "POST",
        headers: { authorization: "Bearer own-token" },
      });
      expect(ran.status).toBe(200);
      expect(await ran.text()).toMatch(/^fence \d+$/);
    });
  });

  it("types the fence as a number under the default policy and the variable only after the middleware", () => {
    const closed = createGuard({ redis: upstash(), prefix: prefix() });
    const open = createGuard({ redis: upstash(), prefix: prefix(), onStoreError: "open" });
    const app = new Hono();
    app.get(
      "/closed",
      cronGuard({ secret: SECRET, guard: closed, job: "a", cron: "0 * * * *" }),
      (c) => {
        const fence: number = c.get("cronGuard").fence;
        return c.text(String(fence));
      },
    );
    app.get(
      "/open",
      cronGuard({ secret: SECRET, guard: open, job: "b", cron: "0 * * * *" }),
      (c) => {
        // @ts-expect-error under onStoreError "open" a run may hold no claim: the fence may be null
        const fence: number = c.get("cronGuard").fence;
        return c.text(String(fence));
      },
    );
    app.get("/unguarded", (c) =>
      // @ts-expect-error a route without the middleware has no cronGuard variable
      c.text(String(c.get("cronGuard"))),
    );
    expect(new Set(app.routes.map((route) => route.path))).toEqual(
      new Set(["/closed", "/open", "/unguarded"]),
    );
  });
});
