import { Redis } from "@upstash/redis";
import { createCronApp } from "../hono/app.js";
import { exampleJobs } from "../jobs/index.js";

export { handle } from "hono/vercel";

/**
 * The example app for Vercel: credentials come from UPSTASH_REDIS_REST_URL/TOKEN and the bearer
 * secret from CRON_SECRET, which Vercel sends with every cron call.
 */
export function createVercelApp(jobs = exampleJobs()) {
  return createCronApp({ jobs, redis: Redis.fromEnv() });
}
