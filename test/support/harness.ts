/**
 * Shared test helpers. The global setup starts one redis-server and one bridge; these helpers
 * hand out clients for them and keep every test's keys under its own prefix.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "@upstash/redis";
import { createClient } from "redis";
import { afterAll, afterEach, inject } from "vitest";
import { type BridgeRequestInfo, startBridge } from "../../src/bridge/index.js";

export interface BridgeEnv {
  redisUrl: string;
  bridgeUrl: string;
  bridgeToken: string;
}

export function bridgeEnv(): BridgeEnv {
  return {
    redisUrl: inject("redisUrl"),
    bridgeUrl: inject("bridgeUrl"),
    bridgeToken: inject("bridgeToken"),
  };
}

export interface UpstashOptions {
  /** Default true, as in @upstash/redis. */
  autoPipelining?: boolean;
  /** `Upstash-Encoding: base64` responses. Default true, as in @upstash/redis. */
  base64?: boolean;
  /** Default: the shared bridge. */
  url?: string;
  token?: string;
}

/** A real @upstash/redis client talking to the bridge; one retry, no backoff, so failures are fast. */
export function upstash(options: UpstashOptions = {}): Redis {
  const env = bridgeEnv();
  return new Redis({
    url: options.url ?? env.bridgeUrl,
    token: options.token ?? env.bridgeToken,
    enableAutoPipelining: options.autoPipelining ?? true,
    responseEncoding: options.base64 === false ? false : "base64",
    retry: false,
    enableTelemetry: false,
  });
}

function connectDirect(url: string) {
  const client = createClient({ url, RESP: 2 });
  client.on("error", () => {});
  return client;
}

export type DirectRedis = ReturnType<typeof connectDirect>;

let direct: Promise<DirectRedis> | undefined;

/**
 * A node-redis client (RESP2) straight to the redis-server behind the bridge, for assertions.
 * Shared within a test file and closed after it.
 */
export function directRedis(): Promise<DirectRedis> {
  direct ??= (async () => {
    const client = connectDirect(bridgeEnv().redisUrl);
    await client.connect();
    return client;
  })();
  return direct;
}

afterAll(async () => {
  const pending = direct;
  direct = undefined;
  const client = await pending?.catch(() => undefined);
  if (client?.isOpen) client.destroy();
});

/** `t:<label>:<random hex>`: safe in SCAN MATCH patterns (no glob or brace characters). */
export function uniquePrefix(label: string): string {
  const safeLabel = label.replace(/[^A-Za-z0-9_-]/g, "-");
  return `t:${safeLabel}:${randomBytes(6).toString("hex")}`;
}

/**
 * Registers clean-up that deletes every key under a fresh prefix after each test and after the
 * file. Returns a getter for that prefix (stable for the whole file).
 */
export function useKeyPrefix(label: string): () => string {
  const prefix = uniquePrefix(label);
  const clean = () => deleteKeys(`${prefix}*`);
  afterEach(clean);
  afterAll(clean);
  return () => prefix;
}

async function deleteKeys(pattern: string): Promise<void> {
  const redis = await directRedis();
  for await (const keys of redis.scanIterator({ MATCH: pattern, COUNT: 500 })) {
    if (keys.length > 0) await redis.del(keys);
  }
}

export interface CountingBridge {
  url: string;
  token: string;
  /** Every accepted request since start or the last `reset()`, in arrival order. */
  readonly requests: BridgeRequestInfo[];
  reset(): void;
  close(): Promise<void>;
}

/** A second bridge on the same redis-server that records each request (to count round trips). */
export async function startCountingBridge(): Promise<CountingBridge> {
  const requests: BridgeRequestInfo[] = [];
  const bridge = await startBridge({
    redisUrl: bridgeEnv().redisUrl,
    onRequest: (info) => requests.push(info),
  });
  return {
    url: bridge.url,
    token: bridge.token,
    requests,
    reset: () => {
      requests.length = 0;
    },
    close: bridge.close,
  };
}
