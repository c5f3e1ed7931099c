/**
 * The claim across the quorum (the merge a script declares with `quorum: { merge: "claim" }`:
 * the guard's CLAIM_SCRIPT).
 *
 * CLAIM runs on every store in parallel, each with a per-store timeout, as a quorum-only wrapper
 * around CLAIM_SCRIPT's own source that also reads, atomically, the job's fence counter and
 * whether the database holds the job's history (its run history stream or the quorum marker
 * `<prefix>:{<job>}:quorum` exists). A database that holds none of it while another answering
 * one does is amnesiac (it lost its data, or missed every run so far): its `claimed` is no vote.
 * The claim wins when a majority answers `claimed` for our token with votes, no database
 * answered that the slot is over (`taken` with a final state: done, failed, lost, unvouched,
 * vetoes, because such a state is only written for a run that happened), and every database
 * answered or timed out (a winner waits up to the timeout: after a flush, one database may be the
 * only one left that knows the slot ran). A loss is decided as soon as it is certain. A minority
 * win is rolled back with WITHDRAW (compare-and-delete on the token). When the vote was split (no
 * token holds a majority and nothing is over yet) the instances that won a minority roll back,
 * wait a random moment and try again (Redlock's retry), a few times and within a quarter of the
 * lease. Otherwise the answer is `taken` with the most final state a database that holds the
 * job's history reported (done/lost > failed > running > overlap > anything else). Too few
 * answers to tell is a store error (StoreUnavailableError through the guard, 503 under the
 * closed policy).
 * Fences: 1 + the largest counter any answering database held before the claim, and every
 * answering database is raised to it before the claim returns; the rule and its proof are beside
 * `won`. Fences strictly increase from one claim of a job to the next under one fault at a time,
 * a flushed database included.
 * Repair: an amnesiac database gets the job copied from the most advanced database that holds
 * its history (JOB_SNAPSHOT_SCRIPT, JOB_RESTORE_SCRIPT: fence counter, live slot states,
 * running key, ledger, marker); a database that answered `claimed` while another holds the
 * slot's final outcome gets that outcome (and the finished slots and ledger entries it lacks).
 * So one database that lost its data is repaired by the next claim of each job, and a second
 * loss later does not undo a run.
 */
import { StoreUnavailableError } from "../errors.js";
import type { LuaScript } from "../guard/scripts.js";
import { luaScript, WITHDRAW_SCRIPT } from "../guard/scripts.js";
import { sleep } from "../sleep.js";
import { runScript } from "../store.js";
import { type Answer, ask, gather, isOk } from "./answers.js";
import type { Quorum } from "./context.js";
import { jobKeyNames, repairAfterLoss, repairLate, restoreJob } from "./job-repair.js";
import {
  amnesiacOf,
  type ClaimReply,
  isFinal,
  isSplit,
  lossReply,
  needsRestore,
  type Vote,
  voteOf,
} from "./votes.js";

/**
 * KEYS: fence, quorum marker. ARGV: floor, "1" to set the marker. Raises the fence counter to
 * `floor` when it is lower (every claim raises every database that answered it, see `won`) and
 * marks the database as holding the job's history; the counter's new value.
 */
export const FENCE_FLOOR_SCRIPT = luaScript(
  "quorum-fence-floor",
  `local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if ARGV[2] == '1' then redis.call('SET', KEYS[2], '1') end
if current < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  return floor
end
return current`,
);

/**
 * The claim as the quorum runs it on each database: the claim script's own source, unchanged, run as a
 * function, with two facts read atomically before it: the job's fence counter and whether this
 * database holds the job's history (its run history stream or the quorum marker exists). KEYS: the
 * claim's own, then runs, quorum marker. Reply `[counter before, known 0|1, claim reply]`.
 * Built per position of the fence key among the claim's KEYS (found by its `:fence` suffix).
 */
