import { describe, expect, it } from "vitest";
import { slotId } from "../../../src/core/cron/index.js";
import { createGuard, type GuardOptions } from "../../../src/core/index.js";
import { sleep } from "../../../src/core/sleep.js";
import { tally } from "../../support/guard-contract.js";
import { directRedis, upstash, useKeyPrefix } from "../../support/harness.js";

const MINUTE = 60_000;
const DAY = 86_400_000;
/** A recent whole minute. */
const SLOT = Math.floor(Date.now() / MINUTE) * MINUTE - 3_600_000;

describe("slot ledger", () => {
  const prefix = useKeyPrefix("ledger");
  const instance = (options: Partial<GuardOptions> = {}) =>
    createGuard({ redis: upstash(), prefix: prefix(), retentionMs: 1, ...options });
  const ledgerKey = (job: string) => `${prefix()}:{${job}}:ledger`;

  it("keeps a slot done after its key expired: 50 late duplicates skip it as done", async () => {
    let runs = 0;
    const first = await instance().run("mail", SLOT, () => ++runs);
    expect(first).toMatchObject({ status: "ran", fence: 1 });
    await sleep(10); // the slot key's 1 ms retention is over
    const redis = await directRedis();
    expect(await redis.exists(`${prefix()}:{mail}:slot:${slotId(SLOT)}`)).toBe(0);
    const late = await Promise.all(
      Array.from({ length: 50 }, () => instance().run("mail", SLOT, () => ++runs)),
    );
    expect(tally(late)).toMatchObject({ ran: 0, skipped: 50, reasons: { done: 50 } });
    expect(late[0]).toMatchObject({ holder: { state: "done", fence: 1, ledger: true } });
    expect(runs).toBe(1);
  });

  it("runs a finished slot again only with force, records both runs, and never forces past a running claim", async () => {
    const guard = instance({ retentionMs: 60_000 });
    await guard.run("report", SLOT, () => "first");
    const forced = await guard.run("report", SLOT, () => "again", { force: true });
    expect(forced).toMatchObject({ status: "ran", fence: 2, value: "again" });
    const lookup = await guard.lookup("report", SLOT);
    expect(lookup).toMatchObject({
      status: "ran",
      runs: [
        { outcome: "done", fence: 1, attempt: 0, forced: false },
        { outcome: "done", fence: 2, attempt: 1, forced: true },
      ],
      holder: { state: "done", fence: 2 },
    });
    expect(lookup.holder).not.toHaveProperty("token");
    expect((await guard.status("report")).runs[0]).toMatchObject({ fence: 2, forced: true });

    let release: () => void = () => {};
    const holding = instance({ retentionMs: 60_000 }).run(
      "report",
      SLOT + MINUTE,
      () => new Promise<void>((resolve) => (release = resolve)),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const pushed = await guard.run("report", SLOT + MINUTE, () => "no", { force: true });
    expect(pushed).toMatchObject({ status: "skipped", reason: "running" });
    release();
    expect(await holding).toMatchObject({ status: "ran" });
  });

  it("keeps a kept failure failed after retention, and counts the attempts of a released one", async () => {
    const keep = instance({ onFailure: "keep" });
    await keep.run("bill", SLOT, () => {
      throw new Error("declined");
    });
    await sleep(10); // the slot key's 1 ms retention is over
    expect(await keep.run("bill", SLOT, () => "charged twice")).toMatchObject({
      status: "skipped",
      reason: "failed",
      holder: { state: "failed", ledger: true },
    });

    const release = instance();
    await release.run("sync", SLOT, () => {
      throw new Error("timeout");
    });
    expect(await release.run("sync", SLOT, () => "retried")).toMatchObject({
      status: "ran",
      fence: 2,
    });
    expect(await release.lookup("sync", SLOT)).toMatchObject({
      status: "ran",
      runs: [
        { outcome: "released", fence: 1, attempt: 0 },
        { outcome: "done", fence: 2, attempt: 1 },
      ],
    });
    expect(await release.run("sync", SLOT, () => "third")).toMatchObject({
      status: "skipped",
      reason: "done",
    });
  });

  it("answers lookups: never for a slot it vouches for, unknown beyond its bounds", async () => {
    const guard = instance();
    expect(await guard.lookup("fresh", SLOT)).toMatchObject({ status: "never", runs: [] });
    await guard.run("fresh", SLOT, () => 1);
    expect(await guard.lookup("fresh", SLOT + MINUTE)).toMatchObject({ status: "never" });
    // The ledger has seen every claim of this job, so it vouches even for an old slot...
    const old = SLOT - 8 * DAY;
    expect(await guard.lookup("fresh", old)).toMatchObject({ status: "never" });
    expect(await guard.run("fresh", old, () => "old")).toMatchObject({ status: "ran" });
    // ...and remembers the run until its next age sweep (at most an hour) drops it.
    expect(await guard.run("fresh", old, () => "twice")).toMatchObject({
      status: "skipped",
      reason: "done",
    });
  });

  it("cannot vouch for old slots of a job that claimed before its ledger existed (an upgrade)", async () => {
    const redis = await directRedis();
    await redis.set(`${prefix()}:{upgraded}:fence`, "17");
    const guard = instance();
    const old = SLOT - 8 * DAY;
    expect(await guard.lookup("upgraded", old)).toMatchObject({ status: "unknown" });
    expect(await guard.lookup("upgraded", SLOT)).toMatchObject({ status: "never" });
    expect(await guard.run("upgraded", old, () => "old")).toMatchObject({
      status: "skipped",
      reason: "unvouched",
    });
    expect(await guard.run("upgraded", old, () => "old", { force: true })).toMatchObject({
      status: "ran",
      fence: 18,
    });
    expect(await guard.run("upgraded", SLOT, () => "recent")).toMatchObject({ status: "ran" });
  });

  it("holds at most ledgerMaxSlots (plus a small sweep margin) and refuses to vouch for what it evicted", async () => {
    const guard = instance({ ledgerMaxSlots: 5 });
    for (let i = 0; i < 40; i += 1) await guard.run("tick", SLOT + i * MINUTE, () => i);
    const redis = await directRedis();
    const fields = await redis.hKeys(ledgerKey("tick"));
    const slots = fields.filter((field) => !field.startsWith("~"));
    expect(slots.length).toBeGreaterThanOrEqual(5);
    expect(slots.length).toBeLessThanOrEqual(5 + 16);
    expect(slots).toContain(slotId(SLOT + 39 * MINUTE));
    expect(slots).not.toContain(slotId(SLOT));
    expect(await guard.lookup("tick", SLOT)).toMatchObject({ status: "unknown" });
    expect(await guard.run("tick", SLOT, () => "again")).toMatchObject({
      status: "skipped",
      reason: "unvouched",
    });
    expect(await guard.lookup("tick", SLOT + 39 * MINUTE)).toMatchObject({ status: "ran" });
  });

  it("remembers when the job first claimed, which a later backfill of an older slot does not move", async () => {
    let nowMs = SLOT + 5_000;
    const guard = instance({ clock: () => nowMs });
    await guard.run("since", SLOT, () => 1);
    nowMs += 10 * MINUTE;
    await guard.run("since", SLOT - 30 * MINUTE, () => "backfill");
    expect((await guard.status("since")).sinceMs).toBe(SLOT + 5_000);
  });

  it("costs less than 100 bytes of Redis memory per remembered slot", async () => {
    const guard = instance({ ledgerMaxSlots: 1_440 });
    const redis = await directRedis();
    const key = ledgerKey("memory");
    await guard.run("memory", SLOT, () => 0);
    // Fill the ledger as 1,440 every-minute runs would, without 1,440 round trips.
    const record = (await redis.hGet(key, slotId(SLOT))) as string;
    const entries: Record<string, string> = {};
    for (let i = 1; i < 1_440; i += 1) {
      const at = SLOT - i * MINUTE;
      entries[slotId(at)] = record.replace(/^[^;]*/, String(at));
    }
    await redis.hSet(key, entries);
    const bytes = Number(await redis.sendCommand(["MEMORY", "USAGE", key, "SAMPLES", "0"]));
    const perSlot = bytes / 1_440;
    console.log(`ledger: ${bytes} bytes for 1,440 slots, ${perSlot.toFixed(1)} bytes per slot`);
    expect(perSlot).toBeLessThan(100);
  });
});
