import type { TestProject } from "vitest/node";
import { startBridge } from "../../src/bridge/index.js";
import { spawnRedisServer } from "../../src/bridge/redis-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
    bridgeUrl: string;
    bridgeToken: string;
  }
}

/** One redis-server and one bridge for the whole run; test files reach them through harness.ts. */
export default async function setup({ provide }: TestProject): Promise<() => Promise<void>> {
  const redis = await spawnRedisServer();
  try {
    const bridge = await startBridge({ redisUrl: redis.url });
    provide("redisUrl", redis.url);
    provide("bridgeUrl", bridge.url);
    provide("bridgeToken", bridge.token);
    return async () => {
      await bridge.close();
      await redis.stop();
    };
  } catch (error) {
    await redis.stop();
    throw error;
  }
}
