/**
 * A failed advance (issue 18, finding 5): the dispatcher's set-pending call after a run fails (a 5xx
 * before it reached Redis, or an answer lost after Redis applied it). The advance is retried within
 * the tick; when every try fails the fire stays pending, and the next tick, 62 s later, must neither
 * run it again nor record it missed, under every catch-up policy. Real @upstash/redis clients
 * through the bridge; only the set-pending calls are made to fail.
 */
import { describe, expect, it } from "vitest";
import type { GuardStore } from "../../../src/core/index.js";
import {
  type CatchUpPolicy,
  createDispatcher,
  createScheduleRegistry,
  type ScheduleHandler,
  type TickResult,
} from "../../../src/core/schedules/index.js";
import { SET_PENDING_SCRIPT } from "../../../src/core/schedules/scripts.js";
import { directRedis, upstash, useKeyPrefix } from "../../support/harness.js";

const T0 = Date.UTC(2026, 10, 25, 12, 0, 30);
const FIRE = "2026-11-25T12:01:00Z";

type Fault = "before" | "lostAnswer";

/** A store whose set-pending calls fail `times` times (`before`: never sent; `lostAnswer`: applied). */
async function failingAdvance(
  fault: Fault,
  times: number,
): Promise<GuardStore & { failed: number }> {
  const redis = upstash();
  const sha1 = await SET_PENDING_SCRIPT.sha1();
  const store = {
    failed: 0,
    eval: async (script: string, keys: string[], args: unknown[]) => {
      if (script === SET_PENDING_SCRIPT.source && store.failed < times) {
        // (a NOSCRIPT answer goes through uncounted: the caller then sends the source)
        if (fault === "lostAnswer") await redis.eval(script, keys, args);
        store.failed += 1;
        throw new Error("HTTP 502 Bad Gateway (injected)");
      }
      return redis.eval(script, keys, args);
    },
    async evalsha(hash: string, keys: string[], args: unknown[]) {
      if (hash === sha1 && store.failed < times) {
        // (a NOSCRIPT answer goes through uncounted: the caller then sends the source)
        if (fault === "lostAnswer") await redis.evalsha(hash, keys, args);
        store.failed += 1;
        throw new Error("HTTP 502 Bad Gateway (injected)");
      }
      return redis.evalsha(hash, keys, args);
    },
  } as unknown as GuardStore & { failed: number };
  return store;
}

function world(prefix: string) {
  let nowMs = T0;
  const clock = () => nowMs;
  const runs: string[] = [];
  const record: ScheduleHandler = ({ schedule, slot }) => {
    runs.push(`${schedule.id}@${slot}`);
  };
  const registry = createScheduleRegistry({
    redis: upstash(),
    prefix,
    handlers: ["record"],
    clock,
  });
  const tick = (redis: GuardStore): Promise<TickResult> =>
    createDispatcher({
      redis,
      prefix,
      handlers: { record },
      guardOptions: { clock, leaseMs: 2_000 },
      maxCalls: 1_000,
      retryBackoffMs: 0,
    }).tick();
  return {
    registry,
    runs,
    tick,
    setNow: (ms: number) => {
      nowMs = ms;
    },
  };
}

describe("a failed advance after a run", () => {
  const prefix = useKeyPrefix("dispatch-advance");
  const policies: CatchUpPolicy[] = ["all", "latest", "skip"];
  const cases: [string, Fault, number][] = [
    ["fails once before reaching Redis (retried within the tick)", "before", 1],
    ["loses its answer once (retried: idempotent)", "lostAnswer", 1],
    ["fails on every try of the tick (left pending)", "before", 1_000],
  ];

  for (const catchUp of policies) {
    it.each(cases)(
      `catchUp ${catchUp}: an advance that %s: next tick 62 s later neither re-runs nor misses it`,
      async (_what, fault, times) => {
        const w = world(prefix());
        await w.registry.upsert({ id: "s", cron: "* * * * *", handler: "record", catchUp });
        w.setNow(T0 + 32_000); // 12:01:02
        const failing = await failingAdvance(fault, times);
        const first = await w.tick(failing);
        expect(failing.failed).toBeGreaterThanOrEqual(1);
        expect(first).toMatchObject({ ran: 1, missed: 0, dead: 0 });
        if (times > 1) expect(first.errors).toBe(1);
        else expect(first.errors).toBe(0);
        expect(w.runs).toEqual([`s@${FIRE}`]);

        w.setNow(T0 + 94_000); // 12:02:04, 62 s later: 12:01's slot key has expired by now
        const second = await w.tick(upstash());
        expect(w.runs).toEqual([`s@${FIRE}`, "s@2026-11-25T12:02:00Z"]);
        expect(second).toMatchObject({ ran: 1, missed: 0, dead: 0, errors: 0, remaining: 0 });
        expect(await w.registry.events()).toEqual([]);
        expect(await w.registry.get("s")).toMatchObject({
          next: "2026-11-25T12:03:00Z",
          attempt: 0,
        });
      },
    );
  }

  it("catchUp latest, the advance left pending and the next tick 3 min later: the fire that ran is not missed, the two after it are", async () => {
    const w = world(prefix());
    await w.registry.upsert({ id: "s", cron: "* * * * *", handler: "record", catchUp: "latest" });
    w.setNow(T0 + 32_000);
    expect(await w.tick(await failingAdvance("before", 1_000))).toMatchObject({
      ran: 1,
      errors: 1,
    });
    w.setNow(T0 + 3 * 60_000 + 34_000); // 12:04:04
    const later = await w.tick(upstash());
    expect(w.runs).toEqual([`s@${FIRE}`, "s@2026-11-25T12:04:00Z"]);
    expect(later).toMatchObject({ ran: 1, missed: 2, errors: 0 });
    const events = await w.registry.events();
    expect(events.map((entry) => entry.event)).toMatchObject([
      { kind: "missed", fire: "2026-11-25T12:02:00Z", fires: 2 },
    ]);
    // nothing of the run itself was lost: the ledger holds it once
    const direct = await directRedis();
    expect(await direct.exists(`${prefix()}:{schedules}:defs`)).toBe(1);
  });
});
