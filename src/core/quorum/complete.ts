/**
 * The merges of the guard's other scripts, by what they declare (`quorum: { merge: ... }`):
 * - `complete`: `recorded` with a majority of `recorded`, `lost` with a majority of `lost`, else a
 *   store error (the guard retries completions). A database that forgot the slot gets the recorded
 *   state and the job copied to it.
 * - `extend`: 1 with a majority of 1s, 0 with a majority of 0s, else a store error (the lease keeper
 *   treats it as a hiccup: its deadline decides). The lease asked for is lengthened by the clock
 *   drift allowance (see context.ts).
 * - `withdraw`: done when a majority confirmed (1 when any store held the claim).
 * - `status` (read-only): needs a majority of answers; returns the answer of the store with the
 *   highest fence counter (the most up-to-date one; a store that lost its data has a lower one),
 *   with `fence` the maximum.
 */
import { type LuaScript, luaScript } from "../guard/scripts.js";
import { type Answer, decodeSafely, gather, isOk } from "./answers.js";
import type { Quorum } from "./context.js";
import { restoreJob } from "./job-repair.js";

/**
 * KEYS: slot. ARGV: state JSON, ttl ms. Read repair after a completion: gives a database that lost
 * the slot key the state the majority recorded, unless the key exists again.
 */
export const REPAIR_SCRIPT = luaScript(
  "quorum-repair",
  `return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])`,
);

/**
 * Waits for every store (within the timeout), not just a majority: a store that answered `lost`
 * with no holder while the majority recorded the run lost its data (flushed, failed over without
 * persistence); it gets the recorded state back with SET NX (read repair), so a second database
 * failing later does not leave a majority that forgot the slot.
 */
export async function complete(
  q: Quorum,
  script: LuaScript,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  const { majority, onAll, quorumError, timeoutMs } = q;
  const answers = await gather(onAll(script, keys, args));
  const outcomeOf = (a: Answer | undefined) =>
    isOk(a) ? decodeSafely<{ outcome?: string }>(a.value)?.outcome : undefined;
  const count = (outcome: string) => answers.filter((a) => outcomeOf(a) === outcome).length;
  if (count("recorded") >= majority) {
    const recorded = answers.find((a) => outcomeOf(a) === "recorded") as { value: unknown };
    const state = decodeSafely<{ state?: unknown }>(recorded.value)?.state;
    const forgot = answers.flatMap((a, i) => {
      if (!isOk(a)) return [];
      const reply = decodeSafely<{ outcome?: string; holder?: unknown }>(a.value);
      return reply?.outcome === "lost" && reply.holder == null ? [i] : [];
    });
    if (state && forgot.length > 0) {
      await gather(
        onAll(
          REPAIR_SCRIPT,
          [keys[0] ?? ""],
          [JSON.stringify(state), Number(args[2])],
          timeoutMs,
          forgot,
        ),
      );
      // The completion just wrote run history there, which marks a database as holding the
      // job's history: make that true (its ledger, other slots, fence counter).
      const source = answers.findIndex((a) => outcomeOf(a) === "recorded");
      await restoreJob(
        q,
        keys,
        source,
        forgot.map((index) => ({ index, mode: "lagging" as const })),
        0,
      );
    }
    return recorded.value;
  }
  if (count("lost") >= majority) {
    return (answers.find((a) => outcomeOf(a) === "lost") as { value: unknown }).value;
  }
  throw quorumError("complete", answers, ` without a majority for recorded or lost`);
}

export async function extend(
  q: Quorum,
  script: LuaScript,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  const { driftOf, majority, onAll, quorumError } = q;
  const leaseMs = Number(args[1]);
  const extendArgs = [...args];
  extendArgs[1] = leaseMs + driftOf(leaseMs);
  const count = (so: readonly (Answer | undefined)[], value: number) =>
    so.filter((a) => isOk(a) && Number(a.value) === value).length;
  const answers = await gather(
    onAll(script, keys, extendArgs),
    (so) => count(so, 1) >= majority || count(so, 0) >= majority,
  );
  if (count(answers, 1) >= majority) return 1;
  if (count(answers, 0) >= majority) return 0;
  throw quorumError("extend", answers, ` without a majority of 1s or of 0s`);
}

export async function withdraw(
  q: Quorum,
  script: LuaScript,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  const { majority, onAll, quorumError } = q;
  const answers = await gather(onAll(script, keys, args));
  if (answers.filter(isOk).length < majority) throw quorumError("withdraw", answers);
  return answers.some((a) => isOk(a) && Number(a.value) === 1) ? 1 : 0;
}

export async function status(
  q: Quorum,
  script: LuaScript,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  const { majority, onAll, quorumError } = q;
  const answers = await gather(onAll(script, keys, args));
  const replies = answers.flatMap((a) => {
    const reply = isOk(a) ? decodeSafely<{ fence?: number }>(a.value) : undefined;
    return reply ? [reply] : [];
  });
  if (replies.length < majority) throw quorumError("status", answers);
  const fenceOf = (reply: { fence?: number }) => Number(reply.fence ?? 0);
  const freshest = replies.reduce((best, reply) => (fenceOf(reply) > fenceOf(best) ? reply : best));
  return { ...freshest, fence: fenceOf(freshest) };
}
