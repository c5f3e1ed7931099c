import { sleep } from "../core/sleep.js";
import type { LoginAs } from "./acl-rules.js";
import { BusyScriptKiller } from "./busy-scripts.js";
import type { CommandRunner, Outcome } from "./command-runner.js";
import { type CommandTable, parseCommandTable } from "./command-table.js";
import { type Call, Deadlines, Sweeper } from "./deadlines.js";
import {
  messageOf,
  RedisCommandError,
  RedisUnavailableError,
  ResponseTooLargeError,
} from "./errors.js";
import { destroyQuietly, makeClient, reconnectDelayMs } from "./node-redis.js";
import { type Command, DEFAULT_MAX_RESPONSE_BYTES } from "./protocol.js";
import { parseRedisUrl, redactRedisUrl } from "./redis-url.js";
import { assertReplyWithin, assertTransactionWithin, classify, replySize } from "./replies.js";
import { ReplyError } from "./resp.js";
import { RespConnection } from "./resp-connection.js";
import { execOn, TransactionPool } from "./transactions.js";

export interface RedisConnectionsOptions {
  /** `redis://[[user]:password@]host[:port][/db]` (or `rediss://` for TLS) of the redis-server to use. */
  redisUrl: string;
  /**
   * How long a command may wait for Redis's answer, in ms: on the shared connection, once the
   * oldest waiting command has waited this long the connection is dropped and everything on it
   * fails (503); a transaction (including its wait for a dedicated connection) fails after this
   * long. Default: 5000.
   */
  commandTimeoutMs?: number;
  /** TCP connect timeout, in ms. Default: `commandTimeoutMs`. */
  connectTimeoutMs?: number;
  /** Dedicated connections kept for `/multi-exec`; further transactions wait. Default: 16. */
  maxTransactionConnections?: number;
  /**
   * Largest reply payload (bytes of strings, a few per number or element, before base64/JSON)
   * one request may get back; for a pipeline or transaction, the sum over its commands.
   * Default: {@link DEFAULT_MAX_RESPONSE_BYTES}.
   */
  maxResponseBytes?: number;
  /**
   * A call still waiting after this long makes the bridge ask Redis, on a separate admin
   * connection, whether a script or function keeps it busy, and send SCRIPT KILL / FUNCTION KILL
   * if so. In ms. Default: 250.
   */
  busyCheckAfterMs?: number;
  /**
   * The Redis ACL user the shared and transaction connections switch to after the URL's own
   * AUTH and SELECT (see acl.ts). The busy-script killer stays the URL's user: it must be able
   * to send SCRIPT KILL and FUNCTION KILL. Default: none, everything runs as the URL's user.
   */
  loginAs?: LoginAs;
  /**
   * Called when Redis refuses `loginAs` (WRONGPASS: Redis restarted without the bridge's ACL
   * users); the bridge creates them again, then connects at once. Default: none.
   */
  relogin?: () => Promise<void>;
}

/** Redis's answer to AUTH with a user that does not exist (any more) or another password. */
const LOGIN_REFUSED = /^WRONGPASS/;

/**
 * Pipelines go to Redis this many commands at a time, and stop once the replies pass
 * `maxResponseBytes`: sent all at once, a body of 50 000 GETs of one large value would make Redis
 * buffer 50 000 copies of it before the bridge could refuse anything.
 */
const PIPELINE_CHUNK = 32;

/** Delay before the n-th attempt in a row to reopen the shared connection, in ms. */
function reopenDelayMs(attempt: number): number {
  return attempt === 0 ? 0 : reconnectDelayMs(attempt - 1);
}

/**
 * One shared connection for single commands and pipelines (the bridge's own RESP2 client,
 * {@link RespConnection}), plus a bounded pool of dedicated connections so concurrent
 * transactions never interleave.
 *
 * The shared connection is reopened whenever it closes, at once and then with backoff up to
 * 1 s; meanwhile commands fail at once with RedisUnavailableError (503) rather than queue.
 * Timeouts: Redis answers a connection in order, so the shared connection is watched as a whole:
 * when its oldest waiting command has waited `commandTimeoutMs` the connection is stalled (a hung
 * or SIGSTOPped redis-server, a half-open TCP connection); everything waiting on it fails with
 * RedisUnavailableError and a new connection replaces it. Per command this costs a timestamp,
 * where a deadline per call cost a promise, a closure and a Set entry (about 6% of requests/s).
 */
export class RedisConnections implements CommandRunner {
  #shared: RespConnection | undefined;
  #reopening = false;
  #reopenAttempts = 0;
  #closed = false;
  /** Send time of the oldest waiting command once it was reported slow. */
  #slowReportedFor: number | undefined;
  readonly #pool: TransactionPool;
  readonly #commandTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #redisUrl: string;
  readonly #maxResponseBytes: number;
  readonly #busyCheckAfterMs: number;
  readonly #loginAs: LoginAs | undefined;
  readonly #relogin: (() => Promise<void>) | undefined;
  readonly #killer: BusyScriptKiller;
  readonly #deadlines: Deadlines;
  readonly #sweeper = new Sweeper(() => this.#sweep());
  #commandTable: Promise<CommandTable> | undefined;
  #lastError: Error | undefined;

