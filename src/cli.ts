#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { setupLines } from "./bridge/acl-rules.js";
import { redactRedisUrl } from "./bridge/redis-url.js";
import { checkCommand } from "./cli/check/command.js";
import {
  type CliCommand,
  type CliFlag,
  type CliIo,
  type CommandResult,
  integerOption,
  isEntryPoint,
  parseFlags,
  portOption,
  runAsProcess,
  runCommands,
  UsageError,
} from "./cli/framework.js";

/**
 * The bridge needs the node `redis` client, an optional peer dependency (Worker and Vercel
 * deployments never load it): without it, say what to install instead of a module stack trace.
 */
async function loadBridge(): Promise<typeof import("./bridge/index.js")> {
  try {
    return await import("./bridge/index.js");
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === "ERR_MODULE_NOT_FOUND" && /'redis'|"redis"/.test(String(error))) {
      throw new Error(
        "the bridge needs the `redis` package (an optional peer dependency of cron-guard): npm i -D redis",
        { cause: error },
      );
    }
    throw error;
  }
}

/** Where `cron-guard bridge` keeps a spawned redis-server's data unless told otherwise. */
export const DEFAULT_DATA_DIR = ".cron-guard-data";

/** Environment variables `cron-guard bridge` reads; a flag given as well wins. */
export const BRIDGE_ENV = {
  token: "CRON_GUARD_BRIDGE_TOKEN",
  readonlyToken: "CRON_GUARD_BRIDGE_READONLY_TOKEN",
  redisUrl: "CRON_GUARD_BRIDGE_REDIS_URL",
  dataDir: "CRON_GUARD_BRIDGE_DATA_DIR",
} as const;

const BRIDGE_FLAGS = [
  {
    name: "port",
    value: "n",
    description: "HTTP port to listen on; 0 picks a free one. Default: 8079.",
  },
  {
    name: "host",
    value: "addr",
    description:
      "Interface to listen on. Default: 127.0.0.1 (put TLS and a firewall in front before\nlistening elsewhere).",
  },
  {
    name: "token",
    value: "t",
    description: `Bearer token for everything (UPSTASH_REDIS_REST_TOKEN). Default: $${BRIDGE_ENV.token},\nelse 32 random bytes, printed at start. Visible in \`ps\`: prefer the variable.`,
  },
  {
    name: "readonly-token",
    value: "t",
    description: `A second token that may only read (Upstash's read-only token); it runs as the\nread-only Redis ACL user. Default: $${BRIDGE_ENV.readonlyToken}, else none.`,
  },
  {
    name: "redis-url",
    value: "url",
    description: `Forward to this Redis (redis://[user:password@]host:port[/db], rediss:// for TLS)\ninstead of spawning redis-server. Default: $${BRIDGE_ENV.redisUrl}. If its user may run\nACL SETUSER, the bridge creates its own ACL users there; if not, and that user is not\nalready confined, it prints the ACL SETUSER lines below and refuses scripts until then.`,
  },
  {
    name: "cluster",
    value: "urls",
    description:
      "Front a Redis Cluster: some of its nodes, comma-separated redis://host:port. Not with\n--redis-url. ACL users are not managed there: give node URLs of a confined user.",
  },
  {
    name: "data-dir",
    value: "dir",
    description: `Where the spawned redis-server keeps its data (AOF, fsync every second), so a restart\nkeeps every slot, ledger entry and schedule. Default: $${BRIDGE_ENV.dataDir}, else\n./${DEFAULT_DATA_DIR}. Only without --redis-url/--cluster.`,
  },
  {
    name: "ephemeral",
    description:
      "Keep nothing: the spawned redis-server runs without persistence in a temp directory that\nis deleted on exit. For tests and demos. Not with --data-dir.",
  },
  {
    name: "max-body-bytes",
    value: "n",
    description: "Largest request body; larger ones answer 413. Default: 1048576 (1 MiB).",
  },
  {
    name: "max-response-bytes",
    value: "n",
    description:
      "Largest reply one request may get (a pipeline's or transaction's replies added up);\nlarger ones answer 400. Default: 10485760 (10 MiB).",
  },
  {
    name: "command-timeout-ms",
    value: "n",
    description:
      "Bound for every Redis call; slower calls answer 503. Default: 5000. Scripts that keep\nRedis busy are killed (SCRIPT KILL) well before.",
  },
] as const satisfies readonly CliFlag[];

