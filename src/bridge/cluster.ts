import { createCluster } from "redis";
import type { CommandRunner, Outcome } from "./command-runner.js";
import { type CommandTable, firstKey, parseCommandTable } from "./command-table.js";
import { Deadlines } from "./deadlines.js";
import {
  messageOf,
  RedisCommandError,
  RedisUnavailableError,
  ResponseTooLargeError,
} from "./errors.js";
import { AS_BUFFER, reconnectDelayMs } from "./node-redis.js";
import type { Command } from "./protocol.js";
import { DEFAULT_MAX_RESPONSE_BYTES } from "./protocol.js";
import { redactRedisUrl } from "./redis-url.js";
import { assertReplyWithin, assertTransactionWithin, classify, replySize } from "./replies.js";
import { execOn } from "./transactions.js";

export interface ClusterConnectionsOptions {
  /** Some nodes of the cluster, `redis://host:port`; the rest is discovered. */
  rootUrls: string[];
  /** Upper bound for every Redis call, in ms. Default: 5000. */
  commandTimeoutMs?: number;
  /** See {@link RedisConnectionsOptions.maxResponseBytes}. */
  maxResponseBytes?: number;
}

function makeCluster(rootUrls: string[], connectTimeoutMs: number) {
  const cluster = createCluster({
    rootNodes: rootUrls.map((url) => ({ url })),
    RESP: 2,
    defaults: {
      disableOfflineQueue: true,
      socket: {
        connectTimeout: connectTimeoutMs,
        reconnectStrategy: reconnectDelayMs,
      },
    },
  });
  cluster.on("error", () => {});
  return cluster;
}

type Cluster = ReturnType<typeof makeCluster>;

/**
 * The bridge's Redis side for a Redis Cluster, with node `redis`'s cluster client: every command
 * goes to the master of its first key's slot (MOVED and ASK are followed by the client), a
 * pipeline's commands each to their own slot's master with answers in request order, and a
 * transaction to the master of its first key's slot, MULTI ... EXEC back to back on that node's
 * connection. Commands that span slots get Redis's own `CROSSSLOT` error (400).
 */
export class ClusterConnections implements CommandRunner {
  readonly #cluster: Cluster;
  readonly #deadlines: Deadlines;
  readonly #commandTimeoutMs: number;
  readonly #maxResponseBytes: number;
  readonly #rootUrls: string[];
  #table: CommandTable = { readOnly: new Set(), firstKeyIndex: new Map() };

  constructor(options: ClusterConnectionsOptions) {
    this.#rootUrls = options.rootUrls;
    this.#commandTimeoutMs = options.commandTimeoutMs ?? 5_000;
    this.#maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.#cluster = makeCluster(options.rootUrls, this.#commandTimeoutMs);
    this.#deadlines = new Deadlines(this.#commandTimeoutMs);
  }

  /** Discovers the cluster and reads its command table; RedisUnavailableError after the timeout. */
  async connect(): Promise<void> {
    const connecting = this.#cluster.connect();
    connecting.catch(() => {});
    try {
      await this.#deadlines.track("connecting to the Redis Cluster", () => connecting);
      const reply = await this.#deadlines.track("COMMAND", () =>
        this.#cluster.sendCommand(undefined, true, ["COMMAND"]),
      );
      this.#table = parseCommandTable(reply);
    } catch (error) {
      this.close();
      throw new RedisUnavailableError(
        `could not connect to the Redis Cluster at ${redactRedisUrl(this.#rootUrls.join(","))} within ${this.#commandTimeoutMs} ms: ${messageOf(error)}`,
        { cause: error },
      );
    }
  }

  commandTable(): Promise<CommandTable> {
    return Promise.resolve(this.#table);
  }

  run(command: Command): Promise<unknown> {
    return this.#deadlines.track(command[0] ?? "command", async () => {
      let reply: unknown;
      try {
        reply = await this.#send(command);
      } catch (error) {
        throw classify(error);
      }
      return assertReplyWithin(reply, this.#maxResponseBytes);
    });
  }

  pipeline(commands: Command[]): Promise<Outcome[]> {
    return this.#deadlines.track("pipeline", async () => {
      const settled = await Promise.allSettled(commands.map((command) => this.#send(command)));
      let total = 0;
      const outcomes: Outcome[] = [];
      for (const result of settled) {
        if (result.status === "fulfilled") {
          total += replySize(result.value);
          outcomes.push({ ok: true, reply: result.value });
          continue;
        }
        const error = classify(result.reason);
        if (!(error instanceof RedisCommandError)) throw error;
        outcomes.push({ ok: false, error: error.message });
      }
      if (total > this.#maxResponseBytes) {
        throw new ResponseTooLargeError(
          `ERR max response size exceeded: the replies add up to more than this bridge's limit of ${this.#maxResponseBytes} bytes (all ${commands.length} commands ran)`,
        );
      }
      return outcomes;
    });
  }

  transaction(commands: Command[]): Promise<Outcome[]> {
    return this.#deadlines.track("transaction", async () => {
      let key: string | undefined;
      for (const command of commands) {
        key = firstKey(command, this.#table);
        if (key !== undefined) break;
      }
      // The master of the key's slot (node redis's own routing; `_slots` is typed but internal).
      const { client } = await this.#cluster._slots.getClientAndSlotNumber(key, false);
      const outcomes = await execOn(client, commands, classify);
      return assertTransactionWithin(outcomes, this.#maxResponseBytes);
    });
  }

  #send(command: Command): Promise<unknown> {
    return this.#cluster.sendCommand(firstKey(command, this.#table), false, command, AS_BUFFER);
  }

  close(): void {
    this.#deadlines.close();
    try {
      this.#cluster.destroy();
    } catch {}
  }
}
