/**
 * A GuardStore over a real Redis connection that injects network faults per call, following a plan:
 * call n of the store gets `plan[n]` (no fault once the plan runs out). Every call is logged with
 * what really happened in Redis (sent, answered, the reply) and what the caller saw, so a test can
 * tell "the command never ran" from "it ran and the answer was lost".
 */

import { sleep } from "../../src/core/sleep.js";
import type { GuardStore } from "../../src/core/store.js";

export type Fault =
  | { kind: "ok" }
  /** Throws before sending: the command never reaches Redis. */
  | { kind: "failBefore" }
  /** Runs the command, then throws: the caller thinks it failed, Redis applied it. */
  | { kind: "loseAnswer" }
  /** The command travels `ms` before it reaches Redis (lands late, maybe after the caller gave up). */
  | { kind: "delaySend"; ms: number }
  /** Redis answers at once, the answer travels `ms` back. */
  | { kind: "delayAnswer"; ms: number }
  /** The command is sent, then the process dies: it lands, nobody hears the answer (see `kill`). */
  | { kind: "die" };

export type CallOutcome = "answered" | "error" | "timeout" | "dead";

export interface CallRecord {
  /** The store's label when the call was made (tests set it per attempt). */
  label: string;
  /** Index of the call in its store, i.e. the plan entry it used. */
  seq: number;
  method: "eval" | "evalsha";
  /** Script name, from the `names` map (sha1 or source), else "?". */
  script: string;
  keys: string[];
  args: string[];
  fault: Fault;
  calledAt: number;
  /** When the command left for Redis; undefined if it never did. */
  sentAt?: number;
  /** When Redis's answer (reply or error) came back: the command ran in [sentAt, repliedAt]. */
  repliedAt?: number;
  reply?: unknown;
  redisError?: string;
  /** What the caller saw, and when. */
  outcome?: CallOutcome;
  settledAt?: number;
}

/** The one method we need from a node `redis` client (RESP2). */
export interface RawRedis {
  sendCommand(args: string[]): Promise<unknown>;
}

export interface FaultyStoreOptions {
  redis: RawRedis;
  plan: readonly Fault[];
  /** Shared call log (several stores may append to one). */
  log: CallRecord[];
  label?: string;
  /** Like an HTTP client timeout: the caller's promise rejects after this; the command may still land. */
  timeoutMs?: number | null;
  /** sha1 or source → script name, for the log. */
  names?: ReadonlyMap<string, string>;
  /** Clock for the log; default performance.now(). */
  now?: () => number;
  /** Called when a `die` fault kills the store, with its label at that moment. */
  onDeath?: (label: string) => void;
}

export class InjectedFault extends Error {
  override readonly name = "InjectedFault";
}

export class FaultyStore implements GuardStore {
  label: string;
  readonly #options: FaultyStoreOptions;
  readonly #now: () => number;
  #seq = 0;
  #dead = false;
  #released = false;
  readonly #hung: ((error: Error) => void)[] = [];
  /** Commands on their way to or in Redis, whatever the caller saw. */
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(options: FaultyStoreOptions) {
    this.#options = options;
    this.label = options.label ?? "";
    this.#now = options.now ?? (() => performance.now());
  }

  /** How many calls were made (plan entries consumed). */
  get calls(): number {
    return this.#seq;
  }

  /**
   * The process dies: new calls are never sent and answers never arrive (commands already on the
   * wire still land in Redis). Pending and later calls hang until `release()`.
   */
  kill(): void {
    this.#dead = true;
  }

  /** Ends the case: every hung call rejects, later calls reject at once. */
  release(): void {
    this.#released = true;
    for (const reject of this.#hung.splice(0)) reject(new InjectedFault("process is dead"));
  }

  /** Resolves when every command already sent (or scheduled to be sent) has been answered by Redis. */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  eval<TArgs extends unknown[], TData = unknown>(
    script: string,
    keys: string[],
    args: TArgs,
  ): Promise<TData> {
    return this.#call("eval", script, keys, args) as Promise<TData>;
  }

  evalsha<TArgs extends unknown[], TData = unknown>(
    sha1: string,
    keys: string[],
    args: TArgs,
  ): Promise<TData> {
    return this.#call("evalsha", sha1, keys, args) as Promise<TData>;
  }

  #hang(): Promise<never> {
    if (this.#released) return Promise.reject(new InjectedFault("process is dead"));
    return new Promise((_, reject) => this.#hung.push(reject));
  }

  #call(
    method: "eval" | "evalsha",
    scriptOrSha: string,
    keys: string[],
    rawArgs: unknown[],
  ): Promise<unknown> {
    const seq = this.#seq;
    this.#seq += 1;
    const fault = this.#options.plan[seq] ?? { kind: "ok" };
    const args = rawArgs.map((arg) => String(arg));
    const record: CallRecord = {
      label: this.label,
      seq,
      method,
      script: this.#options.names?.get(scriptOrSha) ?? "?",
      keys,
      args,
      fault,
      calledAt: this.#now(),
    };
    this.#options.log.push(record);
    const settle = (outcome: CallOutcome) => {
      if (record.outcome === undefined) {
        record.outcome = outcome;
        record.settledAt = this.#now();
      }
    };
    if (this.#dead) {
      settle("dead");
      return this.#hang();
    }
    if (fault.kind === "failBefore") {
      settle("error");
      return Promise.reject(new InjectedFault("fetch failed: ECONNRESET (injected before send)"));
    }
    const command = [
      method === "evalsha" ? "EVALSHA" : "EVAL",
      scriptOrSha,
      String(keys.length),
      ...keys,
      ...args,
    ];
    const execution = (async () => {
      if (fault.kind === "delaySend") await sleep(fault.ms);
      record.sentAt = this.#now();
      try {
        const reply = await this.#options.redis.sendCommand(command);
        record.reply = reply;
        return { ok: true as const, reply };
      } catch (error) {
        record.redisError = error instanceof Error ? error.message : String(error);
        return { ok: false as const, error };
      } finally {
        record.repliedAt = this.#now();
      }
    })();
    this.#inFlight.add(execution);
    void execution.finally(() => this.#inFlight.delete(execution));
    if (fault.kind === "die") {
      this.kill();
      this.#options.onDeath?.(this.label);
      settle("dead");
      return this.#hang();
    }

    const answer = (async () => {
      const result = await execution;
      if (fault.kind === "loseAnswer") {
        throw new InjectedFault("socket hang up (injected: the answer was lost)");
      }
      if (fault.kind === "delayAnswer") await sleep(fault.ms);
      if (this.#dead) return this.#hang();
      if (!result.ok) throw result.error;
      return result.reply;
    })();

    const timeoutMs = this.#options.timeoutMs;
    const raced =
      timeoutMs === undefined || timeoutMs === null
        ? answer
        : new Promise<unknown>((resolve, reject) => {
            const timer = setTimeout(() => {
              settle("timeout");
              reject(new InjectedFault(`request timed out after ${timeoutMs} ms (injected)`));
            }, timeoutMs);
            answer.then(
              (value) => {
                clearTimeout(timer);
                resolve(value);
              },
              (error: unknown) => {
                clearTimeout(timer);
                reject(error);
              },
            );
          });
    return raced.then(
      (value) => {
        settle("answered");
        return value;
      },
      (error: unknown) => {
        settle("error");
        throw error;
      },
    );
  }
}
