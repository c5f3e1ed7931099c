/**
 * What a token holder must not be able to do to the Redis behind the bridge: administer it,
 * reach other databases, keep it busy with a script, or make the bridge build huge responses.
 * Every test here runs on its own redis-server and bridge, so a regression cannot take down the
 * shared one the other test files use.
 */
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBridge, startBridge } from "../../src/bridge/index.js";
import { type RedisServerHandle, spawnRedisServer } from "../../src/bridge/redis-server.js";
import { postTimed } from "../support/bridge-request.js";

/** A node-redis client (RESP2) straight to `url`, on logical database `database`. */
async function directRedisAt(url: string, database = 0) {
  const client = createClient({ url, RESP: 2, database });
  client.on("error", () => {});
  await client.connect();
  return client;
}

type DirectRedis = Awaited<ReturnType<typeof directRedisAt>>;

const post = postTimed;

async function pollUntilOk(bridge: RunningBridge, body: unknown, withinMs: number) {
  const deadline = Date.now() + withinMs;
  let last = await post(bridge, "/", body);
  while (last.status !== 200 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    last = await post(bridge, "/", body);
  }
  return last;
}

const LIBRARY = [
  "#!lua name=ops",
  "redis.register_function('ops_echo', function(keys, args) return args[1] end)",
  "redis.register_function('ops_spin', function() while true do end end)",
].join("\n");

