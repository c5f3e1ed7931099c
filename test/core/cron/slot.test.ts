import { describe, expect, it } from "vitest";
import {
  type CronSchedule,
  nextFireTimes,
  parseExplicitSlot,
  parseSchedule,
  periodMsOf,
  slotFromCron,
  slotFromScheduledTime,
  slotId,
  validateSkewTolerance,
} from "../../../src/core/cron/index.js";
import { ConfigError, SlotError } from "../../../src/core/errors.js";

const at = (iso: string): number => {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`bad test timestamp ${iso}`);
  return ms;
};
const ids = (fires: number[]): string[] => fires.map(slotId);
const next = (schedule: CronSchedule, fromIso: string, count: number): string[] =>
  ids(nextFireTimes(schedule, at(fromIso), count));
const slotAt = (expr: string, nowIso: string, timezone?: string): string =>
  slotId(slotFromCron(parseSchedule(expr, { timezone }), at(nowIso)));

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

describe("parseSchedule", () => {
  it("reads the expression in UTC by default and canonicalizes the time zone", () => {
    expect(parseSchedule(" */5 * * * * ")).toMatchObject({
      expression: "*/5 * * * *",
      timezone: "UTC",
    });
    expect(parseSchedule("0 9 * * *", { timezone: "europe/berlin" }).timezone).toBe(
      "Europe/Berlin",
    );
    expect(slotAt("30 9 * * *", "2026-11-23T12:00:00Z")).toBe("2026-11-23T09:30:00Z");
    expect(slotAt("30 9 * * *", "2026-11-23T12:00:00Z", "UTC")).toBe("2026-11-23T09:30:00Z");
    expect(slotAt("30 9 * * *", "2026-11-23T12:00:00Z", "Europe/Berlin")).toBe(
      "2026-11-23T08:30:00Z",
    );
  });

  it.each([
    ["61 * * * *", /not a valid cron expression/],
    ["* * *", /has 3 fields/],
    ["0 * * * * *", /has 6 fields.*without seconds or years/],
    ["0 0 12 * * * 2026", /has 7 fields/],
    ["", /has 0 fields/],
    ["every minute ok go", /has 4 fields/],
    ["a b c d e", /not a valid cron expression/],
    ["*/0 * * * *", /not a valid cron expression/],
    ["0 9 * * 8", /not a valid cron expression/],
    ["@reboot", /not a valid cron expression/],
    ["0 0 30 2 *", /never fires/],
  ])("rejects %j with a ConfigError naming cron", (expr, why) => {
    const error = thrown(() => parseSchedule(expr));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).option).toBe("cron");
    expect((error as ConfigError).message).toMatch(why);
  });

  it("keeps croner's error as the cause", () => {
    const error = thrown(() => parseSchedule("61 * * * *")) as ConfigError;
    expect(error.cause).toBeInstanceOf(Error);
    expect(error.message).toContain("minute");
  });

  it.each(["Mars/Olympus_Mons", "", "Europe/Berlinn"])(
    "rejects the time zone %j with a ConfigError naming timezone",
    (timezone) => {
      const error = thrown(() => parseSchedule("* * * * *", { timezone })) as ConfigError;
      expect(error).toBeInstanceOf(ConfigError);
      expect(error.option).toBe("timezone");
      expect(error.message).toMatch(/time zone/);
    },
  );

  it("keeps Intl's error as the cause of an unknown time zone", () => {
    const error = thrown(() => parseSchedule("* * * * *", { timezone: "Nope/Zone" }));
    expect((error as ConfigError).cause).toBeInstanceOf(RangeError);
    expect((error as ConfigError).message).toContain('"Nope/Zone"');
  });

  it("accepts the 5-field syntax Vercel and Cloudflare take", () => {
    for (const expr of [
      "* * * * *",
      "*/5 * * * *",
      "0,30 8-18/2 * * *",
      "0 0 L * *",
      "0 9 * * 5L",
      "0 9 * * FRIL",
      "0 9 15W * *",
      "0 9 LW * *",
      "0 9 * * 1#2",
      "0 9 * * MON-FRI",
      "0 0 1 JAN,JUL *",
      "0 9 * * 7",
      "0 9 ? * MON",
      "@hourly",
    ]) {
      expect(parseSchedule(expr).expression, expr).toBe(expr);
    }
  });
});

