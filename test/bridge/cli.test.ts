import { describe, expect, it } from "vitest";
import { RedisServerNotFoundError, spawnRedisServer, startBridge } from "../../src/bridge/index.js";
import { runCli } from "../../src/cli.js";
import { captureIo } from "../support/capture-io.js";
import { bridgeEnv } from "../support/harness.js";

describe("cron-guard CLI", () => {
  it("bridge prints exactly the two Upstash env lines, and they work", async () => {
    const io = captureIo();
    const result = await runCli(
      ["bridge", "--port", "0", "--redis-url", bridgeEnv().redisUrl, "--token", "cli-secret"],
      io,
    );
    if (!("running" in result)) throw new Error(`exited: ${io.errLines.join("\n")}`);
    try {
      expect(io.outLines).toHaveLength(2);
      const [urlLine, tokenLine] = io.outLines;
      expect(urlLine).toMatch(/^UPSTASH_REDIS_REST_URL=http:\/\/127\.0\.0\.1:\d+$/);
      expect(tokenLine).toBe("UPSTASH_REDIS_REST_TOKEN=cli-secret");
      const url = urlLine?.split("=")[1] ?? "";
      const response = await fetch(url, {
        method: "POST",
        headers: { authorization: "Bearer cli-secret", "content-type": "application/json" },
        body: JSON.stringify(["PING"]),
      });
      expect(await response.json()).toEqual({ result: "PONG" });
    } finally {
      await result.running.stop();
    }
  });

  it("bridge --readonly-token serves reads with that token and refuses its writes", async () => {
    const io = captureIo();
    const result = await runCli(
      ["bridge", "--port", "0", "--redis-url", bridgeEnv().redisUrl, "--readonly-token", "ro"],
      io,
    );
    if (!("running" in result)) throw new Error(`exited: ${io.errLines.join("\n")}`);
    try {
      const url = io.outLines[0]?.split("=")[1] ?? "";
      const get = await fetch(`${url}/get/cli-readonly?_token=ro`);
      expect(await get.json()).toEqual({ result: null });
      const set = await fetch(`${url}/set/cli-readonly/1?_token=ro`);
      expect(set.status).toBe(400);
      expect(await set.json()).toEqual({
        error: "NOPERM this user has no permissions to run the 'set' command or its subcommand",
      });
    } finally {
      await result.running.stop();
    }
  });

  it("bridge without --redis-url spawns redis-server and stops it again", async () => {
    const io = captureIo();
    const result = await runCli(["bridge", "--port", "0"], io);
    if (!("running" in result)) throw new Error(`exited: ${io.errLines.join("\n")}`);
    const token = io.outLines[1]?.split("=")[1] ?? "";
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect(io.errLines.join("\n")).toMatch(/spawned redis-server/);
    const url = io.outLines[0]?.split("=")[1] ?? "";
    const response = await fetch(`${url}/set/k/v`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(await response.json()).toEqual({ result: "OK" });
    await result.running.stop();
    await expect(fetch(url)).rejects.toThrow();
  });

  it.each([
    [["nope"], /unknown command "nope"/],
    [[], /Usage: cron-guard <command>/],
    [["bridge", "--port", "abc"], /--port must be a whole number/],
    [["bridge", "--bogus"], /Unknown option '--bogus'/],
    [["bridge", "--port", "70000"], /--port must be a whole number from 0 to 65535/],
  ])("%j fails with a message on stderr", async (argv, message) => {
    const io = captureIo();
    const result = await runCli(argv, io);
    expect(result).toEqual({ exitCode: 2 });
    expect(io.errLines.join("\n")).toMatch(message);
    expect(io.outLines).toEqual([]);
  });
});

describe("startBridge and spawnRedisServer", () => {
  it("names a missing redis-server and how to install it", async () => {
    const failure = spawnRedisServer({ binary: "/nonexistent/redis-server" });
    await expect(failure).rejects.toBeInstanceOf(RedisServerNotFoundError);
    await expect(failure).rejects.toThrow(
      /not installed.*apt-get install -y redis-server.*brew install redis/,
    );
  });

  it.each([
    [{ port: -1 }, /port must be an integer/],
    [{ port: 1.5 }, /port must be an integer/],
    [{ token: " " }, /token must not be empty/],
    [{ token: "pässwörd" }, /token must be printable ASCII/],
    [{ token: "tok\nen" }, /token must be printable ASCII/],
    [{ token: " token" }, /token must not start or end with whitespace/],
    [{ token: "t", readonlyToken: "lecture-Ω" }, /readonlyToken must be printable ASCII/],
    [{ token: "t", readonlyToken: "ro\t" }, /readonlyToken must not start or end with whitespace/],
    [{ maxBodyBytes: 0 }, /maxBodyBytes must be a positive integer/],
  ])("refuses options %j", async (options, message) => {
    await expect(startBridge({ redisUrl: bridgeEnv().redisUrl, ...options })).rejects.toThrow(
      message,
    );
  });

  it("fails to start with a clear error when Redis is unreachable", async () => {
    const redis = await spawnRedisServer();
    await redis.stop();
    const started = performance.now();
    await expect(startBridge({ redisUrl: redis.url, commandTimeoutMs: 500 })).rejects.toThrow(
      /could not connect to Redis at redis:\/\/127\.0\.0\.1:\d+ within 500 ms \(last error: .*ECONNREFUSED/,
    );
    expect(performance.now() - started).toBeLessThan(1_500);
  });

  it("restarts redis-server on the same port", async () => {
    const first = await spawnRedisServer();
    await first.stop();
    const second = await spawnRedisServer({ port: first.port });
    try {
      expect(second.url).toBe(first.url);
    } finally {
      await second.stop();
    }
  });
});
