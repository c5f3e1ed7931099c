import { Redis } from "@upstash/redis";
import { describe, expect, it } from "vitest";
import { slotId } from "../../../src/core/cron/index.js";
import { COMPLETE_SCRIPT, type LuaScript } from "../../../src/core/guard/scripts.js";
import {
  createGuard,
  type GuardOptions,
  type GuardResult,
  LockLostError,
  StoreUnavailableError,
} from "../../../src/core/index.js";
import { sleep } from "../../../src/core/sleep.js";
import { tally } from "../../support/guard-contract.js";
import { directRedis, upstash, useKeyPrefix } from "../../support/harness.js";

/** A recent whole minute: the slot ledger vouches for slots within its age bound (7 days). */
const SLOT = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;

describe("guard.run", () => {
  const prefix = useKeyPrefix("guard");
  const instance = (options: Partial<GuardOptions> = {}) =>
    createGuard({ redis: upstash({ autoPipelining: false }), prefix: prefix(), ...options });

  it("runs a slot exactly once when 200 instances race for it, 20 times over", async () => {
    for (let round = 0; round < 20; round += 1) {
      let sideEffects = 0;
      const slot = SLOT + round * 60_000;
      const results = await Promise.all(
        Array.from({ length: 200 }, () =>
          instance().run("storm", slot, async () => {
            sideEffects += 1;
            await sleep(5);
            return "sent";
          }),
        ),
      );
      const count = tally(results);
      expect(count.ran).toBe(1);
      expect(count.skipped).toBe(199);
      expect(sideEffects).toBe(1);
      for (const result of results) {
        if (result.status === "skipped") {
          expect(["running", "done"]).toContain(result.reason);
          expect(result.holder?.fence).toBeGreaterThan(0);
        }
      }
    }
  });

  it("skips duplicates that arrive 1 ms, 1 s, just before and long after the retention ends", async () => {
    const guard = instance({ retentionMs: 2_500 });
    let runs = 0;
    const job = () => {
      runs += 1;
      return runs;
    };
    const first = await guard.run("late", SLOT, job);
    expect(first).toMatchObject({ status: "ran", value: 1 });
    for (const delayMs of [1, 999, 1_200, 600]) {
      await sleep(delayMs);
      expect(await guard.run("late", SLOT, job)).toMatchObject({
        status: "skipped",
        reason: "done",
      });
    }
    // The slot key is gone; the ledger still says the slot ran, with the run's fence.
    const redis = await directRedis();
    expect(await redis.exists(`${prefix()}:{late}:slot:${first.slot}`)).toBe(0);
    expect(await guard.run("late", SLOT, job)).toMatchObject({
      status: "skipped",
      reason: "done",
      holder: { state: "done", fence: 1, ledger: true },
    });
    expect(runs).toBe(1);
  });

  it("keeps a failed slot failed under the keep policy: no duplicate runs it", async () => {
    const guard = instance({ onFailure: "keep" });
    await guard.run("bill", SLOT, async () => {
      throw new Error("card declined");
    });
    let runs = 0;
    const retries = await Promise.all(
      Array.from({ length: 20 }, () =>
        instance({ onFailure: "keep" }).run("bill", SLOT, () => ++runs),
      ),
    );
    expect(tally(retries)).toMatchObject({ ran: 0, skipped: 20, reasons: { failed: 20 } });
    expect(runs).toBe(0);
    const status = await guard.status("bill");
    expect(status.runs[0]).toMatchObject({ status: "failed", summary: "Error: card declined" });
  });

  it("keeps a job that outlives its lease exclusive through the heartbeat", async () => {
    const holder = instance({ leaseMs: 300, heartbeatMs: 100 });
    let duplicates = 0;
    const long = holder.run("long", SLOT, async ({ signal }) => {
      await sleep(1_200);
      return signal.aborted;
    });
    const attempts: GuardResult<unknown>[] = [];
    for (let i = 0; i < 10; i += 1) {
      await sleep(100);
      attempts.push(await instance().run("long", SLOT, () => ++duplicates));
    }
    expect(await long).toMatchObject({ status: "ran", value: false });
    expect(duplicates).toBe(0);
    expect(tally(attempts).reasons.running).toBe(10);
  });

  it("aborts the job with LockLostError when its key is deleted behind its back", async () => {
    const redis = await directRedis();
    const guard = instance({ leaseMs: 600, heartbeatMs: 100 });
    let seenReason: unknown;
    const running = guard.run("stolen", SLOT, async ({ signal }) => {
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve()));
      seenReason = signal.reason;
      throw signal.reason;
    });
    await sleep(150);
    const keys = await redis.keys(`${prefix()}:{stolen}:slot:*`);
    expect(keys).toHaveLength(1);
    await redis.del(keys);
    const result = await running;
    expect(seenReason).toBeInstanceOf(LockLostError);
    expect(result).toMatchObject({ status: "failed", lockLost: true });
    expect(result.status === "failed" && result.error).toBeInstanceOf(LockLostError);
    const status = await guard.status("stolen");
    expect(status.runs[0]?.status).toBe("lost");
  });

  it("reports a lost lease even when the job ignores its signal", async () => {
    const redis = await directRedis();
    const guard = instance({ leaseMs: 400, heartbeatMs: 0 });
    const result = await guard.run("deaf", SLOT, async () => {
      await sleep(100);
      const keys = await redis.keys(`${prefix()}:{deaf}:slot:*`);
      await redis.del(keys);
      return "finished anyway";
    });
    expect(result).toMatchObject({ status: "failed", lockLost: true });
  });

  it("fails closed when the store is unreachable: fn is not called", async () => {
    const down = new Redis({ url: "http://127.0.0.1:9", token: "x", retry: false });
    const guard = createGuard({ redis: down, prefix: prefix() });
    let called = false;
    await expect(
      guard.run("closed", SLOT, () => {
        called = true;
      }),
    ).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(called).toBe(false);
  });

  it("fails open on request: fn runs and the result says it was unguarded", async () => {
    const down = new Redis({ url: "http://127.0.0.1:9", token: "x", retry: false });
    const guard = createGuard({ redis: down, prefix: prefix(), onStoreError: "open" });
    const result = await guard.run("open", SLOT, () => "ran anyway");
    expect(result).toMatchObject({
      status: "ran",
      unguarded: true,
      fence: null,
      value: "ran anyway",
    });
    expect(result.status === "ran" && result.warning).toBeInstanceOf(StoreUnavailableError);
  });

  it("re-enters a nested guard of the same slot through the lease instead of skipping", async () => {
    const guard = instance();
    const result = await guard.run("nested", SLOT, async ({ lease }) => {
      const inner = await guard.run("nested", SLOT, () => "inner", { lease });
      const blind = await guard.run("nested", SLOT, () => "blind");
      return { inner, blind };
    });
    expect(result.status).toBe("ran");
    if (result.status !== "ran") return;
    expect(result.value.inner).toMatchObject({ status: "ran", reentered: true, value: "inner" });
    expect(result.value.blind).toMatchObject({ status: "skipped", reason: "running" });
  });

  it("treats a claim the client retried after a lost answer as its own", async () => {
    const real = upstash({ autoPipelining: false });
    let replayed = false;
    const flaky = {
      eval: real.eval.bind(real),
      async evalsha<A extends unknown[], T>(sha: string, keys: string[], args: A): Promise<T> {
        if (!replayed) {
          replayed = true;
          await real.evalsha(sha, keys, args);
        }
        return real.evalsha<A, T>(sha, keys, args);
      },
    };
    await instance().run("warm", SLOT, () => 0);
    const result = await createGuard({ redis: flaky, prefix: prefix() }).run(
      "retried",
      SLOT,
      () => "once",
    );
    expect(replayed).toBe(true);
    expect(result).toMatchObject({ status: "ran", value: "once" });
  });

  /** A store whose first answer to `script` is lost after Redis ran it, like a dropped response. */
  function dropsFirstAnswer(real: Redis, script: LuaScript) {
    let dropped = 0;
    const store = {
      dropped: () => dropped,
      eval: real.eval.bind(real),
      async evalsha<A extends unknown[], T>(sha: string, keys: string[], args: A): Promise<T> {
        const reply = await real.evalsha<A, T>(sha, keys, args);
        if (dropped === 0 && sha === (await script.sha1())) {
          dropped += 1;
          throw new TypeError("fetch failed: socket hang up");
        }
        return reply;
      },
    };
    return store;
  }

  it("retries a completion whose answer was lost, and records the run once", async () => {
    const store = dropsFirstAnswer(upstash({ autoPipelining: false }), COMPLETE_SCRIPT);
    const guard = createGuard({ redis: store, prefix: prefix() });
    const ran = await guard.run("complete-retry", SLOT, () => "ok");
    expect(store.dropped()).toBe(1);
    expect(ran).toMatchObject({ status: "ran", value: "ok" });
    expect(ran.status === "ran" ? ran.warning : "did not run").toBeUndefined();
    const duplicate = await instance().run("complete-retry", SLOT, () => "again");
    expect(duplicate).toMatchObject({ status: "skipped", reason: "done" });
    const status = await instance().status("complete-retry");
    expect(status.runs.map((r) => r.status)).toEqual(["done"]);
  });

  it("under release, a retried completion of a failure is not mistaken for a lost lease", async () => {
    const store = dropsFirstAnswer(upstash({ autoPipelining: false }), COMPLETE_SCRIPT);
    const failed = await createGuard({ redis: store, prefix: prefix() }).run(
      "fail-retry",
      SLOT,
      () => {
        throw new Error("boom");
      },
    );
    expect(store.dropped()).toBe(1);
    expect(failed).toMatchObject({ status: "failed", lockLost: false });
    const retry = await instance().run("fail-retry", SLOT, () => "second try");
    expect(retry).toMatchObject({ status: "ran", value: "second try" });
    const status = await instance().status("fail-retry");
    expect(status.runs.map((r) => r.status)).toEqual(["done", "failed"]);
  });

  it("skips a slot while an earlier slot of the job still runs when overlap is skip", async () => {
    const slow = instance({ overlap: "skip" });
    const first = slow.run("digest", SLOT, () => sleep(400).then(() => "first"));
    await sleep(100);
    const next = await instance({ overlap: "skip" }).run("digest", SLOT + 60_000, () => "next");
    expect(next).toMatchObject({ status: "skipped", reason: "overlap" });
    expect(await first).toMatchObject({ status: "ran" });
    const after = await instance({ overlap: "skip" }).run("digest", SLOT + 120_000, () => "after");
    expect(after).toMatchObject({ status: "ran" });
  });

  it("reports the latest slots and runs in status", async () => {
    const guard = instance({ region: "fra1" });
    await guard.run("report", SLOT, () => ({ sent: 3 }));
    await guard.run("report", SLOT + 60_000, () => {
      throw new Error("nope");
    });
    const status = await guard.status("report");
    expect(status.fence).toBe(2);
    const [first, second] = [slotId(SLOT), slotId(SLOT + 60_000)];
    expect(status.slots.map((s) => [s.slot, s.state?.state ?? null])).toEqual([
      [second, "released"],
      [first, "done"],
    ]);
    expect(status.runs.map((r) => [r.slot, r.status, r.fence, r.region])).toEqual([
      [second, "failed", 2, "fra1"],
      [first, "done", 1, "fra1"],
    ]);
    expect(status.runs[1]?.summary).toBe('{"sent":3}');
  });

  it("rejects job names that cannot be keys without touching Redis", async () => {
    const guard = instance();
    for (const job of ["", "a b", "x{y}", "a".repeat(129), "*"]) {
      await expect(guard.run(job, SLOT, () => 1)).rejects.toThrow(/invalid job name/);
    }
    const redis = await directRedis();
    expect(await redis.keys(`${prefix()}*`)).toEqual([]);
  });
});
