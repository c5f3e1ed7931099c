/**
 * Least privilege enforced by Redis itself: the bridge's connections log in as Redis ACL users
 * that cannot reach other databases, administer the server, MIGRATE or read other clients, so
 * Redis refuses those inside EVAL, EVAL_RO, FCALL and transactions too, not only the bridge's
 * own top-level checks. Every test here runs on its own redis-server.
 */
import { createServer } from "node:net";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BRIDGE_READONLY_USER, BRIDGE_USER } from "../../src/bridge/acl-rules.js";
import { type RunningBridge, startBridge } from "../../src/bridge/index.js";
import { type RedisServerHandle, spawnRedisServer } from "../../src/bridge/redis-server.js";
import { postTimed } from "../support/bridge-request.js";

const READONLY = "least-privilege-readonly";
/** Redis's ACL refusal inside a script. */
const ACL_REFUSED = /NOPERM|can't run this command|no permissions/;
/** ...or Redis's refusal of a command no script may call (CLIENT, ACL, CONFIG SET: `noscript`). */
const REFUSED_IN_SCRIPT = /NOPERM|can't run this command|no permissions|not allowed from script/;

async function directRedisAt(url: string, database = 0) {
  const client = createClient({ url, RESP: 2, database });
  client.on("error", () => {});
  await client.connect();
  return client;
}
type DirectRedis = Awaited<ReturnType<typeof directRedisAt>>;

