/** A request the bridge refuses before touching Redis; answered with 400 `{"error": message}`. */
export class BadRequestError extends Error {
  override readonly name = "BadRequestError";
}

/** A Redis command as sent over the wire: name first, then arguments, all strings. */
export type Command = string[];

/**
 * Commands the bridge refuses, with the reason given in the error. Two groups:
 *
 * - Blocking and connection-state commands: every single command and pipeline shares one Redis
 *   connection, so one of these would stall or reconfigure it for every other caller.
 * - Server administration and commands that reach outside the one database the bridge serves.
 *   Source: Upstash's "Redis API Compatibility" page
 *   (https://upstash.com/docs/redis/overall/rediscompatibility, upstash/docs
 *   redis/overall/rediscompatibility.mdx): its Server group lists only ACL, DBSIZE, FLUSHALL,
 *   FLUSHDB, MONITOR and TIME, its Scripting group only EVAL, EVALSHA and SCRIPT EXISTS/LOAD/FLUSH,
 *   and Cluster is unsupported, so hosted Upstash refuses CONFIG, DEBUG, SHUTDOWN, SAVE, MIGRATE,
 *   MOVE, SWAPDB, MODULE, LATENCY, SLOWLOG, SCRIPT KILL, ... as well. Where this bridge is stricter
 *   than Upstash (ACL, FLUSHALL, FUNCTION LOAD), the reason says why.
 */
const REFUSED = new Map<string, string>();
function refuse(reason: string, names: string[]): void {
  for (const name of names) REFUSED.set(name, reason);
}
refuse("blocks the connection every request shares", [
  "BLPOP",
  "BRPOP",
  "BRPOPLPUSH",
  "BLMOVE",
  "BLMPOP",
  "BZPOPMIN",
  "BZPOPMAX",
  "BZMPOP",
  "WAIT",
  "WAITAOF",
]);
refuse("changes the state of the connection every request shares", [
  "SUBSCRIBE",
  "PSUBSCRIBE",
  "SSUBSCRIBE",
  "UNSUBSCRIBE",
  "PUNSUBSCRIBE",
  "SUNSUBSCRIBE",
  "MONITOR",
  "SELECT",
  "AUTH",
  "HELLO",
  "QUIT",
  "RESET",
  "CLIENT",
  "MULTI",
  "EXEC",
  "DISCARD",
  "WATCH",
  "UNWATCH",
  "READONLY",
  "READWRITE",
  "ASKING",
]);
refuse("server administration", [
  // CONFIG SET can lock the bridge out (requirepass), starve Redis (maxmemory) or write files
  // anywhere (dir + dbfilename + SAVE). CONFIG GET goes with it: nothing here needs it.
  "CONFIG",
  "DEBUG",
  "SHUTDOWN",
  // SAVE blocks the server; BGSAVE and BGREWRITEAOF fork it (up to twice the memory).
  "SAVE",
  "BGSAVE",
  "BGREWRITEAOF",
  "REPLICAOF",
  "SLAVEOF",
  "SYNC",
  "PSYNC",
  "REPLCONF",
  "FAILOVER",
  // Upstash offers ACL for its own users; here ACL SETUSER/DELUSER could disable the user the
  // bridge itself logs in as, and ACL SAVE/LOAD touch files on the server.
  "ACL",
  // MODULE LOAD runs arbitrary native code inside redis-server.
  "MODULE",
  "CLUSTER",
  "RESTORE-ASKING",
  // LATENCY RESET / SLOWLOG RESET clear the operator's diagnostics; SLOWLOG GET shows other
  // clients' command arguments.
  "LATENCY",
  "SLOWLOG",
  "PFDEBUG",
  "PFSELFTEST",
]);
refuse("reaches outside the database this bridge serves", [
  // MIGRATE connects to any host from inside Redis and blocks the whole server while it waits.
  "MIGRATE",
  "MOVE",
  "SWAPDB",
]);
// FLUSHALL is not refused: an Upstash database has one logical database, so the bridge serves
// FLUSHALL as FLUSHDB of the database it serves (see serveAs); databases 1-15 of a shared
// redis-server stay as they are.

