/**
 * What the benchmark and the fault harness share: a private redis-server + bridge, clients for it,
 * a seeded random source, percentiles and a plain table.
 */
import { Redis } from "@upstash/redis";
import { type BridgeRequestInfo, type RunningBridge, startBridge } from "../src/bridge/index.js";
import { type RedisServerHandle, spawnRedisServer } from "../src/bridge/redis-server.js";

export interface BenchStack {
  redis: RedisServerHandle;
  bridge: RunningBridge;
  /** Every request the bridge accepted since the last `resetRequests()`. */
  readonly requests: BridgeRequestInfo[];
  resetRequests(): void;
  close(): Promise<void>;
}

/** A redis-server of our own and a bridge in front of it that counts requests. */
export async function startBenchStack(
  options: { commandTimeoutMs?: number; redisUrl?: string } = {},
): Promise<BenchStack> {
  const redis = options.redisUrl ? undefined : await spawnRedisServer();
  const requests: BridgeRequestInfo[] = [];
  const bridge = await startBridge({
    redisUrl: options.redisUrl ?? redis?.url,
    commandTimeoutMs: options.commandTimeoutMs,
    onRequest: (info) => requests.push(info),
  });
  return {
    redis: redis ?? { url: options.redisUrl ?? "", port: 0, pid: 0, stop: async () => {} },
    bridge,
    requests,
    resetRequests: () => {
      requests.length = 0;
    },
    async close() {
      await bridge.close();
      await redis?.stop();
    },
  };
}

export interface ClientOptions {
  /** @upstash/redis retries thrown network errors; deployments keep its default (5). */
  retries?: number;
  autoPipelining?: boolean;
}

/** An @upstash/redis client as a deployment configures it (base64 responses, auto-pipelining). */
export function upstashClient(url: string, token: string, options: ClientOptions = {}): Redis {
  return new Redis({
    url,
    token,
    enableTelemetry: false,
    enableAutoPipelining: options.autoPipelining ?? true,
    retry: options.retries === 0 ? false : { retries: options.retries ?? 5, backoff: () => 20 },
  });
}

/** mulberry32: a small seeded PRNG, so every run draws the same numbers. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The p-th percentile (0-100) of `values`, nearest rank; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await fn(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export { sleep } from "../src/core/sleep.js";

/** A plain left-aligned table; numbers are printed as they are given. */
export function formatTable(header: readonly string[], rows: readonly (readonly unknown[])[]) {
  const cells = [header, ...rows].map((row) => row.map((cell) => String(cell)));
  const widths = header.map((_, column) =>
    Math.max(...cells.map((row) => (row[column] ?? "").length)),
  );
  const line = (row: string[]) =>
    row
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join("  ")
      .trimEnd();
  return [
    line(cells[0] as string[]),
    line(widths.map((w) => "-".repeat(w))),
    ...cells.slice(1).map(line),
  ].join("\n");
}

/** Rounds to `digits` decimals for printing. */
export function round(value: number, digits = 1): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
