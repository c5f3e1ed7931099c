import { Redis } from "@upstash/redis";
import { processEnv } from "../core/env.js";
import { createCronApp } from "../hono/app.js";
import type { CronApp, CronAppOptions, CronJob } from "../hono/types.js";
import { quorumStore, restCredentials } from "./credentials.js";

export { handle } from "hono/vercel";

/**
 * A cron app for Vercel. Credentials come from `UPSTASH_REDIS_REST_URL` and
 * `UPSTASH_REDIS_REST_TOKEN` (or `KV_REST_API_URL`/`KV_REST_API_TOKEN`, which Vercel's Redis integration sets) (read on the first request, so a missing variable fails that request
 * with a 500 instead of the deployment's build), the bearer secret from `CRON_SECRET`, which Vercel
 * sends with every cron call. `vercel.json`'s `crons` must call `/cron/<job>` on the job's schedule.
 */
export function createVercelApp(
  jobs: readonly CronJob<Redis>[],
  options: Omit<CronAppOptions<Redis>, "jobs" | "redis"> = {},
): CronApp {
  return createCronApp({
    ...options,
    jobs,
    redis: redisFromProcessEnv,
    store: options.store ?? (() => quorumStore(processEnv() ?? {})),
  });
}

function redisFromProcessEnv(): Redis {
  return new Redis(
    restCredentials(processEnv() ?? {}, "add it in the Vercel project's environment variables"),
  );
}
