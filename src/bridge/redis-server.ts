import { type ChildProcess, spawn } from "node:child_process";
import { constants as fsConstants } from "node:fs";
import { access, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, isAbsolute, join } from "node:path";
import { sleep } from "../core/sleep.js";
import { DEFAULT_MAX_RESPONSE_BYTES } from "./protocol.js";

export const REDIS_SERVER_INSTALL_HINT =
  "Install it with `apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS).";

/** `redis-server` is not on PATH (or not executable at the given path). */
export class RedisServerNotFoundError extends Error {
  override readonly name = "RedisServerNotFoundError";
  constructor(binary: string, options?: ErrorOptions) {
    super(
      `redis-server is not installed (looked for "${binary}"). ${REDIS_SERVER_INSTALL_HINT}`,
      options,
    );
  }
}

/** redis-server was found but did not come up (port taken, bad config, too slow). */
export class RedisServerStartError extends Error {
  override readonly name = "RedisServerStartError";
}

export interface SpawnRedisServerOptions {
  /** TCP port to bind on 127.0.0.1. Default: a free port chosen by the OS. Reusing a port restarts Redis under a running bridge. */
  port?: number;
  /** Binary name (looked up on PATH) or absolute path. Default: `"redis-server"`. */
  binary?: string;
  /** How long to wait for the server to answer PING before giving up, in ms. Default: 10 000. */
  startTimeoutMs?: number;
  /**
   * `busy-reply-threshold` (called `lua-time-limit` before Redis 7; that name still works and is
   * the one passed): after this long a running script or function makes Redis answer other
   * clients `BUSY` and accept `SCRIPT KILL`/`FUNCTION KILL`, which the bridge then sends. In ms.
   * Default: 500 (Redis's own default is 5000).
   */
  busyReplyThresholdMs?: number;
  /**
   * `proto-max-bulk-len`: the largest string Redis accepts in a request or lets SETRANGE, APPEND
   * or SETBIT (also from scripts) grow a value to. At least 1 MiB. Default: 10 MiB (Redis: 512 MiB).
   */
  maxStringBytes?: number;
  /** More `redis-server` arguments, e.g. `["--cluster-enabled", "yes"]`. */
  extraArgs?: string[];
  /**
   * Password of the `default` user (`requirepass`); then `url` carries it. Given to redis-server
   * on its standard input, never on the command line (where `ps` shows it). Default: none.
   */
  password?: string;
  /**
   * More configuration lines (e.g. `user ...` ACL lines with passwords), also given on standard
   * input. Default: none.
   */
  configLines?: string[];
  /**
   * Keep the data in this directory, with AOF persistence (`appendonly yes`, fsync every
   * second), and leave it there on `stop()`: a redis-server started again on the same directory
   * has the same data. Created if missing (mode 0700). Default: none, a temp directory without
   * persistence that `stop()` removes.
   */
  dataDir?: string;
}

export interface RedisServerHandle {
  /** `redis://127.0.0.1:<port>`, or `redis://default:<password>@127.0.0.1:<port>` with a password. */
  url: string;
  port: number;
  /** Process id of redis-server (tests pause it with SIGSTOP to simulate a hung server). */
  pid: number;
  /** SIGTERM, wait for exit (SIGKILL after 5 s), remove the temp dir (never a `dataDir`). Idempotent. */
  stop(): Promise<void>;
}

const EXTRA_BINARY_DIRS = ["/usr/bin", "/usr/local/bin", "/opt/homebrew/bin", "/usr/sbin"];
const STOP_GRACE_MS = 5_000;
const MIN_PROTO_MAX_BULK_LEN = 1024 * 1024;
/**
 * `client-output-buffer-limit` for normal clients: a connection with more unsent reply data than
 * this is closed by Redis instead of growing its memory without bound (e.g. a `/multi-exec` of
 * thousands of GETs of a large value). Pipelines are sent in small chunks and stay far below it.
 */
const NORMAL_CLIENT_OUTPUT_LIMIT = ["normal", "512mb", "0", "0"];
const OUTPUT_TAIL_CHARS = 4_000;

/**
 * Starts a redis-server on 127.0.0.1: throw-away (no persistence, temp working dir) unless
 * `dataDir` is given, with a short busy-script threshold and bounded string and output-buffer
 * sizes (see the options).
 */
