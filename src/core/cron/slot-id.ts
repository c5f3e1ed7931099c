import { SlotError } from "../errors.js";
import { DEFAULT_SKEW_TOLERANCE_MS, latestFireAtOrBefore, toleranceOf } from "./fire-times.js";
import { assertEpochMs, isoOf, isoSecond, parseIsoTimestamp, wholeSecondSlot } from "./iso.js";
import { type CronSchedule, scheduleOf } from "./schedule.js";

/**
 * The canonical id of a slot, used in Redis keys: ISO-8601 in UTC without milliseconds,
 * e.g. `2026-11-23T10:05:00Z`. Milliseconds are truncated.
 *
 * @param ms Milliseconds since the epoch, positive and before the year 10000.
 * @throws SlotError when `ms` is not such a number.
 */
export function slotId(ms: number): string {
  return isoSecond(wholeSecondSlot(ms, "slot"));
}

/**
 * The slot of an HTTP-triggered run: the latest fire time that is `<= nowMs + skewToleranceMs`.
 * An instance whose clock is up to the tolerance behind the platform's still lands on the fire
 * time that triggered it; so does one up to the tolerance ahead, as long as the tolerance stays
 * under half the period (see {@link validateSkewTolerance}).
 *
 * @param schedule A parsed schedule, or an expression to parse with `options.timezone`.
 * @param nowMs The caller's clock, milliseconds since the epoch.
 * @param options.timezone Only with an expression. Default `"UTC"`.
 * @param options.skewToleranceMs How far ahead of `nowMs` a fire time may be, in milliseconds.
 *   Default 5000.
 * @returns The fire time, milliseconds since the epoch (a whole second).
 */
export function slotFromCron(
  schedule: CronSchedule | string,
  nowMs: number,
  options: { timezone?: string; skewToleranceMs?: number } = {},
): number {
  const parsed = scheduleOf(schedule, options.timezone);
  const skewToleranceMs = toleranceOf(options.skewToleranceMs ?? DEFAULT_SKEW_TOLERANCE_MS);
  assertEpochMs("nowMs", nowMs);
  const slotMs = latestFireAtOrBefore(parsed, nowMs + skewToleranceMs);
  if (slotMs === undefined) {
    throw new SlotError(`"${parsed.expression}" has no fire time before ${isoOf(nowMs)}`);
  }
  return slotMs;
}

/**
 * The slot of a Cloudflare scheduled event: its `controller.scheduledTime`, the planned fire time.
 * Cloudflare gives the exact planned minute; the value is truncated to the whole second anyway, so
 * the slot and its {@link slotId} (which has no milliseconds) always name the same instant.
 *
 * @param ms Milliseconds since the epoch, positive and before the year 10000.
 * @throws SlotError when `ms` is not such a number.
 */
export function slotFromScheduledTime(ms: number): number {
  return wholeSecondSlot(ms, "scheduledTime");
}

/**
 * An explicit slot (manual backfill), accepted only if it is exactly a fire time of the schedule
 * and, when `options.nowMs` is given, not later than the slot a call at that moment would derive
 * (`nowMs + skewToleranceMs`): a future slot would run now and make the real delivery a duplicate.
 * Any past fire time after 1970-01-01T00:00:00Z is accepted, however old.
 *
 * @param iso An ISO-8601 timestamp with a UTC offset: `2026-11-23T10:05:00Z`, `2026-11-23T10:05Z`,
 *   `2026-11-23T11:05:00+01:00`, `2026-11-23T10:05:00.000Z`. At most 64 characters.
 * @param options.nowMs The caller's clock, ms since the epoch. Without it, future slots pass.
 * @param options.skewToleranceMs How far ahead of `nowMs` a slot may be. Default 5000.
 * @returns The fire time, milliseconds since the epoch.
 * @throws SlotError saying why: not such a timestamp, in the future (with the latest allowed), or
 *   not a fire time (with the nearest ones).
 */
export function parseExplicitSlot(
  iso: string,
  schedule: CronSchedule,
  options?: { nowMs: number; skewToleranceMs?: number },
): number {
  const ms = parseIsoTimestamp(iso);
  if (options !== undefined) {
    assertEpochMs("nowMs", options.nowMs);
    const skewToleranceMs = toleranceOf(options.skewToleranceMs ?? DEFAULT_SKEW_TOLERANCE_MS);
    const limitMs = options.nowMs + skewToleranceMs;
    if (ms > limitMs) {
      const latest = latestFireAtOrBefore(schedule, limitMs);
      throw new SlotError(
        `slot "${iso}" is in the future: ?slot= backfills past fire times; the latest allowed is ${latest === undefined ? "none" : isoSecond(latest)} (now ${isoSecond(options.nowMs)} plus ${skewToleranceMs} ms skew tolerance)`,
      );
    }
  }
  const before = latestFireAtOrBefore(schedule, ms);
  if (before === ms) return ms;
  const after = schedule.cron.nextRun(new Date(ms));
  const nearest = [before, after?.getTime()]
    .filter((fire) => fire !== undefined)
    .map(isoSecond)
    .join(" and ");
  throw new SlotError(
    `slot "${iso}" is not a fire time of "${schedule.expression}" (${schedule.timezone}); nearest: ${nearest || "none"}`,
  );
}

/** The dispatcher's suffix of a retry's slot id: `<fire>.retry<n>`. */
export const RETRY_SUFFIX = /\.retry\d+$/;

/** The slot id of attempt `attempt` of a fire: the fire's own id first, `<fire>.retry<n>` after. */
export function attemptSlotId(fireSlotId: string, attempt: number): string {
  return attempt === 0 ? fireSlotId : `${fireSlotId}.retry${attempt}`;
}

/** The fire time a slot id names (`2026-11-25T12:05:00Z`, also a dispatcher retry `...Z.retry1`). */
export function fireTimeOfSlot(slot: string): number | undefined {
  const ms = Date.parse(slot.replace(RETRY_SUFFIX, ""));
  return Number.isFinite(ms) ? ms : undefined;
}
