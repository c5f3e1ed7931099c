/**
 * A redis-server and bridge of the test file's own, to count the commands that reach Redis
 * (INFO commandstats): the shared server also serves the other test files running meanwhile, so
 * its counters would not be ours alone. Started before the file's tests, stopped after them.
 */
import type { Redis } from "@upstash/redis";
import { createClient } from "redis";
import { afterAll, beforeAll } from "vitest";
import { type RunningBridge, startBridge } from "../../src/bridge/index.js";
import { type RedisServerHandle, spawnRedisServer } from "../../src/bridge/redis-server.js";
import { upstash } from "./harness.js";

export interface CountedDatabase {
  /** A new real @upstash/redis client (auto-pipelining, as deployed) on this database's bridge. */
  client(): Redis;
  /** EVALSHA + EVAL calls Redis has counted so far, failed and rejected ones included. */
  scriptCalls(): Promise<number>;
}

export function useCountedDatabase(): CountedDatabase {
  let server: RedisServerHandle | undefined;
  let bridge: RunningBridge | undefined;
  let direct: ReturnType<typeof createClient> | undefined;
  beforeAll(async () => {
    server = await spawnRedisServer();
    bridge = await startBridge({ redisUrl: server.url });
    direct = createClient({ url: server.url, RESP: 2 });
    direct.on("error", () => {});
    await direct.connect();
  }, 60_000);
  afterAll(async () => {
    direct?.destroy();
    await bridge?.close();
    await server?.stop();
  });
  return {
    client() {
      if (!bridge) throw new Error("the counted database starts in beforeAll");
      return upstash({ url: bridge.url, token: bridge.token });
    },
    async scriptCalls() {
      if (!direct) throw new Error("the counted database starts in beforeAll");
      const info = await direct.info("commandstats");
      let total = 0;
      for (const line of info.split("\n")) {
        const stats = /^cmdstat_(?:evalsha|eval):(.*)$/.exec(line.trim())?.[1];
        if (!stats) continue;
        for (const field of ["calls", "rejected_calls"]) {
          const value = new RegExp(`(?:^|,)${field}=(\\d+)`).exec(stats)?.[1];
          total += value ? Number(value) : 0;
        }
      }
      return total;
    },
  };
}
