import { SlotError } from "../errors.js";

/** 10000-01-01T00:00:00Z: the first instant whose ISO form no longer has a 4-digit year. */
export const END_OF_SLOTS_MS = 253_402_300_800_000;
const SECOND_MS = 1_000;
/** Longer than any ISO timestamp we take (`2026-11-23T10:05:00.123456789+01:00` is 35). */
const MAX_SLOT_CHARS = 64;
/** `2026-11-23T11:05:00 01:00`: a `+01:00` offset whose `+` a URL query turned into a space. */
const SPACE_FOR_PLUS = /^\d{4}-\d{2}-\d{2}T[\d:.]+ \d{2}:?\d{2}$/i;
const ISO_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(?:(Z)|([+-])(\d{2}):?(\d{2}))$/i;

type Fields = [number, number, number, number, number, number];

/**
 * An ISO-8601 timestamp with a UTC offset, read as milliseconds since the epoch: a real date and
 * time from 1970 to 9999, at most 64 characters.
 *
 * @throws SlotError saying why, naming the value as `slot "..."`.
 */
export function parseIsoTimestamp(iso: string): number {
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

/**
 * `ms` truncated to the whole second, if it is positive milliseconds since the epoch before the
 * year 10000.
 *
 * @param what Names the value in the error.
 * @throws SlotError when `ms` is not such a number.
 */
export function wholeSecondSlot(ms: number, what: string): number {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms <= 0 || ms >= END_OF_SLOTS_MS) {
    throw new SlotError(
      `${what} must be positive milliseconds since the epoch before the year 10000, got ${String(ms)}`,
    );
  }
  return Math.floor(ms / SECOND_MS) * SECOND_MS;
}

/** @throws RangeError naming `name` unless `ms` is a finite number. */
export function assertEpochMs(name: string, ms: number): void {
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw new RangeError(`${name} must be a finite number of milliseconds, got ${String(ms)}`);
  }
}

/** ISO-8601 in UTC without milliseconds: `2026-11-23T10:05:00Z`. */
export function isoSecond(ms: number): string {
  return `${isoOf(ms).slice(0, -5)}Z`;
}

/** ISO-8601 in UTC with milliseconds: `2026-11-23T10:05:00.000Z`. */
export function isoOf(ms: number): string {
  return new Date(ms).toISOString();
}
