export { createCronApp } from "./app.js";
export {
  type CronGuardContext,
  type CronGuardOptions,
  type CronGuardVariables,
  cronGuard,
  HandlerFailedError,
} from "./cron-guard/index.js";
export type { Trigger } from "./slot-source.js";
export type {
  Bindings,
  CronApp,
  CronAppOptions,
  CronJob,
  CronJobContext,
  JobGuardOptions,
  JobScheduledRun,
  ScheduledEvent,
  ScheduledRun,
  UnmatchedScheduledRun,
} from "./types.js";
