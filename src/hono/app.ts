import type { Context } from "hono";
// The PatternRouter preset: the same Hono, a router a few KiB smaller (the app has a few dozen routes).
import { Hono } from "hono/tiny";
import { ConfigError, StoreUnavailableError } from "../core/errors.js";
import type { StoreErrorPolicy } from "../core/options.js";
import type { GuardStore } from "../core/store.js";
import { defaultCronSecret, requireSecret } from "./auth.js";
import type { CronGuardVariables } from "./cron-guard/index.js";
import { createDeployment, type Deployment } from "./deployment.js";
import { jsonError, storeUnavailable } from "./http.js";
import { attachMonitoring, monitoringOf } from "./monitoring.js";
import { type CronAppFeature, type CronAppPlugin, PLUGIN_IMPORTS } from "./plugin.js";
import { cronRoutes } from "./routes/cron.js";
import { runScheduled } from "./scheduled.js";
import type { Bindings, CronApp, CronAppOptions } from "./types.js";

const FEATURES: readonly CronAppFeature[] = ["schedules", "dashboard", "openapi", "alerts"];

/** The options that need the schedules plug-in: given without it, they would do nothing. */
const SCHEDULE_OPTIONS = ["handlers", "schedules", "dispatchCron", "dispatch"] as const;

/** Where each feature answers, for the 404 that says which plug-in serves it. */
const FEATURE_PATHS: readonly [RegExp, CronAppFeature][] = [
  [/^\/(schedules|dispatch)(\/|$)/, "schedules"],
  [/^\/dashboard(\/|$)/, "dashboard"],
  [/^\/openapi\.json$/, "openapi"],
];

/** The app's plug-ins by feature: each one known, and given once. */
function pluginsOf(plugins: unknown): Map<CronAppFeature, CronAppPlugin> {
  const byFeature = new Map<CronAppFeature, CronAppPlugin>();
  if (plugins === undefined) return byFeature;
  if (!Array.isArray(plugins)) {
    throw new ConfigError("plugins", "must be an array, e.g. [dynamicSchedules(), dashboard()]");
  }
  for (const plugin of plugins as unknown[]) {
    const feature = (plugin as Partial<CronAppPlugin> | null)?.feature;
    if (
      typeof plugin !== "object" ||
      !FEATURES.includes(feature as CronAppFeature) ||
      !["function", "undefined"].includes(typeof (plugin as CronAppPlugin).mount)
    ) {
      throw new ConfigError(
        "plugins",
        `${String(plugin)} is not a cron-guard plug-in: pass what dynamicSchedules(), dashboard(), openApi() or alerts() return (call them)`,
      );
    }
    if (byFeature.has(feature as CronAppFeature)) {
      throw new ConfigError("plugins", `the ${feature} plug-in is given twice`);
    }
    byFeature.set(feature as CronAppFeature, plugin as CronAppPlugin);
  }
  return byFeature;
}

/**
 * The deployable trigger app. `/cron` (see cronRoutes) sits behind
 * `Authorization: Bearer <CRON_SECRET>`; `GET /` answers its name only. `runScheduled` serves
 * Cloudflare's scheduled() event. Dynamic schedules (`/schedules`, `/dispatch`), the dashboard,
 * `/openapi.json` and alerts come with their plug-ins (`options.plugins`), each from its own subpath, so an
 * app bundles only the features it was given. Every option is validated here: a mistake is a
 * ConfigError now, not a 500 when a job fires.
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
  const plugins = pluginsOf(options.plugins);
  const schedules = plugins.get("schedules");
  if (schedules === undefined) {
    for (const name of SCHEDULE_OPTIONS) {
      if (options[name] === undefined) continue;
      throw new ConfigError(
        name,
        `needs the dynamic schedules plug-in, or it would do nothing: ${PLUGIN_IMPORTS.schedules}`,
      );
    }
  }
  const alerts = plugins.get("alerts")?.alerting;
  if (alerts === undefined && options.alerts !== undefined) {
    throw new ConfigError(
      "alerts",
      `needs the alerts plug-in, or no alert would be sent: ${PLUGIN_IMPORTS.alerts}`,
    );
  }
  const deployment: Deployment<TRedis> = createDeployment(
    schedules?.alertingHandlers
      ? (schedules.alertingHandlers(options as unknown as CronAppOptions<GuardStore>, () =>
          monitoringOf(deployment),
        ) as unknown as CronAppOptions<TRedis>)
      : options,
    schedules?.dynamic,
  );
  attachMonitoring(deployment, options, alerts, schedules?.monitoring);
  const app = new Hono() as CronApp;

  // Unauthenticated: says what answers here and nothing about the jobs (GET /cron lists them).
  app.get("/", (c) => c.json({ name: "cron-guard" }));
  app.use("/cron", requireSecret(cronSecret));
  app.use("/cron/*", requireSecret(cronSecret));
  app.route("/cron", cronRoutes(deployment));
  const context = {
    deployment: deployment as unknown as Deployment<GuardStore>,
    options: options as unknown as CronAppOptions<GuardStore>,
    requireSecret: requireSecret(cronSecret),
    features: new Set(plugins.keys()),
  };
  for (const plugin of plugins.values()) plugin.mount?.(app, context);

  app.notFound((c) => {
    const path = new URL(c.req.url).pathname;
    const missing = FEATURE_PATHS.find(
      ([pattern, feature]) => pattern.test(path) && !plugins.has(feature),
    )?.[1];
    const hint =
      missing === undefined
        ? ""
        : `: the app has no ${missing} plug-in (${PLUGIN_IMPORTS[missing]})`;
    return jsonError(c, 404, `no route ${c.req.method} ${path}${hint}`);
  });
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
