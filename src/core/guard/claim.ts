import { StoreUnavailableError } from "../errors.js";
import type { ResolvedGuardOptions } from "../options.js";
import { sleep } from "../sleep.js";
import { asStoreError, decodeReply, runScript } from "../store.js";
import type { JobKeys } from "./keys.js";
import type { SkipReason, SlotState } from "./result.js";
import { CLAIM_SCRIPT, WITHDRAW_SCRIPT } from "./scripts.js";
import { slotScore } from "./slot-score.js";
import { SOURCE_MAX_SLOTS } from "./sources.js";
import type { RunOptions } from "./types.js";

interface ClaimReply {
  outcome: "claimed" | "taken" | "overlap" | "withdrawn";
  state: SlotState;
  pttl: number;
}

/** A claim the store granted, with what running the slot under it needs. */
export interface Claim {
  token: string;
  fence: number;
  /** Local time (Date.now) the claim was sent: the lease counts from here. */
  sentAtMs: number;
  /** The guard's clock when the claim was made: the run's duration counts from here. */
  startedAt: number;
  /** The slot's place in the job's order (its fire time, ms); the ledger evicts by it. */
  score: number;
  /** The claim was made with `force`: its run is recorded as forced. */
  forced: boolean;
  /** The running state the claim wrote: what the store answers other claims of the slot. */
  state: SlotState;
}

/**
 * How a claim ended: the slot is ours, someone else's (or done), or the store's answer cannot be
 * trusted (none, or later than the lease), in which case the claim is being withdrawn and `error`
 * says so.
 */
export type ClaimAttempt =
  | { outcome: "claimed"; claim: Claim }
  | {
      outcome: "skipped";
      reason: SkipReason;
      holder: SlotState;
      /** The slot key's remaining TTL in ms; -2 when the answer came from the ledger. */
      pttl: number;
    }
  | { outcome: "abandoned"; error: StoreUnavailableError };

const WITHDRAW_BACKOFF_MS = 100;
const WITHDRAW_MAX_BACKOFF_MS = 5_000;
/** How long a withdrawal keeps trying, at least: a stalled store may run a queued claim much later. */
const WITHDRAW_MIN_PATIENCE_MS = 30_000;
/** How long the marker of a withdrawn claim lives, at least. */
const WITHDRAWN_MARKER_MIN_MS = 600_000;

function skipReason(reply: ClaimReply): SkipReason {
  if (reply.outcome === "overlap") return "overlap";
  const state = reply.state.state;
  if (state === "lost") return "done";
  return state === "running" || state === "done" || state === "failed" || state === "unvouched"
    ? state
    : "foreign";
}

/**
 * CLAIM_SCRIPT's KEYS, in its order: slot, fence, slot index, running, withdrawn marker, ledger,
 * source record.
 */
export function claimScriptKeys(keys: JobKeys, slot: string, token: string): string[] {
  return [
    keys.slot(slot),
    keys.fence,
    keys.slotIndex,
    keys.running,
    keys.withdrawn(token),
    keys.ledger,
    keys.sources,
  ];
}

/**
 * Claims `(job, slot)` in one round trip (CLAIM_SCRIPT). A store failure does not reject: it, or an
 * answer that came back after the lease could already have run out, becomes `abandoned`, and the
 * claim's withdrawal starts (handed to `runOptions.waitUntil`).
 */
export async function claimSlot(
  config: ResolvedGuardOptions,
  keys: JobKeys,
  slot: string,
  slotInput: number | Date | string,
  runOptions: RunOptions,
): Promise<ClaimAttempt> {
  const token = crypto.randomUUID();
  const startedAt = config.clock();
  const sentAtMs = Date.now();
  const score = slotScore(slotInput, startedAt);
  let reply: ClaimReply;
  try {
    reply = decodeReply<ClaimReply>(
      await runScript(config.redis, CLAIM_SCRIPT, claimScriptKeys(keys, slot, token), [
        token,
        config.leaseMs,
        startedAt,
        config.region,
        slot,
        score,
        config.overlap,
        config.historyLength,
        runOptions.force === true ? "1" : "0",
        config.ledgerMaxAgeMs,
        runOptions.source ?? "",
        SOURCE_MAX_SLOTS,
      ]),
    );
  } catch (error) {
    const cause = asStoreError(error, "claim");
    return {
      outcome: "abandoned",
      error: abandonClaim(config, keys, slot, token, cause, sentAtMs, runOptions),
    };
  }
  const elapsedMs = Date.now() - sentAtMs;
  if (
    reply.outcome === "withdrawn" ||
    (reply.outcome === "claimed" && elapsedMs >= config.leaseMs)
  ) {
    // The lease (counted from when the claim was sent) may already have run out, and another
    // instance may hold the slot: starting the job now could overlap it.
    const late = new StoreUnavailableError(
      `the store answered the claim after ${elapsedMs} ms, later than its lease of ${config.leaseMs} ms`,
      { kind: "slow" },
    );
    return {
      outcome: "abandoned",
      error: abandonClaim(config, keys, slot, token, late, sentAtMs, runOptions),
    };
  }
  if (reply.outcome !== "claimed") {
    return {
      outcome: "skipped",
      reason: skipReason(reply),
      holder: reply.state,
      pttl: Number(reply.pttl),
    };
  }
  return {
    outcome: "claimed",
    claim: {
      token,
      fence: Number(reply.state.fence),
      sentAtMs,
      startedAt,
      score,
      forced: runOptions.force === true,
      state: reply.state,
    },
  };
}

/**
 * A claim that cannot be trusted (no answer, or an answer later than the lease): the job must not
 * run under it. Starts the withdrawal and says in the error what is known about the slot. A
 * rejection (the store answered with an error) claimed nothing, so there is nothing to withdraw.
 */
function abandonClaim(
  config: ResolvedGuardOptions,
  keys: JobKeys,
  slot: string,
  token: string,
  error: StoreUnavailableError,
  sentAtMs: number,
  runOptions: RunOptions,
): StoreUnavailableError {
  if (error.kind === "rejected") return error;
  const withdrawal = withdraw(config, keys, slot, token);
  runOptions.waitUntil?.(withdrawal);
  return new StoreUnavailableError(error.message, {
    cause: error.cause ?? error,
    kind: error.kind,
    withdrawal,
    slotFreeByMs: sentAtMs + config.leaseMs,
  });
}

/**
 * Withdraws a claim whose answer never came back (or came back too late): the claim may have run
 * in Redis, or may still be queued there. Keeps trying, with backoff, until the store confirms;
 * the marker it leaves makes a claim that lands even later refuse. Never rejects: false when the
 * store could not be reached in time (the slot then frees itself when the lease ends).
 */
async function withdraw(
  config: ResolvedGuardOptions,
  keys: JobKeys,
  slot: string,
  token: string,
): Promise<boolean> {
  const giveUpAtMs = Date.now() + Math.max(config.leaseMs, WITHDRAW_MIN_PATIENCE_MS);
  const markerTtlMs = Math.max(2 * config.leaseMs, WITHDRAWN_MARKER_MIN_MS);
  for (let tries = 0; ; tries += 1) {
    try {
      await runScript(
        config.redis,
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
