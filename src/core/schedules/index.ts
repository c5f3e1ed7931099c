/** `cron-guard/schedules`: schedules as data in Redis, and the dispatcher that runs them. */
export {
  createDispatcher,
  type DispatcherOptions,
  type ScheduleHandler,
  type ScheduleRunContext,
  type TickResult,
} from "./dispatch.js";
export {
  createScheduleRegistry,
  type RegistryEvent,
  type RegistryOptions,
  type ScheduleRegistry,
  type ScheduleView,
  type UpsertResult,
} from "./registry.js";
export type { CatchUpPolicy, Schedule, ScheduleInput } from "./schedule.js";
