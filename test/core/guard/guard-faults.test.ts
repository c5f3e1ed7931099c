/**
 * The guard when the store misbehaves: answers lost or late, the store stalled, reachable but
 * refusing, and callers that misuse leases or arguments. Every case runs against a real redis-server
 * through the bridge with a real @upstash/redis client; faults are injected around that client.
 */
import { Redis } from "@upstash/redis";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBridge, startBridge } from "../../../src/bridge/index.js";
import { type RedisServerHandle, spawnRedisServer } from "../../../src/bridge/redis-server.js";
import { CLAIM_SCRIPT, COMPLETE_SCRIPT, type LuaScript } from "../../../src/core/guard/scripts.js";
import {
  createGuard,
  type GuardOptions,
  type GuardStore,
  guarded,
  type Lease,
  StoreUnavailableError,
  UnkeyableArgumentError,
} from "../../../src/core/index.js";
import { sleep } from "../../../src/core/sleep.js";
import { directRedis, upstash, useKeyPrefix } from "../../support/harness.js";

/** A recent whole minute: the slot ledger vouches for slots within its age bound (7 days). */
const SLOT = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;
const SLOT_ID = new Date(SLOT).toISOString().replace(".000Z", "Z");

type Fault = (call: () => Promise<unknown>) => Promise<unknown>;

/**
 * A real client whose calls of `script` go through `fault` (the first `times` of them, or all):
 * the fault decides whether the command runs, when, and whether its answer comes back.
 */
function faulty(real: Redis, script: LuaScript, fault: Fault, times = 1) {
  let faulted = 0;
  const store: GuardStore & { faulted(): number } = {
    faulted: () => faulted,
    eval: real.eval.bind(real) as GuardStore["eval"],
    async evalsha<A extends unknown[], T>(sha: string, keys: string[], args: A): Promise<T> {
      if (faulted < times && sha === (await script.sha1())) {
        faulted += 1;
        return (await fault(() => real.evalsha(sha, keys, args))) as T;
      }
      return real.evalsha<A, T>(sha, keys, args);
    },
  };
  return store;
}

/** The command runs in Redis, then the answer is lost (a dropped response). */
const loseAnswer: Fault = async (call) => {
  await call();
  throw new TypeError("fetch failed: socket hang up");
};

/** The caller gives up at once, but the command reaches Redis `afterMs` later (a stalled queue). */
const landLate =
  (afterMs: number, landed: Promise<unknown>[]): Fault =>
  async (call) => {
    landed.push(sleep(afterMs).then(call));
    throw new TypeError("fetch failed: request timed out");
  };

/** The command runs at once but its answer arrives `delayMs` later. */
const answerLate =
  (delayMs: number): Fault =>
  async (call) => {
    const reply = await call();
    await sleep(delayMs);
    return reply;
  };

async function rejection(promise: Promise<unknown>): Promise<StoreUnavailableError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StoreUnavailableError);
    return error as StoreUnavailableError;
  }
  throw new Error("expected the run to reject with StoreUnavailableError");
}

