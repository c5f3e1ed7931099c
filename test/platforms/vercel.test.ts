import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createVercelApp } from "../../src/platforms/vercel.js";
import { bridgeEnv, directRedis, useKeyPrefix } from "../support/harness.js";

const SECRET = "vercel-test-secret";
const auth = { authorization: `Bearer ${SECRET}` };

describe("the Vercel entry", () => {
  const prefix = useKeyPrefix("vercel");
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
  });

  function app() {
    return createVercelApp(
      [{ name: "ping", cron: "* * * * *", handler: ({ slot }) => ({ slot }) }],
      { guardOptions: { prefix: prefix() } },
    );
  }

  it("answers a Vercel cron GET once per slot with credentials from the environment", async () => {
    const { bridgeUrl, bridgeToken } = bridgeEnv();
    vi.stubEnv("UPSTASH_REDIS_REST_URL", bridgeUrl);
    vi.stubEnv("UPSTASH_REDIS_REST_TOKEN", bridgeToken);
    vi.stubEnv("CRON_SECRET", SECRET);
    const vercel = app();
    const headers = { ...auth, "x-vercel-cron-schedule": "* * * * *" };
    const first = await vercel.request("/cron/ping", { headers });
    const second = await vercel.request("/cron/ping", { headers });
    expect([first.status, second.status]).toEqual([200, 204]);
  });

  it("fails the request loudly, naming the variable, when Upstash credentials are missing", async () => {
    vi.stubEnv("UPSTASH_REDIS_REST_URL", "");
    vi.stubEnv("UPSTASH_REDIS_REST_TOKEN", "");
    vi.stubEnv("CRON_SECRET", SECRET);
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const response = await app().request("/cron/ping", { headers: auth });
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({
      error: expect.stringMatching(/UPSTASH_REDIS_REST_URL: is not set/),
    });
    expect(errors).toHaveBeenCalled();
    const redis = await directRedis();
    expect(await redis.keys(`${prefix()}*`)).toEqual([]);
  });

  it("refuses every /cron request when CRON_SECRET is missing", async () => {
    vi.stubEnv("CRON_SECRET", "");
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const response = await app().request("/cron/ping", { headers: auth });
    expect(response.status).toBe(500);
    expect(errors).toHaveBeenCalled();
  });
});

/**
 * How Vercel's Hono preset finds the entry of a zero-config deployment (vercel/vercel,
 * packages/hono/src/build.ts): the first of these files whose source imports "hono".
 */
const VERCEL_HONO_ENTRIES = [
  "app",
  "index",
  "server",
  "src/app",
  "src/index",
  "src/server",
].flatMap((name) =>
  ["js", "cjs", "mjs", "ts", "cts", "mts"].map((extension) => `${name}.${extension}`),
);
const IMPORTS_HONO = /(?:from|require|import)\s*(?:\(\s*)?["']hono["']\s*(?:\))?/;

describe("this repository's Vercel deployment", () => {
  const root = join(import.meta.dirname, "../..");

  it("is Hono's zero-config form: server.ts is the entry Vercel picks, and it is the example app", async () => {
    const entries = VERCEL_HONO_ENTRIES.filter((file) => existsSync(join(root, file))).filter(
      (file) => IMPORTS_HONO.test(readFileSync(join(root, file), "utf8")),
    );
    expect(entries[0]).toBe("server.ts");
    const [entry, example] = await Promise.all([
      import("../../server.js"),
      import("../../examples/vercel.js"),
    ]);
    expect(entry.default).toBe(example.default);
    const response = await entry.default.request("/");
    expect(await response.json()).toEqual({ name: "cron-guard" });
  });

  it("has no api/ function, rewrite or route table in vercel.json, only its crons", () => {
    const config = JSON.parse(readFileSync(join(root, "vercel.json"), "utf8")) as object;
    expect(Object.keys(config).sort()).toEqual(["$schema", "crons", "framework"]);
    expect(existsSync(join(root, "api"))).toBe(false);
  });
});
