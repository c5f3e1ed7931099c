import { Cron } from "croner";
import { parseSchedule } from "../core/cron/index.js";

/**
 * Whether two cron expressions mean the same schedule, however they are written: `*\/1 * * * *`
 * and `* * * * *`, `00 08 * * *` and `0 8 * * *`, `0 8 * * MON` and `0 8 * * 1`, `7` and `0` for
 * Sunday, `?` and `*`, `@daily` and `0 0 * * *`, `5#L` and `5L`. An expression that does not parse
 * (see {@link parseSchedule}) means nothing and matches nothing.
 *
 * Compared by {@link scheduleSignature}, not by sampling fire times over years: sampling would have
 * to cover 400 years to be exact (weekdays against leap years) and costs far more CPU than a
 * Worker's scheduled() should spend. The signature never calls two different schedules equal; it
 * can call two equal ones different only when they differ by a date that never exists
 * (`0 0 30 1,2 *` vs `0 0 30 1 *`), which callers report loudly.
 */
export function sameSchedule(a: string, b: string): boolean {
  const first = scheduleSignature(a);
  return first !== undefined && first === scheduleSignature(b);
}

/**
 * The canonical form {@link sameSchedule} compares, or undefined for an invalid expression.
 *
 * Asks croner only through its public API (`new Cron`, `match`): each field of the expression is
 * put alone into a pattern whose other fields are `*`, and the pattern is asked which values it
 * matches. Minutes, hours and months become the sets they stand for (names, steps, ranges, lists,
 * leading zeros all gone). Day-of-month and day-of-week decide the days together (Vixie cron's OR,
 * `+` for AND, `L`, `W`, `#n`), and which days of a month they pick depends only on how long the
 * month is and on which weekday it starts: so the days become the days picked in each of the 28
 * kinds of month (28 to 31 days, starting on any weekday). Two expressions that pick the same days
 * in every kind of month fire on the same days of every real month.
 */
export function scheduleSignature(expr: string): string | undefined {
  const cached = remembered.get(expr);
  if (cached !== undefined || remembered.has(expr)) return cached;
  const signature = signatureOf(expr);
  if (remembered.size >= MAX_REMEMBERED) remembered.clear();
  if (expr.length <= MAX_REMEMBERED_CHARS) remembered.set(expr, signature);
  return signature;
}

/** The signatures of the last few expressions: scheduled() asks for the same one on every event. */
const remembered = new Map<string, string | undefined>();
const MAX_REMEMBERED = 64;
const MAX_REMEMBERED_CHARS = 256;

/** The nicknames croner takes (Vixie cron's), as the 5 fields they stand for. */
const NICKNAMES: Readonly<Record<string, string>> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

const DAY_MS = 86_400_000;

function signatureOf(expr: string): string | undefined {
  let fields: string[];
  try {
    const { expression } = parseSchedule(expr);
    const spelled = expression.startsWith("@") ? NICKNAMES[expression.toLowerCase()] : expression;
    if (spelled === undefined) return undefined;
    fields = spelled.split(/\s+/);
  } catch {
    return undefined;
  }
  const [minute, hour, dayOfMonth, month, dayOfWeek] = fields;
  if (fields.length !== 5) return undefined;
  try {
    // Every probe is a whole minute of a month that exists, read at UTC offset 0.
    const minutes = matches(probe(`${minute} * * * *`), range(60), (m) =>
      Date.UTC(2001, 0, 1, 0, m),
    );
    const hours = matches(probe(`* ${hour} * * *`), range(24), (h) => Date.UTC(2001, 0, 1, h));
    const months = matches(probe(`* * * ${month} *`), range(12), (mo) => Date.UTC(2001, mo, 1));
    const dayPattern = probe(`* * ${dayOfMonth} * ${dayOfWeek}`);
    const days = MONTH_KINDS.map(({ start, length }) =>
      matches(dayPattern, range(length), (d) => start + d * DAY_MS),
    );
    const everyDay = days.every((picked) => !picked.includes("0"));
    return [minutes, hours, months, everyDay ? "*" : days.join("/")].join(" ");
  } catch {
    return undefined;
  }
}

/** A pattern read as parseSchedule reads it, at UTC offset 0; paused, it never schedules. */
function probe(pattern: string): Cron {
  return new Cron(pattern, { paused: true, mode: "5-part", domAndDow: false, utcOffset: 0 });
}

/** Which of `values` the pattern matches, as a string of 0s and 1s. */
function matches(cron: Cron, values: number[], instant: (value: number) => number): string {
  return values.map((value) => (cron.match(new Date(instant(value))) ? "1" : "0")).join("");
}

function range(length: number): number[] {
  return Array.from({ length }, (_, i) => i);
}

/**
 * One real month (its first midnight, UTC) for each of the 28 kinds: 28, 29, 30 or 31 days,
 * starting on Sunday to Saturday. 28 years hold them all; a first-of-month in that span is probed.
 */
const MONTH_KINDS: readonly { start: number; length: number }[] = (() => {
  const kinds = new Map<string, { start: number; length: number }>();
  for (let year = 2000; kinds.size < 28; year++) {
    for (let month = 0; month < 12; month++) {
      const start = Date.UTC(year, month, 1);
      const length = (Date.UTC(year, month + 1, 1) - start) / DAY_MS;
      const kind = `${length}:${new Date(start).getUTCDay()}`;
      if (!kinds.has(kind)) kinds.set(kind, { start, length });
    }
  }
  return [...kinds.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, month]) => month);
})();
