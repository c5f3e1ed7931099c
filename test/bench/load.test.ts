import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  commandExists,
  type LoadGenerator,
  measureHttpThroughput,
  parseWrk,
  runLoad,
} from "../../bench/load.js";
import { startBridge } from "../../src/bridge/index.js";
import { type RedisServerHandle, spawnRedisServer } from "../../src/bridge/redis-server.js";

const WRK_REPORT = `Running 4s test @ http://127.0.0.1:40123/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   731.12us  212.40us   9.84ms   93.10%
    Req/Sec    68.02k     2.11k   70.80k    80.00%
  Latency Distribution
     50%  692.00us
     75%  751.00us
     90%  838.00us
     99%    1.52ms
  270742 requests in 4.00s, 53.96MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:  67671.90
Transfer/sec:     13.49MB
`;

describe("reading wrk's report", () => {
  it("takes requests/s, p50 and p99 in ms, and counts non-2xx and socket errors", () => {
    expect(parseWrk(WRK_REPORT)).toEqual({
      requestsPerSecond: 67671.9,
      p50Ms: 0.692,
      p99Ms: 1.52,
      errors: 8,
      requests: 270742,
    });
  });

  it("refuses a report without results", () => {
    expect(() => parseWrk("unable to connect to 127.0.0.1:1 Connection refused")).toThrow(
      /wrk printed no result/,
    );
  });
});

// `npm run bench`'s throughput row at a small size, so it cannot rot unnoticed. CI installs wrk
// (scripts/ensure-wrk.sh); both load generators are exercised.
const GENERATORS: LoadGenerator[] = ["autocannon", "wrk"];

describe("bridge throughput measurement at a small size", () => {
  let redis: RedisServerHandle;
  beforeAll(async () => {
    redis = await spawnRedisServer();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it("has wrk installed (scripts/ensure-wrk.sh; npm test and CI run it)", () => {
    expect(commandExists("wrk")).toBe(true);
  });

  it.each(GENERATORS)(
    "measures the compiled bridge and passthrough in their own processes and node redis direct, with %s",
    async (generator) => {
      const rows = await measureHttpThroughput({
        redisUrl: redis.url,
        redisPid: redis.pid,
        connections: 4,
        durationSeconds: 1,
        pipelineSize: 3,
        rounds: 1,
        warmupSeconds: 0,
        generator,
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
        // autocannon reports whole milliseconds, so a fast p50 reads 0 there
        for (const result of generator === "wrk" ? [row.bridge, row.passthrough] : []) {
          expect(result.p50Ms).toBeGreaterThan(0);
        }
        expect(row.roundRatios).toHaveLength(1);
        expect(row.bridgeVsPassthrough).toBeGreaterThan(0);
      }
    },
    60_000,
  );

  it.each(GENERATORS)(
    "counts non-2xx answers as errors with %s (a wrong token)",
    async (generator) => {
      const bridge = await startBridge({ redisUrl: redis.url });
      try {
        const result = await runLoad(generator, {
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
    },
    30_000,
  );
});