describe("guard under store faults", () => {
  const prefix = useKeyPrefix("faults");
  const slotKey = (job: string) => `${prefix()}:{${job}}:slot:${SLOT_ID}`;
  const instance = (options: Partial<GuardOptions> = {}) =>
    createGuard({ redis: upstash({ autoPipelining: false }), prefix: prefix(), ...options });

  // Load the scripts, so that a fault hits the EVALSHA that runs and not a NOSCRIPT answer.
  beforeAll(async () => {
    await instance().run("warm-up", SLOT, () => "warm");
  });

  it("withdraws a claim whose answer was lost, so the next delivery runs the slot at once", async () => {
    const store = faulty(upstash({ autoPipelining: false }), CLAIM_SCRIPT, loseAnswer);
    let runs = 0;
    const error = await rejection(
      createGuard({ redis: store, prefix: prefix() }).run("lost-claim", SLOT, () => ++runs),
    );
    expect(store.faulted()).toBe(1);
    expect(runs).toBe(0);
    expect(error.kind).toBe("unreachable");
    expect(error.slotFreeByMs).toBeGreaterThan(Date.now());
    expect(await error.withdrawal).toBe(true);
    expect(await (await directRedis()).exists(slotKey("lost-claim"))).toBe(0);
    expect(await instance().run("lost-claim", SLOT, () => ++runs)).toMatchObject({
      status: "ran",
      value: 1,
    });
  });

  it("a claim that reaches Redis after its caller withdrew it does not take the slot", async () => {
    const landed: Promise<unknown>[] = [];
    const store = faulty(upstash({ autoPipelining: false }), CLAIM_SCRIPT, landLate(300, landed));
    const error = await rejection(
      createGuard({ redis: store, prefix: prefix() }).run("late-claim", SLOT, () => "never"),
    );
    expect(await error.withdrawal).toBe(true);
    const lateReply = await landed[0];
    expect(lateReply).toMatchObject({ outcome: "withdrawn" });
    expect(await (await directRedis()).exists(slotKey("late-claim"))).toBe(0);
    expect(await instance().run("late-claim", SLOT, () => "runs")).toMatchObject({
      status: "ran",
    });
  });

  it("does not start a job whose claim was answered after its lease ran out", async () => {
    const store = faulty(upstash({ autoPipelining: false }), CLAIM_SCRIPT, answerLate(800));
    const slowA = createGuard({ redis: store, prefix: prefix(), leaseMs: 500 });
    const running: string[] = [];
    const a = rejection(
      slowA.run("slow-claim", SLOT, async () => {
        running.push("a");
      }),
    );
    await sleep(600); // A's claim landed at once and expired at 500 ms; B claims the free slot.
    const b = await instance({ leaseMs: 500 }).run("slow-claim", SLOT, async () => {
      running.push("b");
      await sleep(300);
    });
    const error = await a;
    expect(error.kind).toBe("slow");
    expect(error.message).toMatch(/after \d+ ms, later than its lease of 500 ms/);
    expect(b).toMatchObject({ status: "ran" });
    expect(running).toEqual(["b"]);
  });

  it("a holder that lost the store past its lease reports lockLost, not ran", async () => {
    const real = upstash({ autoPipelining: false });
    let reachable = true;
    const cutAfterClaim: GuardStore = {
      eval: real.eval.bind(real) as GuardStore["eval"],
      async evalsha<A extends unknown[], T>(sha: string, keys: string[], args: A): Promise<T> {
        if (!reachable) throw new TypeError("fetch failed: connect ECONNREFUSED");
        const reply = await real.evalsha<A, T>(sha, keys, args);
        if (sha === (await CLAIM_SCRIPT.sha1())) reachable = false;
        return reply;
      },
    };
    const a = createGuard({ redis: cutAfterClaim, prefix: prefix(), leaseMs: 400 }).run(
      "cut-holder",
      SLOT,
      async () => {
        await sleep(1_000); // ignores its signal
        return "a finished";
      },
    );
    await sleep(550);
    const b = await instance({ leaseMs: 400 }).run("cut-holder", SLOT, () => "b ran");
    expect(b).toMatchObject({ status: "ran", value: "b ran" });
    const resultA = await a; // its completion cannot reach the store either
    expect(resultA).toMatchObject({ status: "failed", lockLost: true });
    if (resultA.status === "failed") expect(resultA.error).toMatchObject({ name: "LockLostError" });
  });

  it("a finished run whose completion cannot be recorded says so and when the slot frees", async () => {
    const store = faulty(
      upstash({ autoPipelining: false }),
      COMPLETE_SCRIPT,
      async () => {
        throw new TypeError("fetch failed: connect ECONNREFUSED");
      },
      Number.POSITIVE_INFINITY,
    );
    const result = await createGuard({ redis: store, prefix: prefix(), leaseMs: 5_000 }).run(
      "unrecorded",
      SLOT,
      () => "done",
    );
    expect(result).toMatchObject({ status: "ran", value: "done" });
    if (result.status !== "ran") return;
    expect(result.warning?.message).toMatch(/could not be recorded.*slot stays running until/);
    expect(result.warning?.slotFreeByMs).toBeGreaterThan(Date.now());
  });

  it("under release, a lost completion answer and a new claim in between is not a lost lease", async () => {
    const second: Promise<unknown>[] = [];
    const store = faulty(upstash({ autoPipelining: false }), COMPLETE_SCRIPT, async (call) => {
      await call(); // recorded as released...
      second.push(instance().run("released-race", SLOT, () => "second delivery"));
      await second[0]; // ...and claimed and finished by another delivery before we retry
      throw new TypeError("fetch failed: socket hang up");
    });
    const first = await createGuard({ redis: store, prefix: prefix() }).run(
      "released-race",
      SLOT,
      () => {
        throw new Error("smtp down");
      },
    );
    expect(first).toMatchObject({ status: "failed", lockLost: false });
    expect(await second[0]).toMatchObject({ status: "ran", value: "second delivery" });
    const history = await instance().status("released-race");
    expect(history.runs.map((run) => run.status)).toEqual(["done", "failed"]);
  });
});

