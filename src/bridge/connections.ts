import { createClient, ErrorReply, RESP_TYPES } from "redis";
import type { Command } from "./protocol.js";

/** Redis could not be reached, the socket broke or a call exceeded its timeout (HTTP 503). */
export class RedisUnavailableError extends Error {
  override readonly name = "RedisUnavailableError";
}

/** Redis answered with an error reply, e.g. "ERR wrong number of arguments..." (HTTP 400). */
export class RedisCommandError extends Error {
  override readonly name = "RedisCommandError";
}

/** Result of one command inside a pipeline or transaction. */
export type Outcome = { ok: true; reply: unknown } | { ok: false; error: string };

/** What the HTTP app needs from Redis; {@link RedisConnections} is the real implementation. */
export interface CommandRunner {
  /** One command; rejects with RedisCommandError or RedisUnavailableError. */
  run(command: Command): Promise<unknown>;
  /** Commands in order, not atomic; per-command errors are outcomes, rejects only when unavailable. */
  pipeline(commands: Command[]): Promise<Outcome[]>;
  /** MULTI/commands/EXEC on a dedicated connection; rejects with RedisCommandError on EXECABORT. */
  transaction(commands: Command[]): Promise<Outcome[]>;
}

export interface RedisConnectionsOptions {
  /** `redis://host:port` of the redis-server to use. */
  redisUrl: string;
  /** Upper bound for every Redis call (including waiting for a transaction connection), in ms. Default: 5000. */
  commandTimeoutMs?: number;
  /** TCP connect timeout, in ms. Default: `commandTimeoutMs`. */
  connectTimeoutMs?: number;
  /** Dedicated connections kept for `/multi-exec`; further transactions wait. Default: 16. */
  maxTransactionConnections?: number;
}

const BULK_AS_BUFFER = { [RESP_TYPES.BLOB_STRING]: Buffer };
const MAX_RECONNECT_DELAY_MS = 1_000;

function makeClient(redisUrl: string, connectTimeoutMs: number, reconnect: boolean) {
  const client = createClient({
    url: redisUrl,
    RESP: 2,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: connectTimeoutMs,
      reconnectStrategy: reconnect
        ? (retries: number) => Math.min(50 * 2 ** retries, MAX_RECONNECT_DELAY_MS)
        : false,
    },
  });
  client.on("error", () => {});
  return client;
}

type Client = ReturnType<typeof makeClient>;

/** `destroy()` throws on a client that is already closed; here that is the desired end state. */
function destroyQuietly(client: Client): void {
  try {
    client.destroy();
  } catch {}
}

/**
 * One shared, auto-reconnecting connection for single commands and pipelines, plus a bounded
 * pool of dedicated connections so concurrent transactions never interleave.
 */
export class RedisConnections implements CommandRunner {
  readonly #shared: Client;
  readonly #pool: TransactionPool;
  readonly #commandTimeoutMs: number;
  readonly #redisUrl: string;
  #lastError: Error | undefined;

  constructor(options: RedisConnectionsOptions) {
    this.#commandTimeoutMs = options.commandTimeoutMs ?? 5_000;
    this.#redisUrl = options.redisUrl;
    const connectTimeoutMs = options.connectTimeoutMs ?? this.#commandTimeoutMs;
    this.#shared = makeClient(options.redisUrl, connectTimeoutMs, true);
    this.#shared.on("error", (error: Error) => {
      this.#lastError = error;
    });
    this.#pool = new TransactionPool(
      () => makeClient(options.redisUrl, connectTimeoutMs, false),
      options.maxTransactionConnections ?? 16,
    );
  }

  /** Opens the shared connection; rejects with RedisUnavailableError after `commandTimeoutMs`. */
  async connect(): Promise<void> {
    const connecting = this.#shared.connect();
    try {
      await withDeadline(this.#commandTimeoutMs, "connecting to Redis", () => connecting);
    } catch (error) {
      connecting.catch(() => {});
      destroyQuietly(this.#shared);
      const last = this.#lastError ? ` (last error: ${this.#lastError.message})` : "";
      throw new RedisUnavailableError(
        `could not connect to Redis at ${this.#redisUrl} within ${this.#commandTimeoutMs} ms${last}`,
        { cause: error },
      );
    }
  }

  run(command: Command): Promise<unknown> {
    return withDeadline(this.#commandTimeoutMs, command[0] ?? "command", async () => {
      try {
        return await this.#shared.sendCommand(command, { typeMapping: BULK_AS_BUFFER });
      } catch (error) {
        throw classify(error);
      }
    });
  }

  pipeline(commands: Command[]): Promise<Outcome[]> {
    return withDeadline(this.#commandTimeoutMs, "pipeline", async () => {
      const settled = await Promise.allSettled(
        commands.map(async (command) =>
          this.#shared.sendCommand(command, { typeMapping: BULK_AS_BUFFER }),
        ),
      );
      return settled.map(toOutcome);
    });
  }

  transaction(commands: Command[]): Promise<Outcome[]> {
    return withDeadline(this.#commandTimeoutMs, "transaction", async (signal) => {
      const client = await this.#pool.acquire(signal);
      const onAbort = () => destroyQuietly(client);
      signal.addEventListener("abort", onAbort);
      let reusable = false;
      try {
        const outcomes = await execOn(client, commands);
        reusable = true;
        return outcomes;
      } catch (error) {
        reusable = error instanceof RedisCommandError;
        throw error;
      } finally {
        signal.removeEventListener("abort", onAbort);
        this.#pool.release(client, reusable && !signal.aborted);
      }
    });
  }

  close(): void {
    this.#pool.close();
    destroyQuietly(this.#shared);
  }
}