describe("slotFromCron: the latest fire time <= now + skew tolerance", () => {
  it.each([
    ["* * * * *", "2026-11-23T10:07:30Z", "2026-11-23T10:07:00Z"],
    ["* * * * *", "2026-11-23T10:07:00Z", "2026-11-23T10:07:00Z"],
    ["*/5 * * * *", "2026-11-23T10:07:30Z", "2026-11-23T10:05:00Z"],
    ["*/5 * * * *", "2026-11-23T10:09:54.999Z", "2026-11-23T10:05:00Z"],
    ["*/5 * * * *", "2026-11-23T10:09:55Z", "2026-11-23T10:10:00Z"],
    ["0 * * * *", "2026-11-23T10:59:00Z", "2026-11-23T10:00:00Z"],
    ["30 9 * * *", "2026-11-23T09:00:00Z", "2026-11-22T09:30:00Z"],
    ["30 9 * * *", "2026-11-23T09:29:55Z", "2026-11-23T09:30:00Z"],
    ["0 0 L * *", "2028-03-15T00:00:00Z", "2028-02-29T00:00:00Z"],
    ["0 0 L * *", "2026-03-15T00:00:00Z", "2026-02-28T00:00:00Z"],
    ["0 0 L * *", "2026-03-01T12:00:00Z", "2026-02-28T00:00:00Z"],
    ["0 0 L * *", "2026-12-31T06:00:00Z", "2026-12-31T00:00:00Z"],
    ["0 9 * * 1#2", "2026-11-20T00:00:00Z", "2026-11-09T09:00:00Z"],
    ["0 9 * * 1#2", "2026-11-05T00:00:00Z", "2026-10-12T09:00:00Z"],
    ["0 9 * * 5L", "2026-12-01T00:00:00Z", "2026-11-27T09:00:00Z"],
    ["0 9 * * 5L", "2027-01-30T00:00:00Z", "2027-01-29T09:00:00Z"],
    ["0 9 15W * *", "2026-11-20T00:00:00Z", "2026-11-16T09:00:00Z"],
    ["0 9 15W * *", "2026-08-20T00:00:00Z", "2026-08-14T09:00:00Z"],
    ["0 9 15W * *", "2026-10-20T00:00:00Z", "2026-10-15T09:00:00Z"],
    ["0 9 * * MON-FRI", "2026-11-22T12:00:00Z", "2026-11-20T09:00:00Z"],
    ["0 9 * * MON-FRI", "2026-11-23T12:00:00Z", "2026-11-23T09:00:00Z"],
    ["0 0 1 JAN *", "2026-06-01T00:00:00Z", "2026-01-01T00:00:00Z"],
  ])("%s at %s -> %s (UTC)", (expr, now, expected) => {
    expect(slotAt(expr, now)).toBe(expected);
  });

  it("takes an expression with a time zone as well as a parsed schedule", () => {
    const now = at("2026-11-23T12:00:00Z");
    expect(slotId(slotFromCron("30 9 * * *", now))).toBe("2026-11-23T09:30:00Z");
    expect(slotId(slotFromCron("30 9 * * *", now, { timezone: "America/New_York" }))).toBe(
      "2026-11-22T14:30:00Z",
    );
  });

  it("refuses a time zone that contradicts the parsed schedule", () => {
    const schedule = parseSchedule("30 9 * * *", { timezone: "Europe/Berlin" });
    const now = at("2026-11-23T12:00:00Z");
    expect(slotFromCron(schedule, now, { timezone: "Europe/Berlin" })).toBe(
      at("2026-11-23T08:30:00Z"),
    );
    const error = thrown(() => slotFromCron(schedule, now, { timezone: "UTC" }));
    expect((error as ConfigError).option).toBe("timezone");
  });

  it("uses 5000 ms tolerance by default, and the one given", () => {
    const schedule = parseSchedule("* * * * *");
    expect(slotFromCron(schedule, at("2026-11-23T10:07:55Z"))).toBe(at("2026-11-23T10:08:00Z"));
    expect(slotFromCron(schedule, at("2026-11-23T10:07:54.999Z"))).toBe(at("2026-11-23T10:07:00Z"));
    expect(slotFromCron(schedule, at("2026-11-23T10:07:55Z"), { skewToleranceMs: 0 })).toBe(
      at("2026-11-23T10:07:00Z"),
    );
    expect(slotFromCron(schedule, at("2026-11-23T10:07:50Z"), { skewToleranceMs: 10_000 })).toBe(
      at("2026-11-23T10:08:00Z"),
    );
  });

  it("rejects a bad tolerance or clock", () => {
    const schedule = parseSchedule("* * * * *");
    for (const skewToleranceMs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      const error = thrown(() =>
        slotFromCron(schedule, at("2026-11-23T10:07:30Z"), { skewToleranceMs }),
      );
      expect((error as ConfigError).option).toBe("skewToleranceMs");
    }
    expect(() => slotFromCron(schedule, Number.NaN)).toThrow(RangeError);
  });

  it("uses OR when both day-of-month and day-of-week are restricted (Vixie cron, Vercel)", () => {
    const schedule = parseSchedule("0 9 1 * MON");
    expect(next(schedule, "2026-10-31T00:00:00Z", 4)).toEqual([
      "2026-11-01T09:00:00Z",
      "2026-11-02T09:00:00Z",
      "2026-11-09T09:00:00Z",
      "2026-11-16T09:00:00Z",
    ]);
    expect(slotAt("0 9 1 * MON", "2026-11-01T12:00:00Z")).toBe("2026-11-01T09:00:00Z");
  });
});