const claimWrappers = new WeakMap<LuaScript, Map<string, LuaScript>>();
function quorumClaimScript(
  claimScript: LuaScript,
  fenceIndex: number,
  keyCount: number,
): LuaScript {
  let wrappers = claimWrappers.get(claimScript);
  if (!wrappers) {
    wrappers = new Map();
    claimWrappers.set(claimScript, wrappers);
  }
  const id = `${fenceIndex}/${keyCount}`;
  let script = wrappers.get(id);
  if (!script) {
    script = luaScript(
      "quorum-claim",
      `local counter = tonumber(redis.call('GET', KEYS[${fenceIndex + 1}]) or '0') or 0
local known = 0
if redis.call('EXISTS', KEYS[${keyCount + 1}]) == 1 or redis.call('EXISTS', KEYS[${keyCount + 2}]) == 1 then
  known = 1
end
local reply = (function()
${claimScript.source}
end)()
return { counter, known, reply }`,
    );
    wrappers.set(id, script);
  }
  return script;
}

/** Claim attempts after split votes, at most, and the share of the lease they may take. */
const MAX_CLAIM_ATTEMPTS = 5;
const CLAIM_RETRY_LEASE_SHARE = 0.25;
/** Same as the guard's: a withdrawn claim's marker outlives any late copy of it. */
const WITHDRAWN_MARKER_MIN_MS = 600_000;

/** Withdraws our claim on `indexes`; best effort (an unreachable store frees itself at lease end). */
async function rollback(
  q: Quorum,
  keys: string[],
  token: string,
  leaseMs: number,
  indexes: readonly number[],
  marker: "final" | "retry",
): Promise<void> {
  const { onAll, timeoutMs } = q;
  if (indexes.length === 0) return;
  const [slotKey = "", , , runningKey = "", markerKey = ""] = keys;
  // A retry keeps the token claimable, so it leaves its marker under a key the claim ignores.
  const markerKeys = marker === "final" ? markerKey : `${markerKey}:retry`;
  const markerTtlMs = marker === "final" ? Math.max(2 * leaseMs, WITHDRAWN_MARKER_MIN_MS) : 1;
  await gather(
    onAll(
      WITHDRAW_SCRIPT,
      [slotKey, runningKey, markerKeys],
      [token, markerTtlMs],
      timeoutMs,
      indexes,
    ),
  );
}

/**
 * A majority of databases that hold the job's history claimed with our token, none said the
 * slot is over, and every database answered or timed out. The fencing token and the repairs.
 *
 * The rule: the fence is 1 + the largest fence counter that ANY answering database held just
 * before the claim ran there (read atomically by the claim), whatever it answered; before the
 * claim returns, every answering database's counter is raised to the fence (FENCE_FLOOR_SCRIPT;
 * amnesiac ones get the job copied to them as well), and at least a majority must confirm, else
 * the claim fails. A counter only ever goes up, except when its database loses its data.
 *
 * Proof that fences strictly increase from one claim of a job to the next (the next starts after
 * the previous returned), under one fault at a time, a flushed database included:
 * (1) When claim k returns fence F, a set H of at least a majority of databases holds counter
 *     >= F. (2) Between claims k and k+1 at most one database is faulty at a time: it was down
 *     or slow (it keeps its counter) or lost its data (its counter restarts). A lost database is
 *     faulty until the next claim repairs it, so by claim k+1 at most one database of H lost its
 *     counter; H has at least 2 members (n >= 3), so some database A of H still holds >= F.
 *     (3) Claim k+1 waits for every database that answers within the timeout; under one fault
 *     at a time only the faulty database may be missing, and that is not A (A kept its data and
 *     is not the fault), so A answers, and the fence of claim k+1 is >= A's counter + 1 > F.
 *     A database that lagged (it missed claim k) is below F, but it only lowers nothing: the
 *     fence is a maximum. Claims of different slots that overlap in time are not ordered by this:
 *     two concurrent claims may share a fence (one database's INCR keeps them apart; a quorum's
 *     maximum does not). Sequential claims, the case a fenced downstream write relies on, are.
 */
