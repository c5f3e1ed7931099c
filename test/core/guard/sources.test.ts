import { describe, expect, it } from "vitest";
import { slotId } from "../../../src/core/cron/index.js";
import {
  dispatchSourcesKey,
  readSourceRecord,
  readSources,
  recordSource,
  SOURCE_MAX_SLOTS,
} from "../../../src/core/guard/sources.js";
import { createGuard } from "../../../src/core/index.js";
import { useCountedDatabase } from "../../support/counted-database.js";
import { uniquePrefix } from "../../support/harness.js";

const MINUTE = 60_000;
/** A recent whole minute: the ledger vouches for it. */
const BASE = Math.floor(Date.now() / MINUTE) * MINUTE - 3_600_000;

describe("trigger sources: recorded inside the claim, reported per source", () => {
  const database = useCountedDatabase();

  async function commandsDuring<T>(
    work: () => Promise<T>,
  ): Promise<{ value: T; commands: number }> {
    const before = await database.scriptCalls();
    const value = await work();
    return { value, commands: (await database.scriptCalls()) - before };
  }

  it("two sources deliver the same slots with different lags: both recorded, duplicates and lag right", async () => {
    const prefix = uniquePrefix("sources");
    let nowMs = BASE;
    // Each delivery its own isolate (a new client), so nothing is shared before Redis.
    const isolate = () => createGuard({ redis: database.client(), prefix, clock: () => nowMs });
    let runs = 0;
    const job = () => {
      runs += 1;
    };
    const lags: Record<string, number[]> = {
      cloudflare: [1_000, 3_000, 2_000],
      qstash: [9_000, 500, 7_000],
    };
    const lagOf = (source: string, i: number) => lags[source]?.[i] ?? 0;
    for (let i = 0; i < 3; i += 1) {
      const slotMs = BASE + i * MINUTE;
      const order =
        lagOf("cloudflare", i) <= lagOf("qstash", i)
          ? ["cloudflare", "qstash"]
          : ["qstash", "cloudflare"];
      for (const source of order) {
        nowMs = slotMs + lagOf(source, i);
        await isolate().run("beat", slotMs, job, { source });
      }
    }
    // qstash again for the last slot: a same-source duplicate.
    nowMs = BASE + 2 * MINUTE + 8_000;
    await isolate().run("beat", BASE + 2 * MINUTE, job, { source: "qstash" });
    // cloudflare alone delivers a fourth slot: qstash is silent for one fire.
    nowMs = BASE + 3 * MINUTE + 1_500;
    await isolate().run("beat", BASE + 3 * MINUTE, job, { source: "cloudflare" });
    expect(runs).toBe(4);

    const report = await readSources({ redis: database.client(), prefix }, "beat");
    expect(report.slots).toBe(4);
    const cloudflare = report.sources.find((s) => s.source === "cloudflare");
    const qstash = report.sources.find((s) => s.source === "qstash");
    expect(cloudflare).toEqual({
      source: "cloudflare",
      deliveries: 4,
      slots: 4,
      first: 3, // slot 1 was qstash's first
      duplicates: 1, // its delivery of slot 1 came after qstash's
      lagMedianMs: 1_750,
      lagMaxMs: 3_000,
      lastSlot: slotId(BASE + 3 * MINUTE),
      lastSlotMs: BASE + 3 * MINUTE,
      silentFires: 0,
    });
    expect(qstash).toMatchObject({
      deliveries: 4,
      slots: 3,
      first: 1,
      duplicates: 3, // slots 0 and 2 after cloudflare, plus its own repeat of slot 2
      lagMedianMs: 7_000,
      lagMaxMs: 9_000,
      lastSlotMs: BASE + 2 * MINUTE,
      silentFires: 1,
    });
    expect(qstash?.silentSinceSlot).toBe(cloudflare?.lastSlot);
    // The latest slots only.
    const latest = await readSources({ redis: database.client(), prefix }, "beat", { slots: 1 });
    expect(latest.sources.map((s) => [s.source, s.slots])).toEqual([["cloudflare", 1]]);
  });

  it("a single-source storm costs one claim and one completion; a second source one more claim, recorded", async () => {
    const prefix = uniquePrefix("sources-storm");
    await createGuard({ redis: database.client(), prefix }).run("warm-up", BASE, () => undefined);
    const guard = createGuard({ redis: database.client(), prefix, clock: () => BASE + 2_000 });
    let runs = 0;
    const job = async () => {
      runs += 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
    };
    const storm = (source: string) =>
      Promise.all(Array.from({ length: 200 }, () => guard.run("storm", BASE, job, { source })));
    const first = await commandsDuring(async () => {
      await storm("vercel");
      return storm("vercel");
    });
    expect(runs).toBe(1);
    expect(first.commands).toBeLessThanOrEqual(2);
    const second = await commandsDuring(() => storm("qstash"));
    expect(second.commands).toBe(1);
    expect(second.value.every((r) => r.status === "skipped" && r.reason === "done")).toBe(true);
    const report = await readSources({ redis: database.client(), prefix }, "storm");
    expect(report.sources.map((s) => [s.source, s.deliveries, s.duplicates])).toEqual([
      ["qstash", 1, 1],
      ["vercel", 1, 0],
    ]);
  });

  it("no source, no record; an invalid source is refused before anything is written", async () => {
    const prefix = uniquePrefix("sources-none");
    const guard = createGuard({ redis: database.client(), prefix });
    await guard.run("plain", BASE, () => undefined);
    expect((await readSources({ redis: database.client(), prefix }, "plain")).sources).toEqual([]);
    await expect(
      guard.run("plain", BASE + MINUTE, () => undefined, { source: "Not OK" }),
    ).rejects.toThrow(/source/);
    const status = await guard.status("plain");
    expect(status.fence).toBe(1);
  });

  it("recordSource writes, in one command, exactly what a claim records; readSourceRecord reads any record", async () => {
    const prefix = uniquePrefix("sources-record");
    let nowMs = BASE;
    // Each delivery its own isolate, so every one reaches the claim.
    const isolate = () => createGuard({ redis: database.client(), prefix, clock: () => nowMs });
    const key = dispatchSourcesKey(prefix);
    expect(key).toBe(`${prefix}:dispatch:sources`);
    let loaded = false;
    const deliveries: [number, string, number][] = [
      [0, "cloudflare", 1_000],
      [0, "qstash", 5_000],
      [0, "qstash", 6_000],
      [1, "qstash", 400],
      [1, "cloudflare", 2_500],
      [2, "cloudflare", 900],
    ];
    for (const [index, source, lagMs] of deliveries) {
      const slotMs = BASE + index * MINUTE;
      nowMs = slotMs + lagMs;
      const guard = isolate();
      await guard.run("beat", slotMs, () => undefined, { source });
      const { commands } = await commandsDuring(() =>
        recordSource(database.client(), key, {
          slot: slotId(slotMs),
          scoreMs: slotMs,
          source,
          nowMs,
          maxAgeMs: guard.options.ledgerMaxAgeMs,
        }),
      );
      // One EVALSHA; the very first also loads the script (NOSCRIPT, then EVAL).
      expect(commands).toBe(loaded ? 1 : 2);
      loaded = true;
    }
    const redis = database.client();
    expect(await redis.hgetall(key)).toEqual(await redis.hgetall(`${prefix}:{beat}:sources`));
    const asJob = await readSources({ redis, prefix }, "beat");
    const asDispatch = await readSourceRecord(redis, key, "dispatch");
    expect(asDispatch).toEqual({ ...asJob, job: "dispatch" });
    expect(asDispatch.sources.find((s) => s.source === "qstash")).toMatchObject({
      deliveries: 3,
      slots: 2,
      first: 1,
      silentFires: 1,
      silentSinceSlot: slotId(BASE + 2 * MINUTE),
    });

    // A bad name (or time) is refused before anything is sent.
    const other = `${prefix}:other:sources`;
    const delivery = { slot: slotId(BASE), scoreMs: BASE, nowMs: BASE, maxAgeMs: 60_000 };
    const { commands } = await commandsDuring(async () => {
      await expect(
        recordSource(redis, other, { ...delivery, source: "Not OK" }),
      ).rejects.toMatchObject({ name: "ConfigError", option: "source" });
      await expect(
        recordSource(redis, other, { ...delivery, source: "http", nowMs: Number.NaN }),
      ).rejects.toMatchObject({ name: "ConfigError", option: "nowMs" });
    });
    expect(commands).toBe(0);
    expect(await redis.exists(other)).toBe(0);
  });

  it("keeps the latest SOURCE_MAX_SLOTS slots by fire time", async () => {
    const prefix = uniquePrefix("sources-bound");
    const guard = createGuard({ redis: database.client(), prefix, ledgerMaxSlots: 2_000 });
    const total = SOURCE_MAX_SLOTS + 120;
    for (let i = 0; i < total; i += 1) {
      await guard.run("many", `s${String(i).padStart(5, "0")}`, () => undefined, {
        source: "http",
      });
    }
    const report = await readSources({ redis: database.client(), prefix }, "many");
    expect(report.slots).toBeLessThanOrEqual(SOURCE_MAX_SLOTS + 100);
    expect(report.slots).toBeGreaterThanOrEqual(SOURCE_MAX_SLOTS);
  }, 60_000);
});