describe("open store policy", () => {
  const prefix = useKeyPrefix("open");

  it("does not run unguarded when the store answers with an error (WRONGTYPE)", async () => {
    const redis = await directRedis();
    await redis.hSet(`${prefix()}:{wrongtype}:slot:${SLOT_ID}`, "not", "a string");
    let runs = 0;
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () =>
        createGuard({
          redis: upstash(),
          prefix: prefix(),
          onStoreError: "open",
        }).run("wrongtype", SLOT, () => ++runs),
      ),
    );
    expect(runs).toBe(0);
    for (const result of results) {
      expect(result.status).toBe("rejected");
      if (result.status === "rejected") expect(result.reason).toMatchObject({ kind: "rejected" });
    }
  });

  describe("on a redis-server out of memory", () => {
    let server: RedisServerHandle;
    let bridge: RunningBridge;
    beforeAll(async () => {
      server = await spawnRedisServer();
      const admin = createClient({ url: server.url, RESP: 2 });
      await admin.connect();
      await admin.configSet("maxmemory", "1");
      await admin.configSet("maxmemory-policy", "noeviction");
      admin.destroy();
      bridge = await startBridge({ redisUrl: server.url });
    });
    afterAll(async () => {
      await bridge?.close();
      await server?.stop();
    });

    it("refuses to run (OOM is the store saying no, not the store being away)", async () => {
      let runs = 0;
      const guard = createGuard({
        redis: new Redis({ url: bridge.url, token: bridge.token, retry: false }),
        onStoreError: "open",
      });
      const error = await rejection(guard.run("oom", SLOT, () => ++runs));
      expect(error.kind).toBe("rejected");
      expect(error.message).toMatch(/OOM/);
      expect(error.message).not.toMatch(/command was/);
      expect(runs).toBe(0);
    });
  });

  it("still runs unguarded when the store cannot be reached at all", async () => {
    const down = new Redis({ url: "http://127.0.0.1:9", token: "x", retry: false });
    const result = await createGuard({ redis: down, onStoreError: "open" }).run(
      "away",
      SLOT,
      () => "ran",
    );
    expect(result).toMatchObject({ status: "ran", unguarded: true });
  });
});

