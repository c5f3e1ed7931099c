import {
  type AclUsers,
  aclRules,
  BRIDGE_READONLY_USER,
  BRIDGE_USER,
  type LeastPrivilege,
  newAclUsers,
  setupLines,
} from "./acl-rules.js";
import { RedisUnavailableError } from "./errors.js";
import { ReplyError } from "./resp.js";
import { RespConnection } from "./resp-connection.js";
import { openWithRetry } from "./shared-connection.js";

const RespConnectionOpen = (redisUrl: string, timeoutMs: number) =>
  RespConnection.open(redisUrl, timeoutMs);

/**
 * Least privilege enforced by Redis: the bridge's connections log in as Redis ACL users that
 * cannot do what the bridge refuses, so Redis refuses it inside EVAL, EVAL_RO, FCALL and
 * transactions too (ACL applies inside scripts). The bridge's own top-level checks stay the
 * fast first answer; the ACL is what holds when a script calls `redis.call`.
 */

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