async function postAs(bridge: RunningBridge, token: string, path: string, body: unknown) {
  const response = await fetch(`${bridge.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as unknown };
}

const errorOf = (answer: { body: unknown }) => (answer.body as { error?: string }).error ?? "";

/** Scripts that try to leave the database or administer the server. */
const SCRIPTS: Array<[string, string]> = [
  ["SELECT", "redis.call('SELECT', 2); return redis.call('SET', 'secret', 'hunter2')"],
  ["FLUSHALL", "return redis.call('FLUSHALL')"],
  ["SWAPDB", "return redis.call('SWAPDB', 0, 2)"],
  ["MOVE", "return redis.call('MOVE', 'keep', 2)"],
  ["COPY ... DB", "return redis.call('COPY', 'keep', 'copied', 'DB', 2)"],
  ["MIGRATE", "return redis.call('MIGRATE', '127.0.0.1', ARGV[1], 'keep', 0, 2000)"],
  ["SLOWLOG GET", "return redis.call('SLOWLOG', 'GET')"],
  ["CONFIG SET", "return redis.call('CONFIG', 'SET', 'maxmemory', '1')"],
  ["CLIENT LIST", "return redis.call('CLIENT', 'LIST')"],
  ["ACL SETUSER", "return redis.call('ACL', 'SETUSER', 'default', 'off')"],
];

describe("a bridge that spawns its redis-server logs in as ACL users it created", () => {
  let bridge: RunningBridge;
  let admin: DirectRedis;
  let db2: DirectRedis;
  let listener: ReturnType<typeof createServer>;
  let listenerPort = 0;
  const received: Buffer[] = [];

  beforeAll(async () => {
    bridge = await startBridge({ readonlyToken: READONLY });
    admin = await directRedisAt(bridge.redisUrl);
    db2 = await directRedisAt(bridge.redisUrl, 2);
    await admin.set("keep", "zero");
    // where a MIGRATE from a script would send the key's data
    listener = createServer((socket) => socket.on("data", (chunk) => received.push(chunk)));
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    listenerPort = (listener.address() as { port: number }).port;
  });

  afterAll(async () => {
    admin?.destroy();
    db2?.destroy();
    listener?.close();
    await bridge?.close();
  });

  it("the bridge's connections are the ACL users, not the admin", async () => {
    await postTimed(bridge, "/", ["PING"]);
    await postAs(bridge, READONLY, "/", ["PING"]);
    await postTimed(bridge, "/multi-exec", [["PING"]]);
    const clients = String(await admin.sendCommand(["CLIENT", "LIST"]));
    const users = [...clients.matchAll(/ user=(\S+)/g)].map((match) => match[1]);
    expect(users).toContain(BRIDGE_USER);
    expect(users).toContain(BRIDGE_READONLY_USER);
    const acl = (await admin.sendCommand(["ACL", "LIST"])) as string[];
    expect(acl.find((line) => line.startsWith(`user ${BRIDGE_USER} `))).toMatch(/-select/);
  });

  it.each(SCRIPTS)(
    "EVAL of %s is refused by Redis, alone, in a pipeline and a transaction",
    async (_, script) => {
      for (const [path, body, pick] of [
        ["/", ["EVAL", script, "0", String(listenerPort)], (b: unknown) => b],
        [
          "/pipeline",
          [["EVAL", script, "0", String(listenerPort)]],
          (b: unknown) => (b as unknown[])[0],
        ],
        [
          "/multi-exec",
          [["EVAL", script, "0", String(listenerPort)]],
          (b: unknown) => (b as unknown[])[0],
        ],
      ] as const) {
        const answer = await postTimed(bridge, path, body);
        const entry = pick(answer.body) as { error?: string };
        expect(entry.error, `${path} ${JSON.stringify(answer.body)}`).toMatch(REFUSED_IN_SCRIPT);
      }
      expect(await db2.keys("*")).toEqual([]);
      expect(await admin.get("keep")).toBe("zero");
      expect(await admin.configGet("maxmemory")).toEqual({ maxmemory: "0" });
      expect(Buffer.concat(received).toString("latin1")).not.toContain("RESTORE");
    },
  );

  it("EVAL_RO and FCALL_RO with the read-only token cannot SELECT another database", async () => {
    await db2.set("secret", "hunter2");
    try {
      const read = await postAs(bridge, READONLY, "/", [
        "EVAL_RO",
        "redis.call('SELECT', 2); return redis.call('GET', 'secret')",
        "0",
      ]);
      expect(read.status).toBe(400);
      expect(errorOf(read)).toMatch(ACL_REFUSED);
      expect(JSON.stringify(read.body)).not.toContain("hunter2");
      const slowlog = await postAs(bridge, READONLY, "/", [
        "EVAL_RO",
        "return redis.call('SLOWLOG', 'GET')",
        "0",
      ]);
      expect(errorOf(slowlog)).toMatch(ACL_REFUSED);
    } finally {
      await db2.del("secret");
    }
  });

  it("a function loaded through the bridge cannot SELECT either", async () => {
    const library = [
      "#!lua name=escape",
      "redis.register_function('escape_db', function() redis.call('SELECT', 2) return redis.call('SET', 'x', '1') end)",
      "redis.register_function{function_name='escape_ro', callback=function() redis.call('SELECT', 2) return 1 end, flags={'no-writes'}}",
    ].join("\n");
    expect((await postTimed(bridge, "/", ["FUNCTION", "LOAD", "REPLACE", library])).body).toEqual({
      result: "escape",
    });
    expect(errorOf(await postTimed(bridge, "/", ["FCALL", "escape_db", "0"]))).toMatch(ACL_REFUSED);
    expect(errorOf(await postAs(bridge, READONLY, "/", ["FCALL_RO", "escape_ro", "0"]))).toMatch(
      ACL_REFUSED,
    );
    expect(await db2.keys("*")).toEqual([]);
  });

  it("keeps the top-level checks as the first answer", async () => {
    const select = await postTimed(bridge, "/", ["SELECT", "2"]);
    expect(select.status).toBe(400);
    expect(errorOf(select)).toMatch(/^ERR command not supported by this bridge: SELECT/);
  });

  it("serves COPY within the database (expiry and REPLACE kept), refuses COPY ... DB", async () => {
    await admin.set("copy-src", "v", { PX: 60_000 });
    await admin.set("copy-taken", "old");
    expect((await postTimed(bridge, "/", ["COPY", "copy-src", "copy-dst"])).body).toEqual({
      result: 1,
    });
    expect(await admin.get("copy-dst")).toBe("v");
    expect(await admin.pTTL("copy-dst")).toBeGreaterThan(50_000);
    expect((await postTimed(bridge, "/", ["COPY", "copy-src", "copy-taken"])).body).toEqual({
      result: 0,
    });
    expect(await admin.get("copy-taken")).toBe("old");
    expect(
      (await postTimed(bridge, "/", ["copy", "copy-src", "copy-taken", "replace"])).body,
    ).toEqual({ result: 1 });
    expect(await admin.get("copy-taken")).toBe("v");
    expect((await postTimed(bridge, "/", ["COPY", "nothing-here", "copy-new"])).body).toEqual({
      result: 0,
    });
    expect(
      (
        await postTimed(bridge, "/pipeline", [
          ["COPY", "copy-src", "copy-p"],
          ["GET", "copy-p"],
        ])
      ).body,
    ).toEqual([{ result: 1 }, { result: "v" }]);
    const refused = await postTimed(bridge, "/", ["COPY", "copy-src", "x", "DB", "2"]);
    expect(errorOf(refused)).toMatch(/^ERR command not supported by this bridge: COPY \.\.\. DB/);
    expect(await db2.keys("*")).toEqual([]);
  });
});

describe("a bridge in front of a given Redis URL", () => {
  let redis: RedisServerHandle;
  let admin: DirectRedis;

  beforeAll(async () => {
    redis = await spawnRedisServer();
    admin = await directRedisAt(redis.url);
  });

  afterAll(async () => {
    admin?.destroy();
    await redis?.stop();
  });

  it("creates the ACL users when the given user may, and removes its password on close", async () => {
    const bridge = await startBridge({ redisUrl: redis.url, readonlyToken: READONLY });
    try {
      expect(bridge.leastPrivilege.mode).toBe("created");
      const answer = await postTimed(bridge, "/", ["EVAL", SCRIPTS[0]?.[1], "0"]);
      expect(errorOf(answer)).toMatch(ACL_REFUSED);
      const users = (await admin.sendCommand(["ACL", "USERS"])) as string[];
      expect(users).toEqual(expect.arrayContaining([BRIDGE_USER, BRIDGE_READONLY_USER]));
    } finally {
      await bridge.close();
    }
    const user = (await admin.sendCommand(["ACL", "GETUSER", BRIDGE_USER])) as unknown[];
    const passwords = user[user.indexOf("passwords") + 1] as unknown[];
    expect(passwords).toEqual([]);
  });

  it("with a user that may not create users and is not confined: prints the ACL SETUSER lines and refuses scripts", async () => {
    await admin.sendCommand([
      "ACL",
      "SETUSER",
      "app",
      "on",
      ">app-password",
      "~*",
      "&*",
      "+@all",
      "-acl",
    ]);
    const bridge = await startBridge({
      redisUrl: `redis://app:app-password@127.0.0.1:${redis.port}`,
    });
    try {
      const access = bridge.leastPrivilege;
      expect(access.mode).toBe("unconfined");
      expect(access.setupLines.join("\n")).toContain(`ACL SETUSER ${BRIDGE_USER} on >`);
      expect(access.setupLines.join("\n")).toContain("-select");
      expect(access.setupLines.join("\n")).not.toContain("app-password");
      expect(access.summary).toMatch(/refuses EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, FCALL, FCALL_RO/);
      const script = await postTimed(bridge, "/", ["EVAL", "return 1", "0"]);
      expect(script.status).toBe(400);
      expect(errorOf(script)).toMatch(/^ERR command not supported by this bridge: EVAL \(/);
      expect((await postTimed(bridge, "/", ["SET", "plain", "1"])).body).toEqual({ result: "OK" });
    } finally {
      await bridge.close();
    }
  });

  it("with a user already confined by those lines: uses it as it is and serves scripts", async () => {
    // what an operator runs: the lines the bridge printed, with a password filled in
    const probe = await startBridge({
      redisUrl: `redis://app:app-password@127.0.0.1:${redis.port}`,
    });
    const lines = probe.leastPrivilege.setupLines;
    await probe.close();
    const line = lines.find((text) => text.startsWith(`ACL SETUSER ${BRIDGE_USER} `)) ?? "";
    const args = line.split(" ").map((arg) => (arg.startsWith(">") ? ">operator-chosen" : arg));
    await admin.sendCommand(args);
    const bridge = await startBridge({
      redisUrl: `redis://${BRIDGE_USER}:operator-chosen@127.0.0.1:${redis.port}`,
    });
    try {
      expect(bridge.leastPrivilege.mode).toBe("confined");
      expect((await postTimed(bridge, "/", ["EVAL", "return 7", "0"])).body).toEqual({ result: 7 });
      expect(errorOf(await postTimed(bridge, "/", ["EVAL", SCRIPTS[0]?.[1], "0"]))).toMatch(
        ACL_REFUSED,
      );
    } finally {
      await bridge.close();
    }
  });
});

