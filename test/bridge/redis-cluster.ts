/**
 * A throw-away 3-master Redis Cluster on 127.0.0.1 for tests: three redis-servers with
 * `--cluster-enabled yes`, joined by `redis-cli --cluster create ... --cluster-replicas 0`.
 */
import { execFile } from "node:child_process";
import { createServer } from "node:net";
import { promisify } from "node:util";
import { createClient } from "redis";
import { type RedisServerHandle, spawnRedisServer } from "../../src/bridge/redis-server.js";

const run = promisify(execFile);

export interface RedisClusterHandle {
  urls: string[];
  nodes: RedisServerHandle[];
  stop(): Promise<void>;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A port whose cluster bus port (port + 10000) is free too. */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if ((await isFree(port)) && (await isFree(port + 10_000))) {
      taken.add(port);
      taken.add(port + 10_000);
      return port;
    }
  }
  throw new Error("no free port pair for a cluster node");
}

export async function startRedisCluster(masters = 3): Promise<RedisClusterHandle> {
  const taken = new Set<number>();
  const nodes: RedisServerHandle[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
  };
  try {
    for (let i = 0; i < masters; i += 1) {
      const port = await clusterPort(taken);
      nodes.push(
        await spawnRedisServer({
          port,
          extraArgs: [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            `nodes-${port}.conf`,
            "--cluster-node-timeout",
            "5000",
          ],
        }),
      );
    }
    await run(
      "redis-cli",
      [
        "--cluster",
        "create",
        ...nodes.map((node) => `127.0.0.1:${node.port}`),
        "--cluster-replicas",
        "0",
        "--cluster-yes",
      ],
      { timeout: 30_000 },
    );
    await waitUntilOk(nodes.map((node) => node.url));
  } catch (error) {
    await stop();
    throw error;
  }
  return { urls: nodes.map((node) => node.url), nodes, stop };
}

/** Waits until every node reports cluster_state:ok and knows all slots. */
async function waitUntilOk(urls: string[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (const url of urls) {
    const client = createClient({ url, RESP: 2 });
    client.on("error", () => {});
    await client.connect();
    try {
      for (;;) {
        const info = String(await client.sendCommand(["CLUSTER", "INFO"]));
        if (/cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info)) break;
        if (Date.now() > deadline) throw new Error(`cluster at ${url} not ok:\n${info}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      client.destroy();
    }
  }
}
