import type { Context, MiddlewareHandler } from "hono";
import { Hono } from "hono/tiny";
import { nextFireTimes, parseExplicitSlot, slotId } from "../../core/cron/index.js";
import { SlotError } from "../../core/errors.js";
import type { StoreErrorPolicy } from "../../core/options.js";
import type { GuardStore } from "../../core/store.js";
import { type CronGuardVariables, cronGuard } from "../cron-guard/index.js";
import type { Deployment, PreparedJob } from "../deployment.js";
import { jsonError, methodNotAllowed } from "../http.js";
import { monitoringOf } from "../monitoring.js";
import type { Bindings } from "../types.js";

function waitUntilOf(c: Context): ((promise: Promise<unknown>) => void) | undefined {
  try {
    return c.executionCtx.waitUntil.bind(c.executionCtx);
  } catch {
    return undefined;
  }
}

/** Shown in full by `GET /:job/status`; the monitor reads deeper to cover its window. */
const STATUS_SLOTS = 5;
const STATUS_RUNS = 20;

/**
 * `/cron`: `GET /` lists the jobs with their next fire times, `GET|POST /:job` runs a job once per
 * slot (any other method, HEAD included, is a 405 that writes nothing), `GET /:job/status` shows
 * its recent slots and runs, `GET /:job/slots/:slot` what the slot ledger knows of one slot. The
 * caller mounts it behind the bearer secret.
 */
type CronRoutesEnv = { Bindings: Bindings; Variables: CronGuardVariables };

export function cronRoutes<TRedis extends GuardStore>(
  deployment: Deployment<TRedis>,
): Hono<CronRoutesEnv> {
  const routes = new Hono<CronRoutesEnv>();
  const monitoring = monitoringOf(deployment);
  const middlewares = new Map<string, MiddlewareHandler<CronRoutesEnv>>(
    [...deployment.jobs.values()].map((entry) => [
      entry.job.name,
      cronGuard<StoreErrorPolicy>({
        // The app checks the bearer on every /cron route before this runs.
        allowUnauthenticated: true,
        job: entry.job.name,
        cron: entry.job.cron,
        timezone: entry.job.timezone,
        guard: (c) => deployment.guard(c.env, entry),
        onResult: async (result, c) => {
          const waitUntil = waitUntilOf(c);
          await Promise.all([
            monitoring.runFinished(c.env, "job", result, waitUntil),
            monitoring.check(c.env, waitUntil),
          ]);
        },
        // One middleware type for every route of this sub-app (Bindings and the guard's variable).
      }) as unknown as MiddlewareHandler<CronRoutesEnv>,
    ]),
  );
  const unknownJob = (name: string | undefined) => `unknown job ${JSON.stringify(name ?? "")}`;

  routes.get("/", (c) => {
    const nowMs = deployment.settings.clock();
    return c.json({
      jobs: [...deployment.jobs.values()].map(({ job, schedule }) => ({
        name: job.name,
        cron: job.cron,
        timezone: job.timezone ?? "UTC",
        next: nextFireTimes(schedule, nowMs, 3).map(slotId),
      })),
    });
  });

  routes.get("/:job/status", async (c) => {
    const entry = deployment.job(c.req.param("job"));
    if (!entry) return jsonError(c, 404, unknownJob(c.req.param("job")));
    const status = await monitoring.jobStatus(c.env, entry.job.name, waitUntilOf(c));
    return c.json({
      ...status,
      slots: status.slots.slice(0, STATUS_SLOTS),
      runs: status.runs.slice(0, STATUS_RUNS),
    });
  });

  routes.get("/:job/slots/:slot", async (c) => {
    const entry = deployment.job(c.req.param("job"));
    if (!entry) return jsonError(c, 404, unknownJob(c.req.param("job")));
    let slotMs: number;
    try {
      slotMs = parseExplicitSlot(c.req.param("slot"), entry.schedule);
    } catch (error) {
      if (error instanceof SlotError) return jsonError(c, 400, error.message);
      throw error;
    }
    const lookup = await deployment.guard(c.env, entry).lookup(entry.job.name, slotMs);
    return c.json(lookup);
  });

  routes.on(
    ["GET", "POST"],
    "/:job",
    async (c, next) => {
      // Hono answers HEAD with the GET handler; a HEAD must never claim a slot.
      if (c.req.method === "HEAD") return methodNotAllowed(c, "GET, POST");
      const entry = deployment.job(c.req.param("job"));
      if (!entry) return jsonError(c, 404, unknownJob(c.req.param("job")));
      return middlewares.get(entry.job.name)?.(c, next);
    },
    async (c) => {
      const entry = deployment.job(c.req.param("job")) as PreparedJob<TRedis>;
      const context = c.get("cronGuard");
      const value = await entry.job.handler({
        ...context,
        redis: deployment.redis(c.env),
        env: c.env ?? {},
      });
      // recorded as the run's summary, as when a scheduled event runs the handler
      c.set("cronGuardValue", value);
      return c.json({
        status: "ran",
        job: entry.job.name,
        slot: context.slot,
        fence: context.fence,
        value,
      });
    },
  );

  routes.all("/", (c) => methodNotAllowed(c, "GET"));
  routes.all("/:job/status", (c) => methodNotAllowed(c, "GET"));
  routes.all("/:job/slots/:slot", (c) => methodNotAllowed(c, "GET"));
  routes.all("/:job", (c) => methodNotAllowed(c, "GET, POST"));
  return routes;
}
