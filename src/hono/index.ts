export {
  type CronApp,
  type CronAppOptions,
  type CronJob,
  type CronJobContext,
  createCronApp,
  type JobGuardOptions,
  type JobScheduledRun,
  type ScheduledEvent,
  type ScheduledRun,
  type UnmatchedScheduledRun,
} from "./app.js";
export {
  type CronGuardContext,
  type CronGuardEnv,
  type CronGuardOptions,
  cronGuard,
  HandlerFailedError,
} from "./cron-guard/index.js";
export type { Trigger } from "./slot-source.js";
