import { LockLostError } from "../errors.js";
import { type GuardStore, runScript } from "../store.js";
import { EXTEND_SCRIPT } from "./scripts.js";

/** The running claim of one slot, handed to the job. Pass it back to `run` to re-enter. */
export interface Lease {
  readonly job: string;
  readonly slot: string;
  readonly key: string;
  readonly token: string;
  readonly fence: number;
  /** Aborts with a LockLostError when the lease is lost. */
  readonly signal: AbortSignal;
  /**
   * Extends the lease now by `leaseMs`; true when it did. A lease found lost also aborts the signal;
   * a store error does not (the lease may still run out, and then the signal aborts).
   */
  extend(): Promise<boolean>;
}

export interface LeaseKeeper {
  readonly lease: Lease;
  readonly lost: LockLostError | undefined;
  /** Local time (ms) until which the lease is known to hold: last successful extension + lease. */
  readonly endsAtMs: number;
  stop(): void;
}

interface KeeperOptions {
  redis: GuardStore;
  job: string;
  slot: string;
  key: string;
  runningKey: string;
  token: string;
  fence: number;
  leaseMs: number;
  heartbeatMs: number;
  /** Local time (ms, Date.now) at which the claim request was sent: the lease counts from there. */
  claimSentAtMs: number;
}

/** Leases whose claim still holds: issued by a keeper that has neither stopped nor lost it. */
const liveLeases = new WeakSet<Lease>();

/**
 * True while `lease` is a claim this process holds right now. A lease object kept from a finished
 * run, one whose claim was lost, or one built by hand is not live, so it cannot re-enter.
 */
export function isLiveLease(lease: unknown): lease is Lease {
  return typeof lease === "object" && lease !== null && liveLeases.has(lease as Lease);
}

/**
 * Keeps a claimed lease alive: extends it every `heartbeatMs` with a compare-and-PEXPIRE, and aborts
 * the lease's signal with a LockLostError as soon as an extension finds the key gone or foreign, or
 * when the lease runs out locally without a successful extension (store unreachable, no heartbeat).
 * Never throws and never leaves a rejected promise behind.
 */
export function keepLease(options: KeeperOptions): LeaseKeeper {
  const controller = new AbortController();
  let lost: LockLostError | undefined;
  let stopped = false;
  let heartbeatTimer: ReturnType<typeof setTimeout> | undefined;
  let deadlineTimer: ReturnType<typeof setTimeout> | undefined;

  const cancel = (timer: ReturnType<typeof setTimeout> | undefined) => {
    if (timer !== undefined) clearTimeout(timer);
  };

  let lease: Lease;
  const lose = (error: LockLostError) => {
    if (lost || stopped) return;
    lost = error;
    liveLeases.delete(lease);
    cancel(heartbeatTimer);
    cancel(deadlineTimer);
    controller.abort(error);
  };

  let endsAtMs = options.claimSentAtMs + options.leaseMs;

  const armDeadline = (leaseStartMs: number) => {
    cancel(deadlineTimer);
    endsAtMs = leaseStartMs + options.leaseMs;
    const remainingMs = Math.max(0, leaseStartMs + options.leaseMs - Date.now());
    deadlineTimer = setTimeout(() => {
      lose(
        new LockLostError(
          options.key,
          `lease of ${options.leaseMs} ms on ${options.key} ran out without a successful extension`,
        ),
      );
    }, remainingMs);
  };

  const extend = async (): Promise<boolean> => {
    if (lost) return false;
    if (stopped) return true;
    const sentAtMs = Date.now();
    try {
      const reply = await runScript(
        options.redis,
        EXTEND_SCRIPT,
        [options.key, options.runningKey],
        [options.token, options.leaseMs],
      );
      if (Number(reply) === 1) {
        if (!stopped && !lost) armDeadline(sentAtMs);
        return !lost;
      }
      lose(
        new LockLostError(
          options.key,
          `lease on ${options.key} was lost: the key expired or another owner holds it`,
        ),
      );
      return false;
    } catch {
      // A store hiccup shorter than the lease is survivable: the deadline timer decides.
      return false;
    }
  };

  const scheduleHeartbeat = (delayMs: number) => {
    if (options.heartbeatMs === 0 || stopped || lost) return;
    heartbeatTimer = setTimeout(async () => {
      await extend();
      scheduleHeartbeat(options.heartbeatMs);
    }, delayMs);
  };

  armDeadline(options.claimSentAtMs);
  // A slow claim answer leaves less than a whole lease: the first extension comes early enough to
  // land before the rest runs out.
  const remainingMs = endsAtMs - Date.now();
  scheduleHeartbeat(Math.max(0, Math.min(options.heartbeatMs, Math.floor(remainingMs / 2))));

  lease = Object.freeze({
    job: options.job,
    slot: options.slot,
    key: options.key,
    token: options.token,
    fence: options.fence,
    signal: controller.signal,
    extend,
  });
  liveLeases.add(lease);

  return {
    lease,
    get lost() {
      return lost;
    },
    get endsAtMs() {
      return endsAtMs;
    },
    stop() {
      stopped = true;
      liveLeases.delete(lease);
      cancel(heartbeatTimer);
      cancel(deadlineTimer);
    },
  };
}
