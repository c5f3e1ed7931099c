import { Redis } from "@upstash/redis/cloudflare";
import type { ExecutionContext } from "hono";
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

interface ScheduledControllerLike {
  readonly cron: string;
  readonly scheduledTime: number;
}

/**
 * A Worker's default export: what `ExportedHandler<Env>` (from `@cloudflare/workers-types` or
 * `wrangler types`) expects of `fetch` and `scheduled`, over the Worker's own `Env`.
 */
export interface CronWorker<TEnv extends object = Bindings> {
  fetch(request: Request, env: TEnv, ctx: ExecutionContext): Response | Promise<Response>;
  scheduled(controller: ScheduledControllerLike, env: TEnv, ctx: ExecutionContext): Promise<void>;
  /** The app behind the Worker (its jobs, `request()` for tests, `runScheduled`). */
  readonly app: CronApp<TEnv>;
}

/** Options of `createWorker`: the app's, without the Redis client (it comes from the bindings). */
export type WorkerOptions<
  TEnv extends object = Bindings,
  TPolicy extends StoreErrorPolicy = "closed",
> = Omit<CronAppOptions<Redis, TEnv, TPolicy>, "jobs" | "redis">;

/**
 * A Worker for a cron app: `fetch` serves the HTTP routes, `scheduled` runs every job whose cron
 * fired, with `controller.scheduledTime` as the slot, under `ctx.waitUntil`.
 */
export function toWorker<TEnv extends object = Bindings>(app: CronApp<TEnv>): CronWorker<TEnv> {
  return {
    fetch: (request, env, ctx) => app.fetch(request, env, ctx),
    async scheduled(controller, env, ctx): Promise<void> {
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
    app,
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
 *
 * The Worker bundles what it is given: dynamic schedules, the dashboard and `/openapi.json` come
 * with their plug-ins (`plugins: [dynamicSchedules(), dashboard(), openApi()]`, each from its own
 * subpath), a quorum with `store: quorumStore` (`cron-guard/upstash-quorum`); with the quorum's
 * variables set and no quorum store, every request and scheduled event fails with a ConfigError
 * instead of claiming in one database.
 *
 * `createWorker<Env>(...)` types every handler's `env` with the Worker's `Env` (what `wrangler types`
 * generates), and the result `satisfies ExportedHandler<Env>`. Handlers get a `number` fence;
 * a deployment with `guardOptions: { onStoreError: "open" }` says so with `createWorker<Env, "open">`
 * and gets `number | null`.
 */
export function createWorker<
  TEnv extends object = Bindings,
  TPolicy extends StoreErrorPolicy = "closed",
>(
  jobs: readonly CronJob<TEnv, Redis, TPolicy>[] = [],
  options: WorkerOptions<TEnv, TPolicy> = {},
): CronWorker<TEnv> {
  return toWorker(
    createCronApp<Redis, TEnv, TPolicy>({
      ...options,
      jobs,
      redis: (env) =>
        new Redis(
          restCredentials(
            env as Bindings,
            "add it with `wrangler secret put` (or .dev.vars locally)",
          ),
        ),
      store: options.store ?? ((env) => refuseQuorumWithoutStore(env as Bindings)),
    }),
  );
}
