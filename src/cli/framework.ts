import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

/** Where a command writes: `out` is for machine-readable lines, `err` for everything else. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  /** Environment variables the command reads. Default: `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The directory relative paths are read from. Default: `process.cwd()`. */
  cwd?: string;
}

/** A long-running service a command started; stopped on SIGINT/SIGTERM. */
export interface RunningService {
  stop(): Promise<void>;
}

export type CommandResult = { exitCode: number } | { running: RunningService };

/** One environment variable, as `help <command>` describes it. */
export interface CliOptionHelp {
  /** e.g. `CRON_GUARD_BRIDGE_TOKEN` */
  name: string;
  description: string;
}

/**
 * One flag of a command. The same list parses the command line ({@link parseFlags}) and is printed
 * by `help <command>`, so no flag can be accepted without being described, or described without
 * being accepted.
 */
export interface CliFlag {
  /** The long name without dashes: `port` for `--port`. */
  name: string;
  /** The placeholder of its value, `n` for `--port <n>`; absent for a switch (`--ephemeral`). */
  value?: string;
  description: string;
}

export interface CliCommand {
  summary: string;
  usage: string;
  /** Every flag; parsed by {@link parseFlags}, printed by `help <command>` and `<command> --help`. */
  options?: readonly CliFlag[];
  /** Environment variables the command reads, described. */
  environment?: CliOptionHelp[];
  /** More text after the flags. */
  notes?: string[];
  run(args: string[], io: CliIo): Promise<CommandResult>;
}

/** `--port <n>` or `--ephemeral`, as help and error messages spell a flag. */
export function flagSpelling(flag: CliFlag): string {
  return flag.value === undefined ? `--${flag.name}` : `--${flag.name} <${flag.value}>`;
}

const HELP_FLAG: CliOptionHelp = { name: "--help, -h", description: "Print this help and exit." };

/** What `help <command>` and `<command> --help` print. */
export function commandHelp(command: CliCommand): string {
  const section = (title: string, entries: readonly CliOptionHelp[] | undefined) => {
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
    ...section("Options:", [
      ...(command.options ?? []).map((flag) => ({
        name: flagSpelling(flag),
        description: flag.description,
      })),
      HELP_FLAG,
    ]),
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

/** What {@link parseFlags} gives: a string (or undefined) per flag with a value, a boolean per switch. */
export type FlagValues<T extends readonly CliFlag[]> = {
  [F in T[number] as F["name"]]: F extends { value: string } ? string | undefined : boolean;
};

/**
 * Parses `args` against a command's flags (no positionals). A mistake is a UsageError that names
 * the bad flag and lists the valid ones, e.g. `unknown option "--bogus"; the options are --port <n>, --exit`.
 */
export function parseFlags<const T extends readonly CliFlag[]>(
  flags: T,
  args: readonly string[],
): FlagValues<T> {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const flag of flags) {
    options[flag.name] = { type: flag.value === undefined ? "boolean" : "string" };
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: [...args], options, strict: true, allowPositionals: false }));
  } catch (error) {
    throw isParseArgsError(error) ? parseArgsUsageError(error as Error, flags) : error;
  }
  for (const flag of flags) {
    if (flag.value === undefined) values[flag.name] ??= false;
  }
  return values as FlagValues<T>;
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_");
}

/** node:util's parseArgs error, reworded to name the flag and list the valid ones. */
function parseArgsUsageError(error: Error, flags: readonly CliFlag[]): UsageError {
  const quoted = /'([^']*)'/.exec(error.message)?.[1];
  const valid =
    flags.length === 0
      ? "it takes no options"
      : `the options are ${flags.map(flagSpelling).join(", ")} (--help describes each)`;
  const code = (error as { code?: unknown }).code;
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && quoted !== undefined) {
    return new UsageError(`unknown option "${quoted}"; ${valid}`, { cause: error });
  }
  if (code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL" && quoted !== undefined) {
    return new UsageError(`unexpected argument "${quoted}" (only --flags); ${valid}`, {
      cause: error,
    });
  }
  const flag = flags.find((candidate) => quoted?.startsWith(`--${candidate.name}`));
  if (flag !== undefined && /argument missing/.test(error.message)) {
    return new UsageError(`--${flag.name} needs a value: ${flagSpelling(flag)}`, { cause: error });
  }
  if (flag !== undefined && /does not take an argument/.test(error.message)) {
    return new UsageError(`--${flag.name} is a switch and takes no value`, { cause: error });
  }
  return new UsageError(error.message, { cause: error });
}

/**
 * Runs one command as `label` (`cron-guard bridge`, `npm start`): `--help`/`-h` anywhere prints its
 * help; a UsageError is printed with the usage (exit 2), any other error by its message (exit 1).
 */
export async function runCommand(
  label: string,
  command: CliCommand,
  args: readonly string[],
  io: CliIo,
): Promise<CommandResult> {
  if (args.includes("--help") || args.includes("-h")) {
    io.out(commandHelp(command));
    return { exitCode: 0 };
  }
  try {
    return await command.run([...args], io);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof UsageError || isParseArgsError(error)) {
      io.err(`${label}: ${message}\n\nUsage: ${command.usage}`);
      return { exitCode: 2 };
    }
    io.err(`${label}: ${message}`);
    return { exitCode: 1 };
  }
}

/** What prints the version in place of a command: `--version`, `-V`, `-v` or `version`. */
export const VERSION_FLAGS: readonly string[] = ["--version", "-V", "-v", "version"];

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
      `Run \`${program} help <command>\` or \`${program} <command> --help\` for its options.`,
      ...(version === undefined ? [] : [`\`${program} --version\` (or -v) prints the version.`]),
    ].join("\n");
  const [name, ...args] = argv;
  if (version !== undefined && name !== undefined && VERSION_FLAGS.includes(name)) {
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
  return runCommand(`${program} ${name}`, command, args, io);
}

/**
 * Runs one invocation as this process: sets the exit code, or keeps a service running until
 * SIGINT/SIGTERM. `program` prefixes what it prints about stopping.
 */
export async function runAsProcess(
  program: string,
  run: (io: CliIo) => Promise<CommandResult>,
): Promise<void> {
  const io: CliIo = {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  };
  const result = await run(io);
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
