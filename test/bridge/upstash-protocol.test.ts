/**
 * The parts of the Upstash REST protocol beyond commands: sync tokens (read-your-writes),
 * `?_token=` auth, bodies without a JSON content type, 413 for oversize bodies, and the
 * read-only token.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { request as httpRequest } from "node:http";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningBridge, startBridge } from "../../src/bridge/index.js";
import { type RedisServerHandle, spawnRedisServer } from "../../src/bridge/redis-server.js";
import { bridgeEnv, directRedis, useKeyPrefix } from "../support/harness.js";

const READONLY = "read-only-secret";

let bridge: RunningBridge;
beforeAll(async () => {
  bridge = await startBridge({
    redisUrl: bridgeEnv().redisUrl,
    readonlyToken: READONLY,
    maxBodyBytes: 64 * 1024,
  });
});
afterAll(async () => {
  await bridge?.close();
});

interface Answer {
  status: number;
  body: unknown;
  syncToken: string | null;
  contentType: string | null;
}

async function call(
  path: string,
  init: { method?: string; body?: string; headers?: Record<string, string>; token?: string } = {},
): Promise<Answer> {
  const response = await fetch(`${bridge.url}${path}`, {
    method: init.method ?? "POST",
    headers: {
      ...(init.token === "" ? {} : { authorization: `Bearer ${init.token ?? bridge.token}` }),
      ...init.headers,
    },
    body: init.body,
  });
  return {
    status: response.status,
    body: await response.json(),
    syncToken: response.headers.get("upstash-sync-token"),
    contentType: response.headers.get("content-type"),
  };
}

const upstashFor = (token: string, readYourWrites?: boolean) =>
  new Redis({
    url: bridge.url,
    token,
    retry: false,
    enableTelemetry: false,
    readYourWrites,
  });

describe("upstash-sync-token", () => {
  const prefix = useKeyPrefix("sync");

  it("is on every response, success or error, and never goes backwards", async () => {
    const answers = [
      await call("/", { method: "GET" }),
      await call("/", { body: JSON.stringify(["SET", `${prefix()}:a`, "1"]) }),
      await call("/", { body: JSON.stringify(["GET"]) }),
      await call("/", { body: JSON.stringify(["PING"]), token: "wrong" }),
      await call("/", { method: "PUT" }),
      await call("/", { body: "x".repeat(70 * 1024) }),
      await call("/pipeline", { body: JSON.stringify([["PING"], ["PING"]]) }),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 400, 401, 404, 413, 200]);
    const tokens = answers.map((a) => a.syncToken);
    for (const token of tokens) expect(token).toMatch(/^\d+$/);
    const numbers = tokens.map(Number);
    for (let i = 1; i < numbers.length; i += 1) {
      expect(numbers[i]).toBeGreaterThan(numbers[i - 1] as number);
    }
  });

  it("answers at least the token the client sent (tokens stay monotonic across bridges)", async () => {
    const ahead = String(Date.now() * 1000 + 10_000_000_000);
    const answer = await call("/", {
      body: JSON.stringify(["PING"]),
      headers: { "upstash-sync-token": ahead },
    });
    expect(Number(answer.syncToken)).toBeGreaterThanOrEqual(Number(ahead));
  });

  it("makes @upstash/redis's read-your-writes work: the token moves and carries over", async () => {
    const writer = upstashFor(bridge.token);
    expect(writer.readYourWritesSyncToken).toBe("");
    await writer.set(`${prefix()}:ryw`, "written");
    const afterWrite = writer.readYourWritesSyncToken ?? "";
    expect(afterWrite).toMatch(/^\d+$/);
    await writer.get(`${prefix()}:ryw`);
    expect(Number(writer.readYourWritesSyncToken)).toBeGreaterThan(Number(afterWrite));

    const reader = upstashFor(bridge.token);
    reader.readYourWritesSyncToken = writer.readYourWritesSyncToken;
    expect(await reader.get(`${prefix()}:ryw`)).toBe("written");
    expect(Number(reader.readYourWritesSyncToken)).toBeGreaterThan(Number(afterWrite));

    const off = upstashFor(bridge.token, false);
    await off.get(`${prefix()}:ryw`);
    expect(off.readYourWritesSyncToken).toBe("");
  });
});

describe("?_token= query auth", () => {
  const prefix = useKeyPrefix("qtoken");

  it("authenticates path-style and JSON requests like the bearer header", async () => {
    const key = `${prefix()}:q`;
    const set = await call(`/set/${key}/bar?_token=${encodeURIComponent(bridge.token)}`, {
      method: "GET",
      token: "",
    });
    expect(set).toMatchObject({ status: 200, body: { result: "OK" } });
    const get = await call(`/?_token=${encodeURIComponent(bridge.token)}`, {
      body: JSON.stringify(["GET", key]),
      token: "",
    });
    expect(get).toMatchObject({ status: 200, body: { result: "bar" } });
  });

  it.each([
    ["a wrong token", "?_token=nope"],
    ["an empty token", "?_token="],
    ["another parameter", "?token=x"],
  ])("refuses %s with 401", async (_, query) => {
    const answer = await call(`/get/x${query}`, { method: "GET", token: "" });
    expect(answer).toMatchObject({ status: 401, body: { error: "Unauthorized" } });
  });

  it("lets a present Authorization header decide, even with a right _token", async () => {
    const answer = await call(`/get/x?_token=${encodeURIComponent(bridge.token)}`, {
      method: "GET",
      token: "wrong",
    });
    expect(answer.status).toBe(401);
  });
});

describe("request bodies", () => {
  const prefix = useKeyPrefix("bodies");

  it.each([
    ["form (what curl -d sends)", "application/x-www-form-urlencoded"],
    ["text/plain", "text/plain"],
    ["no content type", undefined],
  ])("accepts a JSON command sent as %s", async (_, contentType) => {
    const key = `${prefix()}:${contentType ?? "none"}`;
    const answer = await rawPost("/", JSON.stringify(["SET", key, "v"]), contentType);
    expect(answer).toEqual({ status: 200, body: { result: "OK" } });
    expect(await (await directRedis()).get(key)).toBe("v");
  });

  it("stores a form-encoded path-style body verbatim as the value", async () => {
    const key = `${prefix()}:form`;
    const answer = await rawPost(`/set/${key}`, "a=1&b=2", "application/x-www-form-urlencoded");
    expect(answer).toEqual({ status: 200, body: { result: "OK" } });
    expect(await (await directRedis()).get(key)).toBe("a=1&b=2");
  });

  it("answers 413 for a body over the limit, declared or streamed, and runs nothing", async () => {
    const key = `${prefix()}:big`;
    const body = JSON.stringify(["SET", key, "x".repeat(64 * 1024)]);
    const declared = await rawPost("/", body, "application/json");
    expect(declared).toEqual({
      status: 413,
      body: { error: "request body exceeds the limit of 65536 bytes" },
    });
    const streamed = await rawPost("/", body, "application/json", { chunked: true });
    expect(streamed.status).toBe(413);
    expect(await (await directRedis()).exists(key)).toBe(0);
    // the bridge still serves afterwards
    expect((await call("/", { body: JSON.stringify(["PING"]) })).body).toEqual({ result: "PONG" });
  });
});

describe("413 through fetch, from a bridge in its own process", () => {
  // In one process the client's writes and the server's answer take turns on one event loop and
  // the failure does not show; across processes a 413 sent while fetch is still sending, then
  // the socket closed, made fetch fail with EPIPE from the second request on.
  const prefix = useKeyPrefix("fetch413");
  const TOKEN = "fetch-413-token";
  let redis: RedisServerHandle;
  let child: ChildProcess;
  let url = "";

  beforeAll(async () => {
    redis = await spawnRedisServer();
    child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "src/cli.ts",
        "bridge",
        "--port",
        "0",
        "--token",
        TOKEN,
        "--redis-url",
        redis.url,
        "--max-body-bytes",
        "65536",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString("utf8");
        const match = /UPSTASH_REDIS_REST_URL=(\S+)/.exec(out);
        if (match) resolve(match[1] as string);
      });
      child.once("exit", (code) => reject(new Error(`bridge exited with ${code}: ${out}`)));
    });
  });

  afterAll(async () => {
    if (child?.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    await redis?.stop();
  });

  it("answers a 64 MiB body that Node's fetch reads: 413 JSON with Connection: close, not EPIPE", async () => {
    const key = `${prefix()}:huge`;
    const body = JSON.stringify(["SET", key, "x".repeat(64 * 1024 * 1024)]);
    for (let round = 0; round < 3; round += 1) {
      const response = await fetch(`${url}/`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body,
      });
      expect(response.status).toBe(413);
      expect(response.headers.get("connection")).toBe("close");
      expect(await response.json()).toEqual({
        error: "request body exceeds the limit of 65536 bytes",
      });
    }
  });

  it("answers a streamed body over the limit the same way", async () => {
    const chunk = new TextEncoder().encode("x".repeat(1024 * 1024));
    for (let round = 0; round < 3; round += 1) {
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent === 0) controller.enqueue(new TextEncoder().encode('["SET","k","'));
          if (sent >= 32) {
            controller.enqueue(new TextEncoder().encode('"]'));
            controller.close();
            return;
          }
          sent += 1;
          controller.enqueue(chunk);
        },
      });
      const response = await fetch(`${url}/`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}` },
        body: stream,
        duplex: "half",
      } as RequestInit);
      expect(response.status).toBe(413);
      expect(await response.json()).toEqual({
        error: "request body exceeds the limit of 65536 bytes",
      });
    }
  });

  it("surfaces as a readable error through @upstash/redis, alone and auto-pipelined", async () => {
    const client = new Redis({ url, token: TOKEN, retry: false, enableTelemetry: false });
    const big = "y".repeat(8 * 1024 * 1024);
    for (let round = 0; round < 3; round += 1) {
      await expect(client.set(`${prefix()}:big`, big)).rejects.toThrow(
        /request body exceeds the limit of 65536 bytes/,
      );
      await expect(
        Promise.all([client.set(`${prefix()}:a`, big), client.get(`${prefix()}:a`)]),
      ).rejects.toThrow(/request body exceeds the limit of 65536 bytes/);
    }
    expect(await client.ping()).toBe("PONG");
  });
});

/** A POST with exact control over headers (fetch always adds a content type to string bodies). */
function rawPost(
  path: string,
  body: string,
  contentType: string | undefined,
  { chunked = false }: { chunked?: boolean } = {},
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, bridge.url);
    const headers: Record<string, string> = { authorization: `Bearer ${bridge.token}` };
    if (contentType) headers["content-type"] = contentType;
    if (!chunked) headers["content-length"] = String(Buffer.byteLength(body));
    const req = httpRequest(url, { method: "POST", headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          body: JSON.parse(Buffer.concat(chunks).toString("utf8")),
        }),
      );
    });
    req.on("error", (error: NodeJS.ErrnoException) => {
      // The bridge may answer 413 and close before the whole streamed body is sent.
      if (error.code !== "EPIPE" && error.code !== "ECONNRESET") reject(error);
    });
    if (chunked) {
      for (let i = 0; i < body.length; i += 8 * 1024) req.write(body.slice(i, i + 8 * 1024));
      req.end();
    } else {
      req.end(body);
    }
  });
}

