import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { isHeaderSafe } from "../core/secrets.js";
import {
  type AclUsers,
  BRIDGE_READONLY_USER,
  BRIDGE_USER,
  configLines,
  type LeastPrivilege,
  newAclUsers,
  provisionUsers,
  recreateUsers,
  releaseUsers,
  SCRIPT_COMMANDS,
  setupLines,
} from "./acl.js";
import { type BridgeAppOptions, createBridgeHandler } from "./app.js";
import { ClusterConnections } from "./cluster.js";
import { DEFAULT_MAX_RESPONSE_BYTES, RedisConnections } from "./connections.js";
import { IdleConnections } from "./idle-connections.js";
import { type RedisServerHandle, spawnRedisServer } from "./redis-server.js";

export {
  aclRules,
  BRIDGE_READONLY_USER,
  BRIDGE_USER,
  DENIED_RULES,
  type LeastPrivilege,
  setupLines,
} from "./acl.js";
export {
  type BridgeAppOptions,
  type BridgeHandler,
  type BridgeRequestInfo,
  type BridgeRoute,
  type ConnectionActivity,
  createBridgeHandler,
  DEFAULT_MAX_BODY_BYTES,
  HEALTH_TEXT,
  MAX_DRAIN_BYTES,
  MAX_DRAIN_MS,
  SyncTokens,
} from "./app.js";
export { ClusterConnections, type ClusterConnectionsOptions } from "./cluster.js";
export {
  assertReadOnly,
  type CommandTable,
  firstKey,
  noPermission,
  parseCommandTable,
} from "./command-table.js";
export {
  type CommandRunner,
  DEFAULT_MAX_RESPONSE_BYTES,
  type Outcome,
  RedisCommandError,
  RedisConnections,
  type RedisConnectionsOptions,
  RedisUnavailableError,
  ResponseTooLargeError,
} from "./connections.js";
export {
  BadRequestError,
  type Command,
  DEFAULT_MAX_VALUE_BYTES,
  MAX_TRANSACTION_SCRIPTS,
} from "./protocol.js";
export {
  REDIS_SERVER_INSTALL_HINT,
  type RedisServerHandle,
  RedisServerNotFoundError,
  RedisServerStartError,
  type SpawnRedisServerOptions,
  spawnRedisServer,
} from "./redis-server.js";
export { redactRedisUrl } from "./resp-connection.js";

/** Invalid {@link StartBridgeOptions}. */
export class BridgeOptionsError extends Error {
  override readonly name = "BridgeOptionsError";
}

export interface StartBridgeOptions {
  /** HTTP port. Default: 0 (a free port; read it from the returned `url`). */
  port?: number;
  /** Interface to listen on. Default: "127.0.0.1" (the bridge is a dev/test tool; do not expose it casually). */
  host?: string;
  /** Bearer token clients must send. Default: 32 random bytes, base64url. */
  token?: string;
  /**
   * A second token that may only run read-only commands (Upstash's read-only token): writes
   * answer 400 `NOPERM this user has no permissions to run the '<command>' command or its
   * subcommand`. Default: none.
   */
  readonlyToken?: string;
  /**
   * Redis to forward to. Default: spawn a private redis-server, stopped again by `close()`.
   * If the URL's user may run `ACL SETUSER`, the bridge creates its own ACL users there (see
   * {@link RunningBridge.leastPrivilege}); else, unless that user is already confined, it
   * refuses scripts.
   */
  redisUrl?: string;
  /**
   * Only when the bridge spawns its redis-server: keep the data in this directory with AOF
   * persistence, so a bridge started again on it has the same data. Default: none, a temp
   * directory removed by `close()` (ephemeral). (`cron-guard bridge` defaults to
   * `./.cron-guard-data`.)
   */
  dataDir?: string;
  /**
   * Front a Redis Cluster instead: some of its nodes, `redis://host:port` (the rest is
   * discovered). Commands go to their key's slot; a pipeline is split per slot and answered in
   * order; a transaction or script must keep to one slot (else Redis's CROSSSLOT error, 400).
   * Not with `redisUrl`.
   */
  cluster?: string[];
  /** Largest accepted request body, in bytes. Default: 1 MiB. */
  maxBodyBytes?: number;
  /** Bound for every Redis call; slower calls answer 503. In ms. Default: 5000. */
  commandTimeoutMs?: number;
  /** Dedicated connections for concurrent `/multi-exec` requests. Default: 16. */
  maxTransactionConnections?: number;
  /**
   * Largest reply one request may get (for a pipeline or transaction, the sum of its replies), in
   * bytes of payload before base64/JSON; larger ones are refused with 400 `ERR max response size
   * exceeded ...`. SETRANGE/SETBIT/BITFIELD offsets that would grow a value past it are refused
   * before they run, and a spawned redis-server gets it (or `maxBodyBytes`, if larger) as
   * `proto-max-bulk-len`. Default: 10 MiB (10 485 760).
   */
  maxResponseBytes?: number;
  /** See {@link BridgeAppOptions.onRequest}. */
  onRequest?: BridgeAppOptions["onRequest"];
}

