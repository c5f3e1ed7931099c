export {
  type CronSchedule,
  nextFireTimes,
  parseExplicitSlot,
  parseSchedule,
  periodMsOf,
  slotFromCron,
  slotFromScheduledTime,
  slotId,
} from "./cron/index.js";
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
} from "./guard/guard.js";
export { type GuardedOptions, guarded } from "./guard/guarded.js";
export { isValidJobName } from "./guard/keys.js";
export type { Lease } from "./guard/lease.js";
export type {
  FailedResult,
  GuardResult,
  RanResult,
  SkippedResult,
  SkipReason,
  SlotState,
} from "./guard/result.js";
export type { JobStatus, RunRecord } from "./guard/status.js";
export type { DistributeOptions, DistributeResult, Task } from "./guard/types.js";
export {
  type ClaimSighting,
  claimsFromStatus,
  detectMissedAndLate,
  type LateRun,
  type MonitorOptions,
  type MonitorReport,
  monitorJob,
} from "./monitoring/monitor.js";
export type {
  FailurePolicy,
  GuardOptions,
  OverlapPolicy,
  ResolvedGuardOptions,
  StoreErrorPolicy,
} from "./options.js";
export { createQuorumStore, type QuorumOptions, quorumFromEnv } from "./quorum/quorum.js";
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
export type { GuardStore } from "./store.js";
