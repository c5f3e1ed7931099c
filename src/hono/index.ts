export { createCronApp } from "./app.js";
export { cronSecretProblem } from "./auth.js";
export {
  type CronGuardContext,
  type CronGuardOptions,
  type CronGuardVariables,
  cronGuard,
  HandlerFailedError,
} from "./cron-guard/index.js";
export type { Trigger } from "./slot-source.js";
export type {
  AlertOptions,
  AppScheduleHandler,
  Bindings,
  CronApp,
  CronAppOptions,
  CronJob,
  CronJobContext,
  DispatchScheduledRun,
  JobGuardOptions,
  JobScheduledRun,
  ScheduledEvent,
  ScheduledRun,
  ScheduleHandlerContext,
  UnmatchedScheduledRun,
} from "./types.js";
