/**
 * `cron-guard`: the guard. Schedules, quorum, cron helpers and monitoring have their own subpaths
 * (`cron-guard/schedules`, `cron-guard/quorum`, `cron-guard/cron`, `cron-guard/monitoring`).
 */
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
export type { LedgerRun, SlotLookup } from "./guard/lookup.js";
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
export type {
  FailurePolicy,
  GuardOptions,
  OverlapPolicy,
  ResolvedGuardOptions,
  StoreErrorPolicy,
} from "./options.js";
export type { GuardStore } from "./store.js";
