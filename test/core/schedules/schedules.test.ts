/**
 * Dynamic schedules: the registry (schedules as data in Redis) and the dispatcher (one platform
 * tick runs every due fire once, spread over the instances that receive it), against a real
 * redis-server through the bridge. Time is an injected clock; leases are real Redis expiries.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, createGuard } from "../../../src/core/index.js";
import {
  createDispatcher,
  createScheduleRegistry,
  type DispatcherOptions,
  type ScheduleHandler,
  type ScheduleInput,
} from "../../../src/core/schedules/index.js";
import { directRedis, upstash, useKeyPrefix } from "../../support/harness.js";

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 10, 25, 12, 0, 30); // 30 s past a minute

function world(prefix: string, handlerOverrides: Record<string, ScheduleHandler> = {}) {
  let nowMs = T0;
  const clock = () => nowMs;
  const redis = upstash();
  /** Side effects per (schedule, slot), like the example app's `record` handler. */
  const record: ScheduleHandler = async ({ schedule, slot }) =>
    redis.incr(`${prefix}:effects:${schedule.id}:${slot}`);
  const handlers = { record, ...handlerOverrides };
  const registry = createScheduleRegistry({
    redis: upstash(),
    prefix,
    handlers: Object.keys(handlers),
    clock,
  });
  const dispatcher = (options: Partial<DispatcherOptions> = {}) =>
    createDispatcher({
      redis: upstash(),
      prefix,
      handlers,
      guardOptions: { clock, leaseMs: 2_000 },
      maxRequests: 100_000,
      budgetMs: 60_000,
      retryBackoffMs: 0,
      ...options,
    });
  return {
    registry,
    dispatcher,
    clock,
    setNow(ms: number) {
      nowMs = ms;
    },
    async effects(): Promise<Map<string, number>> {
      const direct = await directRedis();
      const counts = new Map<string, number>();
      for await (const keys of direct.scanIterator({ MATCH: `${prefix}:effects:*`, COUNT: 1000 })) {
        for (const key of keys) {
          counts.set(key.slice(`${prefix}:effects:`.length), Number(await direct.get(key)));
        }
      }
      return counts;
    },
  };
}

const every = (id: string, extra: Partial<ScheduleInput> = {}): ScheduleInput => ({
  id,
  cron: "* * * * *",
  handler: "record",
  ...extra,
});