describe("stalled redis-server (SIGSTOP) under the bridge", () => {
  let server: RedisServerHandle;
  let bridge: RunningBridge;
  beforeAll(async () => {
    server = await spawnRedisServer();
    bridge = await startBridge({ redisUrl: server.url, commandTimeoutMs: 400 });
  });
  afterAll(async () => {
    try {
      process.kill(server.pid, "SIGCONT");
    } catch {}
    await bridge?.close();
    await server?.stop();
  });

  it("a 503 during the stall does not strand the slot once Redis resumes", async () => {
    const client = () => new Redis({ url: bridge.url, token: bridge.token, retry: false });
    const guard = createGuard({ redis: client(), prefix: "stall", leaseMs: 60_000 });
    process.kill(server.pid, "SIGSTOP");
    let runs = 0;
    const error = await rejection(guard.run("stalled", SLOT, () => ++runs));
    expect(runs).toBe(0);
    await sleep(200);
    process.kill(server.pid, "SIGCONT");
    expect(await error.withdrawal).toBe(true);
    // Without the withdrawal the queued claim would hold the slot for the whole 60 s lease.
    const retry = await createGuard({ redis: client(), prefix: "stall" }).run(
      "stalled",
      SLOT,
      () => ++runs,
    );
    expect(retry).toMatchObject({ status: "ran", value: 1 });
  });
});

describe("re-entry", () => {
  const prefix = useKeyPrefix("reenter");
  const instance = () => createGuard({ redis: upstash(), prefix: prefix() });

  it("a lease kept from a finished run does not re-enter its slot", async () => {
    let kept: Lease | null = null;
    await instance().run("kept", SLOT, ({ lease }) => {
      kept = lease;
    });
    let runs = 0;
    const again = await instance().run("kept", SLOT, () => ++runs, { lease: kept });
    expect(again).toMatchObject({ status: "skipped", reason: "done" });
    expect(runs).toBe(0);
  });

  it("a forged lease object does not re-enter a running slot", async () => {
    const guard = instance();
    let inner: unknown;
    await guard.run("forged", SLOT, async ({ lease }) => {
      const forged = { ...(lease as Lease), fence: 999 } as Lease;
      inner = await instance().run("forged", SLOT, () => "inside", { lease: forged });
    });
    expect(inner).toMatchObject({ status: "skipped", reason: "running" });
  });
});

describe("guarded() keys", () => {
  const prefix = useKeyPrefix("guarded-keys");
  const counter = () => {
    const calls: unknown[][] = [];
    const fn = guarded((...args: unknown[]) => calls.push(args), {
      job: "keys",
      redis: upstash(),
      prefix: prefix(),
    });
    return { calls, fn };
  };

  it("treats objects with the same fields in another order as the same arguments", async () => {
    const { calls, fn } = counter();
    expect(await fn({ user: 1, week: 2 })).toMatchObject({ status: "ran" });
    expect(await fn({ week: 2, user: 1 })).toMatchObject({ status: "skipped", reason: "done" });
    expect(calls).toHaveLength(1);
  });

  it("tells apart values JSON would collapse: Maps, Sets, NaN and null, -0 and 0, 1 and '1'", async () => {
    const { calls, fn } = counter();
    const distinct = [
      new Map([["a", 1]]),
      new Map([["b", 2]]),
      new Set([1]),
      new Set([2]),
      Number.NaN,
      null,
      -0,
      0,
      1,
      "1",
      [],
      {},
      undefined,
      new Date(0),
      new Date(1),
    ];
    for (const value of distinct) {
      expect(await fn(value)).toMatchObject({ status: "ran" });
    }
    expect(calls).toHaveLength(distinct.length);
    expect(await fn(new Set([1]))).toMatchObject({ status: "skipped" });
    expect(
      await fn(
        new Map([
          ["a", 1],
          ["b", 2],
        ]),
      ),
    ).toMatchObject({ status: "ran" });
    expect(
      await fn(
        new Map([
          ["b", 2],
          ["a", 1],
        ]),
      ),
    ).toMatchObject({ status: "skipped" });
  });

  it("refuses arguments it cannot key faithfully, before touching Redis", async () => {
    const { calls, fn } = counter();
    class Invoice {
      id = 1;
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const value of [() => 1, Symbol("s"), new Invoice(), cyclic]) {
      await expect(fn(value)).rejects.toBeInstanceOf(UnkeyableArgumentError);
    }
    expect(calls).toHaveLength(0);
    expect(await (await directRedis()).keys(`${prefix()}*`)).toEqual([]);
  });
});
