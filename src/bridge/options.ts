import { isHeaderSafe } from "../core/secrets.js";
import { BridgeOptionsError } from "./errors.js";
import type { BridgeRequestInfo } from "./routes.js";

/** What {@link startBridge} accepts, and why it refuses options it cannot work with. */

/** Invalid {@link StartBridgeOptions}. */
export { BridgeOptionsError } from "./errors.js";

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
  /** Called once per authorized, well-formed request before it runs; for counting round trips. */
  onRequest?: (info: BridgeRequestInfo) => void;
}

/** Throws BridgeOptionsError for options no bridge could start with. */
export function validate(
  options: StartBridgeOptions,
  port: number,
  host: string,
  token: string,
): void {
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
