import { Hono } from "hono";
import { nextFireTimes, slotId } from "../../core/slot.js";
import type { GuardStore } from "../../core/store.js";
import { cronGuard } from "../cron-guard/index.js";
import type { Deployment, PreparedJob } from "../deployment.js";
import { jsonError, methodNotAllowed } from "../http.js";
import type { Bindings } from "../types.js";

/**
 * `/cron`: `GET /` lists the jobs with their next fire times, `GET|POST /:job` runs a job once per
 * slot (any other method, HEAD included, is a 405 that writes nothing), `GET /:job/status` shows
 * its recent slots and runs. The caller mounts it behind the bearer secret.
 */
export function cronRoutes<TRedis extends GuardStore>(
  deployment: Deployment<TRedis>,
): Hono<{ Bindings: Bindings }> {
  const routes = new Hono<{ Bindings: Bindings }>();
  const middlewares = new Map(
    [...deployment.jobs.values()].map((entry) => [
      entry.job.name,
      cronGuard({
        job: entry.job.name,
        cron: entry.job.cron,
        timezone: entry.job.timezone,
        guard: (c) => deployment.guard(c.env, entry),
      }),
    ]),
  );
  const unknownJob = (name: string | undefined) => `unknown job ${JSON.stringify(name ?? "")}`;

  routes.get("/", (c) => {
    const nowMs = (deployment.guardOptions.clock ?? Date.now)();
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
    return c.json(await deployment.guard(c.env, entry).status(entry.job.name));
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
  routes.all("/:job", (c) => methodNotAllowed(c, "GET, POST"));
  return routes;
}