export interface RunningBridge {
  /** e.g. `http://127.0.0.1:8079`: use as UPSTASH_REDIS_REST_URL. */
  url: string;
  /** Use as UPSTASH_REDIS_REST_TOKEN. */
  token: string;
  /** The read-only token, if one was configured. */
  readonlyToken?: string;
  /**
   * The Redis it forwards to; of a spawned redis-server with its admin password (the `default`
   * user): never print it as it is (see {@link redactRedisUrl}).
   */
  redisUrl: string;
  /** Which Redis ACL users the bridge logs in as, and what that means; see {@link LeastPrivilege}. */
  leastPrivilege: LeastPrivilege;
  /** Where a spawned redis-server keeps its data, when it persists it. */
  dataDir?: string;
  /** Stops the HTTP server, drops Redis connections and stops a redis-server it spawned. */
  close(): Promise<void>;
}

/** Starts the Upstash-REST-compatible bridge on Node and resolves once it accepts requests. */
export async function startBridge(options: StartBridgeOptions = {}): Promise<RunningBridge> {
  const port = options.port ?? 0;
  const host = options.host ?? "127.0.0.1";
  const token = options.token ?? randomBytes(32).toString("base64url");
  validate(options, port, host, token);

  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const maxStringBytes = Math.max(maxResponseBytes, options.maxBodyBytes ?? 0);
  const cluster = options.cluster;
  const commandTimeoutMs = options.commandTimeoutMs ?? 5_000;
  let spawned: RedisServerHandle | undefined;
  let users: AclUsers | undefined;
  let privilege: LeastPrivilege;
  if (options.redisUrl === undefined && cluster === undefined) {
    users = newAclUsers();
    spawned = await spawnRedisServer({
      maxStringBytes,
      password: randomBytes(24).toString("base64url"),
      configLines: configLines(users),
      dataDir: options.dataDir,
    });
    privilege = {
      mode: "created",
      summary: `Redis ACL: the bridge logs in as ${BRIDGE_USER} and ${BRIDGE_READONLY_USER}, users it created on its redis-server that may not SELECT, MIGRATE, FLUSHALL or administer Redis, also inside scripts`,
      setupLines: setupLines(),
    };
  } else if (cluster === undefined) {
    const provisioned = await provisionUsers(options.redisUrl ?? "", commandTimeoutMs);
    users = provisioned.users;
    privilege = provisioned.privilege;
  } else {
    privilege = {
      mode: "unmanaged",
      summary:
        "Redis ACL: not managed in front of a Redis Cluster; give node URLs whose user is confined by the lines of `cron-guard help bridge`",
      setupLines: setupLines(),
    };
  }
  const redisUrl = cluster?.join(",") ?? options.redisUrl ?? spawned?.url ?? "";
  const connectionsAs = (loginAs: AclUsers["full"] | undefined) =>
    new RedisConnections({
      redisUrl,
      commandTimeoutMs: options.commandTimeoutMs,
      maxTransactionConnections: options.maxTransactionConnections,
      maxResponseBytes,
      loginAs,
      relogin:
        loginAs !== undefined && users !== undefined
          ? () => recreateUsers(redisUrl, users as AclUsers, commandTimeoutMs)
          : undefined,
    });
  const connections: RedisConnections | ClusterConnections = cluster
    ? new ClusterConnections({
        rootUrls: cluster,
        commandTimeoutMs: options.commandTimeoutMs,
        maxResponseBytes,
      })
    : connectionsAs(users?.full);
  const readonlyConnections =
    options.readonlyToken !== undefined && users !== undefined
      ? connectionsAs(users.readonly)
      : undefined;
  // keep-alive connections are closed by IdleConnections, not by a timer per socket
  const server = createServer({ keepAliveTimeout: 0 });
  const idle = new IdleConnections(server, KEEP_ALIVE_MS);
  const releaseOnClose = spawned === undefined ? users : undefined;
  const stop = async () => {
    await shutdown(server, idle, [connections, readonlyConnections], spawned);
    if (releaseOnClose && options.redisUrl !== undefined) {
      await releaseUsers(options.redisUrl, releaseOnClose, commandTimeoutMs);
    }
  };
  try {
    await connections.connect();
    await readonlyConnections?.connect();
    server.on(
      "request",
      createBridgeHandler({
        token,
        readonlyToken: options.readonlyToken,
        commandTable:
          options.readonlyToken === undefined ? undefined : await connections.commandTable(),
        redis: connections,
        readonlyRedis: readonlyConnections,
        scriptsRefused:
          privilege.mode === "unconfined"
            ? `the Redis user this bridge was given is not confined by ACL, so Redis would not stop a script from leaving the database or administering the server; an operator runs the ACL SETUSER lines the bridge printed at start and restarts it with that user. Refused: ${SCRIPT_COMMANDS.join(", ")}`
            : undefined,
        maxBodyBytes: options.maxBodyBytes,
        maxValueBytes: maxResponseBytes,
        onRequest: options.onRequest,
        activity: idle,
      }),
    );
    const boundPort = await listen(server, port, host);
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${boundPort}`;
    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= stop();
      return closing;
    };
    return {
      url,
      token,
      readonlyToken: options.readonlyToken,
      redisUrl,
      leastPrivilege: privilege,
      dataDir: spawned === undefined ? undefined : options.dataDir,
      close,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * How long an idle keep-alive connection stays open, in ms: 65 s, longer than the 60 s idle
 * timeout of common load balancers, so they close first and never reuse a connection the bridge
 * is closing.
 */
const KEEP_ALIVE_MS = 65_000;

function validate(options: StartBridgeOptions, port: number, host: string, token: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new BridgeOptionsError(`port must be an integer from 0 to 65535, got ${port}`);
  }
  if (host.trim() === "") throw new BridgeOptionsError("host must not be empty");
  if (token.trim() === "") throw new BridgeOptionsError("token must not be empty");
  assertHeaderSafe("token", token);
  if (options.dataDir !== undefined && (options.redisUrl ?? options.cluster) !== undefined) {
    throw new BridgeOptionsError(
      "dataDir is for a redis-server the bridge spawns; with redisUrl or cluster, that Redis keeps its own data",
    );
  }
  if (options.dataDir !== undefined && options.dataDir.trim() === "") {
    throw new BridgeOptionsError("dataDir must not be empty");
  }
  if (options.cluster !== undefined) {
    if (options.redisUrl !== undefined) {
      throw new BridgeOptionsError("give either redisUrl or cluster, not both");
    }
    if (
      options.cluster.length === 0 ||
      options.cluster.some((url) => !/^rediss?:\/\/./.test(url))
    ) {
      throw new BridgeOptionsError(
        `cluster must be a non-empty list of redis://host:port URLs, got ${JSON.stringify(options.cluster)}`,
      );
    }
  }
  if (options.readonlyToken !== undefined) {
    if (options.readonlyToken.trim() === "") {
      throw new BridgeOptionsError("readonlyToken must not be empty");
    }
    assertHeaderSafe("readonlyToken", options.readonlyToken);
    if (options.readonlyToken === token) {
      throw new BridgeOptionsError("readonlyToken must differ from token");
    }
  }
  for (const key of [
    "maxBodyBytes",
    "commandTimeoutMs",
    "maxTransactionConnections",
    "maxResponseBytes",
  ] as const) {
    const value = options[key];
    if (value !== undefined && (!Number.isInteger(value) || value <= 0)) {
      throw new BridgeOptionsError(`${key} must be a positive integer, got ${value}`);
    }
  }
}

/** A token no client could present can only ever answer 401: refuse it at start. */
function assertHeaderSafe(name: string, token: string): void {
  if (!isHeaderSafe(token)) {
    throw new BridgeOptionsError(
      `${name} must be printable ASCII: no client can send other characters in an Authorization header`,
    );
  }
  if (token !== token.trim()) {
    throw new BridgeOptionsError(
      `${name} must not start or end with whitespace: HTTP strips it from header values`,
    );
  }
}

function listen(server: Server, port: number, hostname: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

async function shutdown(
  server: Server,
  idle: IdleConnections,
  connections: Array<RedisConnections | ClusterConnections | undefined>,
  spawned: RedisServerHandle | undefined,
): Promise<void> {
  idle.close();
  if (server.listening) {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }
  for (const each of connections) each?.close();
  await spawned?.stop();
}
