/**
 * Job repair: copying a job as one database knows it to databases that lost it (amnesiac: they
 * lost their data or missed every run so far) or missed some of its writes (lagging). The fence
 * counter, live slot states, running key, ledger and the quorum marker are copied; the claim and
 * the completion call it when their answers show a database missing what another holds. So one
 * database that lost its data is repaired by the next claim of each job, and a second loss later
 * does not undo a run.
 */
import { luaScript } from "../guard/scripts.js";
import { type GuardStore, runScript } from "../store.js";
import { type Answer, ask, gather, isOk } from "./answers.js";
import type { Quorum } from "./context.js";
import { type ClaimReply, isFinal, needsRestore, type Vote, voteOf } from "./votes.js";

/**
 * KEYS: fence, slot index, running, ledger, quorum marker. ARGV: slot key prefix. Read-only.
 * What a database knows about a job, for copying it to one that lost it: the fence counter, every
 * indexed slot with its state and remaining TTL, the running key, the ledger (flat).
 */
export const JOB_SNAPSHOT_SCRIPT = luaScript(
  "quorum-job-snapshot",
  `local slots = {}
local index = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #index, 2 do
  local key = ARGV[1] .. index[i]
  slots[#slots + 1] = { index[i], index[i + 1], redis.call('GET', key) or '', redis.call('PTTL', key) }
end
return cjson.encode({ fence = tonumber(redis.call('GET', KEYS[1]) or '0'), slots = slots,
  running = redis.call('GET', KEYS[3]) or '', runningPttl = redis.call('PTTL', KEYS[3]),
  ledger = redis.call('HGETALL', KEYS[4]), ledgerPttl = redis.call('PTTL', KEYS[4]) })`,
);

/**
 * KEYS: fence, slot index, running, ledger, quorum marker. ARGV: snapshot JSON (from
 * JOB_SNAPSHOT_SCRIPT on a database that holds the job's history), slot key prefix, mode
 * ("amnesiac" | "lagging"), fence floor.
 * Job repair. Raises the fence counter to the snapshot's and the floor, copies slot states that
 * still live (SET NX: never over a claim made since) and indexes them, and copies the ledger.
 * An amnesiac database (it lost its data: what it holds was written after the loss) also gets the
 * running claims and the ledger's bookkeeping fields overwritten; a lagging one (it only missed
 * some writes) gets finished slots and missing ledger fields only. Marks the database as holding
 * the job's history. The number of slot states copied.
 */
export const JOB_RESTORE_SCRIPT = luaScript(
  "quorum-job-restore",
  `local snap = cjson.decode(ARGV[1])
local amnesiac = ARGV[3] == 'amnesiac'
local floor = math.max(tonumber(snap.fence) or 0, tonumber(ARGV[4]) or 0)
if tonumber(redis.call('GET', KEYS[1]) or '0') < floor then
  redis.call('SET', KEYS[1], string.format('%d', floor))
end
local copied = 0
if type(snap.slots) == 'table' then
  for _, s in ipairs(snap.slots) do
    local raw, pttl = s[3], tonumber(s[4]) or -2
    local running = false
    if raw ~= '' then
      local ok, state = pcall(cjson.decode, raw)
      running = ok and type(state) == 'table' and state.state == 'running'
    end
    if raw ~= '' and pttl > 0 and (amnesiac or not running) then
      if redis.call('SET', ARGV[2] .. s[1], raw, 'NX', 'PX', pttl) then copied = copied + 1 end
      redis.call('ZADD', KEYS[2], s[2], s[1])
    end
  end
end
local runningPttl = tonumber(snap.runningPttl) or -2
if amnesiac and snap.running ~= '' and runningPttl > 0 then
  redis.call('SET', KEYS[3], snap.running, 'NX', 'PX', runningPttl)
end
local ledger = snap.ledger
if type(ledger) == 'table' and #ledger > 0 then
  for i = 1, #ledger, 2 do
    if amnesiac then
      redis.call('HSET', KEYS[4], ledger[i], ledger[i + 1])
    else
      redis.call('HSETNX', KEYS[4], ledger[i], ledger[i + 1])
    end
  end
  local pttl = tonumber(snap.ledgerPttl) or -1
  if pttl > 0 and pttl > redis.call('PTTL', KEYS[4]) then redis.call('PEXPIRE', KEYS[4], pttl) end
end
redis.call('SET', KEYS[5], '1')
return copied`,
);

