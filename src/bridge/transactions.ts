import { ErrorReply } from "redis";
import type { LoginAs } from "./acl-rules.js";
import type { Outcome } from "./command-runner.js";
import { messageOf, RedisCommandError, RedisUnavailableError } from "./errors.js";
import { AS_BUFFER, type Client, destroyQuietly } from "./node-redis.js";
import type { Command } from "./protocol.js";
import { classify } from "./replies.js";

/**
 * `/multi-exec`: MULTI, the commands and EXEC sent back to back on one connection, and the
 * bounded pool of dedicated connections that keeps concurrent transactions from interleaving.
 */

/** Runs MULTI/commands/EXEC on `client`; rejects with RedisCommandError on EXECABORT. */

export async function execOn(
  client: { sendCommand(command: Command, options: typeof AS_BUFFER): Promise<unknown> },
  commands: Command[],
  classifyError: (error: unknown) => RedisCommandError | RedisUnavailableError,
): Promise<Outcome[]> {
  // sendCommand queues synchronously, so MULTI, the commands and EXEC go out back to back.
  const sent = [["MULTI"], ...commands, ["EXEC"]].map((command) =>
    client.sendCommand(command, AS_BUFFER),
  );
  const settled = await Promise.allSettled(sent);
  for (const entry of settled) {
    if (entry.status === "rejected" && !(entry.reason instanceof ErrorReply)) {
      throw classifyError(entry.reason);
    }
  }
  const exec = settled[settled.length - 1];
  if (exec?.status === "rejected") throw classifyError(exec.reason);
  const replies: unknown = exec?.value;
  if (!Array.isArray(replies)) {
    throw new RedisCommandError("EXECABORT Transaction aborted");
  }
  return replies.map((reply: unknown) =>
    reply instanceof ErrorReply
      ? { ok: false, error: classifyError(reply).message }
      : { ok: true, reply },
  );
}

/** Bounded set of dedicated connections; a connection that broke or timed out is destroyed. */
export class TransactionPool {
  readonly #idle: Client[] = [];
  readonly #waiters: Array<() => void> = [];
  #inUse = 0;
  #closed = false;

  constructor(
    private readonly create: () => Client,
    private readonly maxSize: number,
    private readonly loginAs?: LoginAs,
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
        // switch to the bridge's ACL user; the URL's SELECT (as its own user) stays in effect
        if (this.loginAs) {
          try {
            await fresh.sendCommand(["AUTH", this.loginAs.username, this.loginAs.password]);
          } catch (error) {
            // the ACL user is gone (Redis restarted): the shared connection recreates it
            throw new RedisUnavailableError(
              `Redis refused the bridge's ACL user: ${messageOf(error)}`,
            );
          }
        }
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
