import type { CronAppPlugin } from "../plugin.js";
import { dashboardRoutes } from "../routes/dashboard.js";

export type { CronAppPlugin } from "../plugin.js";

/**
 * The dashboard at `/dashboard`: the page needs no secret (it holds no data); what it polls and
 * the runs it starts need the bearer. Its own subpath keeps the page, its script and the status
 * views out of Workers that do not serve it.
 *
 * @example
 * createWorker(jobs, { plugins: [dashboard()] })
 */
export function dashboard(): CronAppPlugin {
  return Object.freeze({
    feature: "dashboard",
    mount(app, { deployment, options, requireSecret }) {
      app.route("/dashboard", dashboardRoutes(deployment, options, requireSecret));
    },
  } satisfies CronAppPlugin);
}
