import { slotId as isoSlotId } from "../cron/index.js";
import {
  effectiveRetentionMs,
  type GuardOptions,
  type ResolvedGuardOptions,
  resolveGuardOptions,
  type StoreErrorPolicy,
} from "../options.js";
import { claimSlot } from "./claim.js";
import { runClaimed } from "./claimed-run.js";
import { distribute } from "./distribute.js";
import { assertJobName, assertSlotId, type JobKeys, jobKeys } from "./keys.js";
import { isLiveLease } from "./lease.js";
import { lookupSlot } from "./lookup.js";
import type { GuardResult } from "./result.js";
import { deliverOnce, type Flight } from "./single-flight.js";
import { isValidSourceName } from "./sources.js";
import { readStatus } from "./status.js";
import type {
  DistributeOptions,
  Guard,
  JobContext,
  JobFunction,
  RunOptions,
  Task,
} from "./types.js";
import { reenter, runUnguarded } from "./unclaimed-runs.js";

export function toSlotId(slot: number | Date | string): string {
  if (typeof slot === "string") {
    assertSlotId(slot);
    return slot;
  }
  return isoSlotId(slot instanceof Date ? slot.getTime() : slot);
}

export type {
  DistributeOptions,
  DistributeResult,
  FenceOf,
  Guard,
  JobContext,
  JobFunction,
  RunOptions,
  Task,
} from "./types.js";

/**
 * The `onStoreError` policy of options as the compiler sees them: `"open"` when they say so,
 * `"closed"` when they say so or leave it out (the default), either when it is not known.
 */
export type StoreErrorPolicyOf<TOptions> = TOptions extends { onStoreError: infer TPolicy }
  ? TPolicy extends StoreErrorPolicy
    ? TPolicy
    : StoreErrorPolicy
  : "onStoreError" extends keyof TOptions
    ? StoreErrorPolicy // optional: not known until run time
    : "closed";

export function createGuard<const TOptions extends GuardOptions>(
  options: TOptions,
): Guard<StoreErrorPolicyOf<TOptions>> {
  const config = resolveGuardOptions(options);
  // The run functions are written for either policy (fence: number | null); the policy the
  // options name decides, at run time too, whether a job can ever see a null fence.
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
    ) => distribute(guard, createGuard, slot, tasks, fn, options),
  });
  return guard as Guard<StoreErrorPolicyOf<TOptions>>;
}

/**
 * Validate, re-enter an enclosing run, or deliver through the slot's single flight
 * (single-flight.ts): take a sibling's or a remembered answer, or claim.
 */
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
  if (runOptions.source !== undefined && !isValidSourceName(runOptions.source)) {
    throw new TypeError(
      `run(job, slot, fn, { source }): source ${JSON.stringify(runOptions.source)} is not 1-32 characters of a-z 0-9 -`,
    );
  }
  return deliverOnce(
    config,
    keys.slot(slot),
    job,
    slot,
    runOptions.force === true,
    (flight) => claimAndRun(config, keys, job, slot, slotInput, fn, runOptions, flight),
    runOptions.source,
  );
}

/** Claim; then skip, give up on the claim, or run it, telling `flight` what siblings may know. */
async function claimAndRun<T>(
  config: ResolvedGuardOptions,
  keys: JobKeys,
  job: string,
  slot: string,
  slotInput: number | Date | string,
  fn: JobFunction<T>,
  runOptions: RunOptions,
  flight: Flight,
): Promise<GuardResult<T>> {
  const retentionMs = effectiveRetentionMs(config, runOptions.periodMs);
  const attempt = await claimSlot(config, keys, slot, slotInput, runOptions);
  switch (attempt.outcome) {
    case "skipped": {
      const { reason, holder } = attempt;
      flight.answered({ kind: "skipped", reason, holder });
      flight.finished(holder, attempt.pttl > 0 ? attempt.pttl : retentionMs);
      return { status: "skipped", job, slot, reason, holder };
    }
    case "abandoned":
      // Open means "run when the store cannot be reached", not "run when the store says no".
      if (config.onStoreError === "open" && attempt.error.kind !== "rejected") {
        flight.answered({ kind: "skipped", reason: "running" });
        return runUnguarded(config, job, slot, fn, attempt.error);
      }
      flight.answered({ kind: "unavailable", error: attempt.error });
      throw attempt.error;
    case "claimed": {
      flight.answered({ kind: "skipped", reason: "running", holder: attempt.claim.state });
      const running = runClaimed(
        config,
        keys,
        job,
        slot,
        fn,
        attempt.claim,
        retentionMs,
        runOptions.waitUntil,
        (state) => flight.finished(state, retentionMs),
      );
      runOptions.waitUntil?.(running);
      return running;
    }
  }
}
