import { Redis } from "@upstash/redis/cloudflare";
import type { ExecutionContext } from "hono";
import { createCronApp } from "../hono/app.js";
import type { CronApp, CronAppOptions, CronJob } from "../hono/types.js";
import { quorumStore, restCredentials } from "./credentials.js";

interface ScheduledControllerLike {
  readonly cron: string;
  readonly scheduledTime: number;
}

/**
 * A Worker for a cron app: `fetch` serves the HTTP routes, `scheduled` runs every job whose cron
 * fired, with `controller.scheduledTime` as the slot, under `ctx.waitUntil`.
 */
export function toWorker(app: CronApp) {
  return {
    fetch: (request: Request, env: Record<string, unknown>, ctx: ExecutionContext) =>
      app.fetch(request, env, ctx),
    async scheduled(
      controller: ScheduledControllerLike,
      env: Record<string, unknown>,
      ctx: ExecutionContext,
    ): Promise<void> {
      const runs = app.runScheduled(
        { cron: controller.cron, scheduledTime: controller.scheduledTime },
        env,
        (promise) => ctx.waitUntil(promise),
      );
      ctx.waitUntil(runs);
      for (const run of await runs) {
        console.log(
          JSON.stringify({ cronGuard: "scheduled", cron: controller.cron, ...summarize(run) }),
        );
      }
    },
  };
}

function summarize(run: Awaited<ReturnType<CronApp["runScheduled"]>>[number]) {
  if (run.job === null) {
    const { result } = run;
    if (result.status === "dispatched") {
      return { job: null, slot: run.slot, status: "dispatched", tick: result.tick };
    }
    return { job: null, slot: run.slot, status: result.status, error: String(result.error) };
  }
  const { result } = run;
  if (result.status === "skipped")
    return { job: run.job, slot: run.slot, status: "skipped", reason: result.reason };
  if (result.status === "ran")
    return { job: run.job, slot: run.slot, status: "ran", fence: result.fence };
  return { job: run.job, slot: run.slot, status: result.status, error: String(result.error) };
}

/**
 * A Worker that runs `jobs` once per slot. Credentials come from the bindings
 * `UPSTASH_REDIS_REST_URL` and `UPSTASH_REDIS_REST_TOKEN`, the bearer secret of the HTTP routes from
 * `CRON_SECRET` (all three as `wrangler secret put`). wrangler.toml's `crons` must list every job's
 * `cron`.
 */
export function createWorker(
  jobs: readonly CronJob<Redis>[] = [],
  options: Omit<CronAppOptions<Redis>, "jobs" | "redis"> = {},
) {
  return toWorker(
    createCronApp({
      ...options,
      jobs,
      redis: (env) =>
        new Redis(restCredentials(env, "add it with `wrangler secret put` (or .dev.vars locally)")),
      store: options.store ?? ((env) => quorumStore(env)),
    }),
  );
}
