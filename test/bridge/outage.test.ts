import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBridge, startBridge } from "../../src/bridge/index.js";
import { type RedisServerHandle, spawnRedisServer } from "../../src/bridge/redis-server.js";
import { postTimed } from "../support/bridge-request.js";

const COMMAND_TIMEOUT_MS = 800;
const MARGIN_MS = 700;

const timed = postTimed;

async function pollUntilOk(bridge: RunningBridge, path: string, body: unknown, withinMs: number) {
  const deadline = Date.now() + withinMs;
  let last = await timed(bridge, path, body);
  while (last.status !== 200 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    last = await timed(bridge, path, body);
  }
  return last;
}

const REQUESTS: Array<[string, unknown]> = [
  ["/", ["INCR", "outage:n"]],
  [
    "/pipeline",
    [
      ["INCR", "outage:n"],
      ["GET", "outage:n"],
    ],
  ],
  [
    "/multi-exec",
    [
      ["INCR", "outage:n"],
      ["GET", "outage:n"],
    ],
  ],
];

describe("Redis outages", () => {
  let redis: RedisServerHandle | undefined;
  let bridge: RunningBridge | undefined;

  beforeAll(async () => {
    redis = await spawnRedisServer();
    bridge = await startBridge({ redisUrl: redis.url, commandTimeoutMs: COMMAND_TIMEOUT_MS });
  });

  afterAll(async () => {
    await bridge?.close();
    await redis?.stop();
  });

  it("answers 503 fast while redis-server is down and recovers by itself when it returns", async () => {
    if (!redis || !bridge) throw new Error("beforeAll did not start Redis and the bridge");
    const port = redis.port;
    for (const [path, body] of REQUESTS) expect((await timed(bridge, path, body)).status).toBe(200);

    await redis.stop();
    for (const [path, body] of REQUESTS) {
      const sent = await timed(bridge, path, body);
      expect(sent.body).toEqual({ error: expect.stringMatching(/^Redis unavailable: /) });
      expect(sent.status).toBe(503);
      expect(sent.elapsedMs).toBeLessThan(COMMAND_TIMEOUT_MS + MARGIN_MS);
    }

    redis = await spawnRedisServer({ port });
    for (const [path, body] of REQUESTS) {
      const sent = await pollUntilOk(bridge, path, body, 5_000);
      expect(sent.status).toBe(200);
    }
  });

  it("answers 503 within the command timeout while redis-server hangs, then recovers", async () => {
    const running = bridge;
    if (!redis || !running) throw new Error("beforeAll did not start Redis and the bridge");
    process.kill(redis.pid, "SIGSTOP");
    try {
      const sent = await Promise.all(REQUESTS.map(([path, body]) => timed(running, path, body)));
      for (const { status, body, elapsedMs } of sent) {
        expect(status).toBe(503);
        expect(body).toEqual({ error: expect.stringMatching(/^Redis unavailable: .*timed out/) });
        expect(elapsedMs).toBeGreaterThanOrEqual(COMMAND_TIMEOUT_MS - 50);
        expect(elapsedMs).toBeLessThan(COMMAND_TIMEOUT_MS + MARGIN_MS);
      }
    } finally {
      process.kill(redis.pid, "SIGCONT");
    }
    for (const [path, body] of REQUESTS) {
      const sent = await pollUntilOk(running, path, body, 5_000);
      expect(sent.status).toBe(200);
    }
    const final = await timed(running, "/multi-exec", [
      ["SET", "outage:x", "1"],
      ["GET", "outage:x"],
    ]);
    expect(final.body).toEqual([{ result: "OK" }, { result: "1" }]);
  });
});
