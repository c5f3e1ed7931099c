import type { Redis } from "@upstash/redis";
import type { ScheduleInput } from "../src/core/schedules/index.js";
import type { AppScheduleHandler, Bindings, CronJob } from "../src/hono/index.js";

export interface ExampleJobsOptions {
  /** Where the example jobs keep their own data. Default `"cron-guard:example"`. */
  keyPrefix?: string;
}

export interface HeartbeatRecord {
  slot: string;
  fence: number | null;
  region: string;
  trigger: string;
  recordedAt: string;
}

/**
 * Two small, real jobs to replace with your own: a heartbeat that records every run it makes (so a
 * duplicate run would show as a second record for one slot) and a daily digest of those records.
 */
export function exampleJobs({
  keyPrefix = "cron-guard:example",
}: ExampleJobsOptions = {}): CronJob<Bindings, Redis>[] {
  const heartbeatKey = `${keyPrefix}:heartbeat`;
  return [
    {
      name: "heartbeat",
      cron: "* * * * *",
      leaseMs: 30_000,
      async handler({ redis, slot, fence, trigger, env }) {
        const record: HeartbeatRecord = {
          slot,
          fence,
          region: typeof env.REGION === "string" ? env.REGION : "",
          trigger,
          recordedAt: new Date().toISOString(),
        };
        await redis.lpush(heartbeatKey, JSON.stringify(record));
        await redis.ltrim(heartbeatKey, 0, 1_439);
        return { recorded: slot };
      },
    },
    {
      name: "daily-digest",
      cron: "0 8 * * *",
      onFailure: "keep",
      async handler({ redis, slot }) {
        const records = await redis.lrange<HeartbeatRecord>(heartbeatKey, 0, -1);
        const slots = new Set(records.map((record) => record.slot));
        const digest = { slot, heartbeats: records.length, distinctSlots: slots.size };
        await redis.set(`${keyPrefix}:digest:${slot}`, digest, { ex: 7 * 86_400 });
        return digest;
      },
    },
  ];
}

/**
 * Handlers that dynamic schedules (data in Redis, `PUT /schedules/:id`) name. `record` counts its
 * runs per slot in `<payload.key>:<slot>`, with the deployment's client, so anyone can check from
 * outside that each (schedule, fire) ran once, without reading cron-guard's own bookkeeping.
 */
export function exampleHandlers(): Record<string, AppScheduleHandler<Bindings, Redis>> {
  return {
    async record({ redis, slot, payload }) {
      const key = (payload as { key?: unknown } | null)?.key;
      // Any key but cron-guard's own (they carry a {hash tag}), so a schedule cannot bump a fence.
      if (typeof key !== "string" || !/^[A-Za-z0-9:._-]{1,200}$/.test(key)) {
        throw new Error('record needs a payload { "key": "<1-200 of A-Z a-z 0-9 : . _ ->" }');
      }
      const runs = await redis.incr(`${key}:${slot}`);
      await redis.expire(`${key}:${slot}`, 7 * 86_400);
      return { key: `${key}:${slot}`, runs };
    },
    /** Always throws: what a failing run looks like on the dashboard and in alerts. */
    fail({ payload }) {
      const reason = (payload as { reason?: unknown } | null)?.reason;
      throw new Error(typeof reason === "string" ? reason : "this handler always fails");
    },
  };
}

/**
 * A schedule that always fails, for the local stack only (`npm start`): its failed and dead fires
 * show on the dashboard and, with CRON_GUARD_ALERT_URL set, as alerts. Not part of the deployed
 * examples.
 */
export function failingSchedule(): ScheduleInput {
  return {
    id: "always-fails",
    cron: "*/5 * * * *",
    handler: "fail",
    payload: { reason: "demo: the upstream answered 502" },
    maxAttempts: 2,
  };
}

/** One schedule declared in code, upserted idempotently at start: a redeploy changes nothing. */
export function exampleSchedules({
  keyPrefix = "cron-guard:example",
}: ExampleJobsOptions = {}): ScheduleInput[] {
  return [
    {
      id: "record-every-minute",
      cron: "* * * * *",
      handler: "record",
      payload: { key: `${keyPrefix}:record` },
      catchUp: "latest",
    },
  ];
}
