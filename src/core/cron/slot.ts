import { Cron, CronPattern } from "croner";
import { ConfigError, messageOf, SlotError } from "../errors.js";

/**
 * A validated cron schedule, made by {@link parseSchedule}. Immutable; holds no timer and no
 * notion of the current time, so one instance can serve every request.
 */
export interface CronSchedule {
  /** The expression as given, trimmed. */
  readonly expression: string;
  /** The IANA time zone the expression is read in, canonicalized (`"UTC"` by default). */
  readonly timezone: string;
  /** croner's evaluator for the expression: paused, never schedules anything. */
  readonly cron: Cron;
}

const DEFAULT_TIMEZONE = "UTC";
const DEFAULT_SKEW_TOLERANCE_MS = 5_000;
const SECOND_MS = 1_000;
/** 10000-01-01T00:00:00Z: the first instant whose ISO form no longer has a 4-digit year. */
const END_OF_SLOTS_MS = 253_402_300_800_000;
const PERIOD_SAMPLE_BEFORE = 5;
const PERIOD_SAMPLE_AFTER = 6;
/** Longer than any ISO timestamp we take (`2026-11-23T10:05:00.123456789+01:00` is 35). */
const MAX_SLOT_CHARS = 64;
/** `2026-11-23T11:05:00 01:00`: a `+01:00` offset whose `+` a URL query turned into a space. */
const SPACE_FOR_PLUS = /^\d{4}-\d{2}-\d{2}T[\d:.]+ \d{2}:?\d{2}$/i;
const ISO_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:(Z)|([+-])(\d{2}):?(\d{2}))$/i;

/**
 * Parse and validate a cron expression the way Vercel Cron and Cloudflare Cron Triggers read it:
 * exactly 5 fields (minute hour day-of-month month day-of-week), with `*`, `*\/n`, ranges, lists,
 * month and day names, `L` (last day of month, or `5L` last Friday), `W` (nearest weekday) and `#`
 * (`1#2`, second Monday). When both day-of-month and day-of-week are restricted, a day matching
 * either one fires (Vixie cron's OR).
 *
 * @param expr The cron expression. Seconds or year fields are rejected: neither platform has them.
 * @param options.timezone IANA time zone the expression is read in. Default `"UTC"`.
 * @throws ConfigError naming `cron` or `timezone`, with croner's or Intl's error as `cause`.
 */
