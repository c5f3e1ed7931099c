import {
  type DistributeOptions,
  type DistributeResult,
  distribute,
  type Task,
} from "./distribute.js";
import { LockLostError, StoreUnavailableError } from "./errors.js";
import { assertJobName, assertSlotId, type JobKeys, jobKeys } from "./keys.js";
import { isLiveLease, keepLease, type Lease } from "./lease.js";
import {
  effectiveRetentionMs,
  type GuardOptions,
  type ResolvedGuardOptions,
  resolveGuardOptions,
} from "./options.js";
import type { FailedResult, GuardResult, SkipReason, SlotState } from "./result.js";
import { CLAIM_SCRIPT, COMPLETE_SCRIPT, STATUS_SCRIPT, WITHDRAW_SCRIPT } from "./scripts.js";
import { slotId as isoSlotId } from "./slot.js";
import { decodeReply, failureKind, messageOf, runScript } from "./store.js";

/** What the job receives. */
export interface JobContext {
  /** Aborted with a LockLostError when the lease is lost; pass it to fetch() and friends. */
  signal: AbortSignal;
  job: string;
  slot: string;
  fence: number | null;
  /** The claim; null when the job runs unguarded (store down, `onStoreError: "open"`). */
  lease: Lease | null;
}

export type Job<T> = (context: JobContext) => T | Promise<T>;

export interface RunOptions {
  /** Platform hook that keeps the isolate alive until the run is recorded (ctx.waitUntil). */
  waitUntil?: (promise: Promise<unknown>) => void;
  /** The enclosing run's lease: guarding the same job and slot again re-enters instead of skipping. */
  lease?: Lease | null;
  /** The schedule's period in ms, used for the default retention. */
  periodMs?: number;
}

export interface JobStatus {
  job: string;
  /** The last fencing token handed out (0 if never claimed). */
  fence: number;
  /** The running claim when `overlap: "skip"` is on. */
  running: SlotState | null;
  /** Latest slots first. */
  slots: { slot: string; state: SlotState | null; ttlMs: number | null }[];
  /** Latest runs first, from the capped history stream. */
  runs: RunRecord[];
}

export interface RunRecord {
  id: string;
  slot: string;
  status: "done" | "failed" | "lost";
  fence: number;
  region: string;
  finishedAt: number;
  durationMs: number;
  summary: string;
}

export interface Guard {
  readonly options: ResolvedGuardOptions;
  /**
   * Runs `fn` once for `(job, slot)` across every instance. `slot` is a fire time (ms or Date) or a
   * slot id string. Resolves to ran / skipped / failed; throws only on invalid input
   * (InvalidKeyPartError) and, with `onStoreError: "closed"`, StoreUnavailableError.
   */
  run<T>(
    job: string,
    slot: number | Date | string,
    fn: Job<T>,
    options?: RunOptions,
  ): Promise<GuardResult<T>>;
  /** The latest slots and runs of a job, in one round trip. */
  status(job: string, options?: { slots?: number; runs?: number }): Promise<JobStatus>;
  /**
   * Shares a slot's tasks among every instance that calls this with the same list: each task (its
   * id is the job name) runs once, the work spreads over the callers, and tasks of a caller that
   * crashed are taken over when their lease ends. See DistributeResult.
   */
  distribute<T extends Task>(
    slot: number | Date | string,
    tasks: readonly T[],
    fn: (task: T, context: JobContext) => unknown,
    options?: DistributeOptions,
  ): Promise<DistributeResult>;
}

interface ClaimReply {
  outcome: "claimed" | "taken" | "overlap" | "withdrawn";
  state: SlotState;
  pttl: number;
}

interface CompleteReply {
  outcome: "recorded" | "lost";
}

const SUMMARY_CHARS = 200;

export function toSlotId(slot: number | Date | string): string {
  if (typeof slot === "string") {
    assertSlotId(slot);
    return slot;
  }
  return isoSlotId(slot instanceof Date ? slot.getTime() : slot);
}

function slotScore(slot: number | Date | string, nowMs: number): number {
  if (typeof slot === "number") return slot;
  if (slot instanceof Date) return slot.getTime();
  return nowMs;
}

function summarize(value: unknown): string {
  if (value === undefined) return "";
  let text: string;
  try {
    text =
      value instanceof Error ? `${value.name}: ${value.message}` : (JSON.stringify(value) ?? "");
  } catch {
    text = String(value);
  }
  return text.length > SUMMARY_CHARS ? `${text.slice(0, SUMMARY_CHARS - 1)}…` : text;
}

