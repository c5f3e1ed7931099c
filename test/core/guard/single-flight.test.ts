import { Redis } from "@upstash/redis";
import { describe, expect, it } from "vitest";
import { jobKeys } from "../../../src/core/guard/keys.js";
import type { SkippedResult } from "../../../src/core/guard/result.js";
import { MAX_REMEMBERED_SLOTS, slotFlightsOf } from "../../../src/core/guard/single-flight.js";
import {
  createGuard,
  type GuardOptions,
  type GuardResult,
  StoreUnavailableError,
} from "../../../src/core/index.js";
import { sleep } from "../../../src/core/sleep.js";
import { useCountedDatabase } from "../../support/counted-database.js";
import { tally } from "../../support/guard-contract.js";
import { uniquePrefix } from "../../support/harness.js";

/** A recent whole minute: the slot ledger vouches for slots within its age bound (7 days). */
const SLOT = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;
const STORM = 300;

describe("single flight: one claim per slot per isolate, finished slots remembered", () => {
  const database = useCountedDatabase();
  /** Each test its own prefix: memory is per store object and prefix, Redis is shared. */
  const isolate = (options: Partial<GuardOptions> & { prefix: string }) =>
    createGuard({ redis: database.client(), ...options });

  /** Script commands that reached Redis while `work` ran (nothing else uses this database). */
  async function commandsDuring<T>(
    work: () => Promise<T>,
  ): Promise<{ value: T; commands: number }> {
    const before = await database.scriptCalls();
    const value = await work();
    return { value, commands: (await database.scriptCalls()) - before };
  }

  /** Loads the scripts, so a first EVALSHA's NOSCRIPT + EVAL is not counted in a test. */
  async function warmUp(prefix: string): Promise<void> {
    await isolate({ prefix }).run("warm-up", SLOT, () => undefined);
  }

  const storm = <T>(count: number, deliver: () => Promise<GuardResult<T>>) =>
    Promise.all(Array.from({ length: count }, deliver));

  it(`${STORM} concurrent deliveries and ${STORM} late ones cost one claim and one completion`, async () => {
    const prefix = uniquePrefix("single-flight");
    await warmUp(prefix);
    const guard = isolate({ prefix });
    let runs = 0;
    const job = async () => {
      runs += 1;
      await sleep(5);
      return "sent";
    };
    const { value: waves, commands } = await commandsDuring(async () => {
      const first = await storm(STORM, () => guard.run("storm", SLOT, job));
      const late = await storm(STORM, () => guard.run("storm", SLOT, job));
      return { first, late };
    });
    expect(runs).toBe(1);
    expect(commands).toBeLessThanOrEqual(2);

    const ran = waves.first.find((r) => r.status === "ran");
    expect(tally(waves.first)).toMatchObject({ ran: 1, skipped: STORM - 1 });
    for (const result of waves.first) {
      if (result.status !== "skipped") continue;
      // What Redis would have answered a concurrent claim: running (or done, once it finished).
      expect(["running", "done"]).toContain(result.reason);
      expect(result.holder?.fence).toBe(ran?.status === "ran" ? ran.fence : undefined);
    }
    expect(tally(waves.late)).toMatchObject({ skipped: STORM });
    for (const result of waves.late) {
      expect(result).toMatchObject({ status: "skipped", reason: "done" });
    }

    // Honest: another isolate asking Redis itself gets the very skip this one remembered.
    const fromRedis = await isolate({ prefix }).run("storm", SLOT, job);
    const remembered = waves.late[0] as SkippedResult;
    expect(fromRedis).toEqual(remembered);
    expect(remembered.holder).toMatchObject({ state: "done", fence: 1, summary: '"sent"' });
    // Each delivery gets its own result: changing one changes no other.
    (waves.late[1] as SkippedResult).holder = undefined;
    expect((waves.late[2] as SkippedResult).holder?.fence).toBe(1);
  });

  it("two isolates (two store objects) in one storm: one run, at most three commands", async () => {
    const prefix = uniquePrefix("single-flight");
    await warmUp(prefix);
    const isolates = [isolate({ prefix }), isolate({ prefix })];
    let runs = 0;
    const { value: results, commands } = await commandsDuring(() =>
      Promise.all(
        isolates.flatMap((guard) =>
          Array.from({ length: STORM }, () =>
            guard.run("storm", SLOT, async () => {
              runs += 1;
              await sleep(5);
            }),
          ),
        ),
      ),
    );
    expect(runs).toBe(1);
    expect(tally(results)).toMatchObject({ ran: 1, skipped: 2 * STORM - 1 });
    expect(commands).toBeLessThanOrEqual(3);
  });

  it("guards built per request over one store share its flights; another store does not", async () => {
    const prefix = uniquePrefix("single-flight");
    await warmUp(prefix);
    const store = database.client();
    const { value: results, commands } = await commandsDuring(() =>
      storm(50, () => createGuard({ redis: store, prefix }).run("per-request", SLOT, () => 1)),
    );
    expect(tally(results)).toMatchObject({ ran: 1, skipped: 49 });
    expect(commands).toBe(2);
    const other = await commandsDuring(() => isolate({ prefix }).run("per-request", SLOT, () => 2));
    expect(other.value).toMatchObject({ status: "skipped", reason: "done" });
    expect(other.commands).toBe(1);
  });

  it("a forced run reaches Redis, runs again, and is what later deliveries are told", async () => {
    const prefix = uniquePrefix("single-flight");
    await warmUp(prefix);
    const guard = isolate({ prefix });
    let runs = 0;
    const job = () => {
      runs += 1;
      return runs;
    };
    await guard.run("forced", SLOT, job);
    const forced = await commandsDuring(() => guard.run("forced", SLOT, job, { force: true }));
    expect(forced.value).toMatchObject({ status: "ran", value: 2, fence: 2 });
    expect(forced.commands).toBe(2);
    const late = await commandsDuring(() => guard.run("forced", SLOT, job));
    expect(late.commands).toBe(0);
    expect(late.value).toMatchObject({
      status: "skipped",
      reason: "done",
      holder: { fence: 2, forced: true },
    });
    expect(runs).toBe(2);
  });

  it("a failure under release is not remembered: a later delivery retries it", async () => {
    const prefix = uniquePrefix("single-flight");
    await warmUp(prefix);
    const guard = isolate({ prefix });
    let calls = 0;
    const flaky = async () => {
      calls += 1;
      await sleep(5);
      if (calls === 1) throw new Error("smtp down");
      return "sent";
    };
    const first = await storm(20, () => guard.run("retry", SLOT, flaky));
    expect(tally(first)).toMatchObject({ failed: 1, skipped: 19 });
    const retried = await commandsDuring(() => guard.run("retry", SLOT, flaky));
    expect(retried.value).toMatchObject({ status: "ran", value: "sent" });
    expect(retried.commands).toBe(2);
    expect(calls).toBe(2);
  });

  it("a failure under keep is remembered as failed, with the holder Redis would give", async () => {
    const prefix = uniquePrefix("single-flight");
    await warmUp(prefix);
    const guard = isolate({ prefix, onFailure: "keep" });
    await guard.run("kept", SLOT, () => {
      throw new Error("card declined");
    });
    const late = await commandsDuring(() => guard.run("kept", SLOT, () => "again"));
    expect(late.commands).toBe(0);
    expect(late.value).toMatchObject({ status: "skipped", reason: "failed" });
    expect(await isolate({ prefix }).run("kept", SLOT, () => "again")).toEqual(late.value);
  });

  it("forgets a finished slot when its retention ends by the guard's clock", async () => {
    const prefix = uniquePrefix("single-flight");
    await warmUp(prefix);
    let nowMs = Date.now();
    const guard = isolate({ prefix, retentionMs: 60_000, clock: () => nowMs });
    await guard.run("expiry", SLOT, () => "ran");
    nowMs += 59_000;
    expect((await commandsDuring(() => guard.run("expiry", SLOT, () => "again"))).commands).toBe(0);
    nowMs += 2_000;
    const asked = await commandsDuring(() => guard.run("expiry", SLOT, () => "again"));
    expect(asked.commands).toBe(1);
    // Redis still says done (its key lives on in real time), and that answer is remembered again.
    expect(asked.value).toMatchObject({ status: "skipped", reason: "done" });
    expect((await commandsDuring(() => guard.run("expiry", SLOT, () => "again"))).commands).toBe(0);
  });

  it(`remembers at most ${MAX_REMEMBERED_SLOTS} slots per store, the oldest go first`, async () => {
    const prefix = uniquePrefix("single-flight");
    await warmUp(prefix);
    const store = database.client();
    const guard = createGuard({ redis: store, prefix });
    const keys = jobKeys(prefix, "evict");
    const flights = slotFlightsOf(store);
    const slotOf = (i: number) => `s${i}`;
    // Fill the memory as if this isolate had seen this many slots finish (Redis knows none of them).
    for (let i = 0; i <= MAX_REMEMBERED_SLOTS; i += 1) {
      flights.solo(keys.slot(slotOf(i)), Date.now).finished({ state: "done", fence: i }, 60_000);
    }
    expect(flights.rememberedCount).toBe(MAX_REMEMBERED_SLOTS);
    const newest = await commandsDuring(() =>
      guard.run("evict", slotOf(MAX_REMEMBERED_SLOTS), () => "ran"),
    );
    expect(newest).toMatchObject({
      commands: 0,
      value: { status: "skipped", reason: "done", holder: { fence: MAX_REMEMBERED_SLOTS } },
    });
    // The oldest was evicted: its delivery asks Redis, which has never seen the slot.
    const oldest = await commandsDuring(() =>
      guard.run("evict", slotOf(0), () => "ran", { force: false }),
    );
    expect(oldest.commands).toBeGreaterThanOrEqual(1);
    expect(oldest.value.status).not.toBe("skipped");
  });

  it("a job that guards its own slot again, without its lease, is told running at once", async () => {
    const prefix = uniquePrefix("single-flight");
    await warmUp(prefix);
    const guard = isolate({ prefix });
    const result = await guard.run("nested", SLOT, () => guard.run("nested", SLOT, () => "inner"));
    expect(result).toMatchObject({
      status: "ran",
      value: { status: "skipped", reason: "running", holder: { state: "running", fence: 1 } },
    });
  });

  it("store down: the siblings share the claim's StoreUnavailableError; nothing is remembered", async () => {
    const real = database.client();
    let calls = 0;
    let down = true;
    const store = {
      eval: real.eval.bind(real),
      async evalsha<A extends unknown[], T>(sha: string, keys: string[], args: A): Promise<T> {
        calls += 1;
        if (down) throw new TypeError("fetch failed");
        return real.evalsha<A, T>(sha, keys, args);
      },
    };
    const prefix = uniquePrefix("single-flight");
    const guard = createGuard({ redis: store, prefix, leaseMs: 1_000 });
    let runs = 0;
    const outcomes = await Promise.allSettled(
      Array.from({ length: 50 }, () => guard.run("outage", SLOT, () => (runs += 1))),
    );
    expect(outcomes.every((o) => o.status === "rejected")).toBe(true);
    for (const outcome of outcomes) {
      expect(outcome.status === "rejected" && outcome.reason).toBeInstanceOf(StoreUnavailableError);
    }
    expect(runs).toBe(0);
    // One claim, then its withdrawal's attempts (at most one per backoff step): not one per delivery.
    expect(calls).toBeLessThan(10);
    down = false;
    const later = await guard.run("outage", SLOT, () => (runs += 1));
    expect(later).toMatchObject({ status: "ran", value: 1 });
  });

  it("store down under the open policy: one unguarded run, the siblings are told running", async () => {
    const down = new Redis({ url: "http://127.0.0.1:9", token: "x", retry: false });
    const guard = createGuard({
      redis: down,
      prefix: uniquePrefix("single-flight"),
      onStoreError: "open",
    });
    let runs = 0;
    const results = await storm(50, () =>
      guard.run("open", SLOT, async () => {
        runs += 1;
        await sleep(5);
      }),
    );
    expect(runs).toBe(1);
    expect(tally(results)).toMatchObject({ ran: 1, skipped: 49 });
    expect(results.find((r) => r.status === "ran")).toMatchObject({ unguarded: true });
  });

  it("a sibling whose guard skips overlaps only when told overlap if it would be", async () => {
    const prefix = uniquePrefix("single-flight");
    await warmUp(prefix);
    const store = database.client();
    const skipping = createGuard({ redis: store, prefix, overlap: "skip" });
    const allowing = createGuard({ redis: store, prefix, overlap: "allow" });
    let release: () => void = () => undefined;
    const earlier = skipping.run(
      "overlap",
      SLOT,
      () => new Promise<void>((done) => (release = done)),
    );
    await sleep(50);
    const [skipped, ran] = await Promise.all([
      skipping.run("overlap", SLOT + 60_000, () => "skip"),
      allowing.run("overlap", SLOT + 60_000, () => "allow"),
    ]);
    release();
    await earlier;
    expect(skipped).toMatchObject({ status: "skipped", reason: "overlap" });
    expect(ran).toMatchObject({ status: "ran", value: "allow" });
  });
});
