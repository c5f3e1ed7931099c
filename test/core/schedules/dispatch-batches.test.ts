/**
 * Batched dispatch (issue 22): a tick claims, completes and advances its due fires in waves, one
 * `/pipeline` request per group, so 1,000 due fires run in one tick with default options within
 * Workers Free's 50 subrequests. And batching keeps the guarantees when whole requests or single
 * commands of a request fail: each fire runs at most once and, after enough ticks, exactly once.
 * Real @upstash/redis clients through the bridge; the 1,000 schedules are written straight into
 * Redis (copies of one created through the registry) so that seeding takes a second.
 */
import type { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GuardStore } from "../../../src/core/index.js";
import {
  createDispatcher,
  createScheduleRegistry,
  type TickResult,
} from "../../../src/core/schedules/index.js";
import { registryKeys } from "../../../src/core/schedules/registry.js";
import { sleep } from "../../../src/core/sleep.js";
import {
  type CountingBridge,
  directRedis,
  startCountingBridge,
  upstash,
  useKeyPrefix,
} from "../../support/harness.js";

const T0 = Date.UTC(2026, 10, 25, 12, 0, 30);
const FIRE = "2026-11-25T12:01:00Z";
const NEXT_FIRE_MS = Date.UTC(2026, 10, 25, 12, 2);

/** `count` per-minute schedules `s0..`, all due at 12:01; the clock to dispatch with reads 12:01:30. */
async function seed(prefix: string, count: number) {
  const registry = createScheduleRegistry({
    redis: upstash(),
    prefix,
    handlers: ["record"],
    clock: () => T0,
  });
  await registry.upsert({ id: "template", cron: "* * * * *", handler: "record" });
  const keys = registryKeys(prefix);
  const direct = await directRedis();
  const template = (await direct.hGet(keys.definitions, "template")) as string;
  const batch = direct.multi();
  batch.del([keys.definitions, keys.due, keys.fires]);
  const dueMs = Date.parse(FIRE);
  for (let i = 0; i < count; i += 1) {
    const id = `s${i}`;
    batch.hSet(keys.definitions, id, template.replace('"id":"template"', `"id":"${id}"`));
    batch.hSet(keys.fires, id, `${dueMs}:0`);
    batch.zAdd(keys.due, { score: dueMs, value: id });
  }
  await batch.execAsPipeline();
  return { registry, keys, clock: () => T0 + 60_000 };
}

/** Each pending fire, as the registry stores it ("<ms>:<attempt>"), by schedule. */
async function pendingFires(prefix: string): Promise<Record<string, string>> {
  return (await directRedis()).hGetAll(registryKeys(prefix).fires);
}

describe("one tick with default options", () => {
  const prefix = useKeyPrefix("dispatch-batches");
  let bridge: CountingBridge;
  beforeAll(async () => {
    bridge = await startCountingBridge();
  });
  afterAll(() => bridge.close());

  it("runs 1,000 due schedules exactly once within 50 HTTP requests", async () => {
    const { clock } = await seed(prefix(), 1_000);
    const runs = new Map<string, number>();
    const dispatcher = createDispatcher({
      redis: upstash({ url: bridge.url, token: bridge.token }),
      prefix: prefix(),
      handlers: {
        record: ({ schedule, slot }) => {
          const key = `${schedule.id}@${slot}`;
          runs.set(key, (runs.get(key) ?? 0) + 1);
        },
      },
      guardOptions: { clock },
    });
    bridge.reset();
    const tick = await dispatcher.tick();
    const requests = bridge.requests.length;

    expect(tick).toMatchObject({ ran: 1_000, failed: 0, errors: 0, remaining: 0 });
    expect(runs.size).toBe(1_000);
    expect([...runs.values()].every((count) => count === 1)).toBe(true);
    expect([...runs.keys()].every((key) => key.endsWith(`@${FIRE}`))).toBe(true);
    expect(requests).toBeLessThanOrEqual(50);
    expect(tick.requests).toBe(requests); // the tick counts what the bridge saw
    expect(tick.calls).toBeGreaterThanOrEqual(3_000); // claim, completion, advance per run
    const fires = await pendingFires(prefix());
    expect(Object.keys(fires)).toHaveLength(1_000);
    expect(new Set(Object.values(fires))).toEqual(new Set([`${NEXT_FIRE_MS}:0`]));
    // Nothing is due any more until 12:02: a second tick runs nothing, in one request.
    bridge.reset();
    expect(await dispatcher.tick()).toMatchObject({ ran: 0, remaining: 0 });
    expect(bridge.requests.length).toBe(1);
  });

  it("a small request budget stops starting waves, never exceeds it, and leaves the rest due", async () => {
    const { clock } = await seed(prefix(), 100);
    let ran = 0;
    const tick = await createDispatcher({
      redis: upstash({ url: bridge.url, token: bridge.token }),
      prefix: prefix(),
      handlers: {
        record: () => {
          ran += 1;
        },
      },
      guardOptions: { clock },
      maxRequests: 10,
      concurrency: 25,
    }).tick();
    // look (1) + three waves (3 each) = 10: a fourth wave would need 3 more than the 10.
    expect(tick.requests).toBeLessThanOrEqual(10);
    expect(tick.ran).toBe(75);
    expect(ran).toBe(75);
    expect(tick.remaining).toBe(25);
  });
});

type FlushFault = "ok" | "failBefore" | "loseAnswer";