  constructor(options: RedisConnectionsOptions) {
    this.#commandTimeoutMs = options.commandTimeoutMs ?? 5_000;
    this.#redisUrl = options.redisUrl;
    this.#loginAs = options.loginAs;
    this.#relogin = options.relogin;
    parseRedisUrl(options.redisUrl); // a malformed URL is a TypeError now, not a 503 later
    this.#maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.#busyCheckAfterMs = options.busyCheckAfterMs ?? 250;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? this.#commandTimeoutMs;
    this.#killer = new BusyScriptKiller(
      makeClient(options.redisUrl, this.#connectTimeoutMs, true),
      this.#commandTimeoutMs,
    );
    this.#deadlines = new Deadlines(this.#commandTimeoutMs, this.#busyCheckAfterMs, () =>
      this.#killer.check(),
    );
    this.#killer.onUnkillable((error) => {
      this.#shared?.destroy(error);
      this.#deadlines.failAll(error);
    });
    this.#pool = new TransactionPool(
      () => makeClient(options.redisUrl, this.#connectTimeoutMs, false),
      options.maxTransactionConnections ?? 16,
      options.loginAs,
    );
  }

  /**
   * Opens the shared connection, trying again with backoff (Redis may still be starting);
   * rejects with RedisUnavailableError once `connectTimeoutMs` have passed. The admin connection
   * (only ever used for PING, SCRIPT KILL and FUNCTION KILL) connects in the background and
   * reconnects by itself.
   */
  async connect(): Promise<void> {
    this.#killer.connect();
    this.#use(await openWithRetry(this.#redisUrl, this.#connectTimeoutMs, this.#loginAs));
  }

  run(command: Command): Promise<unknown> {
    const shared = this.#ready();
    if (shared instanceof Error) return Promise.reject(shared);
    this.#sweeper.wake();
    return new Promise((resolve, reject) => {
      shared.sendWith(
        command,
        (reply) => {
          try {
            resolve(assertReplyWithin(reply, this.#maxResponseBytes));
          } catch (error) {
            reject(error);
          }
        },
        (error) => reject(this.#classify(error)),
      );
    });
  }

  /**
   * Sends the commands {@link PIPELINE_CHUNK} at a time, each chunk in one write behind one
   * promise; stops once the replies pass `maxResponseBytes`.
   */
  async pipeline(commands: Command[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = new Array(commands.length);
    let total = 0;
    for (let start = 0; start < commands.length; start += PIPELINE_CHUNK) {
      const end = Math.min(commands.length, start + PIPELINE_CHUNK);
      const shared = this.#ready();
      if (shared instanceof Error) throw shared;
      this.#sweeper.wake();
      const chunk = start === 0 && end === commands.length ? commands : commands.slice(start, end);
      try {
        await shared.streamBatch(chunk, (reply, i) => {
          if (reply instanceof ReplyError) {
            const error = this.#classify(reply);
            outcomes[start + i] = { ok: false, error: error.message };
            total += error.message.length;
          } else {
            total += replySize(reply);
            // keep nothing once over the limit: the request fails anyway
            outcomes[start + i] = {
              ok: true,
              reply: total > this.#maxResponseBytes ? null : reply,
            };
          }
        });
      } catch (error) {
        throw this.#classify(error);
      }
      if (total > this.#maxResponseBytes) {
        throw new ResponseTooLargeError(
          `ERR max response size exceeded: the replies add up to more than this bridge's limit of ${this.#maxResponseBytes} bytes (commands 0-${end - 1} ran, the other ${commands.length - end} were not sent)`,
        );
      }
    }
    return outcomes;
  }

  /** The shared connection, or why there is none to use right now. */
  #ready(): RespConnection | RedisUnavailableError {
    const busy = this.#killer.unkillable;
    if (busy) return new RedisUnavailableError(busy);
    const shared = this.#shared;
    if (shared !== undefined) return shared;
    if (this.#closed) return new RedisUnavailableError("the bridge is closing");
    const last = this.#lastError ? `: ${this.#lastError.message}` : "";
    return new RedisUnavailableError(`not connected to Redis, reconnecting${last}`);
  }

  #use(connection: RespConnection): void {
    if (this.#closed) {
      connection.destroy(new RedisUnavailableError("the bridge is closing"));
      return;
    }
    this.#shared = connection;
    this.#reopenAttempts = 0;
    connection.onClose((error) => {
      if (this.#shared !== connection) return;
      this.#shared = undefined;
      this.#lastError = error;
      this.#reopen();
    });
  }

  /** Opens a new shared connection, at once and then with backoff, until one works. */
  #reopen(): void {
    if (this.#closed || this.#reopening) return;
    this.#reopening = true;
    const delayMs = reopenDelayMs(this.#reopenAttempts);
    this.#reopenAttempts += 1;
    setTimeout(() => {
      if (this.#closed) return;
      RespConnection.open(this.#redisUrl, this.#connectTimeoutMs, this.#loginAs).then(
        (connection) => {
          this.#reopening = false;
          this.#use(connection);
        },
        (error: unknown) => {
          this.#lastError = error instanceof Error ? error : new Error(String(error));
          const relogin = this.#relogin;
          if (relogin && error instanceof ReplyError && LOGIN_REFUSED.test(error.message)) {
            this.#reopenAttempts = 0;
            relogin().then(
              () => {
                this.#reopening = false;
                this.#reopen();
              },
              (failure: unknown) => {
                this.#lastError = new RedisUnavailableError(
                  `Redis refused the bridge's ACL user and creating it again failed: ${messageOf(failure)}`,
                );
                this.#reopening = false;
                this.#reopen();
              },
            );
            return;
          }
          this.#reopening = false;
          this.#reopen();
        },
      );
    }, delayMs).unref();
  }

  transaction(commands: Command[]): Promise<Outcome[]> {
    return this.#call("transaction", async (call) => {
      const signal = call.signal;
      const client = await this.#pool.acquire(signal);
      const onAbort = () => destroyQuietly(client);
      signal.addEventListener("abort", onAbort);
      let reusable = false;
      try {
        const outcomes = await execOn(client, commands, (error) => this.#classify(error));
        reusable = true;
        return assertTransactionWithin(outcomes, this.#maxResponseBytes);
      } catch (error) {
        reusable = error instanceof RedisCommandError || error instanceof ResponseTooLargeError;
        throw error;
      } finally {
        signal.removeEventListener("abort", onAbort);
        this.#pool.release(client, reusable && !signal.aborted);
      }
    });
  }

  /**
   * Runs a transaction under the command timeout. While a script that cannot be killed keeps
   * Redis busy, fails at once (and fails calls already waiting) instead of letting every request
   * hang until its timeout; a call that waits longer than `busyCheckAfterMs` makes the bridge
   * check for such a script.
   */
  #call<T>(what: string, work: (call: Call) => Promise<T>): Promise<T> {
    const busy = this.#killer.unkillable;
    if (busy) return Promise.reject(new RedisUnavailableError(busy));
    return this.#deadlines.track(what, work);
  }

  /** Watches the shared connection; whether anything still waits on it. */
  #sweep(): boolean {
    const shared = this.#shared;
    const oldest = shared?.oldestWaitingSince();
    if (shared === undefined || oldest === undefined) return false;
    const waitedMs = performance.now() - oldest;
    if (waitedMs >= this.#commandTimeoutMs) {
      shared.destroy(
        new RedisUnavailableError(
          `a Redis call timed out after ${this.#commandTimeoutMs} ms; the bridge dropped its connection to Redis and opens a new one`,
        ),
      );
      return false;
    }
    if (waitedMs >= this.#busyCheckAfterMs && this.#slowReportedFor !== oldest) {
      this.#slowReportedFor = oldest;
      this.#killer.check();
    }
    return true;
  }

  #classify(error: unknown): RedisCommandError | RedisUnavailableError {
    const classified = classify(error);
    if (classified instanceof RedisCommandError && classified.message.startsWith("BUSY")) {
      this.#killer.check();
    }
    return classified;
  }

  /** The server's `COMMAND` table, read on first use and kept. */
  commandTable(): Promise<CommandTable> {
    this.#commandTable ??= this.run(["COMMAND"]).then(parseCommandTable);
    this.#commandTable.catch(() => {
      this.#commandTable = undefined;
    });
    return this.#commandTable;
  }

  close(): void {
    this.#closed = true;
    this.#sweeper.close();
    this.#deadlines.close();
    this.#pool.close();
    this.#killer.close();
    this.#shared?.destroy(new RedisUnavailableError("the bridge is closing"));
  }
}

/**
 * Opens a {@link RespConnection}, trying again with backoff (Redis may still be starting);
 * rejects with RedisUnavailableError once `timeoutMs` have passed (a refused AUTH at once).
 */
export async function openWithRetry(
  redisUrl: string,
  timeoutMs: number,
  loginAs?: LoginAs,
): Promise<RespConnection> {
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (let attempt = 0; ; attempt += 1) {
    const leftMs = deadline - performance.now();
    if (leftMs <= 0) break;
    try {
      return await RespConnection.open(redisUrl, leftMs, loginAs);
    } catch (error) {
      lastError = error;
      if (error instanceof ReplyError && !/^(LOADING|BUSY)/.test(error.message)) break;
    }
    const waitMs = Math.min(reopenDelayMs(attempt + 1), deadline - performance.now());
    if (waitMs > 0) await sleep(waitMs);
  }
  throw new RedisUnavailableError(
    `could not connect to Redis at ${redactRedisUrl(redisUrl)} within ${timeoutMs} ms (last error: ${messageOf(lastError)})`,
    { cause: lastError },
  );
}
