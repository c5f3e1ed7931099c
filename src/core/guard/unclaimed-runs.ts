/*
 * The two ways `run` calls the job without a claim of its own: unguarded, when the store cannot be
 * reached and the policy is `onStoreError: "open"`, and re-entered, inside an enclosing run of the
 * same slot whose live lease was passed back. Neither touches the store.
 */
import type { StoreUnavailableError } from "../errors.js";
import type { ResolvedGuardOptions } from "../options.js";
import type { Lease } from "./lease.js";
import type { GuardResult } from "./result.js";
import type { JobContext, JobFunction } from "./types.js";

/** Runs `fn` with no claim and no fence; the result carries the store error as its warning. */
export async function runUnguarded<T>(
  config: ResolvedGuardOptions,
  job: string,
  slot: string,
  fn: JobFunction<T>,
  storeError: StoreUnavailableError,
): Promise<GuardResult<T>> {
  const startedAt = config.clock();
  const context: JobContext = {
    signal: new AbortController().signal,
    job,
    slot,
    fence: null,
    lease: null,
  };
  try {
    const value = await fn(context);
    return {
      status: "ran",
      job,
      slot,
      fence: null,
      durationMs: config.clock() - startedAt,
      value,
      unguarded: true,
      reentered: false,
      warning: storeError,
    };
  } catch (error) {
    return {
      status: "failed",
      job,
      slot,
      fence: null,
      durationMs: config.clock() - startedAt,
      error,
      lockLost: false,
      unguarded: true,
      warning: storeError,
    };
  }
}

/**
 * Runs `fn` under the enclosing run's lease: its signal, fence and claim. The enclosing run keeps
 * the lease and records the slot; a lease already lost fails at once without calling `fn`.
 */
export async function reenter<T>(
  config: ResolvedGuardOptions,
  job: string,
  slot: string,
  fn: JobFunction<T>,
  lease: Lease,
): Promise<GuardResult<T>> {
  const startedAt = config.clock();
  const base = { job, slot, fence: lease.fence, unguarded: false };
  if (lease.signal.aborted) {
    return {
      status: "failed",
      ...base,
      durationMs: 0,
      error: lease.signal.reason,
      lockLost: true,
    };
  }
  try {
    const value = await fn({ signal: lease.signal, job, slot, fence: lease.fence, lease });
    return {
      status: "ran",
      ...base,
      durationMs: config.clock() - startedAt,
      value,
      reentered: true,
    };
  } catch (error) {
    return {
      status: "failed",
      ...base,
      durationMs: config.clock() - startedAt,
      error,
      lockLost: lease.signal.aborted,
    };
  }
}
