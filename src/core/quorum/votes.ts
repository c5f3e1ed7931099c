/**
 * Reading the databases' answers to a claim: each one's vote (its reply, its fence counter before
 * the claim, whether it holds the job's history), which databases are amnesiac, which reply says
 * the slot is over, the reply a loser returns, and whether the vote was split.
 */
import { type Answer, decodeSafely, isOk } from "./answers.js";

export interface ClaimState {
  state?: string;
  token?: string;
  fence?: number;
  [field: string]: unknown;
}

export interface ClaimReply {
  outcome: "claimed" | "taken" | "overlap" | "withdrawn";
  state?: ClaimState;
  pttl?: number;
  [field: string]: unknown;
}

/** One database's answer to a claim, read apart. */
export interface Vote {
  reply: ClaimReply;
  /** The job's fence counter on that database just before the claim ran there. */
  counter: number;
  /** Whether it holds the job's history (run history or the quorum marker). */
  known: boolean;
}

export function voteOf(answer: Answer | undefined): Vote | undefined {
  if (!isOk(answer)) return undefined;
  const value = decodeSafely<unknown>(answer.value);
  if (!Array.isArray(value) || value.length < 3) return undefined;
  const reply = decodeSafely<ClaimReply>(value[2]);
  if (!reply || typeof reply.outcome !== "string") return undefined;
  return { reply, counter: Number(value[0]) || 0, known: Number(value[1]) === 1 };
}

/**
 * A database amnesiac for this job: it answered, holds none of the job's history, while another
 * answering database does. It lost its data (flushed, restarted without persistence) or missed
 * every run so far: its `claimed` is no vote, its `taken` tells nothing, and it gets repaired.
 */
export function amnesiacOf(votes: readonly (Vote | undefined)[]): boolean[] {
  const anyKnown = votes.some((vote) => vote?.known === true);
  return votes.map((vote) => vote !== undefined && anyKnown && !vote.known);
}

/**
 * Whether this claim copies the job to an amnesiac database: when its counter was gone (the first
 * claim there since it lost its data) or when the claim found the slot free there. Otherwise
 * another claim is there first and copies it; this keeps a crowd of duplicates from all copying.
 */
export const needsRestore = (vote: Vote) => vote.counter === 0 || vote.reply.outcome === "claimed";

/** A state that says the slot is over (ran, failed for good, or cannot be vouched for). */
export const isFinal = (reply: ClaimReply | undefined) =>
  reply?.outcome === "taken" &&
  reply.state?.state !== "running" &&
  reply.state?.state !== "released";

/** The most final state any store reported, for an instance that did not win. */
export function lossReply(replies: readonly (ClaimReply | undefined)[]): ClaimReply | undefined {
  const rank = (reply: ClaimReply): number => {
    if (reply.outcome === "overlap") return 3;
    if (reply.outcome !== "taken") return 9;
    const state = reply.state?.state;
    if (state === "done" || state === "lost") return 0;
    if (state === "failed") return 1;
    if (state === "running") return 2;
    return 4;
  };
  let best: ClaimReply | undefined;
  for (const reply of replies) {
    if (!reply || rank(reply) === 9) continue;
    if (!best || rank(reply) < rank(best)) best = reply;
  }
  return best;
}

/** No token visible with a majority, and nothing done, failed or overlapping: a split vote. */
export function isSplit(replies: readonly (ClaimReply | undefined)[], majority: number): boolean {
  const holders = new Map<string, number>();
  for (const reply of replies) {
    if (!reply || reply.outcome === "claimed" || reply.outcome === "withdrawn") continue;
    if (reply.outcome !== "taken" || reply.state?.state !== "running") return false;
    const token = String(reply.state.token);
    holders.set(token, (holders.get(token) ?? 0) + 1);
  }
  return [...holders.values()].every((count) => count < majority);
}
