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
