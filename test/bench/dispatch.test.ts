import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { measureDispatchDrain, measureDispatchScale } from "../../bench/dispatch.js";
import { type BenchStack, startBenchStack } from "../../bench/support.js";

// The dispatch benchmark at a small size, so `npm run bench` cannot rot unnoticed.
describe("dispatch benchmark at a small size", () => {
  let stack: BenchStack;
  beforeAll(async () => {
    stack = await startBenchStack();
  });
  afterAll(async () => {
    await stack.close();
  });

  it("one tick runs exactly the due schedules, whatever the number stored", async () => {
    const few = await measureDispatchScale(stack, 50, 10, 1);
    const many = await measureDispatchScale(stack, 2_000, 10, 1);
    expect(few).toMatchObject({ stored: 50, due: 10, ran: 10 });
    expect(many).toMatchObject({ stored: 2_000, due: 10, ran: 10 });
    expect(many.requests).toBeGreaterThan(0);
  });

  it("concurrent ticks drain the due schedules without a duplicate", async () => {
    const drain = await measureDispatchDrain(stack, 100, 4);
    expect(drain.duplicates).toBe(0);
    expect(drain.ranPerTick.reduce((a, b) => a + b, 0)).toBe(100);
  });
});
