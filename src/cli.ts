#!/usr/bin/env node
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { RedisServerNotFoundError, startBridge } from "./bridge/index.js";
import { startCommand } from "./local/command.js";

/** Where a command writes: `out` is for machine-readable lines, `err` for everything else. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

/** A long-running service a command started; stopped on SIGINT/SIGTERM. */
export interface RunningService {
  stop(): Promise<void>;
}

export type CommandResult = { exitCode: number } | { running: RunningService };

export interface CliCommand {
  summary: string;
  usage: string;
  run(args: string[], io: CliIo): Promise<CommandResult>;
}

/** Thrown for bad command-line input; the CLI prints it with the usage and exits 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

const bridgeCommand: CliCommand = {
  summary:
    "Upstash-REST-compatible server in front of redis-server (spawns one unless --redis-url)",
  usage: [
    "cron-guard bridge [--port 8079] [--host 127.0.0.1] [--token T] [--redis-url redis://...]",
    "                  [--max-body-bytes 1048576] [--max-response-bytes 10485760]",
    "                  [--command-timeout-ms 5000]",
  ].join("\n"),
  async run(args, io) {
    const { values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: "string", default: "8079" },
        host: { type: "string", default: "127.0.0.1" },
        token: { type: "string" },
        "redis-url": { type: "string" },
        "max-body-bytes": { type: "string" },
        "max-response-bytes": { type: "string" },
        "command-timeout-ms": { type: "string" },
      },
    });
    const bridge = await startBridge({
      port: integerOption("--port", values.port),
      host: values.host,
      token: values.token,
      redisUrl: values["redis-url"],
      maxBodyBytes: integerOption("--max-body-bytes", values["max-body-bytes"]),
      maxResponseBytes: integerOption("--max-response-bytes", values["max-response-bytes"]),
      commandTimeoutMs: integerOption("--command-timeout-ms", values["command-timeout-ms"]),
    });
    const source = values["redis-url"] ? "" : " (spawned redis-server, stopped on exit)";
    io.err(`cron-guard bridge: forwarding to ${bridge.redisUrl}${source}`);
    io.out(`UPSTASH_REDIS_REST_URL=${bridge.url}`);
    io.out(`UPSTASH_REDIS_REST_TOKEN=${bridge.token}`);
    return { running: { stop: bridge.close } };
  },
};

/** Subcommands by name; add one entry to add a subcommand. */
export const commands: Record<string, CliCommand> = {
  bridge: bridgeCommand,
  start: startCommand,
};

function integerOption(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be a whole number, got "${value}"`);
  return Number(value);
}

function usage(): string {
  const lines = Object.entries(commands).map(
    ([name, command]) => `  ${name.padEnd(8)}${command.summary}`,
  );
  return ["Usage: cron-guard <command> [options]", "", "Commands:", ...lines].join("\n");
}

/** Runs one CLI invocation; the caller decides what to do with a running service. */
export async function runCli(argv: string[], io: CliIo): Promise<CommandResult> {
  const [name, ...args] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    (name === undefined ? io.err : io.out)(usage());
    return { exitCode: name === undefined ? 2 : 0 };
  }
  const command = commands[name];
  if (!command) {
    io.err(`cron-guard: unknown command "${name}"\n\n${usage()}`);
    return { exitCode: 2 };
  }
  if (args.includes("--help") || args.includes("-h")) {
    io.out(`Usage: ${command.usage}`);
    return { exitCode: 0 };
  }
  try {
    return await command.run(args, io);
  } catch (error) {
    if (error instanceof RedisServerNotFoundError) {
      io.err(`cron-guard ${name}: ${error.message}`);
      return { exitCode: 1 };
    }
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof UsageError || isParseArgsError(error)) {
      io.err(`cron-guard ${name}: ${message}\n\nUsage: ${command.usage}`);
      return { exitCode: 2 };
    }
    io.err(`cron-guard ${name}: ${message}`);
    return { exitCode: 1 };
  }
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_");
}

async function main(): Promise<void> {
  const io: CliIo = {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  };
  const result = await runCli(process.argv.slice(2), io);
  if ("exitCode" in result) {
    process.exitCode = result.exitCode;
    return;
  }
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    io.err(`cron-guard: ${signal}, stopping`);
    result.running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        io.err(`cron-guard: error while stopping: ${String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

function isEntryPoint(): boolean {
  const invoked = process.argv[1];
  if (!invoked) return false;
  try {
    return realpathSync(invoked) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main().catch((error: unknown) => {
    process.stderr.write(`cron-guard: ${String(error)}\n`);
    process.exit(1);
  });
}