/** Subcommands refused where the rest of the command is fine; keyed by "COMMAND SUBCOMMAND". */
const REFUSED_SUBCOMMANDS = new Map<string, string>([
  // The bridge sends SCRIPT KILL itself, on its own connection, when a script keeps Redis busy.
  ["SCRIPT KILL", "the bridge kills scripts that keep Redis busy by itself"],
  ["SCRIPT DEBUG", "changes the state of the connection every request shares"],
  ["FUNCTION KILL", "the bridge kills functions that keep Redis busy by itself"],
  // FUNCTION LOAD/DELETE/FLUSH/RESTORE are served, as Upstash does: a function runs as the
  // bridge's ACL user whoever loaded it, so it can do no more than EVAL (see acl.ts).
]);

const HAS_REFUSED_SUBCOMMANDS = new Set(
  [...REFUSED_SUBCOMMANDS.keys()].map((key) => key.split(" ")[0] as string),
);

function refusal(what: string, reason: string): BadRequestError {
  return new BadRequestError(`ERR command not supported by this bridge: ${what} (${reason})`);
}

const BLOCK_WHEN_ARGUMENT = new Set(["XREAD", "XREADGROUP"]);

/** What {@link parseCommand} checks besides the shape of a command. */
export interface CommandLimits {
  /**
   * Largest string value a command may create by offset (SETRANGE, SETBIT, BITFIELD), in bytes.
   * Such a command is refused before it runs: a few bytes of request would otherwise make Redis
   * allocate up to 512 MiB. Default: {@link DEFAULT_MAX_VALUE_BYTES}.
   */
  maxValueBytes?: number;
  /**
   * Why scripts (EVAL, EVALSHA, FCALL and their _RO forms) are refused, when they are: the Redis
   * user the bridge was given is not confined by ACL (see acl.ts). Default: scripts run.
   */
  scriptsRefused?: string;
}

/** 10 MiB, Upstash's max request size (which also bounds what one request can read). */
export const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;

/** The bridge's default response cap, so any value it lets grow can be read back. */
export const DEFAULT_MAX_VALUE_BYTES = DEFAULT_MAX_RESPONSE_BYTES;

/**
 * Validates one command from a JSON body. Strings pass, numbers and booleans become strings
 * (Upstash clients send numbers as JSON numbers); anything else is refused naming the argument.
 * @param where prefix for error messages, e.g. "command 3" inside a pipeline.
 */
export function parseCommand(
  value: unknown,
  where = "command",
  limits: CommandLimits = {},
): Command {
  if (!Array.isArray(value)) {
    throw new BadRequestError(`${where} must be a JSON array like ["SET","key","value"]`);
  }
  if (value.length === 0) throw new BadRequestError(`${where} is empty`);
  const [name] = value;
  if (typeof name !== "string" || name.length === 0) {
    throw new BadRequestError(`${where}: the command name (argument 0) must be a non-empty string`);
  }
  // A plain loop: this runs for every command of every request.
  const command: Command = new Array(value.length);
  for (let index = 0; index < value.length; index += 1) {
    const argument: unknown = value[index];
    if (typeof argument === "string") command[index] = argument;
    else if (typeof argument === "number" || typeof argument === "boolean") {
      command[index] = String(argument);
    } else {
      throw new BadRequestError(
        `${where}: argument ${index} must be a string, number or boolean, got ${describe(argument)}`,
      );
    }
  }
  const upperName = name.toUpperCase();
  assertSupported(command, upperName);
  assertWithinLimits(command, limits.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES, upperName);
  if (limits.scriptsRefused !== undefined && SCRIPTS.has(upperName)) {
    throw refusal(upperName, limits.scriptsRefused);
  }
  return command;
}

/** Commands that run a script or function: each can keep Redis busy until it is killed. */
const SCRIPTS = new Set(["EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"]);