describe("refused server administration", () => {
  let redis: RedisServerHandle;
  let bridge: RunningBridge;
  let db0: DirectRedis;
  let db1: DirectRedis;

  beforeAll(async () => {
    redis = await spawnRedisServer();
    bridge = await startBridge({ redisUrl: redis.url });
    db0 = await directRedisAt(redis.url);
    db1 = await directRedisAt(redis.url, 1);
    await db0.set("keep", "zero");
    await db0.set("other", "0");
    await db1.set("keep", "one");
    await db0.sendCommand(["FUNCTION", "LOAD", LIBRARY]);
  });

  afterAll(async () => {
    db0?.destroy();
    db1?.destroy();
    await bridge?.close();
    await redis?.stop();
  });

  /** Everything a refused command could have changed, read with direct clients. */
  async function snapshot() {
    const config = await db0.configGet("*");
    const info = (section: string) => db0.sendCommand(["INFO", section]) as Promise<string>;
    const field = (text: string, name: string) => new RegExp(`^${name}:(.*)$`, "m").exec(text)?.[1];
    const persistence = await info("persistence");
    const replication = await info("replication");
    return {
      config,
      role: field(replication, "role"),
      replicas: field(replication, "connected_slaves"),
      forks: field(await info("stats"), "total_forks"),
      unsaved: field(persistence, "rdb_changes_since_last_save"),
      db0: { keys: (await db0.keys("*")).sort(), keep: await db0.get("keep") },
      db1: { keys: (await db1.keys("*")).sort(), keep: await db1.get("keep") },
      functions: await db0.sendCommand(["FUNCTION", "LIST"]),
      acl: await db0.sendCommand(["ACL", "LIST"]),
      modules: await db0.sendCommand(["MODULE", "LIST"]),
      slowlog: await db0.sendCommand(["SLOWLOG", "LEN"]),
    };
  }

  const cases: Array<[string[], string]> = [
    [["CONFIG", "SET", "maxmemory", "1"], "CONFIG"],
    [["CONFIG", "SET", "requirepass", "x"], "CONFIG"],
    [["config", "set", "dir", "/tmp"], "CONFIG"],
    [["CONFIG", "GET", "maxmemory"], "CONFIG"],
    [["CONFIG", "RESETSTAT"], "CONFIG"],
    [["DEBUG", "SLEEP", "2"], "DEBUG"],
    [["SHUTDOWN", "NOSAVE"], "SHUTDOWN"],
    [["SAVE"], "SAVE"],
    [["BGSAVE"], "BGSAVE"],
    [["BGREWRITEAOF"], "BGREWRITEAOF"],
    [["REPLICAOF", "127.0.0.1", "1"], "REPLICAOF"],
    [["SLAVEOF", "127.0.0.1", "1"], "SLAVEOF"],
    [["SYNC"], "SYNC"],
    [["PSYNC", "?", "-1"], "PSYNC"],
    [["FAILOVER"], "FAILOVER"],
    [["ACL", "SETUSER", "default", "off"], "ACL"],
    [["MODULE", "LOAD", "/nonexistent/module.so"], "MODULE"],
    [["CLUSTER", "RESET"], "CLUSTER"],
    [["LATENCY", "RESET"], "LATENCY"],
    [["SLOWLOG", "RESET"], "SLOWLOG"],
    [["PFSELFTEST"], "PFSELFTEST"],
    [["MIGRATE", "10.255.255.1", "6379", "keep", "0", "5000"], "MIGRATE"],
    [["MOVE", "keep", "1"], "MOVE"],
    [["SWAPDB", "0", "1"], "SWAPDB"],
    [["COPY", "keep", "copied", "DB", "1"], "COPY ... DB"],
    [["SCRIPT", "KILL"], "SCRIPT KILL"],
    [["SCRIPT", "DEBUG", "YES"], "SCRIPT DEBUG"],
    [["FUNCTION", "KILL"], "FUNCTION KILL"],
    [["CLIENT", "KILL", "TYPE", "normal"], "CLIENT"],
    [["MONITOR"], "MONITOR"],
    [["WAIT", "1", "1000"], "WAIT"],
  ];

  it.each(cases)(
    "%j -> 400 %s, alone, in a pipeline and in a transaction; Redis unchanged",
    async (command, what) => {
      const before = await snapshot();
      const error = `ERR command not supported by this bridge: ${what} (`;
      const alone = await post(bridge, "/", command);
      expect(alone.status).toBe(400);
      expect((alone.body as { error: string }).error.startsWith(error)).toBe(true);
      expect(alone.elapsedMs).toBeLessThan(1_000);
      for (const path of ["/pipeline", "/multi-exec"]) {
        const sent = await post(bridge, path, [["SET", "other", "changed"], command]);
        expect(sent.status).toBe(400);
        expect((sent.body as { error: string }).error.startsWith(error)).toBe(true);
      }
      expect(await snapshot()).toEqual(before);
      expect(await db0.get("other")).toBe("0");
    },
  );

  it("still serves FLUSHDB, FLUSHALL (as FLUSHDB), SCRIPT FLUSH, FUNCTION LIST, FCALL and COPY within the database", async () => {
    expect((await post(bridge, "/", ["FCALL", "ops_echo", "0", "hi"])).body).toEqual({
      result: "hi",
    });
    const listed = await post(bridge, "/", ["FUNCTION", "LIST"]);
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).toContain("ops_echo");
    expect((await post(bridge, "/", ["SCRIPT", "FLUSH"])).body).toEqual({ result: "OK" });
    expect((await post(bridge, "/", ["COPY", "keep", "copied"])).body).toEqual({ result: 1 });
    expect(await db0.get("copied")).toBe("zero");
    expect((await post(bridge, "/", ["FLUSHDB"])).body).toEqual({ result: "OK" });
    expect(await db0.dbSize()).toBe(0);
    expect(await db1.get("keep")).toBe("one");
    await db0.set("gone", "soon");
    expect((await post(bridge, "/", ["FLUSHALL"])).body).toEqual({ result: "OK" });
    expect(await db0.dbSize()).toBe(0);
    expect(await db1.get("keep")).toBe("one");
    await db0.set("keep", "zero");
    await db0.set("other", "0");
  });
});

