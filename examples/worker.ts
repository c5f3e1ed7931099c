import { alerts } from "../src/hono/plugins/alerts.js";
import { dashboard } from "../src/hono/plugins/dashboard.js";
import { dynamicSchedules } from "../src/hono/plugins/dynamic-schedules.js";
import { openApi } from "../src/hono/plugins/openapi.js";
import { createWorker } from "../src/platforms/cloudflare.js";
import { exampleHandlers, exampleJobs, exampleSchedules } from "./jobs.js";

/**
 * The example deployment on Cloudflare Workers (wrangler.toml's `main`): two jobs on their own
 * crons, dynamic schedules dispatched by the every-minute cron, the dashboard, /openapi.json and
 * alerts (to CRON_GUARD_ALERT_URL). Each feature is a plug-in from its own subpath
 * (cron-guard/dynamic-schedules, cron-guard/dashboard, cron-guard/openapi, cron-guard/alerts): a
 * Worker without them bundles none of their code.
 */
export default createWorker(exampleJobs(), {
  handlers: exampleHandlers(),
  schedules: exampleSchedules(),
  plugins: [dynamicSchedules(), dashboard(), openApi(), alerts()],
});
