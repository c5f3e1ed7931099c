import type { ExecutionContext } from "hono";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createCronApp } from "../../src/hono/index.js";
import { toWorker } from "../../src/platforms/cloudflare.js";
import { directRedis, upstash, useKeyPrefix } from "../support/harness.js";

describe("the Cloudflare entry's scheduled()", () => {
  const prefix = useKeyPrefix("cloudflare");
  afterEach(() => {
    vi.restoreAllMocks();
  });

  function worker(ran: string[]) {
    const app = createCronApp({
      jobs: [
        {
          name: "minutely",
          cron: "* * * * *",
          handler: ({ slot }) => ran.push(`minutely@${slot}`),
        },
        { name: "monday", cron: "0 8 * * 1", handler: ({ slot }) => ran.push(`monday@${slot}`) },
      ],
      redis: upstash(),
      cronSecret: () => "s3cret",
      guardOptions: { prefix: prefix() },
    });
    return toWorker(app);
  }

  function context() {
    const pending: Promise<unknown>[] = [];
    const ctx = {
      waitUntil: (promise: Promise<unknown>) => pending.push(promise),
      passThroughOnException: () => {},
    } as unknown as ExecutionContext;
    return { ctx, settled: () => Promise.allSettled(pending) };
  }

  it("runs the job whose cron wrangler.toml spells differently", async () => {
    const ran: string[] = [];
    const logs = vi.spyOn(console, "log").mockImplementation(() => {});
    const { ctx, settled } = context();
    const scheduledTime = Date.UTC(2026, 10, 23, 8, 0);
    await worker(ran).scheduled({ cron: "0 08 * * MON", scheduledTime }, {}, ctx);
    await worker(ran).scheduled({ cron: "*/1 * * * *", scheduledTime }, {}, ctx);
    await settled();
    expect(ran).toEqual(["monday@2026-11-23T08:00:00Z", "minutely@2026-11-23T08:00:00Z"]);
    expect(logs.mock.calls.map(([line]) => JSON.parse(String(line)).status)).toEqual([
      "ran",
      "ran",
    ]);
  });

  it("logs a cron that matches no job as an error and as an unmatched run, writing nothing", async () => {
    const ran: string[] = [];
    const logs = vi.spyOn(console, "log").mockImplementation(() => {});
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const { ctx, settled } = context();
    await worker(ran).scheduled(
      { cron: "0 9 * * 1", scheduledTime: Date.UTC(2026, 10, 23, 9, 0) },
      {},
      ctx,
    );
    await settled();
    expect(ran).toEqual([]);
    expect(String(errors.mock.calls[0]?.[0])).toMatch(
      /"0 9 \* \* 1" matches no job.*minutely: \* \* \* \* \*, monday: 0 8 \* \* 1/,
    );
    expect(JSON.parse(String(logs.mock.calls[0]?.[0]))).toMatchObject({
      cronGuard: "scheduled",
      cron: "0 9 * * 1",
      job: null,
      status: "unmatched",
    });
    const redis = await directRedis();
    expect(await redis.keys(`${prefix()}*`)).toEqual([]);
  });
});
