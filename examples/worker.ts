import { createWorker } from "../src/platforms/cloudflare.js";
import { exampleHandlers, exampleJobs, exampleSchedules } from "./jobs.js";

/**
 * The example deployment on Cloudflare Workers (wrangler.toml's `main`): two jobs on their own
 * crons, and dynamic schedules dispatched by the every-minute cron.
 */
export default createWorker(exampleJobs(), {
  handlers: exampleHandlers(),
  schedules: exampleSchedules(),
});
