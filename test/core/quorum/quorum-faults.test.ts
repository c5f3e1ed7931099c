/**
 * Quorum mode under the faults of issue 18: a flushed database (a restart without persistence), a
 * stopped one (SIGSTOP), and both at once. Three real redis-servers, each behind its own bridge,
 * reached through real @upstash/redis clients; every simulated instance gets clients of its own.
 */
import { Redis } from "@upstash/redis";
import { afterAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../../../src/bridge/index.js";
import type { RedisServerHandle } from "../../../src/bridge/redis-server.js";
import { createGuard, type GuardStore, StoreUnavailableError } from "../../../src/core/index.js";
import { createQuorumStore } from "../../../src/core/quorum/quorum.js";
import { createDispatcher, createScheduleRegistry } from "../../../src/core/schedules/index.js";
import { sleep } from "../../../src/core/sleep.js";
import { tally } from "../../support/guard-contract.js";
import { type DirectClient, useQuorumDatabases } from "../../support/quorum-databases.js";

const SLOT = Date.UTC(2026, 11, 7, 9, 40);
const PREFIX = "qf";
/** The bridges run in this process: 150 instances x 3 databases queue behind each other. */
const TIMEOUT_MS = 5_000;

const { servers, bridges, direct } = useQuorumDatabases();

afterAll(async () => {
  for (const server of servers) resume(server);
});

/** A client as an application makes it: @upstash/redis's defaults (retries, auto-pipelining). */
function client(index: number): Redis {
  const bridge = bridges[index] as RunningBridge;
  return new Redis({ url: bridge.url, token: bridge.token, enableTelemetry: false });
}

/** A URL nothing listens on. */
const down = (): GuardStore =>
  new Redis({ url: "http://127.0.0.1:9", token: "x", retry: false, enableTelemetry: false });

/** Answers every call `delayMs` late: a database farther away, still well within the timeout. */
function slow(store: GuardStore, delayMs: number): GuardStore {
  return {
    eval: async (script, keys, args) => {
      await sleep(delayMs);
      return store.eval(script, keys, args);
    },
    evalsha: async (sha, keys, args) => {
      await sleep(delayMs);
      return store.evalsha(sha, keys, args);
    },
  };
}

type Member = "up" | "down" | "slow";

/** A quorum store over fresh clients of the three databases, like a separate deployment. */
function quorum(timeoutMs = TIMEOUT_MS, members: Member[] = ["up", "up", "up"]): GuardStore {
  return createQuorumStore(
    members.map((member, i) =>
      member === "up" ? client(i) : member === "down" ? down() : slow(client(i), 300),
    ),
    { timeoutMs },
  );
}

function db(index: number): DirectClient {
  return direct[index] as DirectClient;
}

const stopped = new Set<RedisServerHandle>();
function pause(server: RedisServerHandle | undefined): void {
  if (!server) return;
  process.kill(server.pid, "SIGSTOP");
  stopped.add(server);
}
function resume(server: RedisServerHandle | undefined): void {
  if (!server || !stopped.has(server)) return;
  process.kill(server.pid, "SIGCONT");
  stopped.delete(server);
}

let jobCounter = 0;
const uniqueJob = (name: string) => `${name}-${++jobCounter}`;

describe("finding 2: a flushed database and concurrent late duplicates", () => {
  it("runs a slot once: 150 racing instances, FLUSHALL of one database, 60 more, 5 times", async () => {
    // Warm-up: loads the scripts into every database.
    await createGuard({ redis: quorum(), prefix: PREFIX }).run(uniqueJob("warm"), SLOT, () => 0);
    const ranAgain: number[] = [];
    for (let round = 0; round < 5; round += 1) {
      const job = uniqueJob("flush-late");
      let runs = 0;
      const race = async (count: number) =>
        (
          await Promise.allSettled(
            Array.from({ length: count }, () =>
              createGuard({ redis: quorum(), prefix: PREFIX, leaseMs: 10_000 }).run(
                job,
                SLOT,
                async () => {
                  runs += 1;
                  await sleep(5);
                  return "sent";
                },
              ),
            ),
          )
        ).flatMap((settled) => (settled.status === "fulfilled" ? [settled.value] : []));
      const first = await race(150);
      expect(tally(first)).toMatchObject({ ran: 1, skipped: 149, failed: 0 });
      await db(0).flushAll();
      const late = await race(60);
      expect(tally(late).failed).toBe(0);
      if (runs !== 1) ranAgain.push(round);
      await db(0).flushAll();
      await race(60);
      if (runs !== 1 && ranAgain.at(-1) !== round) ranAgain.push(round);
    }
    expect(ranAgain).toEqual([]);
  }, 120_000);

  it("runs a slot once that database #3 missed, after database #1 is flushed", async () => {
    // Single faults one after the other: #3 is down while the slot runs (done on #1 and #2), then
    // #1 loses its data. Only #2 still knows the slot ran; #1 and #3 are a majority that does not.
    for (let round = 0; round < 3; round += 1) {
      const job = uniqueJob("missed-then-flushed");
      let runs = 0;
      const run = (members?: Member[]) =>
        createGuard({ redis: quorum(TIMEOUT_MS, members), prefix: PREFIX, leaseMs: 10_000 }).run(
          job,
          SLOT,
          () => ++runs,
        );
      expect(await run(["up", "up", "down"])).toMatchObject({ status: "ran" });
      await db(0).flushAll();
      const late = await Promise.allSettled(Array.from({ length: 60 }, () => run()));
      expect(runs).toBe(1);
      expect(late.filter((r) => r.status === "fulfilled").length).toBeGreaterThan(0);
      // Repaired: #1 and #3 hold the slot's outcome again, so a second loss cannot undo it.
      await db(1).flushAll();
      const later = await Promise.allSettled(Array.from({ length: 20 }, () => run()));
      expect(runs).toBe(1);
      expect(later.filter((r) => r.status === "fulfilled").length).toBe(20);
    }
  }, 120_000);

  it("does not run a slot a second time while its holder runs and one of the holder's databases is flushed", async () => {
    const job = uniqueJob("flushed-holder");
    let runs = 0;
    let finish: () => void = () => {};
    const guard = (members?: Member[]) =>
      createGuard({ redis: quorum(TIMEOUT_MS, members), prefix: PREFIX, leaseMs: 10_000 });
    // Warm the job up (it has run before), then the holder claims on #1 and #2 only.
    expect(await guard().run(job, SLOT - 60_000, () => 0)).toMatchObject({ status: "ran" });
    const holding = guard(["up", "up", "down"]).run(job, SLOT, async () => {
      runs += 1;
      await new Promise<void>((resolve) => {
        finish = resolve;
      });
    });
    while (runs === 0) await sleep(10);
    await db(0).flushAll();
    const during = await Promise.allSettled(
      Array.from({ length: 60 }, () => guard().run(job, SLOT, () => ++runs)),
    );
    expect(runs).toBe(1);
    for (const result of during) {
      if (result.status === "fulfilled") {
        expect(result.value).toMatchObject({ status: "skipped", reason: "running" });
      }
    }
    finish();
    expect(await holding).toMatchObject({ status: "ran" });
  }, 60_000);
});

describe("finding 4: fences strictly increase under one fault at a time", () => {
  it("one database down for one slot, later another flushed, then the next slot", async () => {
    const job = uniqueJob("fences");
    const fenceKey = `${PREFIX}:{${job}}:fence`;
    const fences: number[] = [];
    const run = async (slot: number, members?: Member[]) => {
      const result = await createGuard({
        redis: quorum(TIMEOUT_MS, members),
        prefix: PREFIX,
      }).run(job, slot, ({ fence }) => fence);
      expect(result.status).toBe("ran");
      fences.push(result.status === "ran" ? (result.fence as number) : Number.NaN);
    };
    await run(SLOT);
    // Racing claims moved #1's counter on (a rolled-back minority claim still counts up).
    await db(0).set(fenceKey, "42");
    await run(SLOT + 60_000, ["up", "up", "down"]);
    await db(0).flushAll();
    // #2 answers last (but well within the timeout): the first two answers are #1 and #3.
    await run(SLOT + 120_000, ["up", "slow", "up"]);
    await run(SLOT + 180_000);
    // Then #3 is flushed, and later #2: each after the previous fault was over.
    await db(2).flushAll();
    await run(SLOT + 240_000, ["slow", "up", "up"]);
    await db(1).flushAll();
    await run(SLOT + 300_000, ["up", "up", "slow"]);
    for (let i = 1; i < fences.length; i += 1) {
      expect(fences[i], `fences ${fences.join(", ")}`).toBeGreaterThan(fences[i - 1] as number);
    }
  }, 60_000);
});

describe("finding 3: the registry never takes a minority's answer, and repairs a database", () => {
  const REGISTRY_PREFIX = "qr";
  const defs = `${REGISTRY_PREFIX}:{schedules}:defs`;
  const fires = `${REGISTRY_PREFIX}:{schedules}:fires`;
  const due = `${REGISTRY_PREFIX}:{schedules}:due`;
  const ids = ["q1", "q2", "q3"];
  const registry = () =>
    createScheduleRegistry({ redis: quorum(1_000), prefix: REGISTRY_PREFIX, handlers: ["h"] });
  const ran: string[] = [];
  /** A tick an hour after the schedules were created: every one of them is due. */
  const tick = () =>
    createDispatcher({
      redis: quorum(1_000),
      prefix: REGISTRY_PREFIX,
      handlers: { h: ({ schedule }) => ran.push(schedule.id) },
      guardOptions: { clock: () => Date.now() + 3_600_000 },
    }).tick();
  const input = (id: string) => ({ id, cron: "*/5 * * * *", handler: "h", payload: { id } });
  /** A tick that fails: it throws a store error or counts one, and runs nothing. */
  async function expectFailedTick() {
    const before = ran.length;
    const outcome = await tick().then(
      (result) => result,
      (error: unknown) => error,
    );
    if (outcome instanceof Error) expect(outcome).toBeInstanceOf(StoreUnavailableError);
    else expect(outcome).toMatchObject({ ran: 0, errors: expect.any(Number) });
    if (!(outcome instanceof Error))
      expect((outcome as { errors: number }).errors).toBeGreaterThan(0);
    expect(ran.length).toBe(before);
  }

  it("errors while database #1 is flushed and #3 stopped; answers right and repairs #1 once #3 is back", async () => {
    const created = await Promise.all(ids.map((id) => registry().upsert(input(id))));
    expect(created.map((c) => c.outcome)).toEqual(["created", "created", "created"]);
    const before = await registry().get("q1");
    const listed = await registry().list();
    expect(listed.schedules.map((s) => s.id).sort()).toEqual(ids);

    await db(0).flushAll();
    pause(servers[2]);
    try {
      await expect(registry().get("q1")).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(registry().list()).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(registry().events()).resolves.toEqual([]); // nobody holds an event: agreed
      await expectFailedTick();
      // A redeploy during the outage: #1 answers `created`, #2 `unchanged`: no majority.
      await expect(registry().upsert(input("q2"))).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(registry().pause("q3")).rejects.toBeInstanceOf(StoreUnavailableError);
      // The overdue scan (the missed-fire check) cannot tell either: an error, not "none overdue".
      await expect(registry().overdue({ beforeMs: Date.now() + 3_600_000 })).rejects.toBeInstanceOf(
        StoreUnavailableError,
      );
    } finally {
      resume(servers[2]);
    }

    // #3 is back once its bridge answers again (its connections stalled while it was stopped).
    for (let tries = 0; tries < 100; tries += 1) {
      const pong = await client(2)
        .ping()
        .catch(() => undefined);
      if (pong === "PONG") break;
      await sleep(100);
    }
    // Database #1 lost everything; the writes above changed nothing anywhere (no majority agreed
    // on their schedule). With all three up, #2 and #3 agree on every schedule.
    const after = await registry().get("q1");
    expect(after).toEqual(before);
    const page = await registry().list();
    expect(page.schedules.map((s) => s.id).sort()).toEqual(ids);
    for (const key of [defs, fires]) {
      expect(await db(0).hGetAll(key)).toEqual(await db(2).hGetAll(key));
    }
    expect(await db(0).zRangeWithScores(due, 0, -1)).toEqual(
      await db(2).zRangeWithScores(due, 0, -1),
    );
    const overdue = await registry().overdue({ beforeMs: Date.now() + 3_600_000 });
    expect(overdue.schedules.map((s) => s.id).sort()).toEqual(ids);
    const result = await tick();
    expect(result.errors).toBe(0);
    expect(ran.sort()).toEqual(ids);
  }, 60_000);

  it("shows the events a majority holds, matched by content (each database numbers its stream itself)", async () => {
    const stream = "qe:{schedules}:events";
    const event = (fire: string) => JSON.stringify({ kind: "missed", fire, fires: 1 });
    for (const [i, database] of direct.entries()) {
      await database.xAdd(stream, "*", { schedule: "e1", event: event("2026-12-07T09:00:00Z") });
      await sleep(2);
      if (i !== 2)
        await database.xAdd(stream, "*", { schedule: "e2", event: event("2026-12-07T09:01:00Z") });
      if (i === 0)
        await database.xAdd(stream, "*", { schedule: "e3", event: event("2026-12-07T09:02:00Z") });
    }
    const events = await createScheduleRegistry({
      redis: quorum(),
      prefix: "qe",
      handlers: ["h"],
    }).events();
    expect(events.map((e) => e.schedule)).toEqual(["e2", "e1"]);
  });

  it("pages LIST by a merge of every database, with the same schedules whatever HSCAN's order", async () => {
    const many = Array.from({ length: 25 }, (_, i) => `m${String(i).padStart(2, "0")}`);
    const store = createScheduleRegistry({
      redis: quorum(),
      prefix: "ql",
      handlers: ["h"],
    });
    for (const id of many) await store.upsert({ id, cron: "0 * * * *", handler: "h" });
    await db(1).flushAll();
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.list({ cursor, limit: 7 });
      seen.push(...page.schedules.map((s) => s.id));
      cursor = page.cursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual(many);
    expect(await db(1).hLen("ql:{schedules}:defs")).toBe(25);
  });
});
