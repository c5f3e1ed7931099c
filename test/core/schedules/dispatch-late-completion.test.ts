/**
 * A handler that finished, but whose run could be recorded only after its lease ended (the store
 * answered too slowly): the guard answers `failed` with `lockLost` and `completed`, and the ledger
 * enters the run as `lost`. The fire's work was done, so the dispatcher moves on instead of
 * retrying it as a new attempt (which ran the handler again: found under load by the 1,000-fire
 * concurrent-ticks test once a tick sent its completions in large batches). Real @upstash/redis
 * through the bridge; the slowness is a store wrapper that holds every call for a while.
 */
import { describe, expect, it } from "vitest";
import type { GuardStore } from "../../../src/core/index.js";
import {
  createDispatcher,
  createScheduleRegistry,
  type ScheduleHandler,
} from "../../../src/core/schedules/index.js";
import { sleep } from "../../../src/core/sleep.js";
import { upstash, useKeyPrefix } from "../../support/harness.js";

const T0 = Date.UTC(2026, 11, 7, 12, 0, 30);
const FIRE = "2026-12-07T12:01:00Z";
const LEASE_MS = 1_000;

/** Every call made while `slowUntilMs` lies ahead waits `delayMs` before it is sent. */
function slowStore() {
  const redis = upstash();
  const state = { slowUntilMs: 0, delayMs: 0, delayed: 0 };
  const gate = async () => {
    if (Date.now() < state.slowUntilMs) {
      state.delayed += 1;
      await sleep(state.delayMs);
    }
  };
  const store: GuardStore = {
    eval: async (script, keys, args) => {
      await gate();
      return redis.eval(script, keys, args);
    },
    evalsha: async (sha, keys, args) => {
      await gate();
      return redis.evalsha(sha, keys, args);
    },
  };
  return { store, state };
}

describe("a run recorded only after its lease ended", () => {
  const prefix = useKeyPrefix("dispatch-late-completion");

  it("is not retried: the handler ran once, the schedule moved on to its next fire", async () => {
    let nowMs = T0;
    const clock = () => nowMs;
    const { store, state } = slowStore();
    const runs: string[] = [];
    const pending: Promise<unknown>[] = [];
    const record: ScheduleHandler = ({ slot }) => {
      runs.push(slot);
      // As the handler finishes, the store turns slow: every call (heartbeat, completion) now
      // arrives after the lease has run out.
      state.slowUntilMs = Date.now() + 2 * LEASE_MS;
      state.delayMs = 1.5 * LEASE_MS;
    };
    const registry = createScheduleRegistry({
      redis: upstash(),
      prefix: prefix(),
      handlers: ["record"],
      clock,
    });
    await registry.upsert({ id: "s", cron: "* * * * *", handler: "record", maxAttempts: 3 });
    const dispatcher = createDispatcher({
      redis: store,
      prefix: prefix(),
      handlers: { record },
      guardOptions: { clock, leaseMs: LEASE_MS },
      retryBackoffMs: 0,
    });

    nowMs = Date.parse(FIRE) + 1_000;
    const first = await dispatcher.tick({ waitUntil: (p) => pending.push(p) });
    await Promise.allSettled(pending);
    expect(state.delayed).toBeGreaterThan(0);
    expect(runs).toEqual([FIRE]);
    expect(first).toMatchObject({ ran: 1, failed: 0 });

    // A later tick of the same minute, then the next fire's: nothing of 12:01 runs again.
    nowMs += 5_000;
    await dispatcher.tick();
    nowMs = Date.parse(FIRE) + 61_000;
    await dispatcher.tick();
    expect(runs).toEqual([FIRE, "2026-12-07T12:02:00Z"]);
  }, 30_000);
});