describe("time zones across DST", () => {
  it("Berlin spring forward: 02:30 does not exist on 2026-03-29; croner fires once at 03:00 CEST", () => {
    const schedule = parseSchedule("30 2 * * *", { timezone: "Europe/Berlin" });
    expect(next(schedule, "2026-03-27T12:00:00Z", 3)).toEqual([
      "2026-03-28T01:30:00Z",
      "2026-03-29T01:00:00Z",
      "2026-03-30T00:30:00Z",
    ]);
    expect(slotId(slotFromCron(schedule, at("2026-03-29T01:20:00Z")))).toBe("2026-03-29T01:00:00Z");
  });

  it("Berlin fall back: 02:30 happens twice on 2026-10-25; a fixed-time job fires once, at the first", () => {
    const schedule = parseSchedule("30 2 * * *", { timezone: "Europe/Berlin" });
    expect(next(schedule, "2026-10-23T12:00:00Z", 3)).toEqual([
      "2026-10-24T00:30:00Z",
      "2026-10-25T00:30:00Z",
      "2026-10-26T01:30:00Z",
    ]);
    expect(slotId(slotFromCron(schedule, at("2026-10-25T01:30:02Z")))).toBe("2026-10-25T00:30:00Z");
  });

  it("Berlin fall back: an interval job fires on both 02:30s, each its own slot", () => {
    const schedule = parseSchedule("*/30 * * * *", { timezone: "Europe/Berlin" });
    expect(next(schedule, "2026-10-24T23:45:00Z", 4)).toEqual([
      "2026-10-25T00:00:00Z",
      "2026-10-25T00:30:00Z",
      "2026-10-25T01:00:00Z",
      "2026-10-25T01:30:00Z",
    ]);
  });

  it("New York spring forward and fall back", () => {
    const spring = parseSchedule("30 2 * * *", { timezone: "America/New_York" });
    expect(next(spring, "2026-03-07T12:00:00Z", 3)).toEqual([
      "2026-03-08T07:00:00Z",
      "2026-03-09T06:30:00Z",
      "2026-03-10T06:30:00Z",
    ]);
    const fixed = parseSchedule("30 1 * * *", { timezone: "America/New_York" });
    expect(next(fixed, "2026-10-31T12:00:00Z", 2)).toEqual([
      "2026-11-01T05:30:00Z",
      "2026-11-02T06:30:00Z",
    ]);
    const hourly = parseSchedule("0 * * * *", { timezone: "America/New_York" });
    expect(next(hourly, "2026-11-01T04:30:00Z", 3)).toEqual([
      "2026-11-01T05:00:00Z",
      "2026-11-01T06:00:00Z",
      "2026-11-01T07:00:00Z",
    ]);
  });
});