export async function spawnRedisServer(
  options: SpawnRedisServerOptions = {},
): Promise<RedisServerHandle> {
  const binary = await findBinary(options.binary ?? "redis-server");
  const port = options.port ?? (await findFreePort());
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const dataDir = options.dataDir;
  if (dataDir !== undefined && (await mkdir(dataDir, { recursive: true, mode: 0o700 }))) {
    // a new directory (it did not exist): keep it out of version control by itself
    await writeFile(join(dataDir, ".gitignore"), "# cron-guard bridge data (Redis AOF)\n*\n");
  }
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), "cron-guard-redis-")));
  const persistence =
    dataDir === undefined
      ? ["--appendonly", "no"]
      : ["--appendonly", "yes", "--appendfsync", "everysec"];
  const stdin = [
    ...(options.password === undefined ? [] : [`requirepass ${options.password}`]),
    ...(options.configLines ?? []),
  ];
  const child = spawn(
    binary,
    [
      // "-": read configuration from standard input first (secrets stay off the command line)
      ...(stdin.length > 0 ? ["-"] : []),
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      ...persistence,
      "--lua-time-limit",
      String(options.busyReplyThresholdMs ?? 500),
      "--proto-max-bulk-len",
      String(
        Math.max(options.maxStringBytes ?? DEFAULT_MAX_RESPONSE_BYTES, MIN_PROTO_MAX_BULK_LEN),
      ),
      "--client-output-buffer-limit",
      ...NORMAL_CLIENT_OUTPUT_LIMIT,
      ...(options.extraArgs ?? []),
    ],
    { stdio: [stdin.length > 0 ? "pipe" : "ignore", "pipe", "pipe"] },
  );
  if (stdin.length > 0) {
    child.stdin?.on("error", () => {}); // an early exit is reported by waitUntilReady
    child.stdin?.end(`${stdin.join("\n")}\n`);
  }
  let output = "";
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const spawnFailure = new Promise<Error>((resolve) => child.once("error", resolve));
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      process.removeListener("exit", killOnExit);
      await terminate(child, exited);
      if (dataDir === undefined) await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  try {
    await waitUntilReady(port, startTimeoutMs, child, exited, spawnFailure, () => output);
  } catch (error) {
    await stop();
    throw error;
  }
  const auth =
    options.password === undefined ? "" : `default:${encodeURIComponent(options.password)}@`;
  return { url: `redis://${auth}127.0.0.1:${port}`, port, pid: child.pid ?? 0, stop };
}

async function findBinary(binary: string): Promise<string> {
  const candidates = isAbsolute(binary)
    ? [binary]
    : [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...EXTRA_BINARY_DIRS].map(
        (dir) => join(dir, binary),
      );
  for (const candidate of candidates) {
    try {
      await access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {}
  }
  throw new RedisServerNotFoundError(binary);
}

/** Asks the OS for a free port by listening on port 0 and closing again. */
export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port found"))));
    });
  });
}

async function waitUntilReady(
  port: number,
  timeoutMs: number,
  child: ChildProcess,
  exited: Promise<void>,
  spawnFailure: Promise<Error>,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitedEarly = false;
  void exited.then(() => {
    exitedEarly = true;
  });
  let failure: Error | undefined;
  void spawnFailure.then((error) => {
    failure = error;
  });
  while (Date.now() < deadline) {
    if (failure) {
      throw new RedisServerStartError(`could not run redis-server: ${failure.message}`, {
        cause: failure,
      });
    }
    if (exitedEarly) {
      throw new RedisServerStartError(
        `redis-server exited with code ${child.exitCode} before accepting connections on port ${port}:\n${output()}`,
      );
    }
    if (await answersPing(port)) return;
    await sleep(50);
  }
  throw new RedisServerStartError(
    `redis-server did not accept connections on port ${port} within ${timeoutMs} ms:\n${output()}`,
  );
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: "127.0.0.1" });
    let reply = "";
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => finish(false));
    socket.once("error", () => finish(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk.toString("utf8");
      // NOAUTH: it answers, and wants the password the caller has
      if (reply.includes("\r\n")) finish(reply.startsWith("+PONG") || reply.startsWith("-NOAUTH"));
    });
  });
}

async function terminate(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), STOP_GRACE_MS);
  });
  const forced = await Promise.race([exited.then(() => false), gaveUp]);
  clearTimeout(timer);
  if (forced) {
    child.kill("SIGKILL");
    await exited;
  }
}
