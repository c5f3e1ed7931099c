import { ConfigError } from "../errors.js";
import { assertEpochMs, isoOf } from "./iso.js";
import type { CronSchedule } from "./schedule.js";

/** How far ahead of the caller's clock a fire time may be, by default, in milliseconds. */
export const DEFAULT_SKEW_TOLERANCE_MS = 5_000;
const PERIOD_SAMPLE_BEFORE = 5;
const PERIOD_SAMPLE_AFTER = 6;

/**
 * The next fire times strictly after `fromMs`, ascending.
 *
 * @param fromMs Milliseconds since the epoch.
 * @param count How many, a non-negative integer. Fewer come back only if the schedule ends.
 * @returns Milliseconds since the epoch.
 */
export function nextFireTimes(schedule: CronSchedule, fromMs: number, count: number): number[] {
  assertEpochMs("fromMs", fromMs);
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(`count must be a non-negative integer, got ${count}`);
  }
  return schedule.cron.nextRuns(count, new Date(fromMs)).map((fire) => fire.getTime());
}

/** The latest fire time at or before `ms` (ms since the epoch), or undefined when there is none. */
export function latestFireAtOrBefore(schedule: CronSchedule, ms: number): number | undefined {
  // croner's previousRuns excludes the reference itself but includes earlier runs in its second.
  return schedule.cron.previousRuns(1, new Date(ms + 1))[0]?.getTime();
}

/**
 * The shortest gap between consecutive fire times among about 10 gaps around `nearMs`. Used for
 * the default retention and to keep the skew tolerance under half the period.
 *
 * @param nearMs Milliseconds since the epoch; the sample spans fires on both sides of it.
 * @returns Milliseconds.
 * @throws ConfigError naming `cron` if the schedule fires fewer than twice around `nearMs`.
 */
export function periodMsOf(schedule: CronSchedule, nearMs: number): number {
  assertEpochMs("nearMs", nearMs);
  const before = schedule.cron.previousRuns(PERIOD_SAMPLE_BEFORE, new Date(nearMs + 1)).reverse();
  const after = schedule.cron.nextRuns(PERIOD_SAMPLE_AFTER, new Date(nearMs));
  let shortest = Number.POSITIVE_INFINITY;
  let previous: number | undefined;
  for (const fire of [...before, ...after]) {
    if (previous !== undefined) shortest = Math.min(shortest, fire.getTime() - previous);
    previous = fire.getTime();
  }
  if (!Number.isFinite(shortest)) {
    throw new ConfigError(
      "cron",
      `"${schedule.expression}" fires fewer than twice around ${isoOf(nearMs)}`,
    );
  }
  return shortest;
}

/**
 * Check that instances whose clocks differ by up to `skewToleranceMs` cannot land on neighbouring
 * slots: the tolerance must be under half the shortest period of the schedule.
 *
 * @param skewToleranceMs Milliseconds, non-negative.
 * @param nearMs Where to sample the period, milliseconds since the epoch.
 * @throws ConfigError naming `skewToleranceMs`.
 */
export function validateSkewTolerance(
  schedule: CronSchedule,
  skewToleranceMs: number,
  nearMs: number,
): void {
  toleranceOf(skewToleranceMs);
  const periodMs = periodMsOf(schedule, nearMs);
  if (skewToleranceMs * 2 >= periodMs) {
    throw new ConfigError(
      "skewToleranceMs",
      `${skewToleranceMs} ms must be under half the shortest period of "${schedule.expression}" (${periodMs} ms), or instances could derive neighbouring slots`,
    );
  }
}

/** `skewToleranceMs` itself, if it is a non-negative number. @throws ConfigError otherwise. */
export function toleranceOf(skewToleranceMs: number): number {
  if (!Number.isFinite(skewToleranceMs) || skewToleranceMs < 0) {
    throw new ConfigError(
      "skewToleranceMs",
      `must be a non-negative number of milliseconds, got ${skewToleranceMs}`,
    );
  }
  return skewToleranceMs;
}
