import { Lock } from "@upstash/lock";
import { describe, expect, it } from "vitest";
import { directRedis, upstash, useKeyPrefix } from "../support/harness.js";

type LockRedis = ConstructorParameters<typeof Lock>[0]["redis"];

const modes = [
  { mode: "defaults (auto-pipelining, base64)", autoPipelining: true, base64: true },
  { mode: "auto-pipelining and base64 off", autoPipelining: false, base64: false },
];

describe.each(modes)("@upstash/redis through the bridge: $mode", ({ autoPipelining, base64 }) => {
  const prefix = useKeyPrefix(`client-${base64 ? "b64" : "plain"}`);
  const key = (name: string) => `${prefix()}:${name}`;
  const redis = () => upstash({ autoPipelining, base64 });

  it("round-trips unicode, long, empty and numeric-looking strings byte for byte", async () => {
    const client = redis();
    const values = {
      unicode: "héllo wörld ✓ 🚀👩‍👩‍👧 日本語 中文 한국어",
      long: "x".repeat(50_000) + "€".repeat(16_000),
      empty: "",
      ok: "OK",
      padded: "007",
    };
    for (const [name, value] of Object.entries(values)) {
      expect(await client.set(key(name), value)).toBe("OK");
    }
    for (const [name, value] of Object.entries(values)) {
      expect(await client.get(key(name))).toBe(value);
    }
    expect(values.long.length).toBeGreaterThan(64_000);
    const direct = await directRedis();
    expect(await direct.get(key("unicode"))).toBe(values.unicode);
    expect(await client.get(key("missing"))).toBeNull();
  });

  it("counts with INCR, INCRBY and DECR", async () => {
    const client = redis();
    expect(await client.incr(key("n"))).toBe(1);
    expect(await client.incrby(key("n"), 41)).toBe(42);
    expect(await client.decr(key("n"))).toBe(41);
    await client.set(key("s"), "abc");
    await expect(client.incr(key("s"))).rejects.toThrow(/ERR value is not an integer/);
  });

  it("sets expiry with SET PX, PEXPIRE and reads it with PTTL", async () => {
    const client = redis();
    await client.set(key("px"), "v", { px: 60_000 });
    const ttl = await client.pttl(key("px"));
    expect(ttl).toBeGreaterThan(55_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    await client.set(key("later"), "v");
    expect(await client.pttl(key("later"))).toBe(-1);
    expect(await client.pexpire(key("later"), 120_000)).toBe(1);
    expect(await client.pttl(key("later"))).toBeGreaterThan(115_000);
    expect(await client.pttl(key("missing"))).toBe(-2);
    await client.set(key("short"), "v", { px: 50 });
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(await client.get(key("short"))).toBeNull();
  });

  it("handles hashes", async () => {
    const client = redis();
    expect(await client.hset(key("h"), { name: "café ☕", count: 1 })).toBe(2);
    expect(await client.hincrby(key("h"), "count", 4)).toBe(5);
    expect(await client.hgetall(key("h"))).toEqual({ name: "café ☕", count: 5 });
    expect(await client.hget(key("h"), "name")).toBe("café ☕");
  });

  it("handles sets, sorted sets and lists", async () => {
    const client = redis();
    expect(await client.sadd(key("set"), "a", "b", "c")).toBe(3);
    expect((await client.smembers(key("set"))).sort()).toEqual(["a", "b", "c"]);
    expect(await client.sismember(key("set"), "b")).toBe(1);

    await client.zadd(key("z"), { score: 1.5, member: "one" }, { score: 3, member: "three" });
    expect(await client.zrange(key("z"), 0, -1, { withScores: true })).toEqual([
      "one",
      1.5,
      "three",
      3,
    ]);
    expect(await client.zscore(key("z"), "one")).toBe(1.5);

    expect(await client.rpush(key("list"), "a", "b", "c")).toBe(3);
    expect(await client.lpush(key("list"), "z")).toBe(4);
    expect(await client.lrange(key("list"), 0, -1)).toEqual(["z", "a", "b", "c"]);
    expect(await client.lpop(key("list"))).toBe("z");
  });

  it("handles streams with XADD MAXLEN, XRANGE and XLEN", async () => {
    const client = redis();
    for (let i = 0; i < 5; i += 1) {
      await client.xadd(
        key("stream"),
        "*",
        { n: i, label: `entry ✓ ${i}` },
        {
          trim: { type: "MAXLEN", threshold: 3, comparison: "=" },
        },
      );
    }
    expect(await client.xlen(key("stream"))).toBe(3);
    const entries = await client.xrange(key("stream"), "-", "+");
    expect(Object.values(entries)).toEqual([
      { n: 2, label: "entry ✓ 2" },
      { n: 3, label: "entry ✓ 3" },
      { n: 4, label: "entry ✓ 4" },
    ]);
  });

  it("stores objects as JSON and reads them back deep-equal", async () => {
    const client = redis();
    const job = { id: "report", tags: ["a", "ü"], nested: { n: 1, ok: true, nil: null } };
    await client.set(key("obj"), job);
    expect(await client.get(key("obj"))).toEqual(job);
    const direct = await directRedis();
    expect(JSON.parse((await direct.get(key("obj"))) ?? "")).toEqual(job);
  });

  it("runs EVAL, SCRIPT LOAD, EVALSHA and a Script that survives SCRIPT FLUSH", async () => {
    const client = redis();
    const source = "return {KEYS[1], ARGV[1], redis.call('INCRBY', KEYS[1], ARGV[1])}";
    expect(await client.eval(source, [key("lua")], ["2"])).toEqual([key("lua"), 2, 2]);
    const sha = await client.scriptLoad(source);
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    expect(await client.evalsha(sha, [key("lua")], ["3"])).toEqual([key("lua"), 3, 5]);

    const script = client.createScript<number>("return redis.call('INCR', KEYS[1])");
    expect(await script.exec([key("script")], [])).toBe(1);
    await client.scriptFlush();
    await expect(client.evalsha(sha, [key("lua")], ["1"])).rejects.toThrow(/NOSCRIPT/);
    expect(await script.exec([key("script")], [])).toBe(2);
    expect(await script.exec([key("script")], [])).toBe(3);
  });

  it("keeps per-command errors inside a pipeline", async () => {
    const client = redis();
    await client.set(key("text"), "not a number");
    const pipeline = client.pipeline();
    pipeline.set(key("p1"), "one");
    pipeline.incr(key("text"));
    pipeline.get(key("p1"));
    const results = await pipeline.exec({ keepErrors: true });
    expect(results[0]).toEqual({ result: "OK", error: undefined });
    expect(results[1]?.error).toMatch(/ERR value is not an integer/);
    expect(results[2]).toEqual({ result: "one", error: undefined });
    const failing = client.pipeline();
    failing.incr(key("text"));
    await expect(failing.exec()).rejects.toThrow(/ERR value is not an integer/);
  });

  it("isolates 50 concurrent MULTI/EXEC transactions", async () => {
    const client = redis();
    const counter = key("tx-counter");
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => {
        const tx = client.multi();
        tx.incr(counter);
        tx.get(counter);
        tx.set(key(`tx-${i}`), i);
        return tx.exec<[number, number, string]>();
      }),
    );
    const seen = results.map(([incremented, read, ok]) => {
      expect(ok).toBe("OK");
      expect(read).toBe(incremented);
      return incremented;
    });
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const direct = await directRedis();
    expect(await direct.get(counter)).toBe("50");
  });

  it("works with @upstash/lock: acquire, contention, extend, release", async () => {
    // @upstash/lock's typings resolve @upstash/redis's CJS declarations; same class at runtime.
    const client = redis() as unknown as LockRedis;
    const id = key("lock");
    const first = new Lock({ id, redis: client, lease: 5_000, retry: { attempts: 1, delay: 10 } });
    const second = new Lock({ id, redis: client, lease: 5_000, retry: { attempts: 2, delay: 10 } });
    expect(await first.acquire()).toBe(true);
    expect(await second.acquire()).toBe(false);
    expect(await first.getStatus()).toBe("ACQUIRED");
    const direct = await directRedis();
    const before = await direct.pTTL(id);
    expect(await first.extend(10_000)).toBe(true);
    expect(await direct.pTTL(id)).toBeGreaterThan(before + 8_000);
    expect(await second.release()).toBe(false);
    expect(await first.release()).toBe(true);
    expect(await direct.exists(id)).toBe(0);
    expect(await second.acquire()).toBe(true);
    expect(await second.release()).toBe(true);
  });
});