describe("scripts that keep Redis busy", () => {
  let redis: RedisServerHandle;
  let bridge: RunningBridge;
  let direct: DirectRedis;

  beforeAll(async () => {
    redis = await spawnRedisServer(); // busy-reply-threshold 500 ms
    bridge = await startBridge({ redisUrl: redis.url });
    direct = await directRedisAt(redis.url);
    await direct.sendCommand(["FUNCTION", "LOAD", LIBRARY]);
  });

  afterAll(async () => {
    direct?.destroy();
    await bridge?.close();
    await redis?.stop();
  });

  it("sets busy-reply-threshold to 500 ms on a spawned redis-server", async () => {
    expect(await direct.configGet("busy-reply-threshold")).toEqual({
      "busy-reply-threshold": "500",
    });
  });

  it('EVAL "while true do end" fails with a clear error and Redis serves again within 2 s', async () => {
    const started = Date.now();
    const spinning = post(bridge, "/", ["EVAL", "while true do end", "0"]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const queued = post(bridge, "/", ["SET", "after-spin", "1"]);
    const spun = await spinning;
    expect(spun.status).toBe(400);
    expect((spun.body as { error: string }).error).toMatch(
      /Script killed by user with SCRIPT KILL.*the bridge kills scripts and functions that keep Redis busy/,
    );
    expect((await queued).body).toEqual({ result: "OK" });
    expect((await post(bridge, "/", ["GET", "after-spin"])).body).toEqual({ result: "1" });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("kills a looping function with FUNCTION KILL", async () => {
    const started = Date.now();
    const spun = await post(bridge, "/pipeline", [["FCALL", "ops_spin", "0"], ["PING"]]);
    expect(spun.status).toBe(200);
    expect(spun.body).toEqual([
      { error: expect.stringMatching(/killed by user with (SCRIPT|FUNCTION) KILL/) },
      { result: "PONG" },
    ]);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("answers 503 fast while a script that already wrote runs, then recovers by itself", async () => {
    // Writes, then spins for 2.5 s: UNKILLABLE, so the bridge can only wait it out.
    const script = [
      "redis.call('SET', KEYS[1], 'written')",
      "local function now() local t = redis.call('TIME') return t[1] * 1000000 + t[2] end",
      "local start = now()",
      "while now() - start < 2500000 do end",
      "return 1",
    ].join("\n");
    const started = Date.now();
    const spinning = post(bridge, "/", ["EVAL", script, "1", "unkillable"]);
    const spun = await spinning;
    expect(spun.status).toBe(503);
    expect((spun.body as { error: string }).error).toMatch(
      /^Redis unavailable: Redis is busy running a script or function that has already written data, so it cannot be killed.*UNKILLABLE/,
    );
    expect(spun.elapsedMs).toBeLessThan(1_500);
    const during = await post(bridge, "/", ["GET", "unkillable"]);
    expect(during.status).toBe(503);
    expect(during.elapsedMs).toBeLessThan(300);
    const after = await pollUntilOk(bridge, ["GET", "unkillable"], 4_000);
    expect(after.body).toEqual({ result: "written" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_400);
    expect(Date.now() - started).toBeLessThan(4_500);
  });
});

describe("transactions of scripts are bounded", () => {
  const COMMAND_TIMEOUT_MS = 2_000;
  const READONLY = "hardening-readonly";
  let redis: RedisServerHandle;
  let bridge: RunningBridge;
  let direct: DirectRedis;

  beforeAll(async () => {
    redis = await spawnRedisServer(); // busy-reply-threshold 500 ms
    bridge = await startBridge({
      redisUrl: redis.url,
      readonlyToken: READONLY,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    direct = await directRedisAt(redis.url);
  });

  afterAll(async () => {
    direct?.destroy();
    await bridge?.close();
    await redis?.stop();
  });

  /** Sends `body` to /multi-exec and measures how long until a direct PING answers PONG again. */
  async function busyFor(body: unknown, token = bridge.token) {
    const started = performance.now();
    const sent = fetch(`${bridge.url}/multi-exec`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    }).then(async (response) => ({ status: response.status, body: await response.json() }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (;;) {
      const pong = await direct.ping().catch((error: Error) => error.message);
      if (pong === "PONG") break;
      if (performance.now() - started > 60_000) throw new Error(`still busy: ${pong}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const busyMs = performance.now() - started;
    return { busyMs, answer: await sent };
  }

  it("refuses a transaction of 80 endless scripts before anything runs; Redis answers within commandTimeoutMs + 1 s", async () => {
    const spin = Array.from({ length: 80 }, () => ["EVAL", "while true do end", "0"]);
    const { busyMs, answer } = await busyFor(spin);
    expect(busyMs).toBeLessThan(COMMAND_TIMEOUT_MS + 1_000);
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({
      error: expect.stringMatching(
        /^ERR a transaction may hold at most 1 script or function call .* this one holds 80/,
      ),
    });
  });

  it("the same with EVAL_RO and the read-only token", async () => {
    const spin = Array.from({ length: 8 }, () => ["EVAL_RO", "while true do end", "0"]);
    const { busyMs, answer } = await busyFor(spin, READONLY);
    expect(busyMs).toBeLessThan(COMMAND_TIMEOUT_MS + 1_000);
    expect(answer.status).toBe(400);
  });

  it("kills the one endless script a transaction may hold; the rest of it runs", async () => {
    const { busyMs, answer } = await busyFor([
      ["SET", "tx-before", "1"],
      ["EVAL", "while true do end", "0"],
      ["SET", "tx-after", "1"],
    ]);
    expect(busyMs).toBeLessThan(COMMAND_TIMEOUT_MS + 1_000);
    expect(answer).toEqual({
      status: 200,
      body: [
        { result: "OK" },
        { error: expect.stringMatching(/Script killed by user with SCRIPT KILL/) },
        { result: "OK" },
      ],
    });
    expect(await direct.get("tx-after")).toBe("1");
  });
});

describe("response and value size limits", () => {
  const MAX = 1024 * 1024;
  let bridge: RunningBridge;
  let direct: DirectRedis;

  beforeAll(async () => {
    bridge = await startBridge({ maxResponseBytes: MAX }); // spawns its own redis-server
    direct = await directRedisAt(bridge.redisUrl);
  });

  afterAll(async () => {
    direct?.destroy();
    await bridge?.close();
  });

  it("refuses SETRANGE, SETBIT and BITFIELD offsets past the limit before they run", async () => {
    for (const command of [
      ["SETRANGE", "big", String(MAX), "x"],
      ["SETRANGE", "big", "134217727", "x"],
      ["SETBIT", "big", String(MAX * 8), "1"],
      ["BITFIELD", "big", "SET", "u8", `#${MAX}`, "1"],
    ]) {
      const sent = await post(bridge, "/", command);
      expect(sent.status).toBe(400);
      expect(sent.body).toEqual({
        error: expect.stringMatching(
          /^ERR max single record size exceeded: \w+ would make a value of \d+ bytes, more than this bridge's limit of 1048576$/,
        ),
      });
      expect(await direct.exists("big")).toBe(0);
    }
  });

  it("lets a spawned redis-server refuse APPEND past the limit (proto-max-bulk-len)", async () => {
    expect(await direct.configGet("proto-max-bulk-len")).toEqual({
      "proto-max-bulk-len": String(MAX),
    });
    expect((await post(bridge, "/", ["SETRANGE", "appended", String(MAX - 2), "x"])).status).toBe(
      200,
    );
    expect(await post(bridge, "/", ["APPEND", "appended", "xx"])).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/proto-max-bulk-len/) },
    });
    expect(await direct.strLen("appended")).toBe(MAX - 1);
  });

  it("returns a value of exactly the limit, and refuses replies that add up to more", async () => {
    expect((await post(bridge, "/", ["SETRANGE", "full", String(MAX - 1), "x"])).body).toEqual({
      result: MAX,
    });
    const one = await post(bridge, "/", ["GET", "full"]);
    expect(one.status).toBe(200);
    expect((one.body as { result: string }).result).toHaveLength(MAX);

    const gets = Array.from({ length: 100 }, () => ["GET", "full"]);
    const pipeline = await post(bridge, "/pipeline", [["INCR", "counted"], ...gets]);
    expect(pipeline).toMatchObject({
      status: 400,
      body: {
        error:
          "ERR max response size exceeded: the replies add up to more than this bridge's limit of 1048576 bytes (commands 0-31 ran, the other 69 were not sent)",
      },
    });
    expect(await direct.get("counted")).toBe("1");

    const transaction = await post(bridge, "/multi-exec", [
      ["GET", "full"],
      ["GET", "full"],
    ]);
    expect(transaction).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/^ERR max response size exceeded: .*transaction ran/) },
    });

    await direct.rPush("list", ["a".repeat(MAX / 2), "b".repeat(MAX / 2)]);
    expect(await post(bridge, "/", ["LRANGE", "list", "0", "-1"])).toMatchObject({
      status: 400,
      body: {
        error: expect.stringMatching(/^ERR max response size exceeded: the reply is \d+ bytes/),
      },
    });
    expect((await post(bridge, "/", ["LLEN", "list"])).body).toEqual({ result: 2 });
  });
});
