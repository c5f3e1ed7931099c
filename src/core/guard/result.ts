import type { StoreUnavailableError } from "../errors.js";

/** The stored state of a slot, as the claim script wrote it. */
export interface SlotState {
  /** `released`: failed under the "release" policy; the next claim takes the slot. */
  state: "running" | "done" | "failed" | "released" | "lost" | "unvouched" | "foreign";
  token?: string;
  fence?: number;
  startedAt?: number;
  finishedAt?: number;
  durationMs?: number;
  region?: string;
  slot?: string;
  summary?: string;
  /** The raw value when the key holds something cron-guard did not write. */
  raw?: string;
  /** Earlier finished runs of this slot (a claim after a released failure is attempt 1, ...). */
  attempt?: number;
  /** Runs the ledger holds for the slot, when the state came from the ledger. */
  attempts?: number;
  /** True when the state came from the slot ledger (the slot key itself had expired). */
  ledger?: boolean;
  /** True for a run that was started with `force`. */
  forced?: boolean;
}

/**
 * Why a run was skipped: the slot is `done` (also long after its retention: the ledger remembers
 * it), still `running` elsewhere, `failed` under the "keep" policy, an earlier slot still runs
 * (`overlap`), the slot is older than the ledger can vouch for (`unvouched`: run it with `force`
 * if you mean it), or the key holds a value we did not write.
 */
export type SkipReason = "done" | "running" | "failed" | "overlap" | "unvouched" | "foreign";

export interface RanResult<T, TFence extends number | null = number | null> {
  status: "ran";
  job: string;
  slot: string;
  /** Fencing token: strictly increases across the claims of a job. null when it ran unguarded. */
  fence: TFence;
  durationMs: number;
  value: T;
  /** True when the store was down and `onStoreError: "open"` ran the job without a claim. */
  unguarded: boolean;
  /** True when the run re-entered an enclosing run of the same slot through its lease. */
  reentered: boolean;
  /** Set when the job succeeded but its completion could not be recorded. */
  warning?: StoreUnavailableError;
}

export interface SkippedResult {
  status: "skipped";
  job: string;
  slot: string;
  reason: SkipReason;
  /** The state that made us skip (the holder's claim, or the finished run). */
  holder?: SlotState;
}

export interface FailedResult<TFence extends number | null = number | null> {
  status: "failed";
  job: string;
  slot: string;
  /** The claim's fencing token; null when it ran unguarded. */
  fence: TFence;
  durationMs: number;
  /** What the job threw, or a LockLostError when the lease was lost before completion. */
  error: unknown;
  /** True when the lease was lost while the job ran: another instance may have run the slot. */
  lockLost: boolean;
  /**
   * With `lockLost`: true when the job itself returned normally, so its work was done (perhaps
   * also by another instance) though its run could not be recorded as done before the lease
   * ended; the ledger enters it as `lost`. Retrying it would run the work again.
   */
  completed?: boolean;
  unguarded: boolean;
  warning?: StoreUnavailableError;
}

/** The one result every entry point shares. Contention is a result, never an exception. */
export type GuardResult<T, TFence extends number | null = number | null> =
  | RanResult<T, TFence>
  | SkippedResult
  | FailedResult<TFence>;
