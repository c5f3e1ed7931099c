import { LockLostError, StoreUnavailableError } from "./errors.js";
import { assertJobName, assertSlotId, type JobKeys, jobKeys } from "./keys.js";
import { keepLease, type Lease } from "./lease.js";
import {
  effectiveRetentionMs,
  type GuardOptions,
  type ResolvedGuardOptions,
  resolveGuardOptions,
} from "./options.js";
import type { FailedResult, GuardResult, SkipReason, SlotState } from "./result.js";
import { CLAIM_SCRIPT, COMPLETE_SCRIPT, STATUS_SCRIPT } from "./scripts.js";
import { slotId as isoSlotId } from "./slot.js";
import { decodeReply, messageOf, runScript } from "./store.js";

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
}

interface ClaimReply {
  outcome: "claimed" | "taken" | "overlap";
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
      const warning =
        error instanceof StoreUnavailableError
          ? error
          : new StoreUnavailableError(`complete failed: ${messageOf(error)}`, { cause: error });
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
    const enclosing = runOptions.lease;
    if (enclosing && enclosing.key === keys.slot(slot)) {
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
          [keys.slot(slot), keys.fence, keys.slotIndex, keys.running],
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
      const storeError =
        error instanceof StoreUnavailableError
          ? error
          : new StoreUnavailableError(`claim failed: ${messageOf(error)}`, { cause: error });
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

  return Object.freeze({ options: config, run, status });
}
