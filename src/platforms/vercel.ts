import { Redis } from "@upstash/redis";
import { processEnv } from "../core/env.js";
import type { StoreErrorPolicy } from "../core/options.js";
import { createCronApp } from "../hono/app.js";
import type { Bindings, CronApp, CronAppOptions, CronJob } from "../hono/types.js";
import { refuseQuorumWithoutStore, restCredentials } from "./credentials.js";

export type {
  AppScheduleHandler,
  Bindings,
  CronApp,
  CronJob,
  CronJobContext,
  ScheduleHandlerContext,
} from "../hono/types.js";

/**
 * A route handler for frameworks that take one per method (Next.js App Router:
 * `export const GET = handle(app)`): passes the request to the app. Hono's own `hono/vercel`
 * `handle` does the same and is deprecated in Hono 4.13 in favour of `@hono/vercel`.
 */
export function handle(app: {
  fetch(request: Request): Response | Promise<Response>;
}): (request: Request) => Response | Promise<Response> {
  return (request) => app.fetch(request);
}

/**
 * A cron app for Vercel. Credentials come from `UPSTASH_REDIS_REST_URL` and
 * `UPSTASH_REDIS_REST_TOKEN` (or `KV_REST_API_URL`/`KV_REST_API_TOKEN`, which Vercel's Redis
 * integration sets; read on the first request, so a missing variable fails that request with a 500
 * instead of the deployment's build), the bearer secret from `CRON_SECRET`, which Vercel sends with
 * every cron call. `vercel.json`'s `crons` must call `/cron/<job>` on the job's schedule.
 * Dynamic schedules, the dashboard, `/openapi.json` and a quorum come with their plug-ins, as for
 * `createWorker` (see there).
 *
 * Handlers' `env` is `process.env`; `createVercelApp<Env>(...)` types it with the app's own `Env`
 * (e.g. `{ DATABASE_URL: string }`). Handlers get a `number` fence; a deployment with
 * `guardOptions: { onStoreError: "open" }` says so with `createVercelApp<Env, "open">`.
 */
export function createVercelApp<
  TEnv extends object = Bindings,
  TPolicy extends StoreErrorPolicy = "closed",
>(
  jobs: readonly CronJob<TEnv, Redis, TPolicy>[],
  options: Omit<CronAppOptions<Redis, TEnv, TPolicy>, "jobs" | "redis"> = {},
): CronApp<TEnv> {
  const app = createCronApp<Redis, TEnv, TPolicy>({
    ...options,
    jobs,
    redis: redisFromProcessEnv,
    store: options.store ?? (() => refuseQuorumWithoutStore(processEnv() ?? {})),
  });
  // Vercel (and Node) pass no bindings: the environment is process.env.
  const serve = app.fetch;
  app.fetch = (request, env, executionCtx) =>
    serve(request, env ?? (processEnv() as TEnv | undefined) ?? {}, executionCtx);
  return app;
}

function redisFromProcessEnv(): Redis {
  return new Redis(
    restCredentials(processEnv() ?? {}, "add it in the Vercel project's environment variables"),
  );
}
