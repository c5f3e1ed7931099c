import { env } from "cloudflare:workers";
import { Redis } from "@upstash/redis/cloudflare";
import { describe, expect, it } from "vitest";
import { createDispatcher, createScheduleRegistry } from "../../src/core/schedules/index.js";

describe("the schedule registry and dispatcher inside workerd", () => {
  it("registers schedules and dispatches each due fire once across concurrent ticks", async () => {
    const redis = new Redis({
      url: env.UPSTASH_REDIS_REST_URL,
      token: env.UPSTASH_REDIS_REST_TOKEN,
    });
    const prefix = `workerd-dispatch-${crypto.randomUUID()}`;
    let now = Date.UTC(2026, 0, 1, 8, 0, 30);
    const clock = () => now;
    const registry = createScheduleRegistry({ redis, prefix, handlers: ["count"], clock });
    for (let i = 0; i < 20; i += 1) {
      await registry.upsert({ id: `w${i}`, cron: "* * * * *", handler: "count" });
    }
    now += 60_000;
    const ran: string[] = [];
    const tick = () =>
      createDispatcher({
        redis,
        prefix,
        handlers: { count: ({ schedule, slot }) => ran.push(`${schedule.id}@${slot}`) },
        guardOptions: { clock },
        maxCalls: 1_000,
      }).tick();
    const ticks = await Promise.all([tick(), tick(), tick()]);
    expect(ticks.reduce((sum, t) => sum + t.ran, 0)).toBe(20);
    expect(new Set(ran).size).toBe(20);
    expect(ran).toHaveLength(20);
  });
});
