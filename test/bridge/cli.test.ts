import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startBridge } from "../../src/bridge/index.js";
import { RedisServerNotFoundError, spawnRedisServer } from "../../src/bridge/redis-server.js";
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
    const result = await runCli(["bridge", "--port", "0", "--ephemeral"], io);
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
    [
      ["bridge", "--bogus"],
      /unknown option "--bogus"; the options are --port <n>, --host <addr>, /,
    ],
    [["bridge", "--port"], /--port needs a value: --port <n>/],
    [["bridge", "--ephemeral=yes"], /--ephemeral is a switch and takes no value/],
    [["bridge", "extra"], /unexpected argument "extra"/],
    [["bridge", "--port", "70000"], /--port must be a whole number from 0 to 65535/],
    [["bridge", "--ephemeral", "--data-dir", "/tmp/x"], /either --ephemeral or --data-dir/],
    [["bridge", "--redis-url", "redis://127.0.0.1:1", "--data-dir", "/tmp/x"], /--data-dir is for/],
  ])("%j fails with a message on stderr", async (argv, message) => {
    const io = captureIo();
    const result = await runCli(argv, io);
    expect(result).toEqual({ exitCode: 2 });
    expect(io.errLines.join("\n")).toMatch(message);
    expect(io.outLines).toEqual([]);
  });
});

describe("cron-guard bridge, ready to self-host", () => {
  async function started(argv: string[], env: Record<string, string> = {}) {
    const io = { ...captureIo(), env };
    const result = await runCli(argv, io);
    if (!("running" in result)) throw new Error(`exited: ${io.errLines.join("\n")}`);
    const url = io.outLines[0]?.split("=")[1] ?? "";
    const token = io.outLines[1]?.split("=").slice(1).join("=") ?? "";
    const send = async (command: unknown[], as = token) => {
      const response = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${as}` },
        body: JSON.stringify(command),
      });
      return { status: response.status, body: (await response.json()) as unknown };
    };
    return { io, stop: result.running.stop, send };
  }

  it("keeps the data across a restart with the same --data-dir, and the start line says where", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cron-guard-data-test-"));
    try {
      const first = await started(["bridge", "--port", "0", "--data-dir", dir]);
      expect(first.io.errLines.join("\n")).toContain(`data kept in ${dir} (AOF`);
      expect((await first.send(["SET", "survives", "restart"])).body).toEqual({ result: "OK" });
      expect((await first.send(["HSET", "h", "f", "1"])).body).toEqual({ result: 1 });
      await first.stop();
      expect(await readdir(dir)).toContain("appendonlydir");

      const second = await started(["bridge", "--port", "0", "--data-dir", dir]);
      try {
        expect((await second.send(["GET", "survives"])).body).toEqual({ result: "restart" });
        expect((await second.send(["HGETALL", "h"])).body).toEqual({ result: ["f", "1"] });
        // the scripts still run as the (new) ACL users
        expect(
          (await second.send(["EVAL", "return redis.call('GET', KEYS[1])", "1", "survives"])).body,
        ).toEqual({ result: "restart" });
      } finally {
        await second.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("defaults to the directory CRON_GUARD_BRIDGE_DATA_DIR names (else ./.cron-guard-data)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cron-guard-data-env-"));
    try {
      const bridge = await started(["bridge", "--port", "0"], { CRON_GUARD_BRIDGE_DATA_DIR: dir });
      await bridge.stop();
      expect(bridge.io.errLines.join("\n")).toContain(`data kept in ${dir}`);
      expect(await readdir(dir)).toContain("appendonlydir");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("--ephemeral says loudly that nothing is kept", async () => {
    const bridge = await started(["bridge", "--port", "0", "--ephemeral"]);
    await bridge.stop();
    expect(bridge.io.errLines.join("\n")).toMatch(/EPHEMERAL: .*gone when the bridge stops/);
  });

  it("takes the tokens from CRON_GUARD_BRIDGE_TOKEN and CRON_GUARD_BRIDGE_READONLY_TOKEN; flags win", async () => {
    const bridge = await started(["bridge", "--port", "0", "--ephemeral"], {
      CRON_GUARD_BRIDGE_TOKEN: "from-env",
      CRON_GUARD_BRIDGE_READONLY_TOKEN: "ro-from-env",
    });
    try {
      expect(bridge.io.outLines[1]).toBe("UPSTASH_REDIS_REST_TOKEN=from-env");
      expect((await bridge.send(["SET", "k", "v"], "from-env")).status).toBe(200);
      expect((await bridge.send(["GET", "k"], "ro-from-env")).body).toEqual({ result: "v" });
      expect((await bridge.send(["SET", "k", "w"], "ro-from-env")).status).toBe(400);
    } finally {
      await bridge.stop();
    }
    const flagged = await started(["bridge", "--port", "0", "--ephemeral", "--token", "flag"], {
      CRON_GUARD_BRIDGE_TOKEN: "from-env",
    });
    await flagged.stop();
    expect(flagged.io.outLines[1]).toBe("UPSTASH_REDIS_REST_TOKEN=flag");
  });

  it("takes the Redis URL from CRON_GUARD_BRIDGE_REDIS_URL and never prints its password", async () => {
    const redis = await spawnRedisServer({ password: "s3cret-pw" });
    try {
      const bridge = await started(["bridge", "--port", "0"], {
        CRON_GUARD_BRIDGE_REDIS_URL: redis.url,
      });
      await bridge.stop();
      const printed = [...bridge.io.outLines, ...bridge.io.errLines].join("\n");
      expect(printed).toContain(`forwarding to redis://default:***@127.0.0.1:${redis.port}`);
      expect(printed).not.toContain("s3cret-pw");
    } finally {
      await redis.stop();
    }
  });

  it("prints its version", async () => {
    const { version } = (await import("../../package.json", { with: { type: "json" } })).default;
    for (const flag of ["--version", "-V", "-v", "version"]) {
      const io = captureIo();
      expect(await runCli([flag], io)).toEqual({ exitCode: 0 });
      expect(io.outLines).toEqual([`cron-guard ${version}`]);
    }
  });

  it("`help bridge` and `bridge --help` describe every flag and environment variable", async () => {
    const help = captureIo();
    expect(await runCli(["help", "bridge"], help)).toEqual({ exitCode: 0 });
    const flagHelp = captureIo();
    expect(await runCli(["bridge", "--help"], flagHelp)).toEqual({ exitCode: 0 });
    const text = help.outLines.join("\n");
    expect(flagHelp.outLines.join("\n")).toBe(text);
    for (const flag of [
      "--port",
      "--host",
      "--token",
      "--readonly-token",
      "--redis-url",
      "--cluster",
      "--data-dir",
      "--ephemeral",
      "--max-body-bytes",
      "--max-response-bytes",
      "--command-timeout-ms",
      "CRON_GUARD_BRIDGE_TOKEN",
      "CRON_GUARD_BRIDGE_READONLY_TOKEN",
      "CRON_GUARD_BRIDGE_REDIS_URL",
      "CRON_GUARD_BRIDGE_DATA_DIR",
    ]) {
      // each on its own line, followed by a description
      expect(text).toMatch(new RegExp(`^  ${flag}\\b.*\\S.{10,}`, "m"));
    }
    expect(text).toContain("ACL SETUSER cron-guard-bridge on ><password>");
    const unknown = captureIo();
    expect(await runCli(["help", "nope"], unknown)).toEqual({ exitCode: 2 });
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
