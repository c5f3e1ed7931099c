import { type Context, Hono } from "hono";
import { ConfigError, StoreUnavailableError } from "../core/errors.js";
import type { StoreErrorPolicy } from "../core/options.js";
import type { GuardStore } from "../core/store.js";
import { defaultCronSecret, requireSecret } from "./auth.js";
import type { CronGuardVariables } from "./cron-guard/index.js";
import { createDeployment, type Deployment } from "./deployment.js";
import { jsonError, methodNotAllowed, storeUnavailable } from "./http.js";
import { alertingHandlers, attachMonitoring, monitoringOf } from "./monitoring.js";
import { openApiDocument } from "./openapi.js";
import { cronRoutes } from "./routes/cron.js";
import { dashboardRoutes } from "./routes/dashboard.js";
import { dispatchRoutes, scheduleRoutes } from "./routes/schedules.js";
import { runScheduled } from "./scheduled.js";
import type { Bindings, CronApp, CronAppOptions } from "./types.js";

/**
 * The deployable trigger app. `/cron` (see cronRoutes) and, when the app registers schedule
 * handlers, `/schedules` and `/dispatch` (see scheduleRoutes, dispatchRoutes) sit behind
 * `Authorization: Bearer <CRON_SECRET>`; `GET /` answers its name only. `runScheduled` serves
 * Cloudflare's scheduled() event. Every option is validated here: a mistake is a ConfigError now,
 * not a 500 when a job fires.
 */
export function createCronApp<
  TRedis extends GuardStore,
  TEnv extends object = Bindings,
  TPolicy extends StoreErrorPolicy = "closed",
>(typedOptions: CronAppOptions<TRedis, TEnv, TPolicy>): CronApp<TEnv> {
  // The bindings and the policy type what the app's handlers receive; inside, the app passes the
  // platform's env through untouched and reads the policy at run time.
  const options = typedOptions as unknown as CronAppOptions<TRedis>;
  const { cronSecret = defaultCronSecret } = options;
  if (typeof cronSecret !== "function") {
    throw new ConfigError("cronSecret", "must be a function (env) => string | undefined");
  }
  const deployment: Deployment<TRedis> = createDeployment(
    alertingHandlers(options, () => monitoringOf(deployment)),
  );
  attachMonitoring(deployment, options);
  const app = new Hono() as CronApp;

  // Unauthenticated: says what answers here and nothing about the jobs (GET /cron lists them).
  app.get("/", (c) => c.json({ name: "cron-guard" }));
  app.use("/cron", requireSecret(cronSecret));
  app.use("/cron/*", requireSecret(cronSecret));
  app.route("/cron", cronRoutes(deployment));
  // The page holds no data (no secret needed to load it); its data and actions need the bearer.
  const openApi = openApiDocument({ schedules: deployment.dynamic !== undefined });
  app.get("/openapi.json", requireSecret(cronSecret), (c) => c.json(openApi));
  app.all("/openapi.json", (c) => methodNotAllowed(c, "GET"));
  app.route("/dashboard", dashboardRoutes(deployment, options, requireSecret(cronSecret)));
  if (deployment.dynamic) {
    for (const path of ["/schedules", "/schedules/*", "/dispatch", "/dispatch/*"]) {
      app.use(path, requireSecret(cronSecret));
    }
    app.route("/schedules", scheduleRoutes(deployment, deployment.dynamic));
    app.route("/dispatch", dispatchRoutes(deployment.dynamic, deployment));
  }

  app.notFound((c) => jsonError(c, 404, `no route ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError((error, c) => {
    // A job handler's throw is the guard's to record and answer (500 with the job and slot).
    if ((c as unknown as Context<{ Variables: Partial<CronGuardVariables> }>).get("cronGuard")) {
      return jsonError(c, 500, error.message);
    }
    if (error instanceof StoreUnavailableError) return storeUnavailable(c, error);
    console.error("cron-guard: unhandled error", error);
    return jsonError(c, 500, `internal error: ${error.message}`);
  });

  app.runScheduled = (event, env, waitUntil) => runScheduled(deployment, event, env, waitUntil);
  Object.defineProperty(app, "jobs", { value: Object.freeze([...(options.jobs ?? [])]) });
  Object.defineProperty(app, "dispatchCron", { value: deployment.dynamic?.dispatchCron });
  return app as unknown as CronApp<TEnv>;
}
