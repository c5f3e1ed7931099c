import { randomBytes } from "node:crypto";

/**
 * The Redis ACL users the bridge logs in as, and their rules: plain data, no Redis client (the
 * CLI prints them in its help without loading the bridge). See acl.ts.
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