const bridgeCommand: CliCommand = {
  summary:
    "Upstash-REST-compatible server in front of redis-server (spawns one unless --redis-url)",
  usage: [
    "cron-guard bridge [--port 8079] [--host 127.0.0.1] [--token T] [--readonly-token T]",
    "                  [--redis-url redis://... | --cluster redis://h1:p1,redis://h2:p2,...]",
    "                  [--data-dir ./.cron-guard-data | --ephemeral]",
    "                  [--max-body-bytes 1048576] [--max-response-bytes 10485760]",
    "                  [--command-timeout-ms 5000]",
  ].join("\n"),
  options: BRIDGE_FLAGS,
  environment: [
    { name: BRIDGE_ENV.token, description: "The token, when --token is not given." },
    {
      name: BRIDGE_ENV.readonlyToken,
      description: "The read-only token, when --readonly-token is not given.",
    },
    {
      name: BRIDGE_ENV.redisUrl,
      description: "The Redis URL, when --redis-url is not given (keeps its password out of `ps`).",
    },
    {
      name: BRIDGE_ENV.dataDir,
      description: `The data directory, when --data-dir is not given. Default: ./${DEFAULT_DATA_DIR}.`,
    },
  ],
  notes: [
    "Redis ACL: the bridge logs in as cron-guard-bridge (full token) and cron-guard-bridge-ro",
    "(read-only token), which Redis itself stops from SELECT, SWAPDB, MOVE, COPY, MIGRATE,",
    "FLUSHALL, CLIENT and server administration, also inside EVAL and FCALL. To create them on a",
    "Redis where the bridge's user may not, run as an admin (choose the passwords):",
    ...setupLines().map((line) => `  ${line}`),
    "then start the bridge with --redis-url redis://cron-guard-bridge:<password>@host:port.",
    "Passwords are never printed: Redis URLs show *** instead. See docs/bridge.md.",
  ],
  async run(args, io) {
    const env = io.env ?? process.env;
    const values = parseFlags(BRIDGE_FLAGS, args);
    const fromEnv = (name: string) => {
      const value = env[name];
      return value === undefined || value === "" ? undefined : value;
    };
    const redisUrl =
      values["redis-url"] ?? (values.cluster ? undefined : fromEnv(BRIDGE_ENV.redisUrl));
    const spawns = redisUrl === undefined && values.cluster === undefined;
    if (values.ephemeral && values["data-dir"] !== undefined) {
      throw new UsageError("give either --ephemeral or --data-dir, not both");
    }
    if (!spawns && values["data-dir"] !== undefined) {
      throw new UsageError(
        "--data-dir is for the redis-server the bridge spawns; with --redis-url or --cluster, that Redis keeps its own data",
      );
    }
    const dataDir =
      spawns && !values.ephemeral
        ? resolve(values["data-dir"] ?? fromEnv(BRIDGE_ENV.dataDir) ?? DEFAULT_DATA_DIR)
        : undefined;
    const { startBridge } = await loadBridge();
    const bridge = await startBridge({
      port: portOption("--port", values.port ?? "8079"),
      host: values.host ?? "127.0.0.1",
      token: values.token ?? fromEnv(BRIDGE_ENV.token),
      readonlyToken: values["readonly-token"] ?? fromEnv(BRIDGE_ENV.readonlyToken),
      redisUrl,
      cluster: values.cluster?.split(",").map((url) => url.trim()),
      dataDir,
      maxBodyBytes: integerOption("--max-body-bytes", values["max-body-bytes"]),
      maxResponseBytes: integerOption("--max-response-bytes", values["max-response-bytes"]),
      commandTimeoutMs: integerOption("--command-timeout-ms", values["command-timeout-ms"]),
    });
    const source = values.cluster
      ? " (Redis Cluster)"
      : redisUrl
        ? ""
        : " (spawned redis-server, stopped on exit)";
    io.err(`cron-guard bridge: forwarding to ${redactRedisUrl(bridge.redisUrl)}${source}`);
    if (dataDir !== undefined) {
      io.err(
        `cron-guard bridge: data kept in ${dataDir} (AOF, fsync every second; the same --data-dir on the next start has it; --ephemeral for none)`,
      );
    } else if (spawns) {
      io.err(
        "cron-guard bridge: EPHEMERAL: the spawned redis-server keeps nothing; every slot, ledger entry and schedule is gone when the bridge stops (--data-dir <dir> keeps them)",
      );
    }
    io.err(`cron-guard bridge: ${bridge.leastPrivilege.summary}`);
    if (bridge.leastPrivilege.mode === "unconfined") {
      for (const line of bridge.leastPrivilege.setupLines) io.err(`  ${line}`);
    }
    io.out(`UPSTASH_REDIS_REST_URL=${bridge.url}`);
    io.out(`UPSTASH_REDIS_REST_TOKEN=${bridge.token}`);
    return { running: { stop: bridge.close } };
  },
};

/** This package's version, from its package.json (one directory up from src/ and dist/). */
export function packageVersion(): string {
  const text = readFileSync(new URL("../package.json", import.meta.url), "utf8");
  return String((JSON.parse(text) as { version?: unknown }).version ?? "unknown");
}

export type { CliCommand, CliIo, CommandResult } from "./cli/framework.js";

/** Subcommands by name; add one entry to add a subcommand. */
export const commands: Record<string, CliCommand> = {
  bridge: bridgeCommand,
  check: checkCommand,
};

/** Runs one CLI invocation; the caller decides what to do with a running service. */
export function runCli(argv: string[], io: CliIo): Promise<CommandResult> {
  return runCommands("cron-guard", commands, argv, io, packageVersion());
}

if (isEntryPoint(import.meta.url)) {
  runAsProcess("cron-guard", (io) => runCli(process.argv.slice(2), io)).catch((error: unknown) => {
    process.stderr.write(`cron-guard: ${String(error)}\n`);
    process.exit(1);
  });
}
