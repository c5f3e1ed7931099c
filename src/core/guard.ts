import { claimSlot } from "./claim.js";
import { runClaimed } from "./claimed-run.js";
import {
  type DistributeOptions,
  type DistributeResult,
  distribute,
  type Task,
} from "./distribute.js";
import { assertJobName, assertSlotId, jobKeys } from "./keys.js";
import { isLiveLease, type Lease } from "./lease.js";
import { lookupSlot, type SlotLookup } from "./lookup.js";
import {
  effectiveRetentionMs,
  type GuardOptions,
  type ResolvedGuardOptions,
  resolveGuardOptions,
} from "./options.js";
import type { GuardResult } from "./result.js";
import { slotId as isoSlotId } from "./slot.js";
import { type JobStatus, readStatus } from "./status.js";
import { reenter, runUnguarded } from "./unclaimed-runs.js";

/** What the job receives. */
export interface JobContext {
  /** Aborted with a LockLostError when the lease is lost; pass it to fetch() and friends. */
  signal: AbortSignal;
  job: string;
  slot: string;
  fence: number | null;
  /** The claim; null when the job runs unguarded (store down, `onStoreError: "open"`). */
  lease: Lease | null;
}

/** The work a guard runs once per slot. */
export type JobFunction<T> = (context: JobContext) => T | Promise<T>;

export interface RunOptions {
  /** Platform hook that keeps the isolate alive until the run is recorded (ctx.waitUntil). */
  waitUntil?: (promise: Promise<unknown>) => void;
  /** The enclosing run's lease: guarding the same job and slot again re-enters instead of skipping. */
  lease?: Lease | null;
  /** The schedule's period in ms, used for the default retention. */
  periodMs?: number;
  /**
   * Runs the slot even though it already ran (or failed, or is older than the ledger can vouch
   * for), recorded as forced; never while another claim runs it. For deliberate re-runs only.
   */
  force?: boolean;
}

export interface Guard {
  readonly options: ResolvedGuardOptions;
  /**
   * Runs `fn` once for `(job, slot)` across every instance. `slot` is a fire time (ms or Date) or a
   * slot id string. Resolves to ran / skipped / failed; throws only on invalid input
   * (InvalidKeyPartError) and, with `onStoreError: "closed"`, StoreUnavailableError.
   */
  run<T>(
    job: string,
    slot: number | Date | string,
    fn: JobFunction<T>,
    options?: RunOptions,
  ): Promise<GuardResult<T>>;
  /** The latest slots and runs of a job, in one round trip. */
  status(job: string, options?: { slots?: number; runs?: number }): Promise<JobStatus>;
  /** Whether one slot ran, when, with which fence, after which attempts (the slot ledger). */
  lookup(job: string, slot: number | Date | string): Promise<SlotLookup>;
  /**
   * Shares a slot's tasks among every instance that calls this with the same workload and list:
   * each task runs once, the work spreads over the callers, and tasks of a caller that crashed are
   * taken over when their lease ends. Tasks are claimed under `<prefix>:distribute:<workload>`
   * (option `workload`, default "default"), apart from jobs, schedules and other workloads. See
   * DistributeResult and docs/distribute.md.
   */
  distribute<T extends Task>(
    slot: number | Date | string,
    tasks: readonly T[],
    fn: (task: T, context: JobContext) => unknown,
    options?: DistributeOptions,
  ): Promise<DistributeResult>;
}

export function toSlotId(slot: number | Date | string): string {
  if (typeof slot === "string") {
    assertSlotId(slot);
    return slot;
  }
  return isoSlotId(slot instanceof Date ? slot.getTime() : slot);
}

export function createGuard(options: GuardOptions): Guard {
  const config = resolveGuardOptions(options);
  const guard: Guard = Object.freeze({
    options: config,
    run: <T>(
      job: string,
      slot: number | Date | string,
      fn: JobFunction<T>,
      runOptions?: RunOptions,
    ) => run(config, job, slot, fn, runOptions),
    status: (job: string, statusOptions?: { slots?: number; runs?: number }) =>
      readStatus(config, job, statusOptions),
    lookup: (job: string, slot: number | Date | string) => lookupSlot(config, job, slot),
    distribute: <T extends Task>(
      slot: number | Date | string,
      tasks: readonly T[],
      fn: (task: T, context: JobContext) => unknown,
      options?: DistributeOptions,
    ) => distribute(guard, slot, tasks, fn, options),
  });
  return guard;
}

/** Validate, re-enter an enclosing run, or claim; then skip, give up on the claim, or run it. */
async function run<T>(
  config: ResolvedGuardOptions,
  job: string,
  slotInput: number | Date | string,
  fn: JobFunction<T>,
  runOptions: RunOptions = {},
): Promise<GuardResult<T>> {
  assertJobName(job);
  const slot = toSlotId(slotInput);
  const keys = jobKeys(config.prefix, job);
  if (typeof fn !== "function") {
    throw new TypeError("run(job, slot, fn): fn must be a function");
  }
  // Only a claim this process still holds re-enters; a kept or hand-made lease claims as usual.
  const enclosing = runOptions.lease;
  if (isLiveLease(enclosing) && enclosing.key === keys.slot(slot)) {
    return reenter(config, job, slot, fn, enclosing);
  }
  const attempt = await claimSlot(config, keys, slot, slotInput, runOptions);
  switch (attempt.outcome) {
    case "skipped":
      return { status: "skipped", job, slot, reason: attempt.reason, holder: attempt.holder };
    case "abandoned":
      // Open means "run when the store cannot be reached", not "run when the store says no".
      if (config.onStoreError === "open" && attempt.error.kind !== "rejected") {
        return runUnguarded(config, job, slot, fn, attempt.error);
      }
      throw attempt.error;
    case "claimed": {
      const retentionMs = effectiveRetentionMs(config, runOptions.periodMs);
      const running = runClaimed(
        config,
        keys,
        job,
        slot,
        fn,
        attempt.claim,
        retentionMs,
        runOptions.waitUntil,
      );
      runOptions.waitUntil?.(running);
      return running;
    }
  }
}
