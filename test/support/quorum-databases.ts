/**
 * Three (or more) independent databases for quorum tests: each its own redis-server, its own bridge
 * and a direct node-redis client (RESP2) for assertions. Started before the file's tests, stopped
 * after them; the arrays are filled in place, so a file may keep them at module level.
 */
import { createClient } from "redis";
import { afterAll, beforeAll } from "vitest";
import { type RunningBridge, startBridge } from "../../src/bridge/index.js";
import { type RedisServerHandle, spawnRedisServer } from "../../src/bridge/redis-server.js";

export type DirectClient = ReturnType<typeof createClient>;

export interface QuorumDatabases {
  servers: RedisServerHandle[];
  bridges: RunningBridge[];
  direct: DirectClient[];
}

export function useQuorumDatabases(count = 3): QuorumDatabases {
  const databases: QuorumDatabases = { servers: [], bridges: [], direct: [] };
  beforeAll(async () => {
    for (let i = 0; i < count; i += 1) {
      const server = await spawnRedisServer();
      databases.servers.push(server);
      databases.bridges.push(await startBridge({ redisUrl: server.url }));
      const client = createClient({ url: server.url, RESP: 2 });
      client.on("error", () => {});
      await client.connect();
      databases.direct.push(client);
    }
  }, 60_000);
  afterAll(async () => {
    for (const client of databases.direct) client.destroy();
    await Promise.all(databases.bridges.map((bridge) => bridge.close()));
    await Promise.all(databases.servers.map((server) => server.stop()));
  });
  return databases;
}
