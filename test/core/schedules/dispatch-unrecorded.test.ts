/**
 * Finding 5 of issue 18, the store-outage half: the store goes away right after a handler ran, so
 * neither the run's completion nor the dispatcher's advance lands in time. The guard keeps trying
 * to record the run in the background; once it lands, the next tick (62 s later) must neither run
 * the fire again nor call it missed, whatever the catch-up policy. Real @upstash/redis clients
 * through the bridge; the outage is a store wrapper that fails every call for a while.
 */
import { describe, expect, it } from "vitest";
import type { GuardStore } from "../../../src/core/index.js";
import {
  type CatchUpPolicy,
  createDispatcher,
  createScheduleRegistry,
  type ScheduleHandler,
} from "../../../src/core/schedules/index.js";
import { sleep } from "../../../src/core/sleep.js";
import { upstash, useKeyPrefix } from "../../support/harness.js";

const T0 = Date.UTC(2026, 11, 7, 12, 0, 30);
const FIRE = "2026-12-07T12:01:00Z";

/** A store that fails every call while `down` is set (like a redis-server that stopped). */
function outageStore() {
  const redis = upstash();
  const state = { downUntilMs: 0, refused: 0 };
  const gate = () => {
    if (Date.now() < state.downUntilMs) {
      state.refused += 1;
      throw new Error("HTTP 503 Redis unavailable (injected outage)");
    }
  };
  const store: GuardStore = {
    eval: async (script, keys, args) => {
      gate();
      return redis.eval(script, keys, args);
    },
    evalsha: async (sha, keys, args) => {
      gate();
      return redis.evalsha(sha, keys, args);
    },
  };
  return { store, state };
}

describe("a run whose completion and advance fail while the store is away", () => {
  const prefix = useKeyPrefix("dispatch-unrecorded");
  const policies: CatchUpPolicy[] = ["all", "latest", "skip"];

  it.each(policies)(
    "catchUp %s: ran once, recorded later, never re-run nor missed",
    async (catchUp) => {
      let nowMs = T0;
      const clock = () => nowMs;
      const { store, state } = outageStore();
      const runs: string[] = [];
      const pending: Promise<unknown>[] = [];
      const record: ScheduleHandler = ({ slot }) => {
        runs.push(slot);
        state.downUntilMs = Date.now() + 1_500; // the store goes away as the handler finishes
      };
      const registry = createScheduleRegistry({
        redis: upstash(),
        prefix: prefix(),
        handlers: ["record"],
        clock,
      });
      await registry.upsert({ id: "s", cron: "* * * * *", handler: "record", catchUp });
      const dispatcher = createDispatcher({
        redis: store,
        prefix: prefix(),
        handlers: { record },
        guardOptions: { clock, leaseMs: 5_000 },
        maxCalls: 1_000,
      });

      nowMs = Date.parse(FIRE) + 1_000;
      const first = await dispatcher.tick({ waitUntil: (p) => pending.push(p) });
      expect(runs).toEqual([FIRE]);
      expect(state.refused).toBeGreaterThan(0);
      expect(first).toMatchObject({ ran: 1, missed: 0 });
      await Promise.all(pending); // the background recording, as waitUntil would keep it alive
      expect((await registry.get("s"))?.next).toBe(FIRE); // the advance never landed
      await sleep(100);

      // 12:02:02: 12:01 is settled from the ledger; 12:02 is due and may run.
      nowMs = Date.parse(FIRE) + 62_000;
      const second = await dispatcher.tick();
      expect(runs.filter((slot) => slot === FIRE)).toHaveLength(1);
      expect(runs.every((slot) => slot === FIRE || slot === "2026-12-07T12:02:00Z")).toBe(true);
      expect(second.missed).toBe(0);
      expect(await registry.events()).toEqual([]);
      expect((await registry.get("s"))?.next).not.toBe(FIRE);
    },
  );
});
