/**
 * Features as plug-ins (issue 22): an app bundles dynamic schedules, the dashboard and
 * /openapi.json only when given their plug-ins, and a Worker a quorum only with `store:
 * quorumStore`. An option that needs a plug-in it was not given is a ConfigError at creation; a
 * route of a feature the app lacks is a 404 that says which plug-in serves it; a quorum's
 * variables without the quorum store fail the request, writing nothing. Never a silent no-op.
 */
import type { Redis } from "@upstash/redis";
import type { ExecutionContext } from "hono";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ConfigError } from "../../src/core/errors.js";
import { type Bindings, type CronAppOptions, createCronApp } from "../../src/hono/index.js";
import { alerts } from "../../src/hono/plugins/alerts.js";
import { dashboard } from "../../src/hono/plugins/dashboard.js";
import { dynamicSchedules } from "../../src/hono/plugins/dynamic-schedules.js";
import { openApi } from "../../src/hono/plugins/openapi.js";
import { createWorker } from "../../src/platforms/cloudflare.js";
import { quorumStore } from "../../src/platforms/upstash-quorum.js";
import { bridgeEnv, directRedis, upstash, useKeyPrefix } from "../support/harness.js";

const SECRET = "s3cret-for-plugins";
const auth = { authorization: `Bearer ${SECRET}` };

