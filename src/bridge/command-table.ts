import { BadRequestError, type Command } from "./protocol.js";

/**
 * What the bridge needs to know about commands, read once from the Redis it fronts (`COMMAND`),
 * so that it agrees with that server's version: which commands only read (for the read-only
 * token) and where a command's first key is (for routing in a Redis Cluster).
 */
export interface CommandTable {
  /** Lower-case names, and `name|subcommand` for container commands, that may run read-only. */
  readonly readOnly: ReadonlySet<string>;
  /** Lower-case name -> index of the first key argument (0: none or movable). */
  readonly firstKeyIndex: ReadonlyMap<string, number>;
}

/** Upstash's text for a command a read-only token may not run (Redis's ACL NOPERM reply). */
export function noPermission(name: string): BadRequestError {
  return new BadRequestError(
    `NOPERM this user has no permissions to run the '${name.toLowerCase()}' command or its subcommand`,
  );
}

/**
 * Parses a RESP2 `COMMAND` reply. A command may run read-only if Redis flags it `readonly` and
 * not `write`, or it is in the `@connection` category (PING, ECHO); EVAL, EVALSHA, FCALL,
 * SCRIPT LOAD/FLUSH and PUBLISH are not read-only (EVAL_RO, EVALSHA_RO, FCALL_RO are).
 */
export function parseCommandTable(reply: unknown): CommandTable {
  const readOnly = new Set<string>();
  const firstKeyIndex = new Map<string, number>();
  const visit = (entry: unknown) => {
    if (!Array.isArray(entry)) return;
    const [name, , flags, firstKey, , , categories, , , subcommands] = entry as unknown[];
    const text = String(name).toLowerCase();
    const flagList = Array.isArray(flags) ? flags.map((flag) => String(flag)) : [];
    const categoryList = Array.isArray(categories) ? categories.map((c) => String(c)) : [];
    const reads = flagList.includes("readonly") || categoryList.includes("@connection");
    if (reads && !flagList.includes("write")) readOnly.add(text);
    if (!text.includes("|")) firstKeyIndex.set(text, Number(firstKey) || 0);
    if (Array.isArray(subcommands)) for (const sub of subcommands) visit(sub);
  };
  if (Array.isArray(reply)) for (const entry of reply) visit(entry);
  return { readOnly, firstKeyIndex };
}

/** Throws Upstash's NOPERM error unless `command` may run with the read-only token. */
export function assertReadOnly(command: Command, table: CommandTable): void {
  const name = (command[0] ?? "").toLowerCase();
  if (table.readOnly.has(name)) return;
  const sub = command[1];
  if (sub !== undefined && table.readOnly.has(`${name}|${sub.toLowerCase()}`)) return;
  throw noPermission(name);
}

const NUMKEYS_AT_2 = new Set(["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"]);
const NUMKEYS_AT_1 = new Set([
  "zunion",
  "zinter",
  "zdiff",
  "zintercard",
  "sintercard",
  "lmpop",
  "zmpop",
  "blmpop",
  "bzmpop",
]);

/**
 * The first key of `command`, for routing in a cluster; undefined for keyless commands (any
 * node answers them; a wrong guess is corrected by Redis's MOVED redirect).
 */
export function firstKey(command: Command, table: CommandTable): string | undefined {
  const name = (command[0] ?? "").toLowerCase();
  const index = table.firstKeyIndex.get(name) ?? 0;
  if (index > 0) return command[index];
  if (NUMKEYS_AT_2.has(name)) return Number(command[2]) > 0 ? command[3] : undefined;
  if (NUMKEYS_AT_1.has(name)) return Number(command[1]) > 0 ? command[2] : undefined;
  if (name === "xread" || name === "xreadgroup") {
    const streams = command.findIndex((arg, i) => i > 0 && arg.toUpperCase() === "STREAMS");
    return streams > 0 ? command[streams + 1] : undefined;
  }
  return undefined;
}
