/**
 * `cron-guard/monitoring`: missed and late fires of a job, from what the store remembers; the alert
 * body and the check a receiver makes of a signed alert.
 */

export type { AlertBody, AlertKind } from "./alerts.js";
export {
  type ClaimSighting,
  claimsFromStatus,
  detectMissedAndLate,
  type LateRun,
  type MonitorOptions,
  type MonitorReport,
  monitorJob,
} from "./monitor.js";
export {
  ALERT_SIGNATURE_HEADER,
  DEFAULT_SIGNATURE_TOLERANCE_MS,
  type VerifyAlertSignatureOptions,
  verifyAlertSignature,
} from "./signature.js";