describe("schedule registry", () => {
  const prefix = useKeyPrefix("registry");

  it("creates, updates and leaves unchanged, answering the next fire", async () => {
    const { registry } = world(prefix());
    const created = await registry.upsert(every("a", { payload: { to: "ops@x" } }));
    expect(created.outcome).toBe("created");
    expect(created.schedule).toMatchObject({
      id: "a",
      timezone: "UTC",
      enabled: true,
      payload: { to: "ops@x" },
      next: "2026-11-25T12:01:00Z",
      version: 1,
    });
    expect((await registry.upsert(every("a", { payload: { to: "ops@x" } }))).outcome).toBe(
      "unchanged",
    );
    const updated = await registry.upsert(every("a", { cron: "0 * * * *", payload: [] }));
    expect(updated.outcome).toBe("updated");
    expect(updated.schedule).toMatchObject({
      next: "2026-11-25T13:00:00Z",
      payload: [],
      version: 2,
    });
  });

  it("keeps the pause state across a redeploy that upserts the same or a changed definition", async () => {
    const { registry } = world(prefix());
    await registry.upsert(every("kept"));
    expect(await registry.pause("kept")).toMatchObject({ enabled: false, next: null });
    expect((await registry.upsert(every("kept"))).outcome).toBe("unchanged");
    const changed = await registry.upsert(every("kept", { payload: 1 }));
    expect(changed.schedule).toMatchObject({ enabled: false, payload: 1 });
    expect(await registry.resume("kept")).toMatchObject({
      enabled: true,
      next: "2026-11-25T12:01:00Z",
    });
  });

  it("lists every schedule through its cursor and deletes", async () => {
    const { registry } = world(prefix());
    for (let i = 0; i < 25; i += 1) await registry.upsert(every(`s${i}`));
    const seen = new Set<string>();
    let cursor: string | undefined;
    do {
      const page = await registry.list({ cursor, limit: 7 });
      for (const schedule of page.schedules) seen.add(schedule.id);
      cursor = page.cursor ?? undefined;
    } while (cursor);
    expect(seen.size).toBe(25);
    expect(await registry.remove("s3")).toBe(true);
    expect(await registry.remove("s3")).toBe(false);
    expect(await registry.get("s3")).toBeNull();
  });

  it("pages through the overdue schedules only, skipping none while some move on", async () => {
    const w = world(prefix());
    for (let i = 0; i < 40; i += 1) await w.registry.upsert(every(`o${i}`)); // next fire 12:01
    for (let i = 0; i < 5; i += 1) await w.registry.pause(`o${i}`);
    await w.registry.upsert(every("hourly", { cron: "0 * * * *" })); // next fire 13:00
    w.setNow(T0 + 4 * MINUTE); // 12:04:30
    const beforeMs = T0 + 2 * MINUTE; // overdue: due by 12:02:30
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await w.registry.overdue({ beforeMs, cursor, limit: 7 });
      seen.push(...page.schedules.map((schedule) => schedule.id));
      if (pages === 1) {
        // schedules already listed move later in the due set (as when a tick settles them), the
        // cursor's own member among them: the next page must still start where this one ended
        for (const id of [seen[0], seen[seen.length - 1]] as string[]) {
          await w.registry.pause(id);
          await w.registry.resume(id);
        }
      }
      cursor = page.cursor ?? undefined;
      pages += 1;
    } while (cursor);
    const expected = Array.from({ length: 35 }, (_, i) => `o${i + 5}`);
    expect(new Set(seen)).toEqual(new Set(expected));
    await expect(w.registry.overdue({ beforeMs, cursor: "x" })).rejects.toBeInstanceOf(RangeError);
  });

  it("refuses bad schedules naming the field, writing nothing", async () => {
    const { registry } = world(prefix());
    const bad: [unknown, string][] = [
      [{ ...every("x"), cron: "61 * * * *" }, "cron"],
      [{ ...every("x"), cron: "* * * * * *" }, "cron"],
      [{ ...every("x"), handler: "nope" }, "handler"],
      [{ ...every("x"), id: "a b" }, "id"],
      [{ ...every("x"), id: "" }, "id"],
      [{ ...every("x"), timezone: "Mars/Base" }, "timezone"],
      [{ ...every("x"), payload: "x".repeat(17_000) }, "payload"],
      [{ ...every("x"), payload: Number.NaN }, "payload"],
      [{ ...every("x"), catchUp: "some" }, "catchUp"],
      [{ ...every("x"), maxAttempts: 0 }, "maxAttempts"],
      [{ ...every("x"), enabled: "yes" }, "enabled"],
      [{ ...every("x"), extra: 1 }, "extra"],
      [[], "schedule"],
    ];
    for (const [input, field] of bad) {
      await expect(registry.upsert(input as ScheduleInput)).rejects.toMatchObject({
        name: "ConfigError",
        option: field,
      });
    }
    await expect(registry.upsert(bad[0]?.[0] as ScheduleInput)).rejects.toBeInstanceOf(ConfigError);
    expect(await (await directRedis()).keys(`${prefix()}*`)).toEqual([]);
  });
});

