/**
 * The cloudflare:test / cloudflare:workers APIs the scheduled() tests build on, checked once
 * against the real Worker from wrangler.toml (examples/worker.ts).
 */
import {
  createExecutionContext,
  createScheduledController,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { Redis } from "@upstash/redis/cloudflare";
import { describe, expect, it } from "vitest";
import worker from "../../examples/worker.js";

describe("vitest-pool-workers APIs against the wrangler.toml Worker", () => {
  it("drives scheduled() with createScheduledController and waits on its ExecutionContext", async () => {
    const scheduledTime = Date.UTC(2018, 0, 1) + Math.floor(Math.random() * 500_000) * 60_000;
    const controller = createScheduledController({ scheduledTime, cron: "* * * * *" });
    const ctx = createExecutionContext();
    await worker.scheduled(controller, env as unknown as Record<string, unknown>, ctx);
    await waitOnExecutionContext(ctx);

    const slot = new Date(scheduledTime).toISOString().replace(".000Z", "Z");
    const redis = new Redis({
      url: env.UPSTASH_REDIS_REST_URL,
      token: env.UPSTASH_REDIS_REST_TOKEN,
    });
    const records = await redis.lrange<{ slot: string }>("cron-guard:example:heartbeat", 0, -1);
    expect(records.filter((record) => record.slot === slot)).toHaveLength(1);
  });

  it("reaches the Worker's fetch through exports.default from cloudflare:workers", async () => {
    const response = await exports.default.fetch("http://worker.test/cron/heartbeat", {
      method: "POST",
    });
    expect(response.status).toBe(401);
    await response.arrayBuffer();
  });
});
