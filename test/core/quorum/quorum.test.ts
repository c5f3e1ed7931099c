/**
 * Quorum mode against three real redis-servers, each behind its own bridge, through real
 * @upstash/redis clients. Every guard instance gets clients of its own, like a separate deployment.
 */
import { Redis } from "@upstash/redis";
import { beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../../../src/bridge/index.js";
import {
  ConfigError,
  createGuard,
  type GuardOptions,
  type GuardResult,
  type GuardStore,
  StoreUnavailableError,
} from "../../../src/core/index.js";
import { createQuorumStore, quorumFromEnv } from "../../../src/core/quorum/quorum.js";
import { sleep } from "../../../src/core/sleep.js";
import { guardContract, tally } from "../../support/guard-contract.js";
import { upstash, useKeyPrefix } from "../../support/harness.js";
import { type DirectClient, useQuorumDatabases } from "../../support/quorum-databases.js";

const SLOT = Date.UTC(2026, 10, 23, 10, 5);
const PREFIX = "q";

const { bridges, direct } = useQuorumDatabases();

beforeAll(async () => {
  // Loads the scripts into every database: 200 cold instances at once would all miss them.
  await createGuard({ redis: quorum(), prefix: PREFIX }).run("warm-up", SLOT, () => 0);
}, 60_000);

function client(index: number): Redis {
  const bridge = bridges[index] as RunningBridge;
  return new Redis({
    url: bridge.url,
    token: bridge.token,
    retry: false,
    enableTelemetry: false,
    enableAutoPipelining: false,
  });
}

/** A URL nothing listens on. */
const down = (): GuardStore =>
  new Redis({ url: "http://127.0.0.1:9", token: "x", retry: false, enableTelemetry: false });

/** Answers every call `delayMs` late (or never, for Infinity), like a database far away or stuck. */
function slow(store: GuardStore, delayMs: number): GuardStore {
  const later = async <T>(call: () => Promise<T>): Promise<T> => {
    await (Number.isFinite(delayMs) ? sleep(delayMs) : new Promise(() => {}));
    return call();
  };
  return {
    eval: (script, keys, args) => later(() => store.eval(script, keys, args)),
    evalsha: (sha, keys, args) => later(() => store.evalsha(sha, keys, args)),
  };
}

type Member = "up" | "down" | "slow";

/**
 * The bridges run in this test process, so 200 instances x 3 databases queue behind each other:
 * the timeout is generous, and the slow database is slower still.
 */
const TIMEOUT_MS = 5_000;
const SLOW_MS = 6_000;

function quorum(members: Member[] = ["up", "up", "up"], timeoutMs = TIMEOUT_MS): GuardStore {
  return createQuorumStore(
    members.map((member, i) =>
      member === "up" ? client(i) : member === "down" ? down() : slow(client(i), SLOW_MS),
    ),
    { timeoutMs },
  );
}

let jobCounter = 0;
const uniqueJob = (name: string) => `${name}-${++jobCounter}`;

function instance(members?: Member[], options: Partial<GuardOptions> = {}) {
  return createGuard({ redis: quorum(members), prefix: PREFIX, ...options });
}

async function slotKeys(index: number, job: string): Promise<string[]> {
  return (direct[index] as DirectClient).keys(`${PREFIX}:{${job}}:slot:*`);
}

describe("quorum of three databases", () => {
  it("runs a slot exactly once when 200 instances race for it, 5 times over", async () => {
    const job = uniqueJob("storm");
    for (let round = 0; round < 5; round += 1) {
      let sideEffects = 0;
      const results = await Promise.all(
        Array.from({ length: 200 }, () =>
          instance().run(job, SLOT + round * 60_000, async () => {
            sideEffects += 1;
            await sleep(5);
            return "sent";
          }),
        ),
      );
      expect(tally(results)).toMatchObject({ ran: 1, skipped: 199, failed: 0 });
      expect(sideEffects).toBe(1);
    }
  });

  for (const member of ["down", "slow"] as const) {
    it(`runs exactly once with one database ${member === "down" ? "unreachable" : "slower than the timeout"}, without a store error`, async () => {
      const job = uniqueJob(`one-${member}`);
      for (let round = 0; round < 2; round += 1) {
        let sideEffects = 0;
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) =>
            // The failing database is a different one for different instances.
            instance(
              (["up", "up", "up"] as Member[]).map((m, j) => (j === i % 3 ? member : m)),
            ).run(job, SLOT + round * 60_000, () => ++sideEffects),
          ),
        );
        expect(tally(results)).toMatchObject({ ran: 1, skipped: 199, failed: 0 });
        expect(sideEffects).toBe(1);
      }
      const later = await instance(["up", member, "up"]).run(job, SLOT, () => ++jobCounter);
      expect(later).toMatchObject({ status: "skipped", reason: "done" });
    }, 60_000);
  }

  it("answers a slow database's claim within the timeout, not when it finally answers", async () => {
    // A winner waits for every database up to the timeout (one of them may be the only one that
    // knows the slot already ran), never longer.
    const guard = instance(["up", "slow", "up"]);
    const startedAt = Date.now();
    const result = await guard.run(uniqueJob("fast"), SLOT, () => Date.now() - startedAt);
    expect(result).toMatchObject({ status: "ran" });
    expect(result.status === "ran" && (result.value as number)).toBeLessThan(SLOW_MS);
  });

  it("refuses under the closed policy when two of three are down, and leaves no claim behind", async () => {
    const job = uniqueJob("two-down");
    let runs = 0;
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () =>
        instance(["up", "down", "slow"]).run(job, SLOT, () => ++runs),
      ),
    );
    expect(runs).toBe(0);
    for (const result of results) {
      expect(result.status).toBe("rejected");
      if (result.status === "rejected") {
        expect(result.reason).toBeInstanceOf(StoreUnavailableError);
        expect(result.reason.kind).toBe("unreachable");
      }
    }
    // The minority claims on the one live database were rolled back: the slot is free there.
    expect(await slotKeys(0, job)).toEqual([]);
    // Once the databases are back, the slot runs exactly once.
    const after = await Promise.all(
      Array.from({ length: 20 }, () => instance().run(job, SLOT, () => ++runs)),
    );
    expect(tally(after).ran).toBe(1);
    expect(runs).toBe(1);
  });

  it("runs unguarded under the open policy when two of three are down", async () => {
    const result = await instance(["down", "up", "down"], { onStoreError: "open" }).run(
      uniqueJob("open"),
      SLOT,
      () => "anyway",
    );
    expect(result).toMatchObject({ status: "ran", unguarded: true, fence: null });
  });

  it("does not run a slot twice when a database loses its keys during or after the run", async () => {
    const job = uniqueJob("flushed");
    let runs = 0;
    let finish: () => void = () => {};
    const holding = instance().run(job, SLOT, async () => {
      runs += 1;
      await new Promise<void>((resolve) => {
        finish = resolve;
      });
      return "first";
    });
    // The job starts once a majority holds the claim; database 0 may answer a moment later.
    for (
      let waited = 0;
      waited < 3_000 && (runs === 0 || (await slotKeys(0, job)).length === 0);
      waited += 25
    ) {
      await sleep(25);
    }
    expect(await slotKeys(0, job)).toHaveLength(1);
    await direct[0]?.flushDb();
    const during = await Promise.all(
      Array.from({ length: 20 }, () => instance().run(job, SLOT, () => ++runs)),
    );
    expect(tally(during).reasons.running).toBe(20);
    // The minority claims on the flushed database are rolled back, and the database gets the
    // holder's claim copied from the others (it had lost the job: repaired by the next claim).
    const [slotKey] = await slotKeys(1, job);
    const holder = JSON.parse((await direct[1]?.get(slotKey as string)) ?? "{}") as {
      token?: string;
    };
    for (
      let waited = 0;
      waited < 3_000 && !(await direct[0]?.get(slotKey as string))?.includes(String(holder.token));
      waited += 25
    ) {
      await sleep(25);
    }
    expect(await slotKeys(0, job)).toEqual([slotKey]);
    expect(JSON.parse((await direct[0]?.get(slotKey as string)) ?? "{}")).toMatchObject({
      state: "running",
      token: holder.token,
    });
    finish();
    expect(await holding).toMatchObject({ status: "ran", value: "first" });
    expect(runs).toBe(1);

    await direct[2]?.flushDb();
    const after = await Promise.all(
      Array.from({ length: 20 }, () => instance().run(job, SLOT, () => ++runs)),
    );
    expect(tally(after).reasons.done).toBe(20);
    expect(runs).toBe(1);
  });

  it("keeps fencing tokens increasing after the databases' counters drifted apart", async () => {
    const job = uniqueJob("drift");
    // A recent slot: the counters are set by hand without a ledger, which then vouches only for
    // slots within its age bound.
    const recent = Math.floor(Date.now() / 60_000) * 60_000;
    const fenceKey = `${PREFIX}:{${job}}:fence`;
    await direct[0]?.set(fenceKey, "40");
    await direct[1]?.set(fenceKey, "3");
    await direct[2]?.set(fenceKey, "3");
    // Database 2 is down, so the majority is databases 0 and 1 whatever the timing (with all
    // three up, databases 1 and 2 may answer first: fence 4 is then right, 40 was never a
    // majority's fence, but the test would not pin the raising below).
    const first = await instance(["up", "up", "down"]).run(job, recent, ({ fence }) => fence);
    expect(first).toMatchObject({ status: "ran", fence: 41 });
    expect(await direct[1]?.get(fenceKey)).toBe("41");
    // The laggard was raised, so a majority without database 0 still continues above 41.
    const second = await instance(["down", "up", "up"]).run(
      job,
      recent + 60_000,
      ({ fence }) => fence,
    );
    expect(second.status).toBe("ran");
    expect(second.status === "ran" && (second.fence as number)).toBeGreaterThan(41);
  });

  it("extends a long job's lease on a majority and keeps it exclusive", async () => {
    const job = uniqueJob("long");
    let duplicates = 0;
    const long = instance(["up", "down", "up"], { leaseMs: 400, heartbeatMs: 100 }).run(
      job,
      SLOT,
      async ({ signal }) => {
        await sleep(1_200);
        return signal.aborted;
      },
    );
    const attempts: GuardResult<unknown>[] = [];
    for (let i = 0; i < 8; i += 1) {
      await sleep(120);
      attempts.push(await instance().run(job, SLOT, () => ++duplicates));
    }
    expect(await long).toMatchObject({ status: "ran", value: false });
    expect(duplicates).toBe(0);
    expect(tally(attempts).reasons.running).toBe(8);
  });

  it("asks the databases for the lease plus the drift allowance", async () => {
    const job = uniqueJob("drift-ttl");
    let ttl = 0;
    await instance(undefined, { leaseMs: 10_000 }).run(job, SLOT, async () => {
      const [key] = await slotKeys(1, job);
      ttl = await (direct[1] as DirectClient).pTTL(key as string);
    });
    // 10 000 ms + 1% + 2 ms, minus the few ms since the claim.
    expect(ttl).toBeGreaterThan(10_000);
    expect(ttl).toBeLessThanOrEqual(10_102);
  });
});