/**
 * Scripts a transaction may hold. Redis runs EXEC to the end once it started: a script in it
 * can only be stopped by SCRIPT KILL after `busy-reply-threshold`, and then the next script
 * starts, so N endless scripts keep Redis busy N times that long. With at most one, a
 * transaction keeps Redis busy no longer than one script the bridge kills.
 */
export const MAX_TRANSACTION_SCRIPTS = 1;

/** Refuses a `/multi-exec` body with more than {@link MAX_TRANSACTION_SCRIPTS} scripts. */
export function assertTransactionBounded(commands: Command[]): void {
  let scripts = 0;
  for (const command of commands) {
    if (SCRIPTS.has((command[0] as string).toUpperCase())) scripts += 1;
  }
  if (scripts > MAX_TRANSACTION_SCRIPTS) {
    throw new BadRequestError(
      `ERR a transaction may hold at most ${MAX_TRANSACTION_SCRIPTS} script or function call (EVAL, EVALSHA, FCALL and their _RO forms), this one holds ${scripts}: Redis cannot stop a transaction midway, so each of them could keep it busy until the bridge kills it. Send them in a pipeline or in separate transactions`,
    );
  }
}

/**
 * COPY within the database, as a script the bridge's ACL user may run (it may not COPY: ACL
 * cannot refuse only COPY's DB option). Same replies as COPY: 1 copied, 0 when the source is
 * missing or the destination exists without REPLACE; the expiry is kept exactly (ABSTTL).
 */
const COPY_SCRIPT = [
  "local replace = false",
  "for _, option in ipairs(ARGV) do",
  "  if string.upper(option) == 'REPLACE' then replace = true",
  "  else return redis.error_reply('ERR syntax error') end",
  "end",
  "if KEYS[1] == KEYS[2] then return redis.error_reply('ERR source and destination objects are the same') end",
  "local payload = redis.call('DUMP', KEYS[1])",
  "if not payload then return 0 end",
  "if not replace and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end",
  "local at = redis.call('PEXPIRETIME', KEYS[1])",
  "if at < 0 then at = 0 end",
  "redis.call('RESTORE', KEYS[2], at, payload, 'REPLACE', 'ABSTTL')",
  "return 1",
].join("\n");

/**
 * The command the bridge sends for `command`: FLUSHALL as FLUSHDB (the one database this bridge
 * serves, as on Upstash), COPY without DB as {@link COPY_SCRIPT}; anything else as it is. Runs
 * after the read-only check, so refusals name the command the client sent.
 */
export function serveAs(command: Command): Command {
  const name = command[0] as string;
  if (name.length === 8 && name.toUpperCase() === "FLUSHALL") {
    return ["FLUSHDB", ...command.slice(1)];
  }
  if (name.length === 4 && command.length >= 3 && name.toUpperCase() === "COPY") {
    return ["EVAL", COPY_SCRIPT, "2", ...command.slice(1)];
  }
  return command;
}

/** Validates a `/pipeline` or `/multi-exec` body: a non-empty array of commands. */
export function parseCommandList(value: unknown, limits: CommandLimits = {}): Command[] {
  if (!Array.isArray(value)) {
    throw new BadRequestError('body must be a JSON array of commands like [["SET","k","v"]]');
  }
  if (value.length === 0) throw new BadRequestError("body must contain at least one command");
  const commands: Command[] = new Array(value.length);
  for (let index = 0; index < value.length; index += 1) {
    commands[index] = parseCommand(value[index], `command ${index}`, limits);
  }
  return commands;
}

/**
 * Refuses the commands in {@link REFUSED} and {@link REFUSED_SUBCOMMANDS}, XREAD/XREADGROUP with
 * BLOCK and COPY with DB, as `ERR command not supported by this bridge: NAME (reason)`.
 */