describe("skew: instances whose clocks disagree by up to the tolerance all derive the same slot", () => {
  const toleranceMs = 5_000;
  const cases: [string, string | undefined, string][] = [
    ["* * * * *", undefined, "2026-11-23T10:07:30Z"],
    ["*/5 * * * *", undefined, "2026-11-23T10:07:30Z"],
    ["0 * * * *", undefined, "2026-11-23T10:07:30Z"],
    ["30 9 * * *", undefined, "2026-11-23T10:07:30Z"],
    ["0 0 L * *", undefined, "2028-01-15T00:00:00Z"],
    ["0 9 * * 1#2", undefined, "2026-11-01T00:00:00Z"],
    ["0 9 * * 5L", undefined, "2026-11-01T00:00:00Z"],
    ["0 9 15W * *", undefined, "2026-08-01T00:00:00Z"],
    ["0 9 * * MON-FRI", undefined, "2026-11-19T00:00:00Z"],
    ["0 0 1 JAN *", undefined, "2026-06-01T00:00:00Z"],
    ["0 9 1 * MON", undefined, "2026-10-31T00:00:00Z"],
    ["30 2 * * *", "Europe/Berlin", "2026-03-28T00:00:00Z"],
    ["30 2 * * *", "Europe/Berlin", "2026-10-24T00:00:00Z"],
    ["*/30 * * * *", "Europe/Berlin", "2026-10-24T23:45:00Z"],
    ["30 2 * * *", "America/New_York", "2026-03-07T00:00:00Z"],
    ["0 * * * *", "America/New_York", "2026-11-01T04:30:00Z"],
  ];
  const offsets = Array.from({ length: 81 }, (_, i) => -toleranceMs + i * 125);
  const delays = [0, 1, 250, 999, 1_000];

  it.each(cases)("%s (%s) from %s", (expr, timezone, fromIso) => {
    const schedule = parseSchedule(expr, { timezone });
    validateSkewTolerance(schedule, toleranceMs, at(fromIso));
    const fires = nextFireTimes(schedule, at(fromIso), 4);
    expect(fires).toHaveLength(4);
    let checked = 0;
    for (const fire of fires) {
      for (const offset of offsets) {
        for (const delay of delays) {
          const observed = fire + delay + offset;
          const slot = slotFromCron(schedule, observed, { skewToleranceMs: toleranceMs });
          if (slot !== fire) {
            expect.fail(
              `clock ${offset} ms off, ${delay} ms late: ${slotId(slot)} != ${slotId(fire)}`,
            );
          }
          checked++;
        }
      }
    }
    expect(checked).toBe(fires.length * offsets.length * delays.length);
    expect(offsets).toContain(-toleranceMs);
    expect(offsets).toContain(toleranceMs);
  });
});

describe("slotFromScheduledTime", () => {
  it("keeps Cloudflare's planned fire time, truncated to the whole second", () => {
    expect(slotFromScheduledTime(at("2026-11-23T10:05:00Z"))).toBe(at("2026-11-23T10:05:00Z"));
    expect(slotFromScheduledTime(at("2026-11-23T10:05:00.999Z"))).toBe(at("2026-11-23T10:05:00Z"));
    expect(slotFromScheduledTime(at("2026-11-23T10:05:00Z") + 0.5)).toBe(
      at("2026-11-23T10:05:00Z"),
    );
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, 0, -60_000, 1e20, "1795428300000", undefined])(
    "rejects %j with a SlotError",
    (bad) => {
      expect(() => slotFromScheduledTime(bad as number)).toThrow(SlotError);
    },
  );
});