async function won(
  q: Quorum,
  keys: string[],
  votes: readonly (Vote | undefined)[],
  amnesiac: readonly boolean[],
  leaseMs: number,
): Promise<ClaimReply> {
  const { majority, onAll, quorumError, timeoutMs } = q;
  const answering = votes.flatMap((vote, i) => (vote ? [i] : []));
  const fence = 1 + Math.max(0, ...answering.map((i) => (votes[i] as Vote).counter));
  const after = (i: number) => {
    const vote = votes[i] as Vote;
    return vote.reply.outcome === "claimed" && !vote.reply.retried
      ? vote.counter + 1
      : vote.counter;
  };
  const anyKnown = votes.some((vote) => vote?.known === true);
  const restore = answering.filter((i) => amnesiac[i] && needsRestore(votes[i] as Vote));
  const raise = answering.filter(
    (i) => !restore.includes(i) && (after(i) < fence || (!anyKnown && !(votes[i] as Vote).known)),
  );
  const holding = answering.filter((i) => !amnesiac[i] && !raise.includes(i));
  const names = jobKeyNames(keys);
  const source = answering
    .filter((i) => !amnesiac[i])
    .reduce((best, i) => ((votes[i] as Vote).counter > (votes[best] as Vote).counter ? i : best));
  const [raised, restored] = await Promise.all([
    gather(
      onAll(
        FENCE_FLOOR_SCRIPT,
        [names.fence, names.marker],
        [fence, anyKnown ? "0" : "1"],
        timeoutMs,
        raise,
      ),
    ),
    restoreJob(
      q,
      keys,
      source,
      restore.map((index) => ({ index, mode: "amnesiac" as const })),
      fence,
    ),
  ]);
  const confirmed =
    holding.length +
    raise.filter((i, k) => !amnesiac[i] && isOk(raised[k])).length +
    restored.length;
  if (confirmed < majority) {
    throw quorumError(
      "claim (fence)",
      raised,
      ` to raising the fence counter to ${fence} (${holding.length} already had it${anyKnown ? "" : ", a new job"})`,
    );
  }
  const base = (votes[answering.find((i) => votes[i]?.reply.outcome === "claimed") ?? 0] as Vote)
    .reply;
  return { ...base, state: { ...base.state, fence }, pttl: leaseMs };
}

/**
 * A claim needs a majority of votes: `claimed` from databases that hold the job's history
 * (an amnesiac database's `claimed` is no vote). A winner waits for every database's answer
 * (within the claim timeout), because one database may be the only one left that knows the
 * slot is over: a `taken` with a final state from any database vetoes the claim (such a state is
 * only ever written for a run that happened, or by a repair that copies one). A loser decides as
 * soon as its loss is certain. Either way, what the answers show missing is repaired: amnesiac
 * databases get the job copied from the most advanced one, and databases that answered
 * `claimed` while another holds the slot's final outcome get that outcome.
 */
