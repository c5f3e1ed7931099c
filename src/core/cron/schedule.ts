import { Cron } from "croner";
import { ConfigError, messageOf } from "../errors.js";

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
 * A parsed schedule as is, or an expression parsed with `timezone`.
 *
 * @throws ConfigError naming `timezone` when a parsed schedule is given with a different zone.
 */
export function scheduleOf(
  schedule: CronSchedule | string,
  timezone: string | undefined,
): CronSchedule {
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