describe("parseExplicitSlot", () => {
  const everyFive = parseSchedule("*/5 * * * *");

  it.each([
    "2026-11-23T10:05:00Z",
    "2026-11-23T10:05Z",
    "2026-11-23T10:05:00.000Z",
    "2026-11-23T11:05:00+01:00",
    "2026-11-23T05:05:00-05:00",
    "2026-11-23T15:35:00+0530",
    "2026-11-23t10:05:00z",
  ])("accepts the fire time %s", (iso) => {
    expect(slotId(parseExplicitSlot(iso, everyFive))).toBe("2026-11-23T10:05:00Z");
  });

  it("rejects a timestamp that is not a fire time, naming the nearest ones", () => {
    const error = thrown(() => parseExplicitSlot("2026-11-23T10:06:00Z", everyFive));
    expect(error).toBeInstanceOf(SlotError);
    expect((error as SlotError).message).toBe(
      'slot "2026-11-23T10:06:00Z" is not a fire time of "*/5 * * * *" (UTC); nearest: 2026-11-23T10:05:00Z and 2026-11-23T10:10:00Z',
    );
    expect(() => parseExplicitSlot("2026-11-23T10:05:00.500Z", everyFive)).toThrow(
      /not a fire time/,
    );
    expect(() => parseExplicitSlot("2026-11-23T10:05:01Z", everyFive)).toThrow(/not a fire time/);
  });

  it.each([
    "yesterday",
    "",
    "2026-11-23",
    "2026-11-23T10:05:00",
    "2026-11-23 10:05:00Z",
    " 2026-11-23T10:05:00Z",
    "1795428300000",
  ])("rejects %j as not an ISO-8601 timestamp with an offset", (iso) => {
    expect(() => parseExplicitSlot(iso, everyFive)).toThrow(
      /is not an ISO-8601 timestamp with a UTC offset/,
    );
  });

  it.each([
    "2026-02-30T10:05:00Z",
    "2026-11-23T24:00:00Z",
    "2026-11-23T10:60:00Z",
    "2026-13-01T00:00:00Z",
    "2026-11-23T10:05:00+24:00",
    "1969-12-31T23:55:00Z",
  ])("rejects %j as not a real date and time", (iso) => {
    expect(() => parseExplicitSlot(iso, everyFive)).toThrow(/not a real date and time/);
  });

  it("rejects a non-string with a SlotError", () => {
    expect(() => parseExplicitSlot(1795428300000 as unknown as string, everyFive)).toThrow(
      SlotError,
    );
  });

  it("accepts only the occurrence croner fires across DST", () => {
    const berlin = parseSchedule("30 2 * * *", { timezone: "Europe/Berlin" });
    expect(slotId(parseExplicitSlot("2026-10-25T02:30:00+02:00", berlin))).toBe(
      "2026-10-25T00:30:00Z",
    );
    expect(() => parseExplicitSlot("2026-10-25T02:30:00+01:00", berlin)).toThrow(/not a fire time/);
    expect(slotId(parseExplicitSlot("2026-03-29T03:00:00+02:00", berlin))).toBe(
      "2026-03-29T01:00:00Z",
    );
  });
});

describe("parseExplicitSlot: only past fire times (backfill)", () => {
  const everyFive = parseSchedule("*/5 * * * *");
  const now = { nowMs: at("2026-11-23T10:07:30Z"), skewToleranceMs: 5_000 };

  it.each(["2026-11-24T08:00:00Z", "2026-11-23T10:10:00Z", "9999-12-31T23:55:00Z"])(
    "rejects the future fire time %s, naming it and the latest allowed",
    (iso) => {
      const error = thrown(() => parseExplicitSlot(iso, everyFive, now));
      expect(error).toBeInstanceOf(SlotError);
      expect((error as SlotError).message).toBe(
        `slot "${iso}" is in the future: ?slot= backfills past fire times; the latest allowed is 2026-11-23T10:05:00Z (now 2026-11-23T10:07:30Z plus 5000 ms skew tolerance)`,
      );
    },
  );

  it("accepts the current slot and a fire time within the skew tolerance ahead", () => {
    expect(slotId(parseExplicitSlot("2026-11-23T10:05:00Z", everyFive, now))).toBe(
      "2026-11-23T10:05:00Z",
    );
    const justBefore = { nowMs: at("2026-11-23T10:09:57Z"), skewToleranceMs: 5_000 };
    expect(slotId(parseExplicitSlot("2026-11-23T10:10:00Z", everyFive, justBefore))).toBe(
      "2026-11-23T10:10:00Z",
    );
  });

  it("accepts any past fire time after the epoch, however old", () => {
    expect(slotId(parseExplicitSlot("1970-01-01T00:05:00Z", everyFive, now))).toBe(
      "1970-01-01T00:05:00Z",
    );
    expect(slotId(parseExplicitSlot("2000-02-29T23:55:00Z", everyFive, now))).toBe(
      "2000-02-29T23:55:00Z",
    );
  });

  it.each([
    ["1970-01-01T00:00:00Z", /is at or before 1970-01-01T00:00:00Z/],
    ["1969-12-31T23:55:00Z", /is at or before 1970-01-01T00:00:00Z/],
    ["0001-01-01T00:00:00Z", /is at or before 1970-01-01T00:00:00Z/],
    ["0099-06-01T00:00:00Z", /is at or before 1970-01-01T00:00:00Z/],
    ["0000-01-01T00:00:00Z", /is at or before 1970-01-01T00:00:00Z/],
  ])("rejects %s with a clear reason", (iso, reason) => {
    expect(() => parseExplicitSlot(iso, everyFive, now)).toThrow(reason);
  });

  it("says what is wrong with an empty slot or a + that arrived as a space", () => {
    expect(() => parseExplicitSlot("", everyFive, now)).toThrow(/is empty/);
    expect(() => parseExplicitSlot("2026-11-23T11:05:00 01:00", everyFive, now)).toThrow(
      /send \+ as %2B/,
    );
  });

  it("quotes at most 64 characters of a huge value", () => {
    const huge = `2026-11-23T10:05:00.${"0".repeat(100_000)}Z`;
    const error = thrown(() => parseExplicitSlot(huge, everyFive, now)) as SlotError;
    expect(error).toBeInstanceOf(SlotError);
    expect(error.message.length).toBeLessThan(300);
    expect(error.message).toMatch(/100021 characters/);
    const junk = thrown(() => parseExplicitSlot("x".repeat(10_000), everyFive, now)) as SlotError;
    expect(junk.message.length).toBeLessThan(300);
  });
});