function skipReason(reply: ClaimReply): SkipReason {
  if (reply.outcome === "overlap") return "overlap";
  const state = reply.state.state;
  return state === "running" || state === "done" || state === "failed" ? state : "foreign";
}

const COMPLETE_ATTEMPTS = 4;
const COMPLETE_BACKOFF_MS = 100;

/**
 * Retries an idempotent store call (completion) a few times with backoff, but never past
 * `untilMs` (the end of our lease): a completion that lands after it could not be trusted anyway.
 * Until it lands the slot stays `running`, so a failed completion can cost a duplicate run once the
 * lease ends; a few retries make that need a store outage, not a blip.
 */
async function withRetries<T>(untilMs: number, attempt: () => Promise<T>): Promise<T> {
  for (let tries = 1; ; tries += 1) {
    try {
      return await attempt();
    } catch (error) {
      const backoffMs = COMPLETE_BACKOFF_MS * 2 ** (tries - 1);
      if (tries >= COMPLETE_ATTEMPTS || Date.now() + backoffMs >= untilMs) throw error;
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
    }
  }
}

const WITHDRAW_BACKOFF_MS = 100;
const WITHDRAW_MAX_BACKOFF_MS = 5_000;
/** How long a withdrawal keeps trying, at least: a stalled store may run a queued claim much later. */
const WITHDRAW_MIN_PATIENCE_MS = 30_000;
/** How long the marker of a withdrawn claim lives, at least. */
const WITHDRAWN_MARKER_MIN_MS = 600_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function asStoreError(error: unknown, what: string): StoreUnavailableError {
  if (error instanceof StoreUnavailableError) return error;
  return new StoreUnavailableError(`${what} failed: ${messageOf(error)}`, {
    cause: error,
    kind: failureKind(error),
  });
}

function asArray<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}

