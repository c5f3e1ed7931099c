import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

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

/** A whole-number flag, or undefined when absent; anything else is a UsageError. */
export function integerOption(
  flag: string,
  value: string | undefined,
  { min = 0, max = Number.MAX_SAFE_INTEGER } = {},
): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got "${value}"`);
  }
  return Number(value);
}

/** A TCP port flag (0 = any free port). */
export function portOption(flag: string, value: string | undefined): number | undefined {
  return integerOption(flag, value, { max: 65_535 });
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_");
}

/** Runs one invocation of `program <command> [args]`; the caller decides what to do with a running service. */
export async function runCommands(
  program: string,
  commands: Readonly<Record<string, CliCommand>>,
  argv: string[],
  io: CliIo,
): Promise<CommandResult> {
  const usage = () =>
    [
      `Usage: ${program} <command> [options]`,
      "",
      "Commands:",
      ...Object.entries(commands).map(([name, command]) => `  ${name.padEnd(8)}${command.summary}`),
    ].join("\n");
  const [name, ...args] = argv;
  if (name === undefined || name === "help" || name === "--help" || name === "-h") {
    (name === undefined ? io.err : io.out)(usage());
    return { exitCode: name === undefined ? 2 : 0 };
  }
  const command = commands[name];
  if (!command) {
    io.err(`${program}: unknown command "${name}"\n\n${usage()}`);
    return { exitCode: 2 };
  }
  if (args.includes("--help") || args.includes("-h")) {
    io.out(`Usage: ${command.usage}`);
    return { exitCode: 0 };
  }
  try {
    return await command.run(args, io);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof UsageError || isParseArgsError(error)) {
      io.err(`${program} ${name}: ${message}\n\nUsage: ${command.usage}`);
      return { exitCode: 2 };
    }
    io.err(`${program} ${name}: ${message}`);
    return { exitCode: 1 };
  }
}

/** Runs `argv` as a process: sets the exit code, or keeps a service running until SIGINT/SIGTERM. */
export async function runAsProcess(
  program: string,
  commands: Readonly<Record<string, CliCommand>>,
  argv: string[],
): Promise<void> {
  const io: CliIo = {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  };
  const result = await runCommands(program, commands, argv, io);
  if ("exitCode" in result) {
    process.exitCode = result.exitCode;
    return;
  }
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    io.err(`${program}: ${signal}, stopping`);
    result.running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        io.err(`${program}: error while stopping: ${String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

/** True when the module at `moduleUrl` is the script Node was started with. */
export function isEntryPoint(moduleUrl: string): boolean {
  const invoked = process.argv[1];
  if (!invoked) return false;
  try {
    return realpathSync(invoked) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}