describe("nextFireTimes", () => {
  const everyFive = parseSchedule("*/5 * * * *");

  it("lists fire times strictly after the reference", () => {
    expect(next(everyFive, "2026-11-23T10:07:30Z", 3)).toEqual([
      "2026-11-23T10:10:00Z",
      "2026-11-23T10:15:00Z",
      "2026-11-23T10:20:00Z",
    ]);
    expect(next(everyFive, "2026-11-23T10:10:00Z", 1)).toEqual(["2026-11-23T10:15:00Z"]);
    expect(next(everyFive, "2026-11-23T10:09:59.999Z", 1)).toEqual(["2026-11-23T10:10:00Z"]);
    expect(nextFireTimes(everyFive, at("2026-11-23T10:07:30Z"), 0)).toEqual([]);
  });

  it("rejects a bad count or reference", () => {
    expect(() => nextFireTimes(everyFive, 0, -1)).toThrow(RangeError);
    expect(() => nextFireTimes(everyFive, 0, 1.5)).toThrow(RangeError);
    expect(() => nextFireTimes(everyFive, Number.NaN, 1)).toThrow(RangeError);
  });
});

describe("periodMsOf and validateSkewTolerance", () => {
  const near = at("2026-11-23T10:07:30Z");

  it.each([
    ["* * * * *", undefined, near, 60_000],
    ["*/5 * * * *", undefined, near, 300_000],
    ["0 * * * *", undefined, near, 3_600_000],
    ["30 9 * * *", undefined, near, 86_400_000],
    ["0 9 1 * MON", undefined, at("2026-11-05T00:00:00Z"), 86_400_000],
    ["0 9 * * 1#2", undefined, near, 28 * 86_400_000],
    ["30 9 * * *", "Europe/Berlin", at("2026-03-29T00:00:00Z"), 23 * 3_600_000],
  ])("%s (%s) -> %d ms", (expr, timezone, nearMs, periodMs) => {
    expect(periodMsOf(parseSchedule(expr, { timezone }), nearMs)).toBe(periodMs);
  });

  it("rejects a tolerance of half the period or more", () => {
    const minutely = parseSchedule("* * * * *");
    for (const toleranceMs of [40_000, 30_000]) {
      const error = thrown(() => validateSkewTolerance(minutely, toleranceMs, near));
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).option).toBe("skewToleranceMs");
      expect((error as ConfigError).message).toContain("60000 ms");
    }
    expect(() => validateSkewTolerance(minutely, 29_999, near)).not.toThrow();
    expect(() => validateSkewTolerance(minutely, 5_000, near)).not.toThrow();
    expect(() => validateSkewTolerance(minutely, -1, near)).toThrow(ConfigError);
  });
});

describe("slotId", () => {
  it("is ISO-8601 in UTC without milliseconds", () => {
    expect(slotId(at("2026-11-23T10:05:00Z"))).toBe("2026-11-23T10:05:00Z");
    expect(slotId(at("2026-11-23T10:05:00.999Z"))).toBe("2026-11-23T10:05:00Z");
    expect(slotId(at("2026-11-23T11:05:00+01:00"))).toBe("2026-11-23T10:05:00Z");
  });

  it("round-trips through parseExplicitSlot", () => {
    const schedule = parseSchedule("0 9 * * 1#2", { timezone: "America/New_York" });
    for (const fire of nextFireTimes(schedule, at("2026-01-01T00:00:00Z"), 12)) {
      expect(parseExplicitSlot(slotId(fire), schedule)).toBe(fire);
    }
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, -1, 0, 1e17])(
    "rejects %d with a SlotError",
    (bad) => {
      expect(() => slotId(bad)).toThrow(SlotError);
    },
  );
});
