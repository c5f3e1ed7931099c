import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { provisionUsers, recreateUsers, releaseUsers, SCRIPT_COMMANDS } from "./acl.js";
import {
  type AclUsers,
  BRIDGE_READONLY_USER,
  BRIDGE_USER,
  configLines,
  type LeastPrivilege,
  newAclUsers,
  setupLines,
} from "./acl-rules.js";
import { ClusterConnections } from "./cluster.js";
import { IdleConnections } from "./idle-connections.js";
import { type StartBridgeOptions, validate } from "./options.js";
import { DEFAULT_MAX_RESPONSE_BYTES } from "./protocol.js";
import { type RedisServerHandle, spawnRedisServer } from "./redis-server.js";
import { createBridgeHandler } from "./routes.js";
import { RedisConnections } from "./shared-connection.js";

/**
 * startBridge: the Redis it forwards to (a spawned redis-server, a given URL or a cluster), the
 * ACL users it logs in as there, and the HTTP server in front; `close()` undoes all of it.
 */

export interface RunningBridge {
  /** e.g. `http://127.0.0.1:8079`: use as UPSTASH_REDIS_REST_URL. */
  url: string;
  /** Use as UPSTASH_REDIS_REST_TOKEN. */
  token: string;
  /** The read-only token, if one was configured. */
  readonlyToken?: string;
  /**
   * The Redis it forwards to; of a spawned redis-server with its admin password (the `default`
   * user): never print it as it is (`cron-guard bridge` prints it with `***` for the password).
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
