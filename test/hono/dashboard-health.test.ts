/** The card's health word from its rows: which fire decides, and the last success and failure. */
import { describe, expect, it } from "vitest";
import { healthOf } from "../../src/hono/routes/dashboard/health.js";

const F1 = "2026-11-25T12:00:00Z";
const F2 = "2026-11-25T12:05:00Z";

describe("healthOf", () => {
  it("is idle with nothing judged, and a running slot is not judged", () => {
    expect(healthOf([], false)).toEqual({ health: "idle", lastSuccess: null, lastFailure: null });
    expect(healthOf([{ slot: F1, outcome: "running" }], false).health).toBe("idle");
    expect(
      healthOf(
        [
          { slot: F2, outcome: "running" },
          { slot: F1, outcome: "failed", at: "2026-11-25T12:00:02.000Z" },
        ],
        false,
      ).health,
    ).toBe("failing");
  });

  it("lets a dead event win its fire over the attempts' failed rows, and a retry that ran heal it", () => {
    const dead = [
      { slot: `${F2}.retry1`, outcome: "failed", at: "2026-11-25T12:06:01.000Z" },
      { slot: F2, outcome: "dead", at: "2026-11-25T12:06:02.000Z", summary: "boom" },
      { slot: F2, outcome: "failed", at: "2026-11-25T12:05:01.000Z" },
      { slot: F1, outcome: "ran", at: "2026-11-25T12:00:01.000Z" },
    ];
    expect(healthOf(dead, false)).toEqual({
      health: "dead",
      lastSuccess: { slot: F1, at: "2026-11-25T12:00:01.000Z", outcome: "ran" },
      lastFailure: { slot: F2, at: "2026-11-25T12:06:02.000Z", outcome: "dead", summary: "boom" },
    });
    const healed = [
      { slot: `${F2}.retry1`, outcome: "ran", at: "2026-11-25T12:06:01.000Z" },
      { slot: F2, outcome: "failed", at: "2026-11-25T12:05:01.000Z" },
    ];
    expect(healthOf(healed, false)).toMatchObject({
      health: "ok",
      lastSuccess: { slot: `${F2}.retry1` },
      lastFailure: { slot: F2 },
    });
  });

  it("reads a forced re-run of the newest slot by when it finished", () => {
    const rows = [
      { slot: F2, outcome: "failed", at: "2026-11-25T12:05:01.000Z" },
      { slot: F2, outcome: "ran", at: "2026-11-25T12:07:00.000Z" },
    ];
    expect(healthOf(rows, false).health).toBe("ok");
    expect(healthOf(rows.reverse(), false).health).toBe("ok");
  });

  it("says missed when the newest fire was missed, lost as failing, and paused over all", () => {
    const missed = [
      { slot: F2, outcome: "missed" },
      { slot: F1, outcome: "ran", at: "2026-11-25T12:00:01.000Z" },
    ];
    expect(healthOf(missed, false)).toMatchObject({ health: "missed", lastFailure: null });
    expect(healthOf([{ slot: F2, outcome: "lost" }], false).health).toBe("failing");
    expect(healthOf([{ slot: F2, outcome: "dead" }], true)).toMatchObject({
      health: "paused",
      lastFailure: { slot: F2, outcome: "dead", at: null },
    });
  });
});
