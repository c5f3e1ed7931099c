import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisUnavailableError } from "../../src/bridge/errors.js";
import { type RedisServerHandle, spawnRedisServer } from "../../src/bridge/redis-server.js";
import { parseRedisUrl } from "../../src/bridge/redis-url.js";
import { ReplyError } from "../../src/bridge/resp.js";
import { RespConnection } from "../../src/bridge/resp-connection.js";

const TIMEOUT_MS = 2_000;

describe("RespConnection against a real redis-server", () => {
  let redis: RedisServerHandle;
  beforeAll(async () => {
    redis = await spawnRedisServer();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it("answers 2,000 concurrent commands each with its own reply, in one write per turn", async () => {
    const connection = await RespConnection.open(redis.url, TIMEOUT_MS);
    const replies = await Promise.all(
      Array.from({ length: 2_000 }, (_, i) => connection.send(["ECHO", `m${i}`])),
    );
    expect(replies.map(String)).toEqual(Array.from({ length: 2_000 }, (_, i) => `m${i}`));
    connection.destroy(new Error("done"));
  });

  it("rejects an error reply with ReplyError and keeps serving", async () => {
    const connection = await RespConnection.open(redis.url, TIMEOUT_MS);
    await connection.send(["SET", "resp:str", "v"]);
    await expect(connection.send(["LPUSH", "resp:str", "x"])).rejects.toThrow(ReplyError);
    expect(String(await connection.send(["GET", "resp:str"]))).toBe("v");
    connection.destroy(new Error("done"));
  });

  it("answers a batch behind one promise, error replies as elements, order kept", async () => {
    const connection = await RespConnection.open(redis.url, TIMEOUT_MS);
    const [first, second, third] = await Promise.all([
      connection.sendBatch([
        ["SET", "resp:n", "1"],
        ["INCR", "resp:n"],
        ["HGET", "resp:n", "f"],
      ]),
      connection.send(["INCR", "resp:n"]),
      connection.sendBatch([["GET", "resp:n"]]),
    ]);
    expect(first?.slice(0, 2)).toEqual(["OK", 2]);
    expect(first?.[2]).toBeInstanceOf(ReplyError);
    expect(second).toBe(3);
    expect(third?.map(String)).toEqual(["3"]);
    expect(await connection.sendBatch([])).toEqual([]);
    connection.destroy(new Error("done"));
  });

  it("streams a batch's replies to a receiver in order, keeping none, and survives a receiver that throws", async () => {
    const connection = await RespConnection.open(redis.url, TIMEOUT_MS);
    const seen: Array<[number, string]> = [];
    const done = await connection.streamBatch(
      [["ECHO", "a"], ["ECHO", "b"], ["LPUSH"], ["ECHO", "c"]],
      (reply, index) => seen.push([index, reply instanceof ReplyError ? "error" : String(reply)]),
    );
    expect(done).toBeUndefined();
    expect(seen).toEqual([
      [0, "a"],
      [1, "b"],
      [2, "error"],
      [3, "c"],
    ]);
    const failing = connection.streamBatch(
      [
        ["ECHO", "x"],
        ["ECHO", "y"],
      ],
      () => {
        throw new Error("receiver gave up");
      },
    );
    await expect(failing).rejects.toThrow("receiver gave up");
    // the second reply of the failed batch was still read: the next command gets its own
    expect(String(await connection.send(["ECHO", "after"]))).toBe("after");
    connection.destroy(new Error("done"));
  });

  it("fails everything waiting when Redis closes the connection, and sends nothing after", async () => {
    const connection = await RespConnection.open(redis.url, TIMEOUT_MS);
    const id = await connection.send(["CLIENT", "ID"]);
    const killer = await RespConnection.open(redis.url, TIMEOUT_MS);
    let closedWith: Error | undefined;
    connection.onClose((error) => {
      closedWith = error;
    });
    const waiting = connection.send(["BLPOP", "resp:never", "5"]);
    const settled = waiting.catch((error: unknown) => error);
    await killer.send(["CLIENT", "KILL", "ID", String(id)]);
    expect(await settled).toBeInstanceOf(RedisUnavailableError);
    expect(closedWith).toBeInstanceOf(RedisUnavailableError);
    expect(connection.closed).toBe(true);
    await expect(connection.send(["PING"])).rejects.toThrow(RedisUnavailableError);
    killer.destroy(new Error("done"));
  });

  it("reports how long its oldest command has waited while redis-server is stopped", async () => {
    const connection = await RespConnection.open(redis.url, TIMEOUT_MS);
    expect(connection.oldestWaitingSince()).toBeUndefined();
    process.kill(redis.pid, "SIGSTOP");
    try {
      const waiting = connection.send(["PING"]);
      const settled = waiting.catch((error: unknown) => error);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const since = connection.oldestWaitingSince();
      expect(since).toBeDefined();
      expect(performance.now() - (since as number)).toBeGreaterThanOrEqual(290);
      expect(connection.waiting).toBe(1);
      const stalled = new RedisUnavailableError("stalled");
      connection.destroy(stalled);
      expect(await settled).toBe(stalled);
    } finally {
      process.kill(redis.pid, "SIGCONT");
    }
  });

  it("authenticates and selects the database the URL names, and says so when AUTH is refused", async () => {
    const admin = await RespConnection.open(redis.url, TIMEOUT_MS);
    await admin.send(["CONFIG", "SET", "requirepass", "s3cret/pass"]);
    try {
      const url = `redis://:${encodeURIComponent("s3cret/pass")}@127.0.0.1:${redis.port}/3`;
      const connection = await RespConnection.open(url, TIMEOUT_MS);
      await connection.send(["SET", "resp:db3", "here"]);
      const checker = await RespConnection.open(url.replace(/\/3$/, "/0"), TIMEOUT_MS);
      expect(await checker.send(["GET", "resp:db3"])).toBeNull();
      await checker.send(["SELECT", "3"]);
      expect(String(await checker.send(["GET", "resp:db3"]))).toBe("here");
      await expect(
        RespConnection.open(`redis://:wrong@127.0.0.1:${redis.port}`, TIMEOUT_MS),
      ).rejects.toThrow(/WRONGPASS|invalid password/);
      await expect(
        RespConnection.open(`redis://127.0.0.1:${redis.port}`, TIMEOUT_MS).then((c) =>
          c.send(["GET", "x"]),
        ),
      ).rejects.toThrow(/NOAUTH/);
      connection.destroy(new Error("done"));
      checker.destroy(new Error("done"));
    } finally {
      await admin.send(["CONFIG", "SET", "requirepass", ""]);
      admin.destroy(new Error("done"));
    }
  });

  it("opens only once Redis answers: not on a stopped redis-server that merely accepts TCP", async () => {
    process.kill(redis.pid, "SIGSTOP");
    try {
      const started = performance.now();
      await expect(RespConnection.open(redis.url, 300)).rejects.toThrow(/timed out after 300 ms/);
      expect(performance.now() - started).toBeLessThan(1_000);
    } finally {
      process.kill(redis.pid, "SIGCONT");
    }
  });

  it("refuses a server that does not speak RESP, saying what it sent", async () => {
    const http = createServer((_req, res) => res.end("hello"));
    await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
    const { port } = http.address() as AddressInfo;
    try {
      await expect(RespConnection.open(`redis://127.0.0.1:${port}`, TIMEOUT_MS)).rejects.toThrow(
        /Redis sent an unreadable reply: unexpected byte .*HTTP\/1\.1 400/,
      );
    } finally {
      http.closeAllConnections();
      http.close();
    }
  });

  it("fails to open within its timeout when nothing listens", async () => {
    const stopped = await spawnRedisServer();
    await stopped.stop();
    await expect(RespConnection.open(stopped.url, TIMEOUT_MS)).rejects.toThrow(
      /connection to Redis failed: .*ECONNREFUSED/,
    );
  });
});

describe("parseRedisUrl", () => {
  it("reads host, port, TLS, credentials and database", () => {
    expect(parseRedisUrl("redis://127.0.0.1:6390")).toEqual({
      host: "127.0.0.1",
      port: 6390,
      tls: false,
      handshake: [],
    });
    expect(parseRedisUrl("rediss://user:p%40ss@cache.example:6380/2")).toEqual({
      host: "cache.example",
      port: 6380,
      tls: true,
      handshake: [
        ["AUTH", "user", "p@ss"],
        ["SELECT", "2"],
      ],
    });
    expect(parseRedisUrl("redis://[::1]").port).toBe(6379);
    expect(parseRedisUrl("redis://[::1]").host).toBe("::1");
  });

  it("refuses what is not a Redis URL", () => {
    expect(() => parseRedisUrl("http://localhost:6379")).toThrow(/redis:\/\/ or rediss:\/\//);
    expect(() => parseRedisUrl("localhost:6379")).toThrow(TypeError);
    expect(() => parseRedisUrl("redis://localhost/abc")).toThrow(/database .* number/);
  });
});