export async function claim(
  q: Quorum,
  script: LuaScript,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  const { driftOf, majority, members, quorumError, timeoutMs } = q;
  const token = String(args[0]);
  const leaseMs = Number(args[1]);
  const claimArgs = [...args];
  claimArgs[1] = leaseMs + driftOf(leaseMs);
  const claimTimeoutMs = Math.max(1, Math.min(timeoutMs, Math.floor(leaseMs / 2)));
  const startedAtMs = Date.now();
  const names = jobKeyNames(keys);
  const claimScript = quorumClaimScript(script, names.fenceIndex, keys.length);
  const claimKeys = [...keys, names.runs, names.marker];
  // Stores that gave no answer in an earlier round: our claim may still land there, so they got a
  // withdrawal and sit out the retries (they would answer `withdrawn`).
  const excluded = new Set<number>();
  const counts = (so: readonly (Answer | undefined)[]) => {
    let claimed = 0;
    let pending = 0;
    let usable = 0;
    let final = false;
    for (const answer of so) {
      if (answer === undefined) pending += 1;
      const reply = voteOf(answer)?.reply;
      if (reply?.outcome === "claimed") claimed += 1;
      // `withdrawn` only refuses this token (our own withdrawal): no usable answer.
      if (reply && reply.outcome !== "withdrawn") usable += 1;
      if (isFinal(reply)) final = true;
    }
    return { claimed, pending, usable, final };
  };
  for (let attempt = 1; ; attempt += 1) {
    const roundStartMs = Date.now();
    const calls = members.map((member, i) =>
      excluded.has(i)
        ? Promise.resolve<Answer>({
            ok: false,
            error: new StoreUnavailableError(`claim on store #${i + 1}: no answer earlier`, {
              kind: "unreachable",
            }),
          })
        : ask(
            () => runScript(member, claimScript, claimKeys, claimArgs),
            `claim on store #${i + 1}`,
            claimTimeoutMs,
          ),
    );
    const answers = await gather(calls, (so) => {
      const { claimed, pending, usable, final } = counts(so);
      // Lost for sure with a majority of answers to tell why (no need to wait for a slow one),
      // or some database holds the slot's outcome. A win waits for every answer.
      return (claimed + pending < majority && usable >= majority) || (final && usable >= majority);
    });
    const votes = answers.map(voteOf);
    const amnesiac = amnesiacOf(votes);
    // What databases that hold the job's history say; an amnesiac one's answer tells nothing.
    const replies = votes.map((vote, i) => (vote && !amnesiac[i] ? vote.reply : undefined));
    const claimed = votes.flatMap((v, i) => (v?.reply.outcome === "claimed" ? [i] : []));
    const voting = claimed.filter((i) => !amnesiac[i]);
    const veto = replies.some(isFinal);
    if (!veto && voting.length >= majority) return won(q, keys, votes, amnesiac, leaseMs);

    // Enough answers to tell a loss: any database's, amnesiac ones included (refusing to run is
    // always safe); the reason comes from those that hold the job's history when one does.
    const usable = votes.filter((v) => v && v.reply.outcome !== "withdrawn").length;
    const unanswered = answers.flatMap((a, i) => (isOk(a) || excluded.has(i) ? [] : [i]));
    for (const i of unanswered) excluded.add(i);
    // Not awaited: such a store is slow or down, and a claim of ours that lands there anyway is a
    // minority that expires with the lease. The marker makes a late copy refuse.
    const withdrawn = rollback(q, keys, token, leaseMs, unanswered, "final");
    // A loser decides without waiting for a slow database; should that one turn out amnesiac,
    // it is repaired once it answered and our claim there is withdrawn (not awaited either).
    repairLate(
      q,
      keys,
      votes,
      amnesiac,
      withdrawn,
      unanswered.map((i) => ({ index: i, call: calls[i] })),
    );
    const roundMs = Date.now() - roundStartMs;
    const backoffMs = Math.floor(Math.random() * (2 * roundMs + 10));
    const retry =
      !veto &&
      usable >= majority &&
      claimed.length > 0 &&
      attempt < MAX_CLAIM_ATTEMPTS &&
      isSplit(replies, majority) &&
      Date.now() - startedAtMs + backoffMs + roundMs < leaseMs * CLAIM_RETRY_LEASE_SHARE;
    await rollback(q, keys, token, leaseMs, claimed, retry ? "retry" : "final");
    await repairAfterLoss(q, keys, votes, amnesiac, replies, claimed);
    if (retry) {
      await sleep(backoffMs);
      continue;
    }
    const loss =
      usable >= majority
        ? (lossReply(replies) ?? lossReply(votes.map((vote) => vote?.reply)))
        : undefined;
    if (!loss) {
      throw quorumError(
        "claim",
        answers.map((a, i) =>
          votes[i]?.reply.outcome === "withdrawn"
            ? {
                ok: false,
                error: new StoreUnavailableError("withdrawn earlier in this call", {
                  kind: "unreachable",
                }),
              }
            : a,
        ),
      );
    }
    return loss;
  }
}