async function execOn(client: Client, commands: Command[]): Promise<Outcome[]> {
  const sent = [["MULTI"], ...commands, ["EXEC"]].map(async (command) =>
    client.sendCommand(command, { typeMapping: BULK_AS_BUFFER }),
  );
  const settled = await Promise.allSettled(sent);
  for (const entry of settled) {
    if (entry.status === "rejected" && !(entry.reason instanceof ErrorReply)) {
      throw classify(entry.reason);
    }
  }
  const exec = settled[settled.length - 1];
  if (exec?.status === "rejected") throw classify(exec.reason);
  const replies: unknown = exec?.value;
  if (!Array.isArray(replies)) {
    throw new RedisCommandError("EXECABORT Transaction aborted");
  }
  return replies.map((reply: unknown) =>
    reply instanceof ErrorReply ? { ok: false, error: reply.message } : { ok: true, reply },
  );
}

function toOutcome(result: PromiseSettledResult<unknown>): Outcome {
  if (result.status === "fulfilled") return { ok: true, reply: result.value };
  const error = classify(result.reason);
  if (error instanceof RedisCommandError) return { ok: false, error: error.message };
  throw error;
}

function classify(error: unknown): RedisCommandError | RedisUnavailableError {
  if (error instanceof RedisCommandError || error instanceof RedisUnavailableError) return error;
  if (error instanceof ErrorReply) return new RedisCommandError(error.message, { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  return new RedisUnavailableError(message, { cause: error });
}

/** Runs `work`, rejecting with RedisUnavailableError and aborting its signal after `timeoutMs`. */
async function withDeadline<T>(
  timeoutMs: number,
  what: string,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new RedisUnavailableError(`${what} timed out after ${timeoutMs} ms`);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  const working = work(controller.signal);
  working.catch(() => {});
  try {
    return await Promise.race([working, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Bounded set of dedicated connections; a connection that broke or timed out is destroyed. */
class TransactionPool {
  readonly #idle: Client[] = [];
  readonly #waiters: Array<() => void> = [];
  #inUse = 0;
  #closed = false;

  constructor(
    private readonly create: () => Client,
    private readonly maxSize: number,
  ) {}

  async acquire(signal: AbortSignal): Promise<Client> {
    await this.#takeSlot(signal);
    try {
      let client = this.#idle.pop();
      while (client && !client.isReady) {
        destroyQuietly(client);
        client = this.#idle.pop();
      }
      if (client) return client;
      const fresh = this.create();
      const connecting = fresh.connect();
      const onAbort = () => destroyQuietly(fresh);
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        await connecting;
      } catch (error) {
        destroyQuietly(fresh);
        throw classify(error);
      } finally {
        signal.removeEventListener("abort", onAbort);
      }
      return fresh;
    } catch (error) {
      this.#freeSlot();
      throw error;
    }
  }

  release(client: Client, reusable: boolean): void {
    if (reusable && client.isReady && !this.#closed) this.#idle.push(client);
    else destroyQuietly(client);
    this.#freeSlot();
  }

  close(): void {
    this.#closed = true;
    for (const client of this.#idle.splice(0)) destroyQuietly(client);
  }

  #takeSlot(signal: AbortSignal): Promise<void> {
    if (this.#closed) return Promise.reject(new RedisUnavailableError("bridge is closing"));
    if (this.#inUse < this.maxSize) {
      this.#inUse += 1;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = () => {
        signal.removeEventListener("abort", onAbort);
        this.#inUse += 1;
        resolve();
      };
      const onAbort = () => {
        const index = this.#waiters.indexOf(waiter);
        if (index >= 0) this.#waiters.splice(index, 1);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  #freeSlot(): void {
    this.#inUse -= 1;
    this.#waiters.shift()?.();
  }
}
