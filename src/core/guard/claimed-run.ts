/*
 * Running a slot this call has claimed, from the claim's answer to the result.
 *
 * 1. Lease. A keeper holds the claim: it extends the lease every `heartbeatMs` (compare-and-
 *    PEXPIRE on our token) and knows `endsAtMs`, the local time until which the lease surely holds.
 *    Every lease is counted from when its request was sent, not from when the answer came, so the
 *    key can outlive `endsAtMs` but not expire before it. The keeper aborts the job's signal with
 *    a LockLostError when an extension finds the key gone or foreign, or when `endsAtMs` passes
 *    without a successful extension. The job is expected to stop then; one that ignores the
 *    signal is still awaited, and step 4 decides what its result says.
 *
 * 2. Job. The job runs with the lease's signal. A value or a throw both become the run's outcome:
 *    a thrown error is reported in a `failed` result (and recorded as `failed`), never rethrown.
 *    The keeper stops as soon as the job settles, so nothing extends the lease from then on: the
 *    completion has until `endsAtMs` to land.
 *
 * 3. Completion. COMPLETE_SCRIPT compares the token and writes `done` (or `failed`/`released` by
 *    the failure policy) with the retention as TTL, and appends the run to the history. It is
 *    idempotent, so it is retried with backoff, but never past `endsAtMs`: after that another
 *    instance may hold the slot and a late completion proves nothing.
 *
 * 4. The result, by what the completion answered:
 *    - `recorded`: the key still held our running claim (or a retry found this very claim already
 *      finished). That proves the run was alone: a claim writes the key only while it is absent
 *      (or `released`), our random token is written by our claim alone, and a key once gone (expired)
 *      never comes back with our token. So the key held our claim without a gap from the claim to
 *      the completion, and every other claim in between was turned away. The result is the job's
 *      own: `ran` with its value, or `failed` with its error.
 *    - `lost`: the key had expired or another claim held it, so the slot may have run twice (the
 *      script appends a `lost` entry to the history). `failed` with `lockLost`; the error is the
 *      job's own if it threw, else a LockLostError.
 *    - no answer (every attempt failed, or the lease left no time to retry): we cannot know
 *      whether the completion landed.
 *      - If the keeper had lost the lease, or `endsAtMs` has passed, another instance may have
 *        run the slot meanwhile: treated as `lost`, with the store error as `warning`.
 *      - Otherwise the lease still holds, so the run was alone: the job's result stands, with a
 *        warning that the slot stays `running` until `endsAtMs` (unless the completion did land),
 *        after which a later delivery may run it again.
 */

import { LockLostError, StoreUnavailableError } from "../errors.js";
import type { ResolvedGuardOptions } from "../options.js";
import { sleep } from "../sleep.js";
import { asStoreError, decodeReply, runScript } from "../store.js";
import type { Claim } from "./claim.js";
import type { JobKeys } from "./keys.js";
import { keepLease, type Lease } from "./lease.js";
import type { FailedResult, GuardResult, SlotState } from "./result.js";
import { COMPLETE_SCRIPT } from "./scripts.js";
import type { JobContext, JobFunction } from "./types.js";

interface CompleteReply {
  outcome: "recorded" | "lost";
  /** The finished state the completion wrote (absent when a retry found it recorded already). */
  state?: SlotState;
}

const SUMMARY_CHARS = 200;
const COMPLETE_ATTEMPTS = 4;
const COMPLETE_BACKOFF_MS = 100;

/**
 * Runs `fn` under `claim` and records how it ended; see the top of this file. `onRecorded` hears
 * the state the completion wrote when it was recorded (single-flight memory).
 */
