import { describe, expect, it } from "vitest";
import { ConfigError, createGuard, type GuardOptions, guarded } from "../../src/core/index.js";

const redis = {
  eval: async () => null,
  evalsha: async () => null,
} as unknown as GuardOptions["redis"];

describe("createGuard options", () => {
  it("fills documented defaults and freezes them", () => {
    const { options } = createGuard({ redis });
    expect(options).toMatchObject({
      prefix: "cron-guard",
      leaseMs: 60_000,
      retentionMs: undefined,
      heartbeatMs: 20_000,
      skewToleranceMs: 5_000,
      onFailure: "release",
      onStoreError: "closed",
      overlap: "allow",
      region: "",
      historyLength: 100,
    });
    expect(Object.isFrozen(options)).toBe(true);
  });

  it.each([
    [{ redis: undefined }, "redis"],
    [{ redis: {} }, "redis"],
    [{ redis, prefix: "has space" }, "prefix"],
    [{ redis, prefix: "{tag}" }, "prefix"],
    [{ redis, leaseMs: 0 }, "leaseMs"],
    [{ redis, leaseMs: 1.5 }, "leaseMs"],
    [{ redis, leaseMs: "60s" }, "leaseMs"],
    [{ redis, retentionMs: -1 }, "retentionMs"],
    [{ redis, leaseMs: 1_000, heartbeatMs: 1_000 }, "heartbeatMs"],
    [{ redis, heartbeatMs: 5 }, "heartbeatMs"],
    [{ redis, skewToleranceMs: -5 }, "skewToleranceMs"],
    [{ redis, onFailure: "retry" }, "onFailure"],
    [{ redis, onStoreError: "ignore" }, "onStoreError"],
    [{ redis, overlap: "queue" }, "overlap"],
    [{ redis, clock: 42 }, "clock"],
    [{ redis, historyLength: 0 }, "historyLength"],
  ])("rejects %o naming the option %s", (options, option) => {
    let caught: unknown;
    try {
      createGuard(options as unknown as GuardOptions);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).option).toBe(option);
    expect((caught as ConfigError).message).toContain(option);
  });

  it("guarded() with a cron rejects a skew tolerance of half its period or more at creation", () => {
    let caught: unknown;
    try {
      guarded(() => "ran", { redis, job: "report", cron: "* * * * *", skewToleranceMs: 40_000 });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).option).toBe("skewToleranceMs");
    expect((caught as ConfigError).message).toContain("report");
    expect(() =>
      guarded(() => "ran", { redis, job: "report", cron: "0 * * * *", skewToleranceMs: 40_000 }),
    ).not.toThrow();
    expect(() =>
      guarded(() => "ran", { redis, job: "report", skewToleranceMs: 40_000 }),
    ).not.toThrow();
  });
});