export function assertSupported(command: Command, name = (command[0] ?? "").toUpperCase()): void {
  const reason = REFUSED.get(name);
  if (reason) throw refusal(name, reason);
  if (command.length > 1 && HAS_REFUSED_SUBCOMMANDS.has(name)) {
    const subcommand = `${name} ${(command[1] as string).toUpperCase()}`;
    const subReason = REFUSED_SUBCOMMANDS.get(subcommand);
    if (subReason) throw refusal(subcommand, subReason);
  }
  if (BLOCK_WHEN_ARGUMENT.has(name) && hasOption(command, 1, "BLOCK")) {
    throw refusal(`${name} BLOCK`, "blocks the connection every request shares");
  }
  if (name === "COPY" && hasOption(command, 3, "DB")) {
    throw refusal("COPY ... DB", "reaches outside the database this bridge serves");
  }
}

/** Whether any argument from index `from` on is `option`, case-insensitively. */
function hasOption(command: Command, from: number, option: string): boolean {
  for (let i = from; i < command.length; i += 1) {
    if ((command[i] as string).toUpperCase() === option) return true;
  }
  return false;
}

/**
 * Refuses SETRANGE, SETBIT and BITFIELD SET/INCRBY whose offset would grow a string past
 * `maxValueBytes`, before anything runs. (APPEND grows a value by at most one request body; a
 * redis-server the bridge spawns also has `proto-max-bulk-len` set to the same bound.)
 */
export function assertWithinLimits(
  command: Command,
  maxValueBytes: number,
  name = (command[0] ?? "").toUpperCase(),
): void {
  let needed = 0;
  if (name === "SETRANGE") {
    needed = integerArgument(command[2]) + Buffer.byteLength(command[3] ?? "", "utf8");
  } else if (name === "SETBIT") {
    needed = Math.floor(integerArgument(command[2]) / 8) + 1;
  } else if (name === "BITFIELD") {
    for (let i = 2; i < command.length; i += 1) {
      const op = (command[i] ?? "").toUpperCase();
      if (op !== "SET" && op !== "INCRBY") continue;
      needed = Math.max(needed, bitfieldBytes(command[i + 1], command[i + 2]));
    }
  }
  if (needed > maxValueBytes) {
    throw new BadRequestError(
      `ERR max single record size exceeded: ${name} would make a value of ${needed} bytes, more than this bridge's limit of ${maxValueBytes}`,
    );
  }
}

/** A non-negative integer argument, or 0 if it is not one (Redis then answers its own error). */
function integerArgument(text: string | undefined): number {
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : 0;
}

/** Bytes a BITFIELD `type offset` pair needs, e.g. ("u8", "#3") -> 4, ("i5", "100") -> 14. */
function bitfieldBytes(type: string | undefined, offset: string | undefined): number {
  const width = /^[iu](\d+)$/i.exec(type ?? "")?.[1];
  if (width === undefined || offset === undefined) return 0;
  const bits = Number(width);
  const start = offset.startsWith("#")
    ? integerArgument(offset.slice(1)) * bits
    : integerArgument(offset);
  return Math.ceil((start + bits) / 8);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : typeof value;
}

/** JSON-ready reply value. */
export type Json = null | number | string | Json[];

/**
 * Turns a raw RESP2 reply into the JSON Upstash sends. Bulk strings arrive as Buffers, simple
 * strings as JS strings. With `base64` every string is base64 of its bytes (recursively), except a
 * top-level simple string "OK", which @upstash/redis's `decode` keeps verbatim. Errors nested in
 * arrays (e.g. from a Lua table) become their message string.
 */
export function encodeReply(reply: unknown, { base64 }: { base64: boolean }): Json {
  if (base64 && reply === "OK") return "OK";
  return encodeValue(reply, base64);
}

function encodeValue(value: unknown, base64: boolean): Json {
  if (value === null || value === undefined) return null;
  if (typeof value === "number") return Number.isFinite(value) ? value : String(value);
  if (Array.isArray(value)) return value.map((item: unknown) => encodeValue(item, base64));
  if (value instanceof Uint8Array) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return base64 ? bytes.toString("base64") : bytes.toString("utf8");
  }
  const text = value instanceof Error ? value.message : String(value);
  return base64 ? Buffer.from(text, "utf8").toString("base64") : text;
}