describe("features as plug-ins", () => {
  const prefix = useKeyPrefix("plugins");
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const job = { name: "nightly", cron: "0 3 * * *", handler: () => "ran" };
  const app = (options: Partial<CronAppOptions<Redis, Bindings, "closed">> = {}) =>
    createCronApp<Redis>({
      redis: upstash(),
      jobs: [job],
      cronSecret: () => SECRET,
      guardOptions: { prefix: prefix() },
      ...options,
    });
  const errorOf = (create: () => unknown): ConfigError => {
    try {
      create();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return error as ConfigError;
    }
    throw new Error("expected a ConfigError");
  };

  it("refuses each schedules option without the plug-in at creation, saying what to import", () => {
    const given: Partial<CronAppOptions<Redis, Bindings, "closed">>[] = [
      { handlers: { mail: () => "mailed" } },
      { schedules: [{ id: "s", cron: "* * * * *", handler: "mail" }] },
      { dispatchCron: "*/5 * * * *" },
      { dispatch: { maxRequests: 10 } },
    ];
    for (const options of given) {
      const error = errorOf(() => app(options));
      expect(error.option).toBe(Object.keys(options)[0]);
      expect(error.message).toContain(
        'import { dynamicSchedules } from "cron-guard/dynamic-schedules" and pass plugins: [dynamicSchedules()]',
      );
    }
    // the same options with the plug-in make an app that serves /schedules
    expect(() =>
      app({ handlers: { mail: () => "mailed" }, plugins: [dynamicSchedules()] }),
    ).not.toThrow();
  });

  it("refuses alerts options without the alerts plug-in at creation, saying what to import", () => {
    const error = errorOf(() => app({ alerts: { url: "https://hooks.example/x" } }));
    expect(error.option).toBe("alerts");
    expect(error.message).toContain(
      'import { alerts } from "cron-guard/alerts" and pass plugins: [alerts()]',
    );
    expect(() =>
      app({ alerts: { url: "https://hooks.example/x" }, plugins: [alerts()] }),
    ).not.toThrow();
  });

  it("with CRON_GUARD_ALERT_URL set and no alerts plug-in, posts nothing and says so once", async () => {
    const posted: string[] = [];
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.startsWith("https://hooks.example/")) {
        posted.push(url);
        return Promise.resolve(new Response("ok"));
      }
      return realFetch(input, init);
    });
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const env = { CRON_GUARD_ALERT_URL: "https://hooks.example/alerts" };
    const failing = (plugins: ReturnType<typeof alerts>[]) =>
      app({
        jobs: [
          {
            name: "boom",
            cron: "* * * * *",
            handler: () => {
              throw new Error("boom");
            },
          },
        ],
        plugins,
      });
    const bare = failing([]);
    for (const slot of ["2026-12-07T10:00:00Z", "2026-12-07T10:01:00Z"]) {
      const response = await bare.request(`/cron/boom?slot=${slot}`, { headers: auth }, env);
      expect(response.status).toBe(500);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(posted).toEqual([]);
    const noPlugin = errors.mock.calls.filter(([line]) =>
      String(line).includes("CRON_GUARD_ALERT_URL is set but the app has no alerts plug-in"),
    );
    expect(noPlugin).toHaveLength(1);
    expect(String(noPlugin[0]?.[0])).toContain('import { alerts } from "cron-guard/alerts"');
    // the same app with the plug-in posts the failure
    const withAlerts = failing([alerts()]);
    const response = await withAlerts.request(
      "/cron/boom?slot=2026-12-07T10:02:00Z",
      { headers: auth },
      env,
    );
    expect(response.status).toBe(500);
    await vi.waitFor(() => expect(posted).toEqual(["https://hooks.example/alerts"]), {
      timeout: 5_000,
    });
  });

  it("refuses the schedules plug-in without handlers, a plug-in twice, and what is not a plug-in", () => {
    expect(errorOf(() => app({ plugins: [dynamicSchedules()] })).option).toBe("handlers");
    expect(errorOf(() => app({ plugins: [dashboard(), dashboard()] })).message).toMatch(
      /the dashboard plug-in is given twice/,
    );
    const uncalled = dashboard as unknown as ReturnType<typeof dashboard>;
    expect(errorOf(() => app({ plugins: [uncalled] })).message).toMatch(
      /is not a cron-guard plug-in.*\(call them\)/,
    );
    const notArray = dashboard() as unknown as ReturnType<typeof dashboard>[];
    expect(errorOf(() => app({ plugins: notArray })).option).toBe("plugins");
  });

  it("answers a feature's routes without its plug-in with a 404 naming the plug-in, writing nothing", async () => {
    const bare = app();
    for (const [method, path, hint] of [
      ["GET", "/dashboard", 'import { dashboard } from "cron-guard/dashboard"'],
      ["GET", "/dashboard/data", 'import { dashboard } from "cron-guard/dashboard"'],
      ["GET", "/openapi.json", 'import { openApi } from "cron-guard/openapi"'],
      ["PUT", "/schedules/s", 'import { dynamicSchedules } from "cron-guard/dynamic-schedules"'],
      ["POST", "/dispatch", 'import { dynamicSchedules } from "cron-guard/dynamic-schedules"'],
    ] as const) {
      const response = await bare.request(path, { method, headers: auth });
      expect(response.status, `${method} ${path}`).toBe(404);
      const { error } = (await response.json()) as { error: string };
      expect(error).toContain(`no route ${method} ${path}: the app has no`);
      expect(error).toContain(hint);
    }
    expect((await bare.request("/nowhere", { headers: auth })).status).toBe(404);
    expect(await (await bare.request("/nowhere", { headers: auth })).json()).toEqual({
      error: "no route GET /nowhere",
    });
    expect(bare.dispatchCron).toBeUndefined();
    const redis = await directRedis();
    expect(await redis.keys(`${prefix()}*`)).toEqual([]);
  });

  it("serves each feature once its plug-in is given", async () => {
    const full = app({
      handlers: { mail: () => "mailed" },
      plugins: [dynamicSchedules(), dashboard(), openApi()],
    });
    expect((await full.request("/dashboard")).status).toBe(200);
    expect((await full.request("/openapi.json", { headers: auth })).status).toBe(200);
    expect((await full.request("/schedules", { headers: auth })).status).toBe(200);
    expect(full.dispatchCron).toBe("* * * * *");
    expect((await full.request("/cron/nightly/status", { headers: auth })).status).toBe(200);
  });

  describe("a Worker's quorum", () => {
    const context = () => {
      const pending: Promise<unknown>[] = [];
      const ctx = {
        waitUntil: (promise: Promise<unknown>) => pending.push(promise),
        passThroughOnException: () => {},
      } as unknown as ExecutionContext;
      return { ctx, settled: () => Promise.allSettled(pending) };
    };
    const bindings = (quorum: boolean) => {
      const { bridgeUrl, bridgeToken } = bridgeEnv();
      return {
        UPSTASH_REDIS_REST_URL: bridgeUrl,
        UPSTASH_REDIS_REST_TOKEN: bridgeToken,
        CRON_SECRET: SECRET,
        ...(quorum
          ? Object.fromEntries(
              [1, 2, 3].flatMap((i) => [
                // the bridge refuses these tokens: no claim in the quorum can succeed
                [`UPSTASH_REDIS_REST_URL_${i}`, bridgeUrl],
                [`UPSTASH_REDIS_REST_TOKEN_${i}`, `not-the-token-${i}`],
              ]),
            )
          : {}),
      };
    };
    const request = () =>
      new Request("https://worker.example/cron/nightly", { method: "POST", headers: auth });

    it("without the quorum store, refuses the quorum's variables: a 500 naming the fix, nothing run or written", async () => {
      const errors = vi.spyOn(console, "error").mockImplementation(() => {});
      const ran: string[] = [];
      const worker = createWorker([{ ...job, handler: ({ slot }) => ran.push(slot) }], {
        guardOptions: { prefix: prefix() },
      });
      const { ctx, settled } = context();
      const response = await worker.fetch(request(), bindings(true), ctx);
      expect(response.status).toBe(500);
      expect(((await response.json()) as { error: string }).error).toContain(
        'UPSTASH_REDIS_REST_URL_1 is set (quorum mode) but the app has no quorum store: import { quorumStore } from "cron-guard/upstash-quorum"',
      );
      // the scheduled event runs nothing and reports why
      const runs = await worker.app.runScheduled(
        { cron: job.cron, scheduledTime: Date.UTC(2026, 11, 7, 3) },
        bindings(true),
      );
      expect(runs).toMatchObject([{ job: "nightly", result: { status: "error" } }]);
      expect(String((runs[0]?.result as { error?: unknown } | undefined)?.error)).toMatch(
        /no quorum store: import \{ quorumStore \}/,
      );
      await settled();
      expect(ran).toEqual([]);
      expect(errors).toHaveBeenCalled();
      const redis = await directRedis();
      expect(await redis.keys(`${prefix()}*`)).toEqual([]);
    });

    it("with store: quorumStore, claims in the quorum (refused here: 503), and in the one database without its variables", async () => {
      vi.spyOn(console, "error").mockImplementation(() => {});
      const ran: string[] = [];
      const worker = () =>
        createWorker([{ ...job, handler: ({ slot }) => ran.push(slot) }], {
          store: quorumStore,
          guardOptions: { prefix: prefix() },
        });
      const { ctx, settled } = context();
      const inQuorum = await worker().fetch(request(), bindings(true), ctx);
      expect(inQuorum.status).toBe(503);
      expect(ran).toEqual([]);
      const single = await worker().fetch(request(), bindings(false), ctx);
      expect(single.status).toBe(200);
      expect(ran).toHaveLength(1);
      await settled();
    });
  });
});