describe("dispatch", () => {
  const prefix = useKeyPrefix("dispatch");

  it("10 concurrent ticks run each of 1,000 due schedules exactly once, spread over the ticks", async () => {
    const w = world(prefix());
    for (let i = 0; i < 1_000; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) => w.registry.upsert(every(`job-${i + j}`))),
      );
    }
    w.setNow(T0 + MINUTE); // 12:01:30: every schedule's 12:01 fire is due
    const ticks = await Promise.all(Array.from({ length: 10 }, () => w.dispatcher().tick()));
    const effects = await w.effects();
    expect(effects.size).toBe(1_000);
    expect([...effects.values()].every((count) => count === 1)).toBe(true);
    const ranPerTick = ticks.map((tick) => tick.ran);
    expect(ranPerTick.reduce((a, b) => a + b, 0)).toBe(1_000);
    expect(Math.max(...ranPerTick)).toBeLessThan(1_000);
    expect(ranPerTick.filter((ran) => ran > 0).length).toBeGreaterThan(1);
    // Nothing is due any more until 12:02.
    expect(await w.dispatcher().tick()).toMatchObject({ ran: 0, remaining: 0 });
  });

  it("follows registry changes made between ticks", async () => {
    const w = world(prefix());
    await w.registry.upsert(every("stays"));
    await w.registry.upsert(every("paused"));
    await w.registry.upsert(every("deleted"));
    await w.registry.upsert(every("hourly"));
    await w.registry.pause("paused");
    await w.registry.remove("deleted");
    await w.registry.upsert(every("hourly", { cron: "0 * * * *" }));
    w.setNow(T0 + 30_000); // 12:01:00
    await w.registry.upsert(every("added")); // next fire 12:02
    w.setNow(T0 + 2 * MINUTE); // 12:02:30
    await w.dispatcher().tick();
    expect([...(await w.effects()).keys()].sort()).toEqual([
      "added:2026-11-25T12:02:00Z",
      "stays:2026-11-25T12:02:00Z",
    ]);
    w.setNow(Date.UTC(2026, 10, 25, 13, 0, 10));
    await w.dispatcher().tick();
    const keys = [...(await w.effects()).keys()];
    expect(keys).toContain("hourly:2026-11-25T13:00:00Z");
    expect(keys.some((key) => key.startsWith("paused:") || key.startsWith("deleted:"))).toBe(false);
  });

  it("after a 5-minute gap, catchUp skip runs nothing missed, latest runs the newest, all runs each", async () => {
    const w = world(prefix());
    await w.registry.upsert(every("skip", { catchUp: "skip" }));
    await w.registry.upsert(every("latest", { catchUp: "latest" }));
    await w.registry.upsert(every("all", { catchUp: "all" }));
    await w.registry.upsert(every("capped", { catchUp: "all", catchUpLimit: 2 }));
    w.setNow(T0 + 5 * MINUTE + 20_000); // 12:05:50; fires 12:01..12:05 were never dispatched
    const tick = await w.dispatcher({ missedAfterMs: 30_000 }).tick();
    const effects = [...(await w.effects()).keys()].sort();
    const of = (id: string) => effects.filter((key) => key.startsWith(`${id}:`));
    expect(of("skip")).toEqual([]);
    expect(of("latest")).toEqual(["latest:2026-11-25T12:05:00Z"]);
    expect(of("all")).toHaveLength(5);
    expect(of("capped")).toEqual(["capped:2026-11-25T12:04:00Z", "capped:2026-11-25T12:05:00Z"]);
    expect(tick.missed).toBe(5 + 4 + 3);
    expect(await w.registry.get("skip")).toMatchObject({ next: "2026-11-25T12:06:00Z" });
    const events = await w.registry.events();
    expect(events.find((e) => e.schedule === "skip")?.event).toMatchObject({ kind: "missed" });
  });

  it("retries a failing fire up to maxAttempts, one attempt at a time, then records it dead", async () => {
    let running = 0;
    let overlapped = false;
    const attempts: number[] = [];
    const w = world(prefix(), {
      flaky: async ({ attempt }) => {
        running += 1;
        overlapped ||= running > 1;
        attempts.push(attempt);
        await new Promise((resolve) => setTimeout(resolve, 20));
        running -= 1;
        throw new Error(`attempt ${attempt} failed`);
      },
    });
    await w.registry.upsert({ id: "flaky", cron: "0 * * * *", handler: "flaky", maxAttempts: 3 });
    w.setNow(Date.UTC(2026, 10, 25, 13, 0, 5));
    for (let round = 0; round < 4; round += 1) {
      await Promise.all(Array.from({ length: 5 }, () => w.dispatcher().tick()));
    }
    expect(attempts).toEqual([0, 1, 2]);
    expect(overlapped).toBe(false);
    const events = await w.registry.events();
    expect(events[0]?.event).toMatchObject({
      kind: "dead",
      fire: "2026-11-25T13:00:00Z",
      attempts: 3,
      error: "attempt 2 failed",
    });
    expect(await w.registry.get("flaky")).toMatchObject({
      next: "2026-11-25T14:00:00Z",
      attempt: 0,
    });
  });

  it("survives a restart: new instances with the same code schedules lose nothing and run nothing twice", async () => {
    const first = world(prefix());
    await first.registry.upsert(every("r1"));
    await first.registry.upsert(every("r2"));
    await first.registry.pause("r2");
    first.setNow(T0 + MINUTE);
    await first.dispatcher().tick();
    const second = world(prefix()); // a redeploy: new registry and dispatcher objects
    second.setNow(T0 + MINUTE);
    expect((await second.registry.upsert(every("r1"))).outcome).toBe("unchanged");
    expect((await second.registry.upsert(every("r2"))).outcome).toBe("unchanged");
    expect(await second.dispatcher().tick()).toMatchObject({ ran: 0 });
    expect(await second.registry.get("r2")).toMatchObject({ enabled: false });
    second.setNow(T0 + 2 * MINUTE);
    await second.dispatcher().tick();
    expect([...(await second.effects()).entries()].sort()).toEqual([
      ["r1:2026-11-25T12:01:00Z", 1],
      ["r1:2026-11-25T12:02:00Z", 1],
    ]);
  });

  it("20 concurrent ticks over 8 dying fires count 8 dead, and each missed fire once", async () => {
    const w = world(prefix(), {
      dies: () => {
        throw new Error("dies");
      },
    });
    for (let i = 0; i < 8; i += 1) {
      await w.registry.upsert({
        id: `dies-${i}`,
        cron: "0 * * * *",
        handler: "dies",
        maxAttempts: 1,
      });
    }
    for (let i = 0; i < 4; i += 1)
      await w.registry.upsert(every(`late-${i}`, { catchUp: "latest" }));
    for (let i = 0; i < 4; i += 1) await w.registry.upsert(every(`skip-${i}`, { catchUp: "skip" }));
    // 13:00:05: each dying schedule's 13:00 fire is due; the per-minute ones missed 12:01..12:59
    w.setNow(Date.UTC(2026, 10, 25, 13, 0, 5));
    const ticks = await Promise.all(Array.from({ length: 20 }, () => w.dispatcher().tick()));
    const total = (key: "dead" | "missed" | "ran" | "failed") =>
      ticks.reduce((sum, tick) => sum + tick[key], 0);
    expect(total("failed")).toBe(8);
    expect(total("dead")).toBe(8);
    expect(total("ran")).toBe(8);
    expect(total("missed")).toBe(8 * 59);
    const events = await w.registry.events(100);
    expect(events.filter((e) => e.event.kind === "dead")).toHaveLength(8);
    const missedEvents = events.filter((e) => e.event.kind === "missed");
    expect(missedEvents.reduce((sum, e) => sum + (e.event.fires ?? 0), 0)).toBe(8 * 59);
    for (const tick of ticks) expect(tick.remaining).toBeLessThanOrEqual(16);
    expect(await w.dispatcher().tick()).toMatchObject({ ran: 0, remaining: 0, dead: 0, missed: 0 });
  });

  it("stops starting runs when its request budget is spent, leaving the rest due", async () => {
    const w = world(prefix());
    for (let i = 0; i < 30; i += 1) await w.registry.upsert(every(`b${i}`));
    w.setNow(T0 + MINUTE);
    // Waves of one fire: three requests a run, as every run had before batching.
    const tick = await w.dispatcher({ maxRequests: 45, concurrency: 1 }).tick();
    expect(tick.requests).toBeLessThanOrEqual(45);
    expect(tick.ran).toBeGreaterThan(5);
    expect(tick.ran + tick.remaining).toBe(30);
    const rest = await w.dispatcher().tick();
    expect(tick.ran + rest.ran).toBe(30);
  });
});