export function parseSchedule(expr: string, options: { timezone?: string } = {}): CronSchedule {
  if (typeof expr !== "string") {
    throw new ConfigError("cron", `must be a string, got ${typeof expr}`);
  }
  const timezone = canonicalTimezone(options.timezone ?? DEFAULT_TIMEZONE);
  const expression = expr.trim();
  const fields = expression === "" ? 0 : expression.split(/\s+/).length;
  if (!expression.startsWith("@") && fields !== 5) {
    throw new ConfigError(
      "cron",
      `"${expression}" has ${fields} fields; Vercel and Cloudflare take exactly 5 (minute hour day-of-month month day-of-week), without seconds or years`,
    );
  }
  let cron: Cron;
  try {
    cron = new Cron(expression, { timezone, paused: true, mode: "5-part", domAndDow: false });
  } catch (cause) {
    const why = `"${expression}" is not a valid cron expression: ${messageOf(cause)}`;
    throw new ConfigError("cron", why, { cause });
  }
  if (cron.nextRun(new Date(0)) === null) {
    throw new ConfigError("cron", `"${expression}" never fires`);
  }
  return Object.freeze({ expression, timezone, cron });
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

/**
 * Whether two cron expressions mean the same schedule, however they are written: `*\/1 * * * *`
 * and `* * * * *`, `00 08 * * *` and `0 8 * * *`, `0 8 * * MON` and `0 8 * * 1`, `7` and `0` for
 * Sunday, `?` and `*`, `@daily` and `0 0 * * *`, `5#L` and `5L`. An expression that does not parse
 * (see {@link parseSchedule}) means nothing and matches nothing.
 *
 * Compared by a canonical form, not by sampling fire times: minutes, hours and months become the
 * sets croner expands them to (names, steps, ranges, lists, leading zeros all gone), and the days
 * become the rule that really decides them. A wildcard day field drops out of Vixie cron's OR
 * (`0 8 * * 1` is Mondays only), a field that covers every day makes the whole rule "every day"
 * (`1-31` or `0-6`), `L`, `W` and `LW` stay what they are, and `#n`/`L` occurrences are
 * normalized (the 5th occurrence is always the last; all occurrences are the plain weekday).
 * Sampling would have to cover 400 years to be exact (weekdays against leap years) and costs
 * far more CPU than a Worker's scheduled() should spend. The form never calls two different
 * schedules equal; it can call two equal ones different only when they differ by a date that
 * never exists (`0 0 30 1,2 *` vs `0 0 30 1 *`), which callers report loudly.
 */
export function sameSchedule(a: string, b: string): boolean {
  const first = scheduleSignature(a);
  return first !== undefined && first === scheduleSignature(b);
}

/** The canonical form {@link sameSchedule} compares, or undefined for an invalid expression. */
export function scheduleSignature(expr: string): string | undefined {
  let pattern: CronPattern;
  try {
    const { expression } = parseSchedule(expr);
    pattern = new CronPattern(expression, DEFAULT_TIMEZONE, { mode: "5-part" });
  } catch {
    return undefined;
  }
  const bits = (values: readonly number[]) => values.map((v) => (v ? 1 : 0)).join("");
  const dom = pattern.day.every(Boolean)
    ? "*"
    : `d${bits(pattern.day)}L${Number(pattern.lastDayOfMonth)}LW${Number(pattern.lastWeekday)}W${bits(pattern.nearestWeekdays)}`;
  const occurrences = pattern.dayOfWeek.map(normalizedOccurrences);
  const dow = occurrences.every((mask) => mask === ANY_OCCURRENCE) ? "*" : `w${occurrences}`;
  let days: string;
  if (pattern.starDOM && pattern.starDOW) days = "*";
  else if (pattern.starDOM) days = dow;
  else if (pattern.starDOW) days = dom;
  else if (pattern.useAndLogic) days = dom === "*" ? dow : dow === "*" ? dom : `${dom}&${dow}`;
  else days = dom === "*" || dow === "*" ? "*" : `${dom}|${dow}`;
  return [pattern.second, pattern.minute, pattern.hour, pattern.month]
    .map(bits)
    .concat(days)
    .join(" ");
}

/** croner's weekday masks: bits 1, 2, 4, 8, 16 for the 1st-5th occurrence, 32 for the last. */
const ANY_OCCURRENCE = 63;
const FIRST_FOUR = 0b1111;
const FIFTH = 0b10000;
const LAST = 0b100000;

function normalizedOccurrences(mask: number): number {
  const withoutFifth = mask & LAST ? mask & ~FIFTH : mask;
  const all = (withoutFifth & FIRST_FOUR) === FIRST_FOUR && (withoutFifth & (FIFTH | LAST)) !== 0;
  return all ? ANY_OCCURRENCE : withoutFifth;
}

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

/** The latest fire time at or before `ms` (ms since the epoch), or undefined when there is none. */
export function latestFireAtOrBefore(schedule: CronSchedule, ms: number): number | undefined {
  // croner's previousRuns excludes the reference itself but includes earlier runs in its second.
  return schedule.cron.previousRuns(1, new Date(ms + 1))[0]?.getTime();
}

function scheduleOf(schedule: CronSchedule | string, timezone: string | undefined): CronSchedule {
  if (typeof schedule === "string") return parseSchedule(schedule, { timezone });
  if (timezone !== undefined && canonicalTimezone(timezone) !== schedule.timezone) {
    throw new ConfigError(
      "timezone",
      `"${timezone}" differs from the parsed schedule's "${schedule.timezone}"; parse the schedule with it`,
    );
  }
  return schedule;
}

function canonicalTimezone(timezone: string): string {
  if (typeof timezone !== "string" || timezone === "") {
    throw new ConfigError("timezone", `must be an IANA time zone name, got ${String(timezone)}`);
  }
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: timezone }).resolvedOptions().timeZone;
  } catch (cause) {
    throw new ConfigError("timezone", `unknown IANA time zone "${timezone}"`, { cause });
  }
}

