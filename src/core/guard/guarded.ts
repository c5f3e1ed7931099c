import { canonicalDigest } from "../canonical.js";
import { parseSchedule, slotFromCron, slotId, validateSkewTolerance } from "../cron/index.js";
import { configErrorIn, type GuardOptions } from "../options.js";
import { createGuard, type Guard, type JobContext, type RunOptions } from "./guard.js";
import type { GuardResult } from "./result.js";

export interface GuardedOptions<A extends unknown[]> extends GuardOptions {
  /** Job name: the first part of every key (`[A-Za-z0-9._-]{1,128}`). */
  job: string;
  /**
   * Turns the call's arguments into the part of the slot that tells calls apart, like a Redlock
   * `distributed_lock:{function}:{key}:{args}`. Must return 1-128 characters of
   * `A-Z a-z 0-9 . _ : + -`. Default: a SHA-256 digest of a canonical encoding of the arguments
   * (object keys sorted, types kept apart, Map/Set/Date by content); arguments it cannot encode
   * faithfully (functions, class instances, cycles) throw UnkeyableArgumentError: pass `key`.
   */
  key?: (...args: A) => string;
  /**
   * Cron expression: when set, every call also belongs to the current time slot of this schedule,
   * so the same arguments run once per slot. Without it, the same arguments run once per retention.
   */
  cron?: string;
  /** IANA time zone of `cron`. Default UTC. */
  timezone?: string;
  /** Passed to every run, e.g. `{ waitUntil: ctx.waitUntil.bind(ctx) }`. */
  runOptions?: RunOptions;
}

const KEY_PART = /^[A-Za-z0-9._:+-]{1,128}$/;

/**
 * Wraps a sync or async function so concurrent and duplicate calls with the same arguments run it
 * once per slot. The wrapper resolves to the shared result union instead of the bare value. A
 * `function` (not an arrow) finds the job context (signal, fence, lease) in `this`.
 */
export function guarded<A extends unknown[], T>(
  fn: (this: JobContext, ...args: A) => T,
  options: GuardedOptions<A>,
): (...args: A) => Promise<GuardResult<Awaited<T>>> {
  const { job, key, cron, timezone, runOptions, ...guardOptions } = options;
  const guard: Guard = createGuard(guardOptions);
  const schedule =
    cron === undefined
      ? undefined
      : configErrorIn(`guarded(${job})`, () => {
          const parsed = parseSchedule(cron, { timezone });
          const { skewToleranceMs, clock } = guard.options;
          validateSkewTolerance(parsed, skewToleranceMs, clock());
          return parsed;
        });

  return async function guardedCall(...args: A) {
    const argumentKey = key ? key(...args) : `args.${await canonicalDigest(args, 16)}`;
    if (typeof argumentKey !== "string" || !KEY_PART.test(argumentKey)) {
      throw new TypeError(
        `guarded(${job}): key() returned ${JSON.stringify(argumentKey)}; use 1-128 characters of A-Z a-z 0-9 . _ : + -`,
      );
    }
    const slot = schedule
      ? `${slotId(slotFromCron(schedule, guard.options.clock(), { skewToleranceMs: guard.options.skewToleranceMs }))}.${argumentKey}`
      : argumentKey;
    return guard.run<Awaited<T>>(
      job,
      slot,
      async (context): Promise<Awaited<T>> => {
        const value: Awaited<T> = await fn.apply(context, args);
        return value;
      },
      runOptions,
    );
  };
}
