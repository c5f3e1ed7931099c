import { randomBytes } from "node:crypto";
import { openWithRetry } from "./connections.js";
import { RedisUnavailableError } from "./errors.js";
import { ReplyError } from "./resp.js";
import { RespConnection } from "./resp-connection.js";

const RespConnectionOpen = (redisUrl: string, timeoutMs: number) =>
  RespConnection.open(redisUrl, timeoutMs);

/**
 * Least privilege enforced by Redis: the bridge's connections log in as Redis ACL users that
 * cannot do what the bridge refuses, so Redis refuses it inside EVAL, EVAL_RO, FCALL and
 * transactions too (ACL applies inside scripts). The bridge's own top-level checks stay the
 * fast first answer; the ACL is what holds when a script calls `redis.call`.
 */

/** The ACL user behind the full token. */
export const BRIDGE_USER = "cron-guard-bridge";
/** The ACL user behind the read-only token. */
export const BRIDGE_READONLY_USER = "cron-guard-bridge-ro";

/**
 * What neither user may run, as ACL rules. Per command, not per argument: ACL cannot tell
 * `COPY a b` from `COPY a b DB 2`, so COPY is denied here and the bridge serves a top-level
 * `COPY src dst [REPLACE]` as a script of DUMP/RESTORE within the database (see
 * `serveAs` in protocol.ts); a script's own `redis.call('COPY', ...)` is refused.
 *
 * - `-@admin`: CONFIG, DEBUG, SHUTDOWN, SAVE/BGSAVE/BGREWRITEAOF, REPLICAOF/SLAVEOF, SYNC/PSYNC,
 *   REPLCONF, FAILOVER, ACL, MODULE, CLUSTER (its changing subcommands), LATENCY, SLOWLOG,
 *   MONITOR, PFDEBUG, PFSELFTEST, CLIENT KILL/LIST/PAUSE..., LASTSAVE, ROLE.
 * - other databases: SELECT, SWAPDB, MOVE, COPY; FLUSHALL (served as FLUSHDB at the top level).
 * - MIGRATE: sends keys to any host and blocks the server while it waits.
 * - CLIENT (all of it: INFO and LIST show other clients), RESTORE-ASKING, SCRIPT DEBUG.
 *
 * SCRIPT KILL and FUNCTION KILL stay allowed: no script can call them, the bridge refuses them
 * at the top level, and its busy-script killer needs them when it runs as a user like these.
 */
export const DENIED_RULES: readonly string[] = [
  "-@admin",
  "-select",
  "-swapdb",
  "-move",
  "-copy",
  "-migrate",
  "-flushall",
  "-client",
  "-restore-asking",
  "-script|debug",
];

/**
 * Commands the probe of a given user asks Redis about (`redis.acl_check_cmd`, which checks the
 * arity too, hence the placeholder arguments): label, then the command as sent.
 */
const PROBED: ReadonlyArray<readonly [string, string]> = [
  ["SELECT", "select 0"],
  ["SWAPDB", "swapdb 0 1"],
  ["MOVE", "move k 1"],
  ["COPY", "copy a b"],
  ["MIGRATE", "migrate h 1 k 0 1"],
  ["FLUSHALL", "flushall"],
  ["CONFIG SET", "config set a b"],
  ["CONFIG GET", "config get a"],
  ["SHUTDOWN", "shutdown"],
  ["DEBUG", "debug x"],
  ["SAVE", "save"],
  ["BGSAVE", "bgsave"],
  ["REPLICAOF", "replicaof h 1"],
  ["ACL SETUSER", "acl setuser u"],
  ["MODULE LOAD", "module load p"],
  ["SLOWLOG GET", "slowlog get"],
  ["CLIENT LIST", "client list"],
  ["MONITOR", "monitor"],
  ["FAILOVER", "failover"],
];

/** Rules (after the password) of each user; keys and channels: all of them. */
export function aclRules(role: "full" | "readonly"): string[] {
  const commands =
    role === "full"
      ? ["+@all"]
      : ["-@all", "+@read", "+@connection", "+eval_ro", "+evalsha_ro", "+fcall_ro", "-@write"];
  return ["~*", "&*", ...commands, ...DENIED_RULES];
}

/** What the bridge found out about the Redis user it was given, and what it does about it. */
export interface LeastPrivilege {
  /**
   * - `created`: the bridge created (or updated) its ACL users and logs in as them, with random
   *   passwords of its own (never printed; removed again on close when it did not spawn Redis).
   * - `confined`: the given user could not create users, but Redis already refuses it what
   *   the bridge refuses (e.g. it is the operator's `cron-guard-bridge` user); both tokens use it.
   * - `unconfined`: neither; the bridge refuses scripts (EVAL, FCALL, ...) until an operator
   *   runs {@link setupLines} and restarts it with that user.
   * - `unmanaged`: Redis Cluster; the bridge logs in as the given users and manages no ACL.
   */
  mode: "created" | "confined" | "unconfined" | "unmanaged";
  /** One line for the start-up log. */
  summary: string;
  /** `ACL SETUSER` lines that create the bridge's users; `<password>` stands for one to choose. */
  setupLines: string[];
}

/** Credentials a connection switches to after the URL's own AUTH and SELECT. */
export interface LoginAs {
  username: string;
  password: string;
}

export interface AclUsers {
  full: LoginAs;
  readonly: LoginAs;
}

/** The two `ACL SETUSER` lines an operator runs (placeholders for the passwords). */
export function setupLines(): string[] {
  return [
    `ACL SETUSER ${BRIDGE_USER} on ><password> ${aclRules("full").join(" ")}`,
    `ACL SETUSER ${BRIDGE_READONLY_USER} on ><readonly-password> ${aclRules("readonly").join(" ")}`,
  ];
}

