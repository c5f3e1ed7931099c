import { RedisUnavailableError } from "./errors.js";

/** What a call's work can see of its deadline. */
export interface Call {
  /** True once the call timed out or failed early; the work's result is ignored then. */
  readonly aborted: boolean;
  /** Aborted with the call (created on first use: most calls never need one). */
  readonly signal: AbortSignal;
}

class Pending<T> implements Call {
  aborted = false;
  slowReported = false;
  #controller: AbortController | undefined;
  constructor(
    readonly what: string,
    readonly startedAt: number,
    readonly resolve: (value: T) => void,
    readonly reject: (error: Error) => void,
  ) {}

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }

  abort(error: Error): void {
    this.aborted = true;
    this.#controller?.abort(error);
    this.reject(error);
  }
}

/** A sweep every this many ms finds calls past their deadline. */
const SWEEP_MS = 10;
/** Idle sweeps before the sweep timer stops (restarted by the next call). */
const IDLE_SWEEPS = 100;

/**
 * One timer for many deadlines: calls `sweep` every {@link SWEEP_MS} ms from `wake()` on, and
 * stops after {@link IDLE_SWEEPS} sweeps in a row that found nothing waiting (`sweep` returns
 * whether anything still waits). The timer never keeps the process alive.
 */
export class Sweeper {
  #timer: NodeJS.Timeout | undefined;
  #idleSweeps = 0;

  constructor(private readonly sweep: () => boolean) {}

  /** Something waits: make sure the timer runs. */
  wake(): void {
    if (this.#timer) return;
    this.#idleSweeps = 0;
    this.#timer = setInterval(() => this.#tick(), SWEEP_MS);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    if (this.sweep()) {
      this.#idleSweeps = 0;
      return;
    }
    this.#idleSweeps += 1;
    if (this.#idleSweeps >= IDLE_SWEEPS) this.close();
  }
}

/**
 * Deadlines for many concurrent calls with one timer: every call has the same timeout, so
 * calls expire in the order they started, and a sweep every {@link SWEEP_MS} ms looks only at
 * the oldest. Per call this costs an object and a Set entry, instead of a setTimeout, an
 * AbortController and a Promise.race (what a per-call timer costs at 50 000 calls/s shows in
 * the profile). Used where calls are few (transactions, a cluster); commands on the shared
 * connection are watched by the age of the oldest waiting one (see RedisConnections).
 */
export class Deadlines {
  readonly #pending = new Set<Pending<never>>();
  readonly #sweeper = new Sweeper(() => this.#sweep());

  constructor(
    private readonly timeoutMs: number,
    private readonly slowAfterMs = Number.POSITIVE_INFINITY,
    private readonly onSlow: () => void = () => {},
  ) {}

  /** Runs `work`; rejects with RedisUnavailableError once `timeoutMs` have passed. */
  track<T>(what: string, work: (call: Call) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const pending = new Pending<T>(what, performance.now(), resolve, reject);
      this.#pending.add(pending as Pending<never>);
      this.#sweeper.wake();
      work(pending).then(
        (value) => {
          if (this.#pending.delete(pending as Pending<never>)) resolve(value);
        },
        (error: Error) => {
          if (this.#pending.delete(pending as Pending<never>)) reject(error);
        },
      );
    });
  }

  /** Fails every pending call with `error` (an unkillable script keeps Redis busy). */
  failAll(error: Error): void {
    const all = [...this.#pending];
    this.#pending.clear();
    for (const pending of all) pending.abort(error);
  }

  close(): void {
    this.#sweeper.close();
  }

  /** Fails calls past their deadline; whether any call still waits. */
  #sweep(): boolean {
    if (this.#pending.size === 0) return false;
    const now = performance.now();
    for (const pending of this.#pending) {
      const age = now - pending.startedAt;
      if (age >= this.timeoutMs) {
        this.#pending.delete(pending);
        pending.abort(
          new RedisUnavailableError(`${pending.what} timed out after ${this.timeoutMs} ms`),
        );
        continue;
      }
      if (age >= this.slowAfterMs && !pending.slowReported) {
        pending.slowReported = true;
        this.onSlow();
      }
      break; // the rest started later
    }
    return true;
  }
}