/** mulberry32: the same faults on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * An @upstash/redis client whose requests fail now and then: a whole request before it is sent
 * (`failBefore`: nothing ran) or after Redis answered (`loseAnswer`: everything ran, the caller
 * hears an error), and single commands of a pipeline that are never sent and answer an error of
 * their own (a busy Redis).
 */
function faultyClient(redis: Redis, random: () => number) {
  const stats = { requests: 0, failedBefore: 0, lostAnswers: 0, droppedCommands: 0 };
  const fault = (): FlushFault => {
    const draw = random();
    return draw < 0.15 ? "failBefore" : draw < 0.25 ? "loseAnswer" : "ok";
  };
  const around = async <T>(send: () => Promise<T>): Promise<T> => {
    stats.requests += 1;
    const chosen = fault();
    if (chosen === "failBefore") {
      stats.failedBefore += 1;
      throw new Error("fetch failed: ECONNRESET (injected before send)");
    }
    const answer = await send();
    if (chosen === "loseAnswer") {
      stats.lostAnswers += 1;
      throw new Error("socket hang up (injected: the answer was lost)");
    }
    return answer;
  };
  type Call = { method: "eval" | "evalsha"; script: string; keys: string[]; args: unknown[] };
  const store = {
    eval: (script: string, keys: string[], args: unknown[]) =>
      around(() => redis.eval(script, keys, args)),
    evalsha: (sha1: string, keys: string[], args: unknown[]) =>
      around(() => redis.evalsha(sha1, keys, args)),
    pipeline() {
      const calls: Call[] = [];
      const pipeline = {
        eval(script: string, keys: string[], args: unknown[]) {
          calls.push({ method: "eval", script, keys, args });
          return pipeline;
        },
        evalsha(sha1: string, keys: string[], args: unknown[]) {
          calls.push({ method: "evalsha", script: sha1, keys, args });
          return pipeline;
        },
        exec: (options: { keepErrors: true }) =>
          around(async () => {
            const dropped = calls.map(() => random() < 0.05);
            const sent = calls.filter((_, i) => !dropped[i]);
            const inner = redis.pipeline();
            for (const call of sent) inner[call.method](call.script, call.keys, call.args);
            const replies: { error?: string; result?: unknown }[] =
              sent.length > 0 ? await inner.exec(options) : [];
            let next = 0;
            return calls.map((_, i) => {
              if (!dropped[i]) return replies[next++];
              stats.droppedCommands += 1;
              return { error: "BUSY Redis is busy running a script (injected)" };
            });
          }),
      };
      return pipeline;
    },
  };
  return { store: store as unknown as GuardStore, stats };
}

describe("batched ticks under faults", () => {
  const prefix = useKeyPrefix("dispatch-batches-faults");

  it("4 concurrent ticks a round over 300 due fires, requests and commands failing: each ran once, none skipped", async () => {
    const { clock } = await seed(prefix(), 300);
    const runs = new Map<string, number>();
    const random = seeded(22);
    const faulty = Array.from({ length: 4 }, () => faultyClient(upstash(), random));
    const background: Promise<unknown>[] = [];
    const ticks: TickResult[] = [];
    let thrown = 0;
    for (let round = 0; round < 40; round += 1) {
      const results = await Promise.allSettled(
        faulty.map(({ store }) =>
          createDispatcher({
            redis: store,
            prefix: prefix(),
            handlers: {
              record: ({ schedule, slot }) => {
                const key = `${schedule.id}@${slot}`;
                runs.set(key, (runs.get(key) ?? 0) + 1);
              },
            },
            guardOptions: { clock },
            maxRequests: 1_000,
          }).tick({ waitUntil: (promise) => background.push(promise) }),
        ),
      );
      for (const result of results) {
        if (result.status === "fulfilled") ticks.push(result.value);
        else thrown += 1; // its first look failed: it did nothing
      }
      const fires = await pendingFires(prefix());
      if (Object.values(fires).every((fire) => fire === `${NEXT_FIRE_MS}:0`)) break;
      await sleep(150); // withdrawals of claims whose answer was lost land meanwhile
    }
    await Promise.allSettled(background);

    const stats = faulty.map(({ stats }) => stats);
    const injected = (key: "failedBefore" | "lostAnswers" | "droppedCommands") =>
      stats.reduce((sum, s) => sum + s[key], 0);
    expect(injected("failedBefore")).toBeGreaterThan(0);
    expect(injected("lostAnswers")).toBeGreaterThan(0);
    expect(injected("droppedCommands")).toBeGreaterThan(0);

    expect([...runs.values()].every((count) => count === 1)).toBe(true);
    expect(runs.size).toBe(300);
    expect([...runs.keys()].every((key) => key.endsWith(`@${FIRE}`))).toBe(true);
    const total = (key: "ran" | "dead" | "missed" | "failed") =>
      ticks.reduce((sum, tick) => sum + tick[key], 0);
    // A run whose completion answer was lost for good is still a run the tick saw finish.
    expect(total("ran")).toBe(300);
    expect(total("dead")).toBe(0);
    expect(total("missed")).toBe(0);
    expect(total("failed")).toBe(0);
    expect(ticks.length + thrown).toBeGreaterThan(4);
    const fires = await pendingFires(prefix());
    expect(Object.keys(fires)).toHaveLength(300);
    expect(new Set(Object.values(fires))).toEqual(new Set([`${NEXT_FIRE_MS}:0`]));
  }, 60_000);
});
