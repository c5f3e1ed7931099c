import { describe, expect, it } from "vitest";
import { bridgeEnv, directRedis, useKeyPrefix } from "../support/harness.js";

const { bridgeUrl, bridgeToken } = bridgeEnv();

interface Sent {
  status: number;
  body: unknown;
}

async function send(
  path: string,
  body: string | undefined,
  headers: Record<string, string> = {},
  method = "POST",
): Promise<Sent> {
  const response = await fetch(`${bridgeUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${bridgeToken}`,
      "content-type": "application/json",
      ...headers,
    },
    body,
  });
  expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  return { status: response.status, body: await response.json() };
}

const post = (path: string, value: unknown, headers?: Record<string, string>) =>
  send(path, JSON.stringify(value), headers);

describe("bridge HTTP protocol", () => {
  const prefix = useKeyPrefix("http");
  const key = (name: string) => `${prefix()}:${name}`;

  async function expectAbsent(name: string) {
    const direct = await directRedis();
    expect(await direct.exists(key(name))).toBe(0);
  }

  it("answers a health line on GET / without a token", async () => {
    const response = await fetch(`${bridgeUrl}/`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ result: "cron-guard bridge ok" });
  });

  it("reads the bearer scheme in any case with any spacing, and nothing else as a token", async () => {
    const ping = (authorization: string) =>
      post("/", ["PING"], { authorization }).then((sent) => sent.status);
    expect(await ping(`bearer ${bridgeToken}`)).toBe(200);
    expect(await ping(`BEARER   ${bridgeToken}  `)).toBe(200);
    expect(await ping(`Bearer\t${bridgeToken}`)).toBe(200);
    expect(await ping(`Bearer ${bridgeToken}x`)).toBe(401);
    expect(await ping(`Bearer ${bridgeToken.slice(0, -1)}`)).toBe(401);
    expect(await ping(`Basic ${bridgeToken}`)).toBe(401);
    expect(await ping(`Bearer${bridgeToken}`)).toBe(401);
    expect(await ping("Bearer ")).toBe(401);
    expect(await ping(bridgeToken)).toBe(401);
  });

  it("answers HEAD / like the health line without a body, and runs nothing on HEAD elsewhere", async () => {
    const health = await fetch(`${bridgeUrl}/`, { method: "HEAD" });
    expect(health.status).toBe(200);
    expect(await health.text()).toBe("");
    const path = await fetch(`${bridgeUrl}/set/${key("head")}/v`, {
      method: "HEAD",
      headers: { authorization: `Bearer ${bridgeToken}` },
    });
    expect(path.status).toBe(404);
    await expectAbsent("head");
  });

  it("runs a command on POST / and reports command errors as 400", async () => {
    expect(await post("/", ["SET", key("a"), "1", "NX"])).toEqual({
      status: 200,
      body: { result: "OK" },
    });
    expect(await post("/", ["INCRBY", key("a"), 2])).toEqual({ status: 200, body: { result: 3 } });
    expect(await post("/", ["SET", key("flag"), true])).toMatchObject({ status: 200 });
    expect(await post("/", ["GET", key("flag")])).toEqual({
      status: 200,
      body: { result: "true" },
    });
    expect(await post("/", ["GET"])).toEqual({
      status: 400,
      body: { error: "ERR wrong number of arguments for 'get' command" },
    });
    expect(await post("/", ["EVALSHA", "0".repeat(40), "0"])).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/^NOSCRIPT/) },
    });
  });

  it("base64-encodes strings but keeps OK, numbers and null", async () => {
    const b64 = { "upstash-encoding": "base64" };
    expect((await post("/", ["SET", key("b"), "héllo"], b64)).body).toEqual({ result: "OK" });
    expect((await post("/", ["GET", key("b")], b64)).body).toEqual({
      result: Buffer.from("héllo").toString("base64"),
    });
    expect((await post("/", ["GET", key("none")], b64)).body).toEqual({ result: null });
    expect((await post("/", ["TYPE", key("b")], b64)).body).toEqual({
      result: Buffer.from("string").toString("base64"),
    });
    expect((await post("/pipeline", [["INCR", key("c")], ["GET"]], b64)).body).toEqual([
      { result: 1 },
      { error: "ERR wrong number of arguments for 'get' command" },
    ]);
  });

  it("runs pipelines and transactions with per-command results", async () => {
    expect(
      await post("/pipeline", [
        ["SET", key("p"), "x"],
        ["INCR", key("p")],
        ["GET", key("p")],
      ]),
    ).toEqual({
      status: 200,
      body: [
        { result: "OK" },
        { error: "ERR value is not an integer or out of range" },
        { result: "x" },
      ],
    });
    expect(
      await post("/multi-exec", [
        ["SET", key("m"), "1"],
        ["INCR", key("m")],
        ["HGETALL", key("m")],
      ]),
    ).toEqual({
      status: 200,
      body: [
        { result: "OK" },
        { result: 2 },
        { error: "WRONGTYPE Operation against a key holding the wrong kind of value" },
      ],
    });
  });

  it("discards a transaction with a queue-time error and answers 400", async () => {
    const sent = await post("/multi-exec", [["SET", key("aborted"), "1"], ["GET"]]);
    expect(sent.status).toBe(400);
    expect(sent.body).toEqual({ error: expect.stringMatching(/^EXECABORT/) });
    await expectAbsent("aborted");
  });

  it("accepts path-style commands with URL-decoded segments and a POST body", async () => {
    const path = `/set/${encodeURIComponent(key("path"))}/${encodeURIComponent("a b/ü")}`;
    expect(await send(path, undefined, {}, "GET")).toEqual({
      status: 200,
      body: { result: "OK" },
    });
    expect(await send(`/get/${encodeURIComponent(key("path"))}`, undefined, {}, "GET")).toEqual({
      status: 200,
      body: { result: "a b/ü" },
    });
    const posted = await send(`/set/${encodeURIComponent(key("body"))}`, "raw {body}", {
      "content-type": "text/plain",
    });
    expect(posted).toEqual({ status: 200, body: { result: "OK" } });
    const direct = await directRedis();
    expect(await direct.get(key("body"))).toBe("raw {body}");
    expect(await send("/blpop/x/0", undefined, {}, "GET")).toEqual({
      status: 400,
      body: {
        error:
          "ERR command not supported by this bridge: BLPOP (blocks the connection every request shares)",
      },
    });
  });

  describe("refuses bad requests with JSON errors and leaves Redis unchanged", () => {
    const cases: Array<{
      name: string;
      request: () => Promise<Sent>;
      status: number;
      error: RegExp;
    }> = [
      {
        name: "no token",
        request: () => post("/", ["SET", key("bad"), "1"], { authorization: "" }),
        status: 401,
        error: /^Unauthorized$/,
      },
      {
        name: "wrong token",
        request: () =>
          post("/", ["SET", key("bad"), "1"], { authorization: `Bearer ${bridgeToken}x` }),
        status: 401,
        error: /^Unauthorized$/,
      },
      {
        name: "wrong scheme",
        request: () => post("/", ["SET", key("bad"), "1"], { authorization: bridgeToken }),
        status: 401,
        error: /^Unauthorized$/,
      },
      {
        name: "no token on a path-style command",
        request: () => send(`/set/${key("bad")}/1`, undefined, { authorization: "" }, "GET"),
        status: 401,
        error: /^Unauthorized$/,
      },
      {
        name: "malformed JSON",
        request: () => send("/", `["SET","${key("bad")}","1"`),
        status: 400,
        error: /^malformed JSON body: /,
      },
      {
        name: "empty command",
        request: () => post("/", []),
        status: 400,
        error: /command is empty/,
      },
      {
        name: "a body that is not an array",
        request: () => post("/", { command: "SET" }),
        status: 400,
        error: /must be a JSON array/,
      },
      {
        name: "empty pipeline",
        request: () => post("/pipeline", []),
        status: 400,
        error: /at least one command/,
      },
      {
        name: "empty transaction",
        request: () => post("/multi-exec", []),
        status: 400,
        error: /at least one command/,
      },
      {
        name: "an object argument",
        request: () => post("/", ["SET", key("bad"), { v: 1 }]),
        status: 400,
        error: /argument 2 must be a string, number or boolean, got an object/,
      },
      {
        name: "a null argument inside a pipeline (nothing of it runs)",
        request: () =>
          post("/pipeline", [
            ["SET", key("bad"), "1"],
            ["SET", key("other"), null],
          ]),
        status: 400,
        error: /command 1: argument 2 .* got null/,
      },
      {
        name: "a nested array argument",
        request: () => post("/", ["SET", key("bad"), ["1"]]),
        status: 400,
        error: /argument 2 .* got an array/,
      },
      {
        name: "a number as command name",
        request: () => post("/", [1, key("bad"), "1"]),
        status: 400,
        error: /command name/,
      },
      {
        name: "an oversize body",
        request: () => post("/", ["SET", key("bad"), "x".repeat(1024 * 1024)]),
        status: 413,
        error: /exceeds the limit of 1048576 bytes/,
      },
      ...["BLPOP", "subscribe", "SELECT", "MULTI", "CLIENT", "SHUTDOWN", "WAIT"].map((name) => ({
        name: `unsupported ${name} after a SET in a pipeline`,
        request: () =>
          post("/pipeline", [
            ["SET", key("bad"), "1"],
            [name, "0"],
          ]),
        status: 400,
        error: new RegExp(`^ERR command not supported by this bridge: ${name.toUpperCase()} \\(`),
      })),
      {
        name: "XREAD with BLOCK",
        request: () =>
          post("/multi-exec", [
            ["SET", key("bad"), "1"],
            ["XREAD", "block", "0", "STREAMS", key("s"), "$"],
          ]),
        status: 400,
        error: /^ERR command not supported by this bridge: XREAD BLOCK \(/,
      },
    ];

    it.each(cases)("$name -> $status", async ({ request, status, error }) => {
      const sent = await request();
      expect(sent.status).toBe(status);
      expect(sent.body).toEqual({ error: expect.stringMatching(error) });
      await expectAbsent("bad");
      await expectAbsent("other");
    });
  });

  it("still serves XREAD without BLOCK", async () => {
    await post("/", ["XADD", key("s"), "1-1", "f", "v"]);
    expect(await post("/", ["XREAD", "STREAMS", key("s"), "0"])).toEqual({
      status: 200,
      body: { result: [[key("s"), [["1-1", ["f", "v"]]]]] },
    });
  });
});
