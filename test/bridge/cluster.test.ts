/**
 * The bridge in front of a real 3-master Redis Cluster: commands routed by slot, pipelines
 * split per slot and answered in order, transactions and scripts on one slot, CROSSSLOT as
 * Redis's own 400, @upstash/redis through it, and the guard's storm (one run per slot).
 */
import { Redis } from "@upstash/redis";
import { createCluster } from "redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBridge, startBridge } from "../../src/bridge/index.js";
import { runCli } from "../../src/cli.js";
import { createGuard } from "../../src/core/index.js";
import { captureIo } from "../support/capture-io.js";
import { type RedisClusterHandle, startRedisCluster } from "./redis-cluster.js";

let cluster: RedisClusterHandle;
let bridge: RunningBridge;
const connectDirect = (urls: string[]) => {
  const client = createCluster({ rootNodes: urls.map((url) => ({ url })), RESP: 2 });
  client.on("error", () => {});
  return client;
};
let direct: ReturnType<typeof connectDirect>;

beforeAll(async () => {
  cluster = await startRedisCluster(3);
  bridge = await startBridge({ cluster: cluster.urls, readonlyToken: "cluster-ro" });
  direct = connectDirect(cluster.urls);
  await direct.connect();
}, 60_000);

afterAll(async () => {
  direct?.destroy();
  await bridge?.close();
  await cluster?.stop();
});

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${bridge.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${bridge.token}`, ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as unknown };
}

/** Keys spread over all three masters (no hash tags). */
const spread = Array.from({ length: 12 }, (_, i) => `spread:${i}`);

describe("bridge in front of a Redis Cluster", () => {
  it("the test cluster has three masters that each own slots", async () => {
    expect(direct.masters).toHaveLength(3);
    const owners = new Set(spread.map((key) => direct.slots[slotOf(key)]?.master.port));
    expect(owners.size).toBe(3);
  });

  it("runs single commands on every slot, path style and JSON, with base64", async () => {
    for (const key of spread) {
      expect(await post("/", ["SET", key, `v-${key}`])).toEqual({
        status: 200,
        body: { result: "OK" },
      });
    }
    for (const key of spread) expect(await direct.get(key)).toBe(`v-${key}`);
    const got = await fetch(`${bridge.url}/get/${spread[3]}`, {
      headers: { authorization: `Bearer ${bridge.token}`, "upstash-encoding": "base64" },
    });
    expect(await got.json()).toEqual({
      result: Buffer.from(`v-${spread[3]}`).toString("base64"),
    });
    expect(await post("/", ["GET"])).toMatchObject({ status: 400 });
    expect((await post("/", ["PING"])).body).toEqual({ result: "PONG" });
  });

  it("splits a pipeline across slots and answers in request order, errors in place", async () => {
    const commands = spread.flatMap((key, i) => [
      ["SET", `p:${key}`, String(i)],
      ["INCR", `p:${key}`],
    ]);
    commands.splice(5, 0, ["GET"]);
    const sent = await post("/pipeline", commands);
    expect(sent.status).toBe(200);
    const expected: unknown[] = spread.flatMap((_, i) => [{ result: "OK" }, { result: i + 1 }]);
    expected.splice(5, 0, { error: "ERR wrong number of arguments for 'get' command" });
    expect(sent.body).toEqual(expected);
  });

  it("runs a transaction on one slot (hash tag) and refuses one across slots with CROSSSLOT", async () => {
    expect(
      await post("/multi-exec", [
        ["SET", "{job}:a", "1"],
        ["INCR", "{job}:a"],
        ["SET", "{job}:b", "x"],
        ["GET", "{job}:b"],
      ]),
    ).toEqual({
      status: 200,
      body: [{ result: "OK" }, { result: 2 }, { result: "OK" }, { result: "x" }],
    });
    const [a, b] = twoKeysOnDifferentSlots();
    const cross = await post("/multi-exec", [
      ["SET", a, "1"],
      ["SET", b, "1"],
    ]);
    expect(cross.status).toBe(400);
    expect((cross.body as { error: string }).error).toMatch(/^(CROSSSLOT|MOVED|EXECABORT)/);
    expect(await direct.exists(a)).toBe(0);
  });

  it("answers Redis's CROSSSLOT for a single command or script over two slots", async () => {
    const [a, b] = twoKeysOnDifferentSlots();
    expect(await post("/", ["MSET", a, "1", b, "2"])).toEqual({
      status: 400,
      body: { error: "CROSSSLOT Keys in request don't hash to the same slot" },
    });
    const script = "return redis.call('SET', KEYS[1], ARGV[1])";
    expect((await post("/", ["EVAL", script, "2", a, b, "v"])).body).toEqual({
      error: "CROSSSLOT Keys in request don't hash to the same slot",
    });
    expect((await post("/", ["EVAL", script, "1", b, "v"])).body).toEqual({ result: "OK" });
    expect((await post("/", ["MSET", "{t}:1", "a", "{t}:2", "b"])).body).toEqual({
      result: "OK",
    });
  });

  it("serves @upstash/redis (auto-pipelining, base64, scripts, transactions)", async () => {
    const redis = new Redis({ url: bridge.url, token: bridge.token, enableTelemetry: false });
    const values = await Promise.all(spread.map((key) => redis.get<string>(key)));
    expect(values).toEqual(spread.map((key) => `v-${key}`));
    const script = redis.createScript<number>("return redis.call('INCR', KEYS[1])");
    expect(await script.exec(["{s}:n"], [])).toBe(1);
    const tx = redis.multi();
    tx.set("{tx}:a", "1");
    tx.incr("{tx}:a");
    expect(await tx.exec()).toEqual(["OK", 2]);
    expect(redis.readYourWritesSyncToken).toMatch(/^\d+$/);
  });

  it("refuses writes with the read-only token", async () => {
    const sent = await post("/", ["SET", spread[0], "x"], { authorization: "Bearer cluster-ro" });
    expect(sent).toEqual({
      status: 400,
      body: {
        error: "NOPERM this user has no permissions to run the 'set' command or its subcommand",
      },
    });
    expect(
      (await post("/", ["GET", spread[0]], { authorization: "Bearer cluster-ro" })).body,
    ).toEqual({ result: `v-${spread[0]}` });
  });

  it("200 concurrent guard runs of one slot through the cluster bridge: exactly one ran", async () => {
    let ran = 0;
    const job = `cluster-storm-${Date.now().toString(36)}`;
    const results = await Promise.all(
      Array.from({ length: 200 }, () =>
        createGuard({
          redis: new Redis({ url: bridge.url, token: bridge.token, enableTelemetry: false }),
        }).run(job, 60_000, async () => {
          ran += 1;
          await new Promise((resolve) => setTimeout(resolve, 20));
          return "once";
        }),
      ),
    );
    expect(ran).toBe(1);
    expect(results.filter((r) => r.status === "ran")).toHaveLength(1);
    expect(results.filter((r) => r.status === "skipped")).toHaveLength(199);
  });

  it("cron-guard bridge --cluster prints the env lines and serves", async () => {
    const io = captureIo();
    const result = await runCli(["bridge", "--port", "0", "--cluster", cluster.urls.join(",")], io);
    if (!("running" in result)) throw new Error(`exited: ${io.errLines.join("\n")}`);
    try {
      const url = io.outLines[0]?.split("=")[1] ?? "";
      const token = io.outLines[1]?.split("=")[1] ?? "";
      const response = await fetch(`${url}/set/{cli}:k/v`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(await response.json()).toEqual({ result: "OK" });
      expect(io.errLines.join("\n")).toMatch(/Redis Cluster/);
    } finally {
      await result.running.stop();
    }
  });

  it("refuses --cluster together with --redis-url", async () => {
    await expect(startBridge({ cluster: cluster.urls, redisUrl: cluster.urls[0] })).rejects.toThrow(
      /either redisUrl or cluster/,
    );
  });
});

/** CRC16/XMODEM of the hash tag (or key) mod 16384, as Redis Cluster computes slots. */
function slotOf(key: string): number {
  const open = key.indexOf("{");
  let hashed = key;
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) hashed = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(hashed)) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i += 1)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

function twoKeysOnDifferentSlots(): [string, string] {
  const owner = (key: string) => direct.slots[slotOf(key)]?.master.port;
  const keys = Array.from({ length: 50 }, (_, i) => `cross:${Date.now().toString(36)}:${i}`);
  const first = keys[0] as string;
  const other = keys.find((key) => owner(key) !== owner(first)) as string;
  return [first, other];
}