describe("read-only token", () => {
  const prefix = useKeyPrefix("readonly");
  const noperm = (name: string) =>
    `NOPERM this user has no permissions to run the '${name}' command or its subcommand`;

  it("runs reads and refuses writes with Upstash's NOPERM error, alone and in batches", async () => {
    const key = `${prefix()}:k`;
    await (await directRedis()).set(key, "v");
    const ro = (path: string, body: unknown) =>
      call(path, { body: JSON.stringify(body), token: READONLY });
    expect((await ro("/", ["GET", key])).body).toEqual({ result: "v" });
    expect((await ro("/", ["PING"])).body).toEqual({ result: "PONG" });
    expect(
      (await ro("/", ["EVAL_RO", "return redis.call('GET', KEYS[1])", "1", key])).body,
    ).toEqual({ result: "v" });
    expect(
      (
        await ro("/pipeline", [
          ["GET", key],
          ["STRLEN", key],
          ["SCAN", "0"],
        ])
      ).status,
    ).toBe(200);
    expect(await ro("/", ["SET", key, "changed"])).toMatchObject({
      status: 400,
      body: { error: noperm("set") },
    });
    for (const [command, name] of [
      [["DEL", key], "del"],
      [["EVAL", "return 1", "0"], "eval"],
      [["EVALSHA", "0".repeat(40), "0"], "evalsha"],
      [["SCRIPT", "LOAD", "return 1"], "script"],
      [["FLUSHDB"], "flushdb"],
      [["PUBLISH", "ch", "m"], "publish"],
      [["incr", key], "incr"],
    ] as const) {
      expect((await ro("/", command)).body).toEqual({ error: noperm(name) });
    }
    for (const path of ["/pipeline", "/multi-exec"]) {
      expect(
        await ro(path, [
          ["GET", key],
          ["SET", key, "changed"],
        ]),
      ).toMatchObject({
        status: 400,
        body: { error: noperm("set") },
      });
    }
    expect(
      await call(`/set/${key}/changed?_token=${READONLY}`, { method: "GET", token: "" }),
    ).toMatchObject({ status: 400, body: { error: noperm("set") } });
    expect(await (await directRedis()).get(key)).toBe("v");
  });

  it("surfaces as an UpstashError through @upstash/redis; the full token still writes", async () => {
    const key = `${prefix()}:client`;
    await expect(upstashFor(READONLY).set(key, "x")).rejects.toThrow(noperm("set"));
    expect(await upstashFor(READONLY).get(key)).toBeNull();
    expect(await upstashFor(bridge.token).set(key, "x")).toBe("OK");
  });

  it("is refused as an option when empty or equal to the token", async () => {
    const redisUrl = bridgeEnv().redisUrl;
    await expect(startBridge({ redisUrl, readonlyToken: " " })).rejects.toThrow(
      /readonlyToken must not be empty/,
    );
    await expect(startBridge({ redisUrl, token: "same", readonlyToken: "same" })).rejects.toThrow(
      /readonlyToken must differ from token/,
    );
  });
});
