import { describe, expect, it } from "vitest";
import { parseSchedule } from "../../src/core/cron/index.js";
import { sameSchedule, scheduleSignature } from "../../src/hono/cron-signature.js";

describe("sameSchedule: equal by meaning, not by spelling", () => {
  it.each([
    ["*/1 * * * *", "* * * * *"],
    ["00 08 * * *", "0 8 * * *"],
    ["0 8 * * MON", "0 8 * * 1"],
    ["0 8 * * mon-fri", "0 8 * * 1-5"],
    ["0 8 * * 7", "0 8 * * 0"],
    ["0 8 * * SUN", "0 8 * * 7"],
    ["0 8 ? * ?", "0 8 * * *"],
    ["0 8 1-31 * *", "0 8 * * *"],
    ["0 8 * * 0-6", "0 8 * * *"],
    ["0 8 1-31 * 1", "0 8 * * *"],
    ["0 0 * JAN-MAR *", "0 0 * 1-3 *"],
    ["0,30 * * * *", "*/30 * * * *"],
    ["0 9-17/2 * * *", "0 9,11,13,15,17 * * *"],
    ["0 0 1 * 1", "0 0 1 * MON"],
    ["  0  8 * * * ", "0 8 * * *"],
    ["@daily", "0 0 * * *"],
    ["@hourly", "0 * * * *"],
    ["0 0 L * *", "0 0 L * *"],
    ["0 0 L 2 *", "0 0 L FEB *"],
    ["0 0 15W * *", "0 0 15W * *"],
    ["0 0 * * FRI#2", "0 0 * * 5#2"],
    ["0 0 * * 5L", "0 0 * * 5#L"],
    ["0 0 * * 5#1,5#2,5#3,5#4,5#5", "0 0 * * 5"],
    ["0 0 * * 5#1,5#2,5#3,5#4,5L", "0 0 * * FRI"],
    ["0 0 * * 5#5,5L", "0 0 * * 5L"],
  ])("%j means %j", (a, b) => {
    expect(sameSchedule(a, b)).toBe(true);
    expect(sameSchedule(b, a)).toBe(true);
  });

  it.each([
    ["0 8 * * 1", "0 8 * * 2"],
    ["*/5 * * * *", "*/10 * * * *"],
    ["0 8 1 * 1", "0 8 1 * *"],
    ["0 8 1 * 1", "0 8 * * 1"],
    ["0 0 L * *", "0 0 31 * *"],
    ["0 0 LW * *", "0 0 L * *"],
    ["0 0 15W * *", "0 0 15 * *"],
    ["0 0 * * 5#2", "0 0 * * 5"],
    ["0 0 * * 5L", "0 0 * * 5#4"],
    ["0 0 * * 5L", "0 0 * * 5#5"],
    ["0 0 1 * +1", "0 0 1 * 1"],
    ["0 8 * * *", "0 9 * * *"],
    ["every minute", "* * * * *"],
    ["* * * * * *", "* * * * *"],
  ])("%j does not mean %j", (a, b) => {
    expect(sameSchedule(a, b)).toBe(false);
    expect(sameSchedule(b, a)).toBe(false);
  });

  it("calls equal what fires on the same days in every month, however the rule is spelled", () => {
    // A last weekday, a nearest weekday, a first Monday: always one of the days the other field
    // already picks (Vixie cron's OR), or always the same day (+ is AND).
    expect(sameSchedule("0 8 LW * 1-5", "0 8 * * 1-5")).toBe(true);
    expect(sameSchedule("0 8 15W * MON-FRI", "0 8 * * 1-5")).toBe(true);
    expect(sameSchedule("0 8 1-7 * +1", "0 8 * * 1#1")).toBe(true);
    expect(sameSchedule("0 8 29-31 * +5L", "0 8 * * 5#5")).toBe(true);
    expect(sameSchedule("@weekly", "0 0 * * SUN")).toBe(true);
    expect(sameSchedule("@yearly", "0 0 1 JAN *")).toBe(true);
    expect(sameSchedule("0 0 30 1,2 *", "0 0 30 1 *")).toBe(false);
  });

  it("never calls two schedules the same whose next fire times differ", () => {
    const expressions = [
      ...["* * * * *", "0 8 * * 1-5", "0 8 LW * 1-5", "0 8 15W * 1-5", "0 8 1-7 * +1"],
      ...["0 8 * * 1#1", "0 8 * * 1", "0 8 1-7 * 1", "0 0 L * *", "0 0 LW * *", "0 0 31 * *"],
      ...["0 0 * * 5L", "0 0 * * 5#5", "0 0 * * 5#4", "0 0 29-31 * +5L", "0 0 1 * +1"],
      ...["0 0 29 2 *", "0 0 L 2 *", "@monthly", "0 0 1 * *", "@weekly", "0 0 * * 0,7"],
    ];
    const from = [Date.UTC(2026, 0, 1), Date.UTC(2027, 10, 20), Date.UTC(2028, 1, 27)];
    const fires = new Map(
      expressions.map((expr) => {
        const { cron } = parseSchedule(expr);
        return [expr, from.flatMap((ms) => cron.nextRuns(40, new Date(ms)).map((d) => +d))];
      }),
    );
    for (const a of expressions) {
      for (const b of expressions) {
        if (sameSchedule(a, b)) expect(fires.get(a), `${a} vs ${b}`).toEqual(fires.get(b));
      }
    }
  });

  it("gives no signature to what does not parse, and the same one to the same expression", () => {
    expect(scheduleSignature("61 * * * *")).toBeUndefined();
    expect(scheduleSignature("@reboot")).toBeUndefined();
    expect(scheduleSignature("0 8 * * 1-5")).toBe(scheduleSignature(" 0 8 * * MON-FRI "));
  });
});
