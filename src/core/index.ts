export type { DistributeOptions, DistributeResult, Task } from "./distribute.js";
export {
  ConfigError,
  InvalidKeyPartError,
  LockLostError,
  SlotError,
  type StoreFailureKind,
  StoreUnavailableError,
  UnkeyableArgumentError,
} from "./errors.js";
export {
  createGuard,
  type Guard,
  type JobContext,
  type JobFunction,
  type RunOptions,
} from "./guard.js";
export { type GuardedOptions, guarded } from "./guarded.js";
export { isValidJobName } from "./keys.js";
export type { Lease } from "./lease.js";
export {
  type ClaimSighting,
  claimsFromStatus,
  detectMissedAndLate,
  type LateRun,
  type MonitorOptions,
  type MonitorReport,
  monitorJob,
} from "./monitor.js";
export type {
  FailurePolicy,
  GuardOptions,
  OverlapPolicy,
  ResolvedGuardOptions,
  StoreErrorPolicy,
} from "./options.js";
export { createQuorumStore, type QuorumOptions, quorumFromEnv } from "./quorum.js";
export type {
  FailedResult,
  GuardResult,
  RanResult,
  SkippedResult,
  SkipReason,
  SlotState,
} from "./result.js";
export {
  createDispatcher,
  type DispatcherOptions,
  type ScheduleHandler,
  type ScheduleRunContext,
  type TickResult,
} from "./schedules/dispatch.js";
export {
  createScheduleRegistry,
  type RegistryEvent,
  type RegistryOptions,
  type ScheduleRegistry,
  type ScheduleView,
  type UpsertResult,
} from "./schedules/registry.js";
export type { CatchUpPolicy, Schedule, ScheduleInput } from "./schedules/schedule.js";
export {
  type CronSchedule,
  nextFireTimes,
  parseExplicitSlot,
  parseSchedule,
  periodMsOf,
  slotFromCron,
  slotFromScheduledTime,
  slotId,
} from "./slot.js";
export type { JobStatus, RunRecord } from "./status.js";
export type { GuardStore } from "./store.js";
