import { ConfigError } from "../../core/errors.js";
import { createDynamicSchedules } from "../dynamic.js";
import type { CronAppPlugin, DynamicSchedulesFactory } from "../plugin.js";
import { dispatchRoutes, scheduleRoutes } from "../routes/schedules.js";
import { alertingHandlers, scheduleMonitoring } from "../schedule-monitoring.js";

export type { CronAppPlugin } from "../plugin.js";

/**
 * Dynamic schedules for a cron app: the app's `handlers`, `schedules`, `dispatchCron` and
 * `dispatch` options take effect, and it serves `/schedules` (the registry's API) and `/dispatch`
 * (a tick), both behind the bearer secret; `scheduled()` runs a tick when `dispatchCron` fires.
 * An app given `handlers` (or `schedules`, `dispatchCron`, `dispatch`) without this plug-in is a
 * ConfigError at creation. Its own subpath keeps the registry, the dispatcher and the routes'
 * request validation out of Workers that do not use them.
 *
 * @example
 * createWorker(jobs, { handlers, schedules, plugins: [dynamicSchedules()] })
 */
export function dynamicSchedules(): CronAppPlugin {
  return Object.freeze({
    feature: "schedules",
    dynamic: (options, ...rest) => {
      if (options.handlers === undefined && (options.schedules ?? []).length === 0) {
        throw new ConfigError(
          "handlers",
          "the dynamic schedules plug-in needs the handlers that schedules name: handlers: { name: function }",
        );
      }
      return (createDynamicSchedules as DynamicSchedulesFactory)(options, ...rest);
    },
    monitoring: scheduleMonitoring,
    alertingHandlers,
    mount(app, { deployment, requireSecret }) {
      const { dynamic } = deployment;
      if (dynamic === undefined) return;
      for (const path of ["/schedules", "/schedules/*", "/dispatch", "/dispatch/*"]) {
        app.use(path, requireSecret);
      }
      app.route("/schedules", scheduleRoutes(deployment, dynamic));
      app.route("/dispatch", dispatchRoutes(dynamic, deployment));
    },
  } satisfies CronAppPlugin);
}
