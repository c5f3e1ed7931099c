import { createVercelApp } from "./platforms/vercel.js";

/** Vercel's zero-config Hono entry: vercel.json's crons call /cron/<job> on this app. */
export default createVercelApp();
