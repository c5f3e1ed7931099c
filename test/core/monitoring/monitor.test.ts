/**
 * Missed and late runs: fire times of a schedule compared with the claims the store holds. The pure
 * comparison first, then through a real guard (real redis-server behind the bridge, injected clock).
 */
import { describe, expect, it } from "vitest";
import { parseSchedule, slotId } from "../../../src/core/cron/index.js";
import { createGuard } from "../../../src/core/index.js";
import {
  claimsFromStatus,
  detectMissedAndLate,
  monitorJob,
} from "../../../src/core/monitoring/index.js";
import { upstash, useKeyPrefix } from "../../support/harness.js";

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);
const at = (minutes: number, seconds = 0) => T0 + minutes * MINUTE + seconds * 1_000;
const everyMinute = parseSchedule("* * * * *");

describe("detectMissedAndLate", () => {
  it("reports fires without a claim after the grace, oldest first, and nothing within the grace", () => {
    const claims = [0, 1, 2, 6].map((m) => ({ slot: slotId(at(m)), startedAtMs: at(m, 1) }));
    const report = detectMissedAndLate({
      schedule: everyMinute,
      nowMs: at(7, 30),
      claims,
      options: { graceMs: 60_000 },
    });
    // 12:07 is due but still within its grace; 12:03-12:05 are missed.
    expect(report.missed).toEqual([slotId(at(3)), slotId(at(4)), slotId(at(5))]);
    expect(report).toMatchObject({ checked: 7, from: slotId(at(0)), to: slotId(at(6)) });
    expect(report.late).toEqual([]);
  });

  it("reports a claim that started more than graceMs late, with how late", () => {
    const claims = [
      { slot: slotId(at(0)), startedAtMs: at(0, 2) },
      { slot: slotId(at(1)), startedAtMs: at(1, 45) },
      { slot: slotId(at(2)), startedAtMs: at(2, 31) },
      // a dispatcher retry is late on purpose
      { slot: `${slotId(at(0))}.retry1`, startedAtMs: at(3) },
    ];
    const report = detectMissedAndLate({
      schedule: everyMinute,
      nowMs: at(2, 40),
      claims,
      options: { graceMs: 30_000 },
    });
    expect(report.late).toEqual([
      { slot: slotId(at(1)), startedAt: new Date(at(1, 45)).toISOString(), lateMs: 45_000 },
      { slot: slotId(at(2)), startedAt: new Date(at(2, 31)).toISOString(), lateMs: 31_000 },
    ]);
    expect(report.missed).toEqual([]);
  });

  it("judges nothing before the first claim or sinceMs, and nothing older than the window", () => {
    const none = detectMissedAndLate({ schedule: everyMinute, nowMs: at(30), claims: [] });
    expect(none).toMatchObject({ checked: 0, missed: [], from: null });
    const created = detectMissedAndLate({
      schedule: everyMinute,
      nowMs: at(10, 30),
      claims: [],
      sinceMs: at(7, 10),
      options: { graceMs: 60_000 },
    });
    expect(created.missed).toEqual([slotId(at(8)), slotId(at(9))]);
    const windowed = detectMissedAndLate({
      schedule: everyMinute,
      nowMs: at(100),
      claims: [{ slot: slotId(at(0)), startedAtMs: at(0) }],
      options: { graceMs: 0, windowMs: 5 * MINUTE },
    });
    expect(windowed.missed).toEqual([95, 96, 97, 98, 99, 100].map((m) => slotId(at(m))));
  });

  it("checks at most 500 fires however long the window", () => {
    const report = detectMissedAndLate({
      schedule: everyMinute,
      nowMs: at(10_000),
      claims: [{ slot: slotId(at(0)), startedAtMs: at(0) }],
      options: { graceMs: 0, windowMs: 30 * 86_400_000 },
    });
    expect(report.checked).toBe(500);
    expect(report.missed.at(-1)).toBe(slotId(at(10_000)));
  });

  it("takes the start of a run from its history once the slot key has expired", () => {
    const claims = claimsFromStatus({
      slots: [{ slot: slotId(at(1)), state: null, ttlMs: null }],
      runs: [
        {
          id: "1-0",
          slot: slotId(at(1)),
          status: "done",
          fence: 1,
          region: "",
          finishedAt: at(2, 40),
          durationMs: 10_000,
          summary: "",
          forced: false,
        },
      ],
    });
    expect(claims).toEqual([{ slot: slotId(at(1)), startedAtMs: at(2, 30) }]);
  });

  it("refuses a negative grace", () => {
    expect(() =>
      detectMissedAndLate({
        schedule: everyMinute,
        nowMs: T0,
        claims: [],
        options: { graceMs: -1 },
      }),
    ).toThrow(/graceMs/);
  });
});

describe("monitorJob (real store)", () => {
  const prefix = useKeyPrefix("monitor");

  it("a scheduler stopped for 3 fires shows those 3 as missed; a delayed claim shows as late", async () => {
    let nowMs = at(0, 1);
    const guard = createGuard({ redis: upstash(), prefix: prefix(), clock: () => nowMs });
    const fire = async (minute: number, delaySeconds = 1) => {
      nowMs = at(minute, delaySeconds);
      const result = await guard.run("tick", at(minute), () => "ok");
      expect(result.status).toBe("ran");
    };
    for (const minute of [0, 1, 2]) await fire(minute);
    // stopped for 12:03, 12:04, 12:05; back at 12:06, and 12:07 claimed 90 s late
    await fire(6);
    await fire(7, 90);
    nowMs = at(8, 50);
    const status = await monitorJob(guard, "tick", everyMinute, { graceMs: 60_000 });
    expect(status.monitor.missed).toEqual([slotId(at(3)), slotId(at(4)), slotId(at(5))]);
    expect(status.monitor.late).toEqual([
      { slot: slotId(at(7)), startedAt: new Date(at(7, 90)).toISOString(), lateMs: 90_000 },
    ]);
    // 12:08 has no claim yet, but it is due only 50 s ago: within the grace, not judged
    expect(status.monitor.checked).toBe(8);
  });
});