function toleranceOf(skewToleranceMs: number): number {
  if (!Number.isFinite(skewToleranceMs) || skewToleranceMs < 0) {
    throw new ConfigError(
      "skewToleranceMs",
      `must be a non-negative number of milliseconds, got ${skewToleranceMs}`,
    );
  }
  return skewToleranceMs;
}

function wholeSecondSlot(ms: number, what: string): number {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms <= 0 || ms >= END_OF_SLOTS_MS) {
    throw new SlotError(
      `${what} must be positive milliseconds since the epoch before the year 10000, got ${String(ms)}`,
    );
  }
  return Math.floor(ms / SECOND_MS) * SECOND_MS;
}

type Fields = [number, number, number, number, number, number];

function parseIsoTimestamp(iso: string): number {
  const example = "like 2026-11-23T10:05:00Z";
  if (typeof iso !== "string") {
    throw new SlotError(
      `slot ${String(iso)} is not an ISO-8601 timestamp with a UTC offset, ${example}`,
    );
  }
  if (iso.length > MAX_SLOT_CHARS) {
    throw new SlotError(
      `slot "${iso.slice(0, 32)}..." (${iso.length} characters) is not an ISO-8601 timestamp with a UTC offset, ${example}`,
    );
  }
  const match = ISO_TIMESTAMP.exec(iso);
  if (match === null) {
    const why =
      iso === ""
        ? ": it is empty (leave ?slot= out to take the current slot)"
        : SPACE_FOR_PLUS.test(iso)
          ? " (a + in a URL query arrives as a space: send + as %2B)"
          : "";
    throw new SlotError(
      `slot "${iso}" is not an ISO-8601 timestamp with a UTC offset, ${example}${why}`,
    );
  }
  const [, year, month, day, hour, minute, second = "0", fraction = "0", zulu, sign, offH, offM] =
    match;
  const [y, mo, d, h, mi, s] = [year, month, day, hour, minute, second].map(Number) as Fields;
  const offsetMinutes = zulu ? 0 : (sign === "-" ? -1 : 1) * (Number(offH) * 60 + Number(offM));
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0-99 as 1900-1999.
  const wall = new Date(0);
  wall.setUTCFullYear(y, mo - 1, d);
  wall.setUTCHours(h, mi, s, 0);
  const wallMs = wall.getTime();
  const real =
    wall.getUTCFullYear() === y &&
    wall.getUTCMonth() === mo - 1 &&
    wall.getUTCDate() === d &&
    wall.getUTCHours() === h &&
    wall.getUTCMinutes() === mi &&
    wall.getUTCSeconds() === s &&
    Number(offH ?? 0) <= 23 &&
    Number(offM ?? 0) <= 59;
  if (!real) throw new SlotError(`slot "${iso}" is not a real date and time`);
  const ms = wallMs - offsetMinutes * 60_000 + Number(`0.${fraction}`) * SECOND_MS;
  if (ms <= 0 || ms >= END_OF_SLOTS_MS) {
    const where = ms <= 0 ? "at or before 1970-01-01T00:00:00Z" : "in the year 10000 or later";
    throw new SlotError(
      `slot "${iso}" is not a real date and time from 1970 to 9999: it is ${where}`,
    );
  }
  return ms;
}

function assertEpochMs(name: string, ms: number): void {
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw new RangeError(`${name} must be a finite number of milliseconds, got ${String(ms)}`);
  }
}

function isoSecond(ms: number): string {
  return `${isoOf(ms).slice(0, -5)}Z`;
}

function isoOf(ms: number): string {
  return new Date(ms).toISOString();
}
