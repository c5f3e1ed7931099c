/** `cron-guard/monitoring`: missed and late fires of a job, from what the store remembers. */
export {
  type ClaimSighting,
  claimsFromStatus,
  detectMissedAndLate,
  type LateRun,
  type MonitorOptions,
  type MonitorReport,
  monitorJob,
} from "./monitor.js";