describe("guard.distribute", () => {
  const prefix = useKeyPrefix("distribute");

  it("8 concurrent callers share 1,000 tasks: all ran, none twice, spread over callers", async () => {
    const done = new Map<string, number>();
    const tasks = Array.from({ length: 1_000 }, (_, i) => `task-${i}`);
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        createGuard({ redis: upstash(), prefix: prefix() }).distribute(
          "2026-11-25",
          tasks,
          (task) => {
            done.set(task, (done.get(task) ?? 0) + 1);
          },
          { concurrency: 4 },
        ),
      ),
    );
    expect(done.size).toBe(1_000);
    expect([...done.values()].every((count) => count === 1)).toBe(true);
    expect(results.reduce((sum, r) => sum + r.ran, 0)).toBe(1_000);
    expect(results.filter((r) => r.ran > 0).length).toBeGreaterThan(1);
  });

  it("takes over the tasks of a caller that died mid-way once their lease ends", async () => {
    const finished = new Map<string, number>();
    const tasks = Array.from({ length: 40 }, (_, i) => `t${i}`);
    const dying = new AbortController();
    let started = 0;
    // The dying caller claims a few tasks, then hangs in them forever without heartbeats.
    void createGuard({
      redis: upstash(),
      prefix: prefix(),
      leaseMs: 600,
      heartbeatMs: 0,
    }).distribute(
      "s",
      tasks,
      () => {
        started += 1;
        if (started >= 3) dying.abort();
        return new Promise(() => {});
      },
      { concurrency: 3, signal: dying.signal },
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const survivors = await Promise.all(
      Array.from({ length: 3 }, () =>
        createGuard({ redis: upstash(), prefix: prefix(), leaseMs: 600 }).distribute(
          "s",
          tasks,
          (task) => {
            finished.set(task, (finished.get(task) ?? 0) + 1);
          },
        ),
      ),
    );
    expect(finished.size).toBe(40);
    expect([...finished.values()].every((count) => count === 1)).toBe(true);
    expect(survivors.every((r) => r.unfinished === 0)).toBe(true);
  });
});
