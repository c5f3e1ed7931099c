import { ALERT_CLAIM_SCRIPT, createAlertSender } from "../../core/monitoring/alerts.js";
import type { CronAppPlugin } from "../plugin.js";

export type { CronAppPlugin } from "../plugin.js";

/**
 * Alerts for a cron app: one POST per event (failed, lost, dead, missed, silent) to the app's
 * `alerts.url` or `CRON_GUARD_ALERT_URL`, signed with `alerts.secret` or
 * `CRON_GUARD_ALERT_SECRET`, exactly once across every instance. An app given `alerts` options
 * without this plug-in is a ConfigError at creation; with `CRON_GUARD_ALERT_URL` set and no plug-in
 * it sends nothing and says so once with console.error. Its own subpath keeps the webhook sender
 * and its signing out of Workers that send no alerts.
 *
 * @example
 * createWorker(jobs, { plugins: [alerts()] })
 */
export function alerts(): CronAppPlugin {
  return Object.freeze({
    feature: "alerts",
    alerting: Object.freeze({ createSender: createAlertSender, claimScript: ALERT_CLAIM_SCRIPT }),
  } satisfies CronAppPlugin);
}