/** The job's key names, derived from its fence key (`<prefix>:{<job>}:fence`). */
export function jobKeyNames(keys: readonly string[]) {
  const fenceIndex = Math.max(
    0,
    keys.findIndex((key) => key.endsWith(":fence")),
  );
  const named = keys.find((key) => /:(fence|runs)$/.test(key)) ?? keys[fenceIndex] ?? "";
  const base = named.replace(/:(fence|runs)$/, "");
  return {
    fenceIndex,
    fence: `${base}:fence`,
    runs: `${base}:runs`,
    marker: `${base}:quorum`,
    slotIndex: `${base}:slots`,
    running: `${base}:running`,
    ledger: `${base}:ledger`,
    slotPrefix: `${base}:slot:`,
  };
}

/**
 * Copies the job as database `source` knows it to `targets` (JOB_SNAPSHOT_SCRIPT, then
 * JOB_RESTORE_SCRIPT); best effort. Resolves to the targets that confirmed.
 */
export async function restoreJob(
  q: Quorum,
  keys: readonly string[],
  source: number,
  targets: readonly { index: number; mode: "amnesiac" | "lagging" }[],
  floor: number,
): Promise<number[]> {
  const { members, onAll, timeoutMs } = q;
  if (targets.length === 0) return [];
  const names = jobKeyNames(keys);
  const jobKeys = [names.fence, names.slotIndex, names.running, names.ledger, names.marker];
  const [snapshot] = await gather(
    onAll(JOB_SNAPSHOT_SCRIPT, jobKeys, [names.slotPrefix], timeoutMs, [source]),
  );
  if (!isOk(snapshot)) return [];
  const snapshotJson =
    typeof snapshot.value === "string" ? snapshot.value : JSON.stringify(snapshot.value);
  const restored = await Promise.all(
    targets.map(({ index, mode }) =>
      ask(
        () =>
          runScript(members[index] as GuardStore, JOB_RESTORE_SCRIPT, jobKeys, [
            snapshotJson,
            names.slotPrefix,
            mode,
            floor,
          ]),
        `job repair on store #${index + 1}`,
        timeoutMs,
      ),
    ),
  );
  return targets.flatMap(({ index }, i) => (isOk(restored[i]) ? [index] : []));
}

/** See `claim`: repairs databases that answered after the loss was decided, if amnesiac. */
export function repairLate(
  q: Quorum,
  keys: string[],
  votes: readonly (Vote | undefined)[],
  amnesiac: readonly boolean[],
  withdrawn: Promise<void>,
  late: readonly { index: number; call: Promise<Answer> | undefined }[],
): void {
  const knowing = votes.flatMap((vote, i) => (vote?.known && !amnesiac[i] ? [i] : []));
  if (knowing.length === 0) return;
  const source = knowing.reduce((best, i) =>
    (votes[i] as Vote).counter > (votes[best] as Vote).counter ? i : best,
  );
  for (const { index, call } of late) {
    void call?.then(async (answer) => {
      const vote = voteOf(answer);
      if (!vote || vote.known || !needsRestore(vote)) return;
      await withdrawn;
      await restoreJob(
        q,
        keys,
        source,
        [{ index, mode: "amnesiac" }],
        (votes[source] as Vote).counter,
      );
    });
  }
}

/**
 * After a lost claim (our claims already withdrawn): amnesiac databases get the job copied from
 * the most advanced database that holds its history; when a database holds the slot's final
 * outcome, the others that answered `claimed` (they had forgotten or never had it) get it too.
 */
export async function repairAfterLoss(
  q: Quorum,
  keys: string[],
  votes: readonly (Vote | undefined)[],
  amnesiac: readonly boolean[],
  replies: readonly (ClaimReply | undefined)[],
  claimed: readonly number[],
): Promise<void> {
  const knowing = votes.flatMap((vote, i) => (vote && !amnesiac[i] ? [i] : []));
  if (knowing.length === 0) return;
  const finalAt = replies.findIndex(isFinal);
  const source =
    finalAt >= 0
      ? finalAt
      : knowing.reduce((best, i) =>
          (votes[i] as Vote).counter > (votes[best] as Vote).counter ? i : best,
        );
  const targets = [
    ...votes.flatMap((vote, i) =>
      amnesiac[i] && vote && needsRestore(vote) ? [{ index: i, mode: "amnesiac" as const }] : [],
    ),
    ...(finalAt >= 0
      ? claimed
          .filter((i) => !amnesiac[i] && i !== finalAt)
          .map((index) => ({ index, mode: "lagging" as const }))
      : []),
  ];
  const floor = Math.max(0, ...knowing.map((i) => (votes[i] as Vote).counter));
  await restoreJob(q, keys, source, targets, floor);
}
