import { createVercelApp } from "../src/platforms/vercel.js";
import { exampleHandlers, exampleJobs, exampleSchedules } from "./jobs.js";

/**
 * The example deployment on Vercel: api/index.ts serves it; vercel.json's crons call the jobs'
 * routes and `/dispatch` every minute.
 */
export default createVercelApp(exampleJobs(), {
  handlers: exampleHandlers(),
  schedules: exampleSchedules(),
});
