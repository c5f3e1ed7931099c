import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Where a command writes: `out` is for machine-readable lines, `err` for everything else. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  /** Environment variables the command reads. Default: `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** A long-running service a command started; stopped on SIGINT/SIGTERM. */
export interface RunningService {
  stop(): Promise<void>;
}

export type CommandResult = { exitCode: number } | { running: RunningService };

/** One flag or environment variable, as `help <command>` describes it. */
export interface CliOptionHelp {
  /** e.g. `--port <n>` or `CRON_GUARD_BRIDGE_TOKEN` */
  name: string;
  description: string;
}

export interface CliCommand {
  summary: string;
  usage: string;
  /** Every flag, described; printed by `help <command>` and `<command> --help`. */
  options?: CliOptionHelp[];
  /** Environment variables the command reads, described. */
  environment?: CliOptionHelp[];
  /** More text after the flags. */
  notes?: string[];
  run(args: string[], io: CliIo): Promise<CommandResult>;
}

/** What `help <command>` and `<command> --help` print. */
export function commandHelp(command: CliCommand): string {
  const section = (title: string, entries: CliOptionHelp[] | undefined) => {
    if (!entries || entries.length === 0) return [];
    const width = Math.max(...entries.map((entry) => entry.name.length)) + 2;
    return [
      "",
      title,
      ...entries.map((entry) => {
        const [first, ...rest] = entry.description.split("\n");
        return [
          `  ${entry.name.padEnd(width)}${first}`,
          ...rest.map((line) => `  ${" ".repeat(width)}${line}`),
        ].join("\n");
      }),
    ];
  };
  return [
    `Usage: ${command.usage}`,
    "",
    command.summary,
    ...section("Options:", command.options),
    ...section("Environment:", command.environment),
    ...(command.notes && command.notes.length > 0 ? ["", ...command.notes] : []),
  ].join("\n");
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
  version?: string,
): Promise<CommandResult> {
  const usage = () =>
    [
      `Usage: ${program} <command> [options]`,
      "",
      "Commands:",
      ...Object.entries(commands).map(([name, command]) => `  ${name.padEnd(8)}${command.summary}`),
      "",
      `Run \`${program} help <command>\` for its options.${version === undefined ? "" : ` \`${program} --version\` prints the version.`}`,
    ].join("\n");
  const [name, ...args] = argv;
  if (version !== undefined && (name === "--version" || name === "-V" || name === "version")) {
    io.out(`${program} ${version}`);
    return { exitCode: 0 };
  }
  if (name === "help" && args[0] !== undefined) {
    const command = commands[args[0]];
    if (!command) {
      io.err(`${program}: unknown command "${args[0]}"\n\n${usage()}`);
      return { exitCode: 2 };
    }
    io.out(commandHelp(command));
    return { exitCode: 0 };
  }
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
    io.out(commandHelp(command));
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
  version?: string,
): Promise<void> {
  const io: CliIo = {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  };
  const result = await runCommands(program, commands, argv, io, version);
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
