/** A request the bridge refuses before touching Redis; answered with 400 `{"error": message}`. */
export class BadRequestError extends Error {
  override readonly name = "BadRequestError";
}

/** A Redis command as sent over the wire: name first, then arguments, all strings. */
export type Command = string[];

const BLOCKING_OR_STATEFUL = new Set([
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
  "SYNC",
  "PSYNC",
  "REPLCONF",
  "SHUTDOWN",
  "DEBUG",
  "REPLICAOF",
  "SLAVEOF",
]);

const BLOCK_WHEN_ARGUMENT = new Set(["XREAD", "XREADGROUP"]);

/**
 * Validates one command from a JSON body. Strings pass, numbers and booleans become strings
 * (Upstash clients send numbers as JSON numbers); anything else is refused naming the argument.
 * @param where prefix for error messages, e.g. "command 3" inside a pipeline.
 */
export function parseCommand(value: unknown, where = "command"): Command {
  if (!Array.isArray(value)) {
    throw new BadRequestError(`${where} must be a JSON array like ["SET","key","value"]`);
  }
  if (value.length === 0) throw new BadRequestError(`${where} is empty`);
  const [name] = value;
  if (typeof name !== "string" || name.length === 0) {
    throw new BadRequestError(`${where}: the command name (argument 0) must be a non-empty string`);
  }
  const command = value.map((argument: unknown, index) => {
    if (typeof argument === "string") return argument;
    if (typeof argument === "number" || typeof argument === "boolean") return String(argument);
    throw new BadRequestError(
      `${where}: argument ${index} must be a string, number or boolean, got ${describe(argument)}`,
    );
  });
  assertSupported(command);
  return command;
}

/** Validates a `/pipeline` or `/multi-exec` body: a non-empty array of commands. */
export function parseCommandList(value: unknown): Command[] {
  if (!Array.isArray(value)) {
    throw new BadRequestError('body must be a JSON array of commands like [["SET","k","v"]]');
  }
  if (value.length === 0) throw new BadRequestError("body must contain at least one command");
  return value.map((command: unknown, index) => parseCommand(command, `command ${index}`));
}

/**
 * Refuses commands that block, change connection state or stop the server: the bridge shares
 * one connection between all requests, so one of these would break every other caller.
 */
export function assertSupported(command: Command): void {
  const name = (command[0] ?? "").toUpperCase();
  const blocks =
    BLOCKING_OR_STATEFUL.has(name) ||
    (BLOCK_WHEN_ARGUMENT.has(name) && command.some((arg) => arg.toUpperCase() === "BLOCK"));
  if (blocks) throw new BadRequestError(`${name} is not supported by this bridge`);
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
