// cron-guard inside a Next.js App Router project: every path under /api reaches the cron app, so
// vercel.json's crons call /api/cron/<job> and the dashboard is /api/dashboard.
import { alerts } from "cron-guard/alerts";
import { dashboard } from "cron-guard/dashboard";
import { createVercelApp, handle } from "cron-guard/vercel";
import { Hono } from "hono";

const cron = createVercelApp(
  [
    {
      name: "daily-report",
      // Daily, so it runs on Vercel's Hobby plan too; the same expression is in vercel.json.
      cron: "0 8 * * *",
      // Hobby fires a daily cron anywhere within its hour: not late until the hour is over.
      graceMs: 60 * 60_000,
      async handler({ redis, slot, fence }) {
        // One report per day however often Vercel delivers; `fence` orders the writers.
        await redis.set(`daily-report:${slot}`, { fence }, { ex: 7 * 86_400 });
        return { report: slot };
      },
    },
  ],
  // The dashboard at /api/dashboard, and alerts when CRON_GUARD_ALERT_URL is set.
  { plugins: [dashboard(), alerts()] },
);

// mount() hands every /api/* request to the cron app's own fetch with /api taken off, so each
// answer (JSON errors and 404s, 405 with Allow, HEAD never claiming a slot) is the standalone one.
const app = new Hono().mount("/api", cron.fetch);

/** Hono runs on Next.js's Node.js runtime (Hono's Next.js guide). */
export const runtime = "nodejs";
/** Never prerendered or cached: every call must reach the guard. */
export const dynamic = "force-dynamic";

// Every method goes to the app, which answers the ones it does not serve with 405 and Allow.
export const GET = handle(app);
export const HEAD = handle(app);
export const POST = handle(app);
export const PUT = handle(app);
export const PATCH = handle(app);
export const DELETE = handle(app);
export const OPTIONS = handle(app);