export async function runClaimed<T>(
  config: ResolvedGuardOptions,
  keys: JobKeys,
  job: string,
  slot: string,
  fn: JobFunction<T>,
  claim: Claim,
  retentionMs: number,
  waitUntil?: (promise: Promise<unknown>) => void,
  onRecorded?: (state: SlotState | undefined) => void,
): Promise<GuardResult<T>> {
  const keeper = keepLease({
    redis: config.redis,
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
    const context: JobContext = { signal: lease.signal, job, slot, fence: lease.fence, lease };
    outcome = { ok: true, value: await fn(context) };
  } catch (error) {
    outcome = { ok: false, error };
  } finally {
    keeper.stop();
  }
  const durationMs = config.clock() - claim.startedAt;
  const base = { job, slot, fence: lease.fence, durationMs, unguarded: false };
  const failed = (error: unknown, extra: Partial<FailedResult> = {}): FailedResult => ({
    status: "failed",
    ...base,
    error,
    lockLost: keeper.lost !== undefined,
    ...extra,
  });
  let recorded: CompleteReply;
  const record = () =>
    complete(config, keys, slot, lease, claim, {
      outcome: outcome.ok ? "done" : "failed",
      summary: summarize(outcome.ok ? outcome.value : outcome.error),
      durationMs,
      retentionMs,
    });
  try {
    recorded = await withRetries(keeper.endsAtMs, record);
  } catch (error) {
    const cause = asStoreError(error, "complete");
    // The run happened: keep trying to record it, past the lease too (the ledger then enters it as
    // `lost`), so that no later delivery, catch-up or backfill runs the slot again unasked.
    const background = recordEventually(
      record,
      Math.max(keeper.endsAtMs, Date.now()) + config.leaseMs,
    );
    waitUntil?.(background);
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
      return failed(outcome.ok ? lostError : outcome.error, {
        lockLost: true,
        completed: outcome.ok,
        warning: cause,
      });
    }
    const warning = new StoreUnavailableError(
      `the run finished but could not be recorded (${cause.message}): recording goes on in the background; until it lands the slot stays running until its lease ends at ${new Date(keeper.endsAtMs).toISOString()}, then a later delivery may run it again`,
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
    return failed(outcome.ok ? lostError : outcome.error, {
      lockLost: true,
      completed: outcome.ok,
    });
  }
  onRecorded?.(recorded.state);
  return outcome.ok
    ? { status: "ran", ...base, value: outcome.value, reentered: false }
    : failed(outcome.error);
}

/** What COMPLETE_SCRIPT writes about the run. */
interface Completion {
  outcome: "done" | "failed";
  summary: string;
  durationMs: number;
  retentionMs: number;
}

async function complete(
  config: ResolvedGuardOptions,
  keys: JobKeys,
  slot: string,
  lease: Lease,
  claim: Claim,
  completion: Completion,
): Promise<CompleteReply> {
  const reply = await runScript(
    config.redis,
    COMPLETE_SCRIPT,
    [keys.slot(slot), keys.runs, keys.running, keys.ledger],
    [
      lease.token,
      completion.outcome,
      completion.retentionMs,
      config.clock(),
      completion.durationMs,
      completion.summary,
      config.onFailure,
      config.historyLength,
      slot,
      lease.fence,
      config.region,
      config.ledgerMaxAgeMs,
      config.ledgerMaxSlots,
      claim.score,
      claim.forced ? "1" : "0",
    ],
  );
  return decodeReply<CompleteReply>(reply);
}

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
      await sleep(backoffMs);
    }
  }
}

const BACKGROUND_MAX_BACKOFF_MS = 5_000;

/** Retries the completion with backoff until it lands or `untilMs` passes; never rejects. */
async function recordEventually(
  attempt: () => Promise<unknown>,
  untilMs: number,
): Promise<boolean> {
  for (let tries = 0; ; tries += 1) {
    const backoffMs = Math.min(
      COMPLETE_BACKOFF_MS * 2 ** (tries + COMPLETE_ATTEMPTS - 1),
      BACKGROUND_MAX_BACKOFF_MS,
    );
    if (Date.now() + backoffMs >= untilMs) return false;
    await sleep(backoffMs);
    try {
      await attempt();
      return true;
    } catch {
      // still unreachable: try again after a longer pause
    }
  }
}

/** The history's one-line account of a value or error, cut to SUMMARY_CHARS. */
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
