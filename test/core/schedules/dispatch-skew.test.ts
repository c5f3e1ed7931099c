/**
 * Clock skew between tickers (issue 18, finding 12, second half). The rule (DispatcherOptions):
 * a fire starts only once the ticker's own clock reads its fire time; a tick also takes the fires
 * due within the next `skewToleranceMs` and waits for them. So a ticker whose clock is behind by up
 * to the tolerance still runs the current fire in this tick, and a ticker whose clock is ahead
 * starts it at most its own skew early (never earlier than its clock allows). Clocks here run in
 * real time from a chosen reading, as a skewed machine's would.
 */
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../../src/core/index.js";
import {
  createDispatcher,
  createScheduleRegistry,
  type ScheduleHandler,
} from "../../../src/core/schedules/index.js";
import { upstash, useKeyPrefix } from "../../support/harness.js";

const FIRE = Date.UTC(2026, 10, 25, 12, 1, 0);

/** A clock that reads `readsMs` now and runs in real time from there. */
function skewedClock(readsMs: number): () => number {
  const realStart = Date.now();
  return () => readsMs + (Date.now() - realStart);
}

async function setup(prefix: string) {
  const registry = createScheduleRegistry({
    redis: upstash(),
    prefix,
    handlers: ["record"],
    clock: () => FIRE - 30_000, // created at 12:00:30: the first fire is 12:01
  });
  await registry.upsert({ id: "s", cron: "* * * * *", handler: "record" });
  return registry;
}

function ticker(prefix: string, clock: () => number) {
  const started: { slot: string; atMs: number }[] = [];
  const record: ScheduleHandler = ({ slot }) => {
    started.push({ slot, atMs: clock() });
  };
  const dispatcher = createDispatcher({
    redis: upstash(),
    prefix,
    handlers: { record },
    guardOptions: { clock, skewToleranceMs: 5_000 },
  });
  return { started, tick: () => dispatcher.tick() };
}

describe("dispatcher clock skew", () => {
  const prefix = useKeyPrefix("dispatch-skew");

  it("a ticker whose clock is behind by less than the tolerance still runs the current fire, once its clock reaches it", async () => {
    await setup(prefix());
    // The platform's tick arrives at 12:01:00.0; this machine's clock reads 11:59:59.7.
    const behind = ticker(prefix(), skewedClock(FIRE - 300));
    const tick = await behind.tick();
    expect(tick).toMatchObject({ ran: 1, errors: 0 });
    expect(behind.started).toHaveLength(1);
    expect(behind.started[0]?.slot).toBe("2026-11-25T12:01:00Z");
    expect(behind.started[0]?.atMs).toBeGreaterThanOrEqual(FIRE);
    // another ticker at the right time finds it done
    expect(await ticker(prefix(), skewedClock(FIRE + 1_000)).tick()).toMatchObject({ ran: 0 });
  });

  it("a ticker whose clock is ahead never starts a fire before its own clock reads the fire time", async () => {
    await setup(prefix());
    // 2 s ahead: the fire is 2 s away by its clock (within the tolerance): it waits, then runs it.
    const ahead = ticker(prefix(), skewedClock(FIRE - 2_000));
    expect(await ahead.tick()).toMatchObject({ ran: 1 });
    expect(ahead.started[0]?.atMs).toBeGreaterThanOrEqual(FIRE);
  });

  it("a fire further away than the tolerance is not taken, and a clock that does not reach the fire time never starts it", async () => {
    await setup(prefix());
    const early = ticker(prefix(), skewedClock(FIRE - 6_000));
    expect(await early.tick()).toMatchObject({ ran: 0, errors: 0 });
    const frozen = ticker(prefix(), () => FIRE - 500); // waits, but its clock stays before 12:01
    expect(await frozen.tick()).toMatchObject({ ran: 0, errors: 0 });
    expect([...early.started, ...frozen.started]).toEqual([]);
  });
});

describe("dispatcher options", () => {
  it.each([
    ["budgetMs", 0],
    ["maxRequests", 3],
    ["maxCalls", 3],
    ["concurrency", 1.5],
    ["retryBackoffMs", -1],
    ["missedAfterMs", Number.NaN],
  ])("refuses %s = %s with a ConfigError naming it", (option, value) => {
    const create = () =>
      createDispatcher({ redis: upstash(), handlers: {}, [option]: value } as never);
    expect(create).toThrow(ConfigError);
    expect(create).toThrow(expect.objectContaining({ option }));
  });
});
