import { describe, expect, it } from "vitest";
import { SyncTokens } from "../../src/bridge/sync-tokens.js";

const NOV_2026 = Date.UTC(2026, 10, 25, 21, 0, 0);

describe("SyncTokens", () => {
  it("hands out 16-digit tokens that only go up, also past 9 million in one second", () => {
    const tokens = new SyncTokens(() => NOV_2026);
    const first = tokens.next(undefined);
    expect(first).toMatch(/^\d{16}$/);
    let previous = first;
    for (let i = 0; i < 9_000_000; i += 1) previous = tokens.next(undefined);
    const next = tokens.next(undefined);
    expect(BigInt(next)).toBeGreaterThan(BigInt(previous));
    expect(next.length).toBe(16);
    expect(Number.isSafeInteger(Number(next))).toBe(true);
  });

  it("starts above an earlier bridge's tokens when restarted a second later", () => {
    const before = new SyncTokens(() => NOV_2026);
    let last = "";
    for (let i = 0; i < 100_000; i += 1) last = before.next(undefined);
    const after = new SyncTokens(() => NOV_2026 + 1_000);
    expect(BigInt(after.next(undefined))).toBeGreaterThan(BigInt(last));
  });

  it("answers the client's own token when it is ahead, and ignores what is not a token", () => {
    const tokens = new SyncTokens(() => NOV_2026);
    const ours = tokens.next(undefined);
    const ahead = String(BigInt(ours) + 1_000n);
    expect(tokens.next(ahead)).toBe(ahead);
    expect(tokens.next("9".repeat(17))).not.toBe("9".repeat(17));
    expect(tokens.next("12abc")).toMatch(/^\d{16}$/);
    expect(tokens.next("0".repeat(16))).not.toBe("0".repeat(16));
    expect(BigInt(tokens.next("1"))).toBeGreaterThan(BigInt(ours));
  });
});
