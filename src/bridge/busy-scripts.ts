import { ErrorReply } from "redis";
import { sleep } from "../core/sleep.js";
import { RedisUnavailableError } from "./errors.js";
import { type Client, destroyQuietly } from "./node-redis.js";
import type { Command } from "./protocol.js";

/** How often the bridge re-checks a busy Redis (and retries the kill) until it answers again. */
const BUSY_RECHECK_MS = 200;

/**
 * Finds and ends scripts and functions that keep Redis busy. Redis answers `BUSY` to every other
 * client once a script has run longer than `busy-reply-threshold`, but the connection that sent
 * the script simply waits, and a SCRIPT KILL sent on it would wait behind the script. So the
 * bridge keeps one more connection that clients can never reach, PINGs on it when a call is
 * slow or a reply says BUSY, and sends SCRIPT KILL (FUNCTION KILL if Redis says a function
 * runs). A script that has already written cannot be killed (`UNKILLABLE`): then calls fail
 * with 503 at once, and the bridge keeps checking until Redis answers PING again.
 */
export class BusyScriptKiller {
  readonly #admin: Client;
  readonly #timeoutMs: number;
  readonly #listeners = new Set<(error: RedisUnavailableError) => void>();
  #checking = false;
  #closed = false;
  #unkillable: string | undefined;

  constructor(admin: Client, timeoutMs: number) {
    this.#admin = admin;
    this.#timeoutMs = timeoutMs;
  }

  connect(): void {
    this.#admin.connect().catch(() => {});
  }

  /** Why calls fail right now, while a script that cannot be killed runs; else undefined. */
  get unkillable(): string | undefined {
    return this.#unkillable;
  }

  /** Calls `listener` if an unkillable script is found; returns the unsubscribe function. */
  onUnkillable(listener: (error: RedisUnavailableError) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Checks for a busy script now, unless a check is already running. */
  check(): void {
    if (this.#checking || this.#closed) return;
    this.#checking = true;
    void this.#checkUntilFree().finally(() => {
      this.#checking = false;
    });
  }

  close(): void {
    this.#closed = true;
    this.#unkillable = undefined;
    destroyQuietly(this.#admin);
  }

  async #checkUntilFree(): Promise<void> {
    while (!this.#closed) {
      const ping = await this.#send(["PING"]);
      if (!ping.startsWith("BUSY")) {
        // PONG, or Redis down or hung: no script to kill (outages have their own 503s).
        this.#unkillable = undefined;
        return;
      }
      const kill = ping.includes("FUNCTION KILL") ? ["FUNCTION", "KILL"] : ["SCRIPT", "KILL"];
      const killed = await this.#send(kill);
      if (killed.startsWith("UNKILLABLE")) this.#markUnkillable(killed);
      await sleep(killed === "OK" ? 20 : BUSY_RECHECK_MS);
    }
  }

  #markUnkillable(reply: string): void {
    const first = this.#unkillable === undefined;
    this.#unkillable =
      "Redis is busy running a script or function that has already written data, so it cannot " +
      "be killed; the bridge answers 503 until it ends (an operator can stop it with SHUTDOWN " +
      `NOSAVE on the redis-server, losing unsaved data). Redis said: ${reply}`;
    if (!first) return;
    const error = new RedisUnavailableError(this.#unkillable);
    for (const listener of [...this.#listeners]) listener(error);
  }

  /** The reply as text ("PONG", "OK", "BUSY ...", "UNKILLABLE ..."), or "" if none came. */
  async #send(command: Command): Promise<string> {
    try {
      const reply = await withDeadline(this.#timeoutMs, command.join(" "), () =>
        this.#admin.sendCommand(command),
      );
      return String(reply);
    } catch (error) {
      return error instanceof ErrorReply ? error.message : "";
    }
  }
}

/** Runs `work`, rejecting with RedisUnavailableError after `timeoutMs` (rare paths: connect, admin). */
async function withDeadline<T>(
  timeoutMs: number,
  what: string,
  work: () => Promise<T>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new RedisUnavailableError(`${what} timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  const working = work();
  working.catch(() => {});
  try {
    return await Promise.race([working, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
