import { alerts } from "../src/hono/plugins/alerts.js";
import { dashboard } from "../src/hono/plugins/dashboard.js";
import { dynamicSchedules } from "../src/hono/plugins/dynamic-schedules.js";
import { openApi } from "../src/hono/plugins/openapi.js";
import { createVercelApp } from "../src/platforms/vercel.js";
import { exampleHandlers, exampleJobs, exampleSchedules } from "./jobs.js";

/**
 * The example deployment on Vercel, exported as the app itself, as Hono's Vercel guide does
 * (server.ts hands it to Vercel). vercel.json's crons call the jobs' routes (`/cron/<job>`) and
 * `/dispatch` every minute, which takes Vercel's Pro plan: Hobby runs crons at most once a day.
 */
const app = createVercelApp(exampleJobs(), {
  handlers: exampleHandlers(),
  schedules: exampleSchedules(),
  plugins: [dynamicSchedules(), dashboard(), openApi(), alerts()],
});

export default app;
