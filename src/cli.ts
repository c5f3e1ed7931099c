#!/usr/bin/env node
import { parseArgs } from "node:util";
import {
  type CliCommand,
  type CliIo,
  type CommandResult,
  integerOption,
  isEntryPoint,
  portOption,
  runAsProcess,
  runCommands,
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

const bridgeCommand: CliCommand = {
  summary:
    "Upstash-REST-compatible server in front of redis-server (spawns one unless --redis-url)",
  usage: [
    "cron-guard bridge [--port 8079] [--host 127.0.0.1] [--token T] [--readonly-token T]",
    "                  [--redis-url redis://... | --cluster redis://h1:p1,redis://h2:p2,...]",
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
        "readonly-token": { type: "string" },
        "redis-url": { type: "string" },
        cluster: { type: "string" },
        "max-body-bytes": { type: "string" },
        "max-response-bytes": { type: "string" },
        "command-timeout-ms": { type: "string" },
      },
    });
    const { startBridge, redactRedisUrl } = await loadBridge();
    const bridge = await startBridge({
      port: portOption("--port", values.port),
      host: values.host,
      token: values.token,
      readonlyToken: values["readonly-token"],
      redisUrl: values["redis-url"],
      cluster: values.cluster?.split(",").map((url) => url.trim()),
      maxBodyBytes: integerOption("--max-body-bytes", values["max-body-bytes"]),
      maxResponseBytes: integerOption("--max-response-bytes", values["max-response-bytes"]),
      commandTimeoutMs: integerOption("--command-timeout-ms", values["command-timeout-ms"]),
    });
    const source = values.cluster
      ? " (Redis Cluster)"
      : values["redis-url"]
        ? ""
        : " (spawned redis-server, stopped on exit)";
    io.err(`cron-guard bridge: forwarding to ${redactRedisUrl(bridge.redisUrl)}${source}`);
    io.err(`cron-guard bridge: ${bridge.leastPrivilege.summary}`);
    if (bridge.leastPrivilege.mode === "unconfined") {
      for (const line of bridge.leastPrivilege.setupLines) io.err(`  ${line}`);
    }
    io.out(`UPSTASH_REDIS_REST_URL=${bridge.url}`);
    io.out(`UPSTASH_REDIS_REST_TOKEN=${bridge.token}`);
    return { running: { stop: bridge.close } };
  },
};

export type { CliCommand, CliIo, CommandResult } from "./cli/framework.js";

/** Subcommands by name; add one entry to add a subcommand. */
export const commands: Record<string, CliCommand> = {
  bridge: bridgeCommand,
};

/** Runs one CLI invocation; the caller decides what to do with a running service. */
export function runCli(argv: string[], io: CliIo): Promise<CommandResult> {
  return runCommands("cron-guard", commands, argv, io);
}

if (isEntryPoint(import.meta.url)) {
  runAsProcess("cron-guard", commands, process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`cron-guard: ${String(error)}\n`);
    process.exit(1);
  });
}