export function createGuard(options: GuardOptions): Guard {
  const config = resolveGuardOptions(options);
  const { redis, clock } = config;

  async function runUnguarded<T>(
    job: string,
    slot: string,
    fn: Job<T>,
    storeError: StoreUnavailableError,
  ): Promise<GuardResult<T>> {
    const startedAt = clock();
    const context: JobContext = {
      signal: new AbortController().signal,
      job,
      slot,
      fence: null,
      lease: null,
    };
    try {
      const value = await fn(context);
      return {
        status: "ran",
        job,
        slot,
        fence: null,
        durationMs: clock() - startedAt,
        value,
        unguarded: true,
        reentered: false,
        warning: storeError,
      };
    } catch (error) {
      return {
        status: "failed",
        job,
        slot,
        fence: null,
        durationMs: clock() - startedAt,
        error,
        lockLost: false,
        unguarded: true,
        warning: storeError,
      };
    }
  }

  async function reenter<T>(
    job: string,
    slot: string,
    fn: Job<T>,
    lease: Lease,
  ): Promise<GuardResult<T>> {
    const startedAt = clock();
    const base = { job, slot, fence: lease.fence, unguarded: false };
    if (lease.signal.aborted) {
      return {
        status: "failed",
        ...base,
        durationMs: 0,
        error: lease.signal.reason,
        lockLost: true,
      };
    }
    try {
      const value = await fn({ signal: lease.signal, job, slot, fence: lease.fence, lease });
      return { status: "ran", ...base, durationMs: clock() - startedAt, value, reentered: true };
    } catch (error) {
      return {
        status: "failed",
        ...base,
        durationMs: clock() - startedAt,
        error,
        lockLost: lease.signal.aborted,
      };
    }
  }

  /**
   * Withdraws a claim whose answer never came back (or came back too late): the claim may have run
   * in Redis, or may still be queued there. Keeps trying, with backoff, until the store confirms;
   * the marker it leaves makes a claim that lands even later refuse. Never rejects: false when the
   * store could not be reached in time (the slot then frees itself when the lease ends).
   */
  async function withdraw(keys: JobKeys, slot: string, token: string): Promise<boolean> {
    const giveUpAtMs = Date.now() + Math.max(config.leaseMs, WITHDRAW_MIN_PATIENCE_MS);
    const markerTtlMs = Math.max(2 * config.leaseMs, WITHDRAWN_MARKER_MIN_MS);
    for (let tries = 0; ; tries += 1) {
      try {
        await runScript(
          redis,
          WITHDRAW_SCRIPT,
          [keys.slot(slot), keys.running, keys.withdrawn(token)],
          [token, markerTtlMs],
        );
        return true;
      } catch {
        const backoffMs = Math.min(WITHDRAW_BACKOFF_MS * 2 ** tries, WITHDRAW_MAX_BACKOFF_MS);
        if (Date.now() + backoffMs >= giveUpAtMs) return false;
        await sleep(backoffMs);
      }
    }
  }

  /**
   * A claim that cannot be trusted (no answer, or an answer later than the lease): the job must not
   * run under it. Starts the withdrawal and says in the error what is known about the slot.
   */
  function abandonClaim(
    keys: JobKeys,
    slot: string,
    token: string,
    error: StoreUnavailableError,
    sentAtMs: number,
    runOptions: RunOptions,
  ): StoreUnavailableError {
    if (error.kind === "rejected") return error;
    const withdrawal = withdraw(keys, slot, token);
    runOptions.waitUntil?.(withdrawal);
    return new StoreUnavailableError(error.message, {
      cause: error.cause ?? error,
      kind: error.kind,
      withdrawal,
      slotFreeByMs: sentAtMs + config.leaseMs,
    });
  }

  async function complete(
    keys: JobKeys,
    slot: string,
    lease: Lease,
    outcome: "done" | "failed",
    summary: string,
    durationMs: number,
    retentionMs: number,
  ): Promise<CompleteReply> {
    const reply = await runScript(
      redis,
      COMPLETE_SCRIPT,
      [keys.slot(slot), keys.runs, keys.running],
      [
        lease.token,
        outcome,
        retentionMs,
        clock(),
        durationMs,
        summary,
        config.onFailure,
        config.historyLength,
        slot,
        lease.fence,
        config.region,
      ],
    );
    return decodeReply<CompleteReply>(reply);
  }

  async function runClaimed<T>(
    keys: JobKeys,
    job: string,
    slot: string,
    fn: Job<T>,
    claim: { token: string; fence: number; sentAtMs: number; startedAt: number },
    retentionMs: number,
  ): Promise<GuardResult<T>> {
    const keeper = keepLease({
      redis,
      job,
      slot,
      key: keys.slot(slot),
      runningKey: keys.running,
      token: claim.token,
      fence: claim.fence,
      leaseMs: config.leaseMs,
      heartbeatMs: config.heartbeatMs,
      claimSentAtMs: claim.sentAtMs,
    });
    const { lease } = keeper;
    let outcome: { ok: true; value: T } | { ok: false; error: unknown };
    try {
      outcome = {
        ok: true,
        value: await fn({ signal: lease.signal, job, slot, fence: lease.fence, lease }),
      };
    } catch (error) {
      outcome = { ok: false, error };
    } finally {
      keeper.stop();
    }
    const durationMs = clock() - claim.startedAt;
    const base = { job, slot, fence: lease.fence, durationMs, unguarded: false };
    const failed = (error: unknown, extra: Partial<FailedResult> = {}): FailedResult => ({
      status: "failed",
      ...base,
      error,
      lockLost: keeper.lost !== undefined,
      ...extra,
    });
    let recorded: CompleteReply;
    try {
      recorded = await withRetries(keeper.endsAtMs, () =>
        complete(
          keys,
          slot,
          lease,
          outcome.ok ? "done" : "failed",
          summarize(outcome.ok ? outcome.value : outcome.error),
          durationMs,
          retentionMs,
        ),
      );
    } catch (error) {
      const cause = asStoreError(error, "complete");
      // Unrecorded, and the lease may have run out meanwhile: another instance may have run the
      // slot, so this run must not claim it ran alone.
      const lostError =
        keeper.lost ??
        (Date.now() >= keeper.endsAtMs
          ? new LockLostError(
              lease.key,
              `lease on ${lease.key} ran out before the run could be recorded`,
              { cause },
            )
          : undefined);
      if (lostError) {
        return failed(outcome.ok ? lostError : outcome.error, { lockLost: true, warning: cause });
      }
      const warning = new StoreUnavailableError(
        `the run finished but could not be recorded (${cause.message}): the slot stays running until its lease ends at ${new Date(keeper.endsAtMs).toISOString()}, then a later delivery may run it again`,
        { cause, kind: cause.kind, slotFreeByMs: keeper.endsAtMs },
      );
      return outcome.ok
        ? { status: "ran", ...base, value: outcome.value, reentered: false, warning }
        : failed(outcome.error, { warning });
    }
    if (recorded.outcome === "lost") {
      const lostError =
        keeper.lost ??
        new LockLostError(lease.key, `lease on ${lease.key} was lost before the run was recorded`);
      return failed(outcome.ok ? lostError : outcome.error, { lockLost: true });
    }
    return outcome.ok
      ? { status: "ran", ...base, value: outcome.value, reentered: false }
      : failed(outcome.error);
  }

  async function run<T>(
    job: string,
    slotInput: number | Date | string,
    fn: Job<T>,
    runOptions: RunOptions = {},
  ): Promise<GuardResult<T>> {
    assertJobName(job);
    const slot = toSlotId(slotInput);
    const keys = jobKeys(config.prefix, job);
    if (typeof fn !== "function") {
      throw new TypeError("run(job, slot, fn): fn must be a function");
    }
    // Only a claim this process still holds re-enters; a kept or hand-made lease claims as usual.
    const enclosing = runOptions.lease;
    if (isLiveLease(enclosing) && enclosing.key === keys.slot(slot)) {
      return reenter(job, slot, fn, enclosing);
    }
    const token = crypto.randomUUID();
    const startedAt = clock();
    const sentAtMs = Date.now();
    let reply: ClaimReply;
    try {
      reply = decodeReply<ClaimReply>(
        await runScript(
          redis,
          CLAIM_SCRIPT,
          [keys.slot(slot), keys.fence, keys.slotIndex, keys.running, keys.withdrawn(token)],
          [
            token,
            config.leaseMs,
            startedAt,
            config.region,
            slot,
            slotScore(slotInput, startedAt),
            config.overlap,
            config.historyLength,
          ],
        ),
      );
    } catch (error) {
      const storeError = abandonClaim(
        keys,
        slot,
        token,
        asStoreError(error, "claim"),
        sentAtMs,
        runOptions,
      );
      // Open means "run when the store cannot be reached", not "run when the store says no".
      if (config.onStoreError === "open" && storeError.kind !== "rejected") {
        return runUnguarded(job, slot, fn, storeError);
      }
      throw storeError;
    }
    const elapsedMs = Date.now() - sentAtMs;
    if (
      reply.outcome === "withdrawn" ||
      (reply.outcome === "claimed" && elapsedMs >= config.leaseMs)
    ) {
      // The lease (counted from when the claim was sent) may already have run out, and another
      // instance may hold the slot: starting the job now could overlap it.
      const storeError = abandonClaim(
        keys,
        slot,
        token,
        new StoreUnavailableError(
          `the store answered the claim after ${elapsedMs} ms, later than its lease of ${config.leaseMs} ms`,
          { kind: "slow" },
        ),
        sentAtMs,
        runOptions,
      );
      if (config.onStoreError === "open") return runUnguarded(job, slot, fn, storeError);
      throw storeError;
    }
    if (reply.outcome !== "claimed") {
      return { status: "skipped", job, slot, reason: skipReason(reply), holder: reply.state };
    }
    const fence = Number(reply.state.fence);
    const retentionMs = effectiveRetentionMs(config, runOptions.periodMs);
    const running = runClaimed(
      keys,
      job,
      slot,
      fn,
      { token, fence, sentAtMs, startedAt },
      retentionMs,
    );
    runOptions.waitUntil?.(running);
    return running;
  }

  async function status(
    job: string,
    statusOptions: { slots?: number; runs?: number } = {},
  ): Promise<JobStatus> {
    assertJobName(job);
    const keys = jobKeys(config.prefix, job);
    const reply = decodeReply<{
      slots: unknown;
      runs: unknown;
      running: SlotState | null;
      fence: number;
    }>(
      await runScript(
        redis,
        STATUS_SCRIPT,
        [keys.slotIndex, keys.runs, keys.running, keys.fence],
        [keys.slotPrefix, statusOptions.slots ?? 5, statusOptions.runs ?? 20],
      ),
    );
    return {
      job,
      fence: Number(reply.fence ?? 0),
      running: reply.running ?? null,
      slots: asArray<{ slot: string; state?: SlotState; pttl: number }>(reply.slots).map(
        (entry) => ({
          slot: String(entry.slot),
          state: entry.state ?? null,
          ttlMs: entry.pttl >= 0 ? entry.pttl : null,
        }),
      ),
      runs: asArray<Record<string, unknown>>(reply.runs).map((entry) => ({
        id: String(entry.id),
        slot: String(entry.slot),
        status: String(entry.status) as RunRecord["status"],
        fence: Number(entry.fence),
        region: String(entry.region ?? ""),
        finishedAt: Number(entry.finishedAt),
        durationMs: Number(entry.durationMs),
        summary: String(entry.summary ?? ""),
      })),
    };
  }

  const guard: Guard = Object.freeze({
    options: config,
    run,
    status,
    distribute: <T extends Task>(
      slot: number | Date | string,
      tasks: readonly T[],
      fn: (task: T, context: JobContext) => unknown,
      options?: DistributeOptions,
    ) => distribute(guard, slot, tasks, fn, options),
  });
  return guard;
}