/** Config-file lines creating both users with these passwords (for a spawned redis-server). */
export function configLines(users: AclUsers): string[] {
  return [
    `user ${BRIDGE_USER} on >${users.full.password} ${aclRules("full").join(" ")}`,
    `user ${BRIDGE_READONLY_USER} on >${users.readonly.password} ${aclRules("readonly").join(" ")}`,
  ];
}

/** Fresh random passwords for both users. */
export function newAclUsers(): AclUsers {
  const password = () => randomBytes(24).toString("base64url");
  return {
    full: { username: BRIDGE_USER, password: password() },
    readonly: { username: BRIDGE_READONLY_USER, password: password() },
  };
}

export const SCRIPT_COMMANDS = ["EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"];

/**
 * Creates the bridge's users on the Redis at `redisUrl` if its user may (adding a password of
 * this bridge's own, so bridges sharing a Redis do not lock each other out), and otherwise
 * checks whether that user is already confined. Never changes any other user.
 */
export async function provisionUsers(
  redisUrl: string,
  timeoutMs: number,
): Promise<{ privilege: LeastPrivilege; users?: AclUsers }> {
  const connection = await openAdmin(redisUrl, timeoutMs);
  try {
    const users = newAclUsers();
    const created = await connection.sendBatch(setuserCommands(users));
    const refused = created.find((reply) => reply instanceof ReplyError);
    if (!refused) {
      return {
        users,
        privilege: {
          mode: "created",
          summary: `Redis ACL: the bridge logs in as ${BRIDGE_USER} (full token) and ${BRIDGE_READONLY_USER} (read-only token), users it created that may not SELECT, MIGRATE, FLUSHALL or administer Redis, also inside scripts`,
          setupLines: setupLines(),
        },
      };
    }
    const allowed = await probe(connection);
    const user = decodeURIComponent(new URL(redisUrl).username) || "default";
    if (allowed.length === 0) {
      return {
        privilege: {
          mode: "confined",
          summary: `Redis ACL: the given user ${user} may not create users, and Redis already refuses it SELECT, MIGRATE, FLUSHALL and administration (also inside scripts); both tokens use it`,
          setupLines: setupLines(),
        },
      };
    }
    return {
      privilege: {
        mode: "unconfined",
        summary: `Redis ACL: the given user ${user} may not create users (${(refused as ReplyError).message.split("\n")[0]}) and may run ${allowed.join(", ")}; until it is confined, the bridge refuses ${SCRIPT_COMMANDS.join(", ")} (Redis would not stop a script's redis.call from running them). Run these lines as an admin, then restart the bridge with --redis-url redis://${BRIDGE_USER}:<password>@host:port`,
        setupLines: setupLines(),
      },
    };
  } finally {
    connection.destroy(new RedisUnavailableError("done"));
  }
}

function setuserCommands(users: AclUsers): string[][] {
  return [
    ["ACL", "SETUSER", BRIDGE_USER, "on", `>${users.full.password}`, ...aclRules("full")],
    [
      "ACL",
      "SETUSER",
      BRIDGE_READONLY_USER,
      "on",
      `>${users.readonly.password}`,
      ...aclRules("readonly"),
    ],
  ];
}

/**
 * Creates the users again with the same passwords: after Redis restarted without them (ACL users
 * live in memory unless the operator keeps an aclfile), the bridge's connections could not log
 * in any more. Throws when Redis refuses.
 */
export async function recreateUsers(
  redisUrl: string,
  users: AclUsers,
  timeoutMs: number,
): Promise<void> {
  const connection = await RespConnectionOpen(redisUrl, timeoutMs);
  try {
    const replies = await connection.sendBatch(setuserCommands(users));
    const refused = replies.find((reply) => reply instanceof ReplyError);
    if (refused) throw refused;
  } finally {
    connection.destroy(new RedisUnavailableError("done"));
  }
}

/** Removes this bridge's own passwords from its users again (best effort). */
export async function releaseUsers(
  redisUrl: string,
  users: AclUsers,
  timeoutMs: number,
): Promise<void> {
  let connection: RespConnection | undefined;
  try {
    connection = await openAdmin(redisUrl, timeoutMs);
    await connection.sendBatch([
      ["ACL", "SETUSER", users.full.username, `<${users.full.password}`],
      ["ACL", "SETUSER", users.readonly.username, `<${users.readonly.password}`],
    ]);
  } catch {
    // Redis is gone or the user changed: nothing left to clean up from here
  } finally {
    connection?.destroy(new RedisUnavailableError("done"));
  }
}

function openAdmin(redisUrl: string, timeoutMs: number): Promise<RespConnection> {
  return openWithRetry(redisUrl, timeoutMs);
}

/**
 * Which of the {@link PROBED} commands the connection's user may run, asked through
 * `redis.acl_check_cmd` inside a script (it runs nothing). A user that may not even EVAL
 * cannot run any of them from a script either: then none.
 */
async function probe(connection: RespConnection): Promise<string[]> {
  const script = [
    "local allowed = {}",
    "for i, spec in ipairs(ARGV) do",
    "  local parts = {}",
    "  for part in string.gmatch(spec, '%S+') do parts[#parts + 1] = part end",
    "  local ok, yes = pcall(redis.acl_check_cmd, unpack(parts))",
    "  if ok and yes then allowed[#allowed + 1] = i end",
    "end",
    "return allowed",
  ].join("\n");
  try {
    const reply = await connection.send(["EVAL", script, "0", ...PROBED.map(([, sent]) => sent)]);
    if (!Array.isArray(reply)) return [];
    return reply.map((index) => PROBED[Number(index) - 1]?.[0] ?? String(index));
  } catch (error) {
    if (error instanceof ReplyError) return [];
    throw error;
  }
}
