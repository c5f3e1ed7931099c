import { Redis } from "@upstash/redis";
import { ConfigError } from "../core/errors.js";
import type { CronJob } from "../hono/app.js";
import { type CronApp, type CronAppOptions, createCronApp } from "../hono/app.js";

export { handle } from "hono/vercel";

/**
 * A cron app for Vercel. Credentials come from `UPSTASH_REDIS_REST_URL` and
 * `UPSTASH_REDIS_REST_TOKEN` (read on the first request, so a missing variable fails that request
 * with a 500 instead of the deployment's build), the bearer secret from `CRON_SECRET`, which Vercel
 * sends with every cron call. `vercel.json`'s `crons` must call `/cron/<job>` on the job's schedule.
 */
export function createVercelApp(
  jobs: readonly CronJob<Redis>[],
  options: Omit<CronAppOptions<Redis>, "jobs" | "redis"> = {},
): CronApp {
  return createCronApp({ ...options, jobs, redis: redisFromProcessEnv });
}

function redisFromProcessEnv(): Redis {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
    ?.env;
  for (const name of ["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"]) {
    if (!env?.[name]) {
      throw new ConfigError(
        name,
        "is not set: add it in the Vercel project's environment variables",
      );
    }
  }
  return Redis.fromEnv();
}
