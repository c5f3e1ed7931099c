import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { measureHttpThroughput, runAutocannon } from "../../bench/load.js";
import { type RedisServerHandle, spawnRedisServer } from "../../src/bridge/index.js";

// `npm run bench`'s throughput row at a small size, so it cannot rot unnoticed.
describe("bridge throughput measurement at a small size", () => {
  let redis: RedisServerHandle;
  beforeAll(async () => {
    redis = await spawnRedisServer();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it("measures the bridge, the passthrough and node redis direct on / and /pipeline", async () => {
    const rows = await measureHttpThroughput({
      redisUrl: redis.url,
      connections: 4,
      durationSeconds: 1,
      pipelineSize: 3,
      warmupSeconds: 0,
    });
    expect(rows.map((row) => [row.route, row.commandsPerRequest])).toEqual([
      ["/", 1],
      ["/pipeline", 3],
    ]);
    for (const row of rows) {
      for (const result of [row.bridge, row.passthrough, row.direct]) {
        expect(result.errors).toBe(0);
        expect(result.requests).toBeGreaterThan(0);
        expect(result.requestsPerSecond).toBeGreaterThan(0);
      }
      expect(row.bridgeVsPassthrough).toBeGreaterThan(0);
    }
  }, 60_000);

  it("counts non-2xx answers as errors (a wrong token)", async () => {
    const { startBridge } = await import("../../src/bridge/index.js");
    const bridge = await startBridge({ redisUrl: redis.url });
    try {
      const result = await runAutocannon({
        url: `${bridge.url}/`,
        token: "wrong",
        body: JSON.stringify(["PING"]),
        connections: 2,
        durationSeconds: 1,
      });
      expect(result.requests).toBeGreaterThan(0);
      expect(result.errors).toBe(result.requests);
    } finally {
      await bridge.close();
    }
  }, 30_000);
});
