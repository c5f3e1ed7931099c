/**
 * What @upstash/redis's own suite does that the bridge used to refuse: FLUSHALL (served as
 * FLUSHDB of the one database the bridge serves), Redis functions (load, list, call, callRo,
 * delete, flush, stats), and FLUSHALL next to auto-pipelined commands (@upstash/redis sends it
 * outside the pipeline). Pinned with the real client; the bridge spawns its own redis-server.
 */
import { Redis } from "@upstash/redis";
import { createClient } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBridge, startBridge } from "../../src/bridge/index.js";

const READONLY = "functions-readonly";

const LIBRARY = [
  "#!lua name=mylib",
  "redis.register_function('helloworld', function(keys, args) return 'hello world' end)",
  "redis.register_function{function_name='get_ro', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}}",
].join("\n");

describe("@upstash/redis FLUSHALL and functions through the bridge", () => {
  let bridge: RunningBridge;
  let redis: Redis;
  let readonly: Redis;
  let db1: ReturnType<typeof createClient>;

  beforeAll(async () => {
    bridge = await startBridge({ readonlyToken: READONLY });
    const client = (token: string, enableAutoPipelining = false) =>
      new Redis({
        url: bridge.url,
        token,
        retry: false,
        enableTelemetry: false,
        enableAutoPipelining,
      });
    redis = client(bridge.token);
    readonly = client(READONLY);
    db1 = createClient({ url: bridge.redisUrl, RESP: 2, database: 1 });
    db1.on("error", () => {});
    await db1.connect();
    await db1.set("other-database", "kept");
  });

  afterAll(async () => {
    db1?.destroy();
    await bridge?.close();
  });

  it("flushall empties the served database, as on Upstash, and leaves the others", async () => {
    await redis.set("a", "1");
    await redis.set("b", "2");
    expect(await redis.flushall()).toBe("OK");
    expect(await redis.dbsize()).toBe(0);
    await redis.set("c", "3");
    expect(await redis.flushall([{ async: true }])).toBe("OK");
    await expect.poll(() => redis.dbsize()).toBe(0);
    expect(await db1.get("other-database")).toBe("kept");
  });

  it("flushall next to auto-pipelined commands", async () => {
    const auto = new Redis({
      url: bridge.url,
      token: bridge.token,
      retry: false,
      enableTelemetry: false,
      enableAutoPipelining: true,
    });
    await auto.set("before", "1");
    const [set, flushed, after] = await Promise.all([
      auto.set("k", "v"),
      auto.flushall(),
      auto.get("k"),
    ]);
    expect(set).toBe("OK");
    expect(flushed).toBe("OK");
    expect(after === null || after === "v").toBe(true);
    expect(await auto.get("before")).toBeNull();
  });

  it("loads, lists, calls, deletes and flushes functions; the read-only token may only call them read-only", async () => {
    expect(await redis.functions.flush()).toBe("OK");
    expect(await redis.functions.load({ code: LIBRARY, replace: true })).toBe("mylib");
    const listed = await redis.functions.list({ withCode: true });
    expect(listed.map((library) => library.libraryName)).toEqual(["mylib"]);
    expect(await redis.functions.call("helloworld")).toBe("hello world");
    await redis.set("fkey", "fvalue");
    expect(await redis.functions.callRo("get_ro", ["fkey"])).toBe("fvalue");
    expect(await readonly.functions.callRo("get_ro", ["fkey"])).toBe("fvalue");
    await expect(readonly.functions.flush()).rejects.toThrow(/NOPERM/);
    await expect(readonly.functions.call("helloworld")).rejects.toThrow(/NOPERM/);
    const stats = await redis.functions.stats();
    expect(stats.engines).toBeDefined();
    expect(await redis.functions.delete("mylib")).toBe("OK");
    await expect(redis.functions.call("helloworld")).rejects.toThrow(/Function not found/);
    await redis.functions.load({ code: LIBRARY });
    expect(await redis.functions.flush()).toBe("OK");
    expect(await redis.functions.list()).toEqual([]);
  });
});