describe("cron-guard bridge start lines", () => {
  it("never print a Redis password; an unconfined user gets the ACL SETUSER lines", async () => {
    const { runCli } = await import("../../src/cli.js");
    const { captureIo } = await import("../support/capture-io.js");
    const redis = await spawnRedisServer();
    const admin = await directRedisAt(redis.url);
    try {
      await admin.sendCommand([
        "ACL",
        "SETUSER",
        "app",
        "on",
        ">app-password",
        "~*",
        "&*",
        "+@all",
        "-acl",
      ]);
      const io = captureIo();
      const result = await runCli(
        [
          "bridge",
          "--port",
          "0",
          "--redis-url",
          `redis://app:app-password@127.0.0.1:${redis.port}`,
        ],
        io,
      );
      if (!("running" in result)) throw new Error(`exited: ${io.errLines.join("\n")}`);
      await result.running.stop();
      const printed = [...io.outLines, ...io.errLines].join("\n");
      expect(printed).not.toContain("app-password");
      expect(printed).toContain(`redis://app:***@127.0.0.1:${redis.port}`);
      expect(printed).toContain(`ACL SETUSER ${BRIDGE_USER} on ><password> `);
      expect(printed).toMatch(/refuses EVAL, EVALSHA/);
    } finally {
      admin.destroy();
      await redis.stop();
    }
  });
});
