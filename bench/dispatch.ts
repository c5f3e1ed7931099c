/**
 * Dispatch scale: one tick's time and requests with 100 due among few or many stored schedules
 * (the due list is a sorted set, so the tick should not care how many are stored), and many due
 * schedules drained by concurrent ticks.
 */
import { createClient } from "redis";
import { createDispatcher, createScheduleRegistry } from "../src/core/schedules/index.js";
import { registryKeys } from "../src/core/schedules/registry.js";
import { type BenchStack, median, upstashClient } from "./support.js";

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 10, 25, 12, 0, 30);
const WRITE_BATCH = 5_000;

export interface DispatchScaleRow {
  stored: number;
  due: number;
  tickMs: number;
  requests: number;
  ran: number;
}

export interface DispatchDefaultsRow {
  due: number;
  ran: number;
  /** HTTP requests the bridge received during the tick. */
  requests: number;
  runsPerRequest: number;
  /** This process's CPU time (user + system, process.cpuUsage) during the tick, per run. */
  cpuMsPerRun: number;
  tickMs: number;
}

export interface DispatchDrainRow {
  due: number;
  ticks: number;
  drainMs: number;
  ranPerTick: number[];
  duplicates: number;
}

/**
 * Stores `stored` schedules of which `due` are due at T0 + 1 minute. One is created through the
 * registry; the rest are copies of its stored form written straight into Redis, so that setting up
 * 100,000 takes seconds, not minutes. Returns the clock to dispatch with.
 */
async function seed(stack: BenchStack, prefix: string, stored: number, due: number) {
  const clock = { now: T0 };
  const registry = createScheduleRegistry({
    redis: upstashClient(stack.bridge.url, stack.bridge.token),
    prefix,
    handlers: ["count"],
    clock: () => clock.now,
  });
  await registry.upsert({ id: "template", cron: "* * * * *", handler: "count" });
  const keys = registryKeys(prefix);
  const direct = createClient({ url: stack.redis.url, RESP: 2 });
  await direct.connect();
  try {
    const template = (await direct.hGet(keys.definitions, "template")) as string;
    await direct.del([keys.definitions, keys.due, keys.fires]);
    const dueAt = T0 + 30_000; // the 12:01 fire
    const later = T0 + 7 * 24 * 60 * MINUTE; // not due within the benchmark
    for (let start = 0; start < stored; start += WRITE_BATCH) {
      const batch = direct.multi();
      for (let i = start; i < Math.min(stored, start + WRITE_BATCH); i += 1) {
        const id = `s${i}`;
        const fireMs = i < due ? dueAt : later;
        batch.hSet(keys.definitions, id, template.replace('"id":"template"', `"id":"${id}"`));
        batch.hSet(keys.fires, id, `${fireMs}:0`);
        batch.zAdd(keys.due, { score: fireMs, value: id });
      }
      await batch.execAsPipeline();
    }
  } finally {
    direct.destroy();
  }
  clock.now = T0 + MINUTE;
  return clock;
}

async function clear(stack: BenchStack, prefix: string) {
  const direct = createClient({ url: stack.redis.url, RESP: 2 });
  await direct.connect();
  try {
    for await (const keys of direct.scanIterator({ MATCH: `${prefix}*`, COUNT: 5_000 })) {
      if (keys.length > 0) await direct.unlink(keys);
    }
  } finally {
    direct.destroy();
  }
}

function dispatcher(stack: BenchStack, prefix: string, clock: { now: number }, ran: string[]) {
  return createDispatcher({
    redis: upstashClient(stack.bridge.url, stack.bridge.token),
    prefix,
    handlers: { count: ({ schedule, slot }) => ran.push(`${schedule.id}@${slot}`) },
    guardOptions: { clock: () => clock.now },
    maxCalls: 100_000,
    budgetMs: 120_000,
  });
}

/** One tick over `due` due schedules among `stored`; median of `repetitions` fresh seedings. */
export async function measureDispatchScale(
  stack: BenchStack,
  stored: number,
  due: number,
  repetitions = 3,
): Promise<DispatchScaleRow> {
  const times: number[] = [];
  const requests: number[] = [];
  let ran = 0;
  for (let r = 0; r < repetitions; r += 1) {
    const prefix = `bench:dispatch:${stored}:${r}`;
    const clock = await seed(stack, prefix, stored, due);
    const done: string[] = [];
    stack.resetRequests();
    const startedAt = performance.now();
    const tick = await dispatcher(stack, prefix, clock, done).tick();
    times.push(performance.now() - startedAt);
    requests.push(stack.requests.length);
    ran = tick.ran;
    await clear(stack, prefix);
  }
  return { stored, due, tickMs: median(times), requests: median(requests), ran };
}

/**
 * One tick with the dispatcher's default options (budgets included) over `due` due schedules whose
 * handler does no I/O: how many it runs, with how many HTTP requests, and the CPU it spends. The
 * CPU figure is this whole process's (bridge included, as it runs in-process), so it is an upper
 * bound of the dispatcher's own.
 */
export async function measureDispatchDefaults(
  stack: BenchStack,
  due: number,
): Promise<DispatchDefaultsRow> {
  const prefix = `bench:defaults:${due}`;
  const clock = await seed(stack, prefix, due, due);
  const ran: string[] = [];
  const dispatcher = createDispatcher({
    redis: upstashClient(stack.bridge.url, stack.bridge.token),
    prefix,
    handlers: { count: ({ schedule, slot }) => ran.push(`${schedule.id}@${slot}`) },
    guardOptions: { clock: () => clock.now },
  });
  stack.resetRequests();
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  const tick = await dispatcher.tick();
  const tickMs = performance.now() - startedAt;
  const cpu = process.cpuUsage(cpuBefore);
  const requests = stack.requests.length;
  await clear(stack, prefix);
  return {
    due,
    ran: tick.ran,
    requests,
    runsPerRequest: requests === 0 ? 0 : tick.ran / requests,
    cpuMsPerRun: tick.ran === 0 ? Number.NaN : (cpu.user + cpu.system) / 1_000 / tick.ran,
    tickMs,
  };
}

/** `due` due schedules drained by `ticks` concurrent ticks (each instance its own client). */
export async function measureDispatchDrain(
  stack: BenchStack,
  due: number,
  ticks: number,
): Promise<DispatchDrainRow> {
  const prefix = `bench:drain:${due}`;
  const clock = await seed(stack, prefix, due, due);
  const ran: string[] = [];
  const startedAt = performance.now();
  const results = await Promise.all(
    Array.from({ length: ticks }, () => dispatcher(stack, prefix, clock, ran).tick()),
  );
  const drainMs = performance.now() - startedAt;
  await clear(stack, prefix);
  return {
    due,
    ticks,
    drainMs,
    ranPerTick: results.map((result) => result.ran),
    duplicates: ran.length - new Set(ran).size,
  };
}