guardContract(
  "single store",
  (() => {
    const prefix = useKeyPrefix("contract");
    return (options: Partial<GuardOptions> = {}) =>
      createGuard({ redis: upstash({ autoPipelining: false }), prefix: prefix(), ...options });
  })(),
);

guardContract("quorum of three", (options: Partial<GuardOptions> = {}) =>
  createGuard({ redis: quorum(), prefix: "contract", ...options }),
);

describe("createQuorumStore and quorumFromEnv configuration", () => {
  const fake = (): GuardStore => ({
    eval: async () => null as never,
    evalsha: async () => null as never,
  });

  it("needs an odd number of at least three stores", () => {
    for (const count of [0, 1, 2, 4]) {
      expect(() => createQuorumStore(Array.from({ length: count }, fake))).toThrow(ConfigError);
    }
    expect(() => createQuorumStore([fake(), fake(), {} as GuardStore])).toThrow(/store #3/);
    expect(() => createQuorumStore([fake(), fake(), fake()], { driftFactor: 0.5 })).toThrow(
      ConfigError,
    );
    expect(() => createQuorumStore([fake(), fake(), fake()], { timeoutMs: 0 })).toThrow(
      ConfigError,
    );
  });

  it("reads numbered URL/token pairs from the environment", () => {
    const made: string[] = [];
    const factory = (url: string, token: string) => {
      made.push(`${url} ${token}`);
      return fake();
    };
    const env = (count: number) =>
      Object.fromEntries(
        Array.from({ length: count }, (_, i) => [
          [`UPSTASH_REDIS_REST_URL_${i + 1}`, `https://db${i + 1}.example`],
          [`UPSTASH_REDIS_REST_TOKEN_${i + 1}`, `t${i + 1}`],
        ]).flat(),
      );
    expect(quorumFromEnv({}, factory)).toBeUndefined();
    expect(quorumFromEnv(env(3), factory)).toBeDefined();
    expect(made).toEqual([
      "https://db1.example t1",
      "https://db2.example t2",
      "https://db3.example t3",
    ]);
    expect(quorumFromEnv(env(5), factory)).toBeDefined();
    for (const count of [1, 2, 4]) {
      expect(() => quorumFromEnv(env(count), factory)).toThrow(/odd number of at least 3/);
    }
    const missingToken = { ...env(3), UPSTASH_REDIS_REST_TOKEN_2: "" };
    expect(() => quorumFromEnv(missingToken, factory)).toThrow(/UPSTASH_REDIS_REST_TOKEN_2/);
    const gap = {
      ...env(3),
      UPSTASH_REDIS_REST_URL_5: "https://x",
      UPSTASH_REDIS_REST_TOKEN_5: "t",
    };
    expect(() => quorumFromEnv(gap, factory)).toThrow(/without gaps/);
  });
});

describe("quorum through the app (createVercelApp with UPSTASH_REDIS_REST_URL_1..3)", () => {
  it("runs a job once for 20 concurrent deliveries, claimed on every database, jobs on the first", async () => {
    const { createVercelApp } = await import("../../../src/platforms/vercel.js");
    const { quorumStore } = await import("../../../src/platforms/upstash-quorum.js");
    const names = [1, 2, 3].flatMap((i) => [
      `UPSTASH_REDIS_REST_URL_${i}`,
      `UPSTASH_REDIS_REST_TOKEN_${i}`,
    ]);
    const saved = Object.fromEntries(names.map((name) => [name, process.env[name]]));
    const savedSecret = process.env.CRON_SECRET;
    bridges.forEach((bridge, i) => {
      process.env[`UPSTASH_REDIS_REST_URL_${i + 1}`] = bridge.url;
      process.env[`UPSTASH_REDIS_REST_TOKEN_${i + 1}`] = bridge.token;
    });
    process.env.CRON_SECRET = "quorum-app-secret";
    try {
      let runs = 0;
      const app = createVercelApp(
        [
          {
            name: "quorum-app",
            cron: "0 * * * *",
            handler: async ({ redis, slot }) => {
              runs += 1;
              await redis.set(`quorum-app:${slot}`, "ran");
              return runs;
            },
          },
        ],
        { guardOptions: { prefix: "qapp" }, store: quorumStore },
      );
      const responses = await Promise.all(
        Array.from({ length: 20 }, () =>
          app.request("/cron/quorum-app?slot=2026-11-23T10:00:00Z", {
            method: "POST",
            headers: { authorization: "Bearer quorum-app-secret" },
          }),
        ),
      );
      const statuses = responses.map((response) => response.status).sort();
      expect(statuses.filter((status) => status === 200)).toHaveLength(1);
      expect(statuses.filter((status) => status === 204)).toHaveLength(19);
      expect(runs).toBe(1);
      const slotKey = "qapp:{quorum-app}:slot:2026-11-23T10:00:00Z";
      for (const database of direct) expect(await database.exists(slotKey)).toBe(1);
      expect(await direct[0]?.get("quorum-app:2026-11-23T10:00:00Z")).toBe("ran");
      expect(await direct[1]?.get("quorum-app:2026-11-23T10:00:00Z")).toBeNull();
    } finally {
      for (const name of names) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
      if (savedSecret === undefined) delete process.env.CRON_SECRET;
      else process.env.CRON_SECRET = savedSecret;
    }
  });
});
