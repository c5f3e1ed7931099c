/**
 * The schedule registry's merges, by what its scripts declare. They run on every store and wait
 * for every answer (within the timeout). The result is the answer a majority of databases gave
 * identically (compared with object keys sorted); anything else (too few answers, or answers that
 * disagree with no majority among them) is a StoreUnavailableError of kind `unreachable`, never
 * one database's answer. A database that answered differently from the majority gets the
 * majority's state of the schedules the call concerned (read repair: REGISTRY_SNAPSHOT_SCRIPT
 * everywhere, then REGISTRY_REPAIR_SCRIPT, compare-and-set per schedule, on the databases that
 * differ). A write (`registry-write`: upsert, pause/resume, delete, advance) first reads its
 * schedule everywhere and runs only when a majority agrees on it (repairing the others first), so
 * a write can never land on a lone database while the others disagree and leave a schedule no
 * majority can settle. LIST and EVENTS are merged in list.ts. The registry is thereby replicated,
 * not linearizable: see docs/quorum.md.
 */
import type { LuaScript } from "../guard/scripts.js";
import { luaScript } from "../guard/scripts.js";
import { type GuardStore, runScript } from "../store.js";
import {
  type Answer,
  ask,
  canonical,
  decodeSafely,
  gather,
  isOk,
  majorityGroup,
} from "./answers.js";
import type { Quorum } from "./context.js";

/**
 * KEYS: definitions, due, fires (the registry's). ARGV: schedule ids; none for every id the
 * registry holds anywhere (definitions, fires or due). Read-only. Per id `[id, definition, fire,
 * due score]`, '' for an absent part: what the registry repair compares and copies.
 */
export const REGISTRY_SNAPSHOT_SCRIPT = luaScript(
  "quorum-registry-snapshot",
  `local ids = ARGV
if #ids == 0 then
  ids = {}
  local seen = {}
  local function add(list)
    for _, id in ipairs(list) do
      if not seen[id] then
        seen[id] = true
        ids[#ids + 1] = id
      end
    end
  end
  add(redis.call('HKEYS', KEYS[1]))
  add(redis.call('HKEYS', KEYS[3]))
  add(redis.call('ZRANGE', KEYS[2], 0, -1))
end
local out = {}
for i, id in ipairs(ids) do
  out[i] = { id, redis.call('HGET', KEYS[1], id) or '', redis.call('HGET', KEYS[3], id) or '',
    redis.call('ZSCORE', KEYS[2], id) or '' }
end
if #out == 0 then return '[]' end
return cjson.encode(out)`,
);

/**
 * KEYS: definitions, due, fires. ARGV: JSON `[[id, seen definition, seen fire, seen due, definition,
 * fire, due], ...]` ('' for absent). Registry read repair, compare-and-set per id: a schedule whose
 * state on this database is still what the quorum saw there gets the majority's state; one that
 * changed since (a write raced the repair) is left alone. The number of ids repaired.
 */
export const REGISTRY_REPAIR_SCRIPT = luaScript(
  "quorum-registry-repair",
  `local repaired = 0
for _, r in ipairs(cjson.decode(ARGV[1])) do
  local id = r[1]
  local def = redis.call('HGET', KEYS[1], id) or ''
  local fire = redis.call('HGET', KEYS[3], id) or ''
  local due = redis.call('ZSCORE', KEYS[2], id) or ''
  if def == r[2] and fire == r[3] and due == r[4] then
    if r[5] == '' then redis.call('HDEL', KEYS[1], id) else redis.call('HSET', KEYS[1], id, r[5]) end
    if r[6] == '' then redis.call('HDEL', KEYS[3], id) else redis.call('HSET', KEYS[3], id, r[6]) end
    if r[7] == '' then redis.call('ZREM', KEYS[2], id) else redis.call('ZADD', KEYS[2], r[7], id) end
    repaired = repaired + 1
  end
end
return repaired`,
);

/** One schedule's state on one database: [id, definition, fire, due], '' for absent. */
export type ScheduleState = [string, string, string, string];
const stateKey = (state: ScheduleState) => canonical([state[1], state[2], state[3]]);

/** Each answering database's state of `ids` (all schedules when empty), by database. */
export async function snapshots(
  q: Quorum,
  registryKeys: string[],
  ids: readonly string[],
): Promise<{
  answers: (Answer | undefined)[];
  states: (Map<string, ScheduleState> | undefined)[];
}> {
  const { onAll } = q;
  const answers = await gather(onAll(REGISTRY_SNAPSHOT_SCRIPT, registryKeys, [...ids]));
  const states = answers.map((answer) => {
    if (!isOk(answer)) return undefined;
    const rows = decodeSafely<ScheduleState[] | Record<string, never>>(answer.value);
    if (rows === undefined) return undefined;
    return new Map((Array.isArray(rows) ? rows : []).map((row) => [String(row[0]), row]));
  });
  return { answers, states };
}

/**
 * Per schedule id, the state a majority of databases holds (undefined when none does), and the
 * compare-and-set repairs that copy it to the databases holding something else. Runs them.
 */
export async function repairSchedules(
  q: Quorum,
  registryKeys: string[],
  ids: readonly string[],
  states: readonly (Map<string, ScheduleState> | undefined)[],
): Promise<Map<string, ScheduleState | undefined>> {
  const { majority, members, timeoutMs } = q;
  const agreed = new Map<string, ScheduleState | undefined>();
  const fixes: string[][][] = states.map(() => []);
  for (const id of ids) {
    const held = states.map((byId) =>
      byId ? (byId.get(id) ?? ([id, "", "", ""] as ScheduleState)) : undefined,
    );
    const group = majorityGroup(held, stateKey, majority);
    agreed.set(id, group?.value);
    if (!group) continue;
    held.forEach((state, i) => {
      if (state && stateKey(state) !== group.key) {
        fixes[i]?.push([
          id,
          state[1],
          state[2],
          state[3],
          group.value[1],
          group.value[2],
          group.value[3],
        ]);
      }
    });
  }
  const targets = fixes.flatMap((list, i) => (list.length > 0 ? [i] : []));
  await Promise.all(
    targets.map((i) =>
      ask(
        () =>
          runScript(members[i] as GuardStore, REGISTRY_REPAIR_SCRIPT, registryKeys, [
            JSON.stringify(fixes[i]),
          ]),
        `registry repair on store #${i + 1}`,
        timeoutMs,
      ),
    ),
  );
  return agreed;
}

/** Reads `ids` everywhere and repairs the databases that differ from the majority. */
async function repairIds(q: Quorum, registryKeys: string[], ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  const { states } = await snapshots(q, registryKeys, ids);
  await repairSchedules(q, registryKeys, ids, states);
}

/**
 * A registry script (`registry-write`, `registry-read`, `registry-items`): the answer a majority of
 * databases gave identically, else a StoreUnavailableError (never a minority's answer). Waits for
 * every database (within the timeout) so that one that answered differently is seen: the
 * schedules the call concerned are then read everywhere and the majority's state copied to the
 * databases that differ.
 */
export async function registryCall(
  q: Quorum,
  script: LuaScript,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  const { disagreement, majority, onAll } = q;
  const merge = script.quorum?.merge;
  const registryKeys = keys.slice(0, 3);
  if (merge === "registry-write") {
    // Writes only where a majority agrees on the schedule's state (the others repaired first):
    // a write that reached a lone database while the others disagreed or were down would leave
    // three different states, and no majority could ever settle that schedule again.
    const id = String(args[0]);
    const { answers: read, states } = await snapshots(q, registryKeys, [id]);
    const agreed = await repairSchedules(q, registryKeys, [id], states);
    if (agreed.get(id) === undefined) throw disagreement(`${script.name} (reading ${id})`, read);
  }
  const answers = await gather(onAll(script, keys, args));
  const answered = answers.map((a) => (isOk(a) ? a : undefined));
  const agreed = majorityGroup(answered, (a) => canonical(a.value), majority);
  if (!agreed) throw disagreement(script.name, answers);
  if (agreed.count < answered.filter(Boolean).length) {
    let ids: string[] = [];
    if (merge === "registry-write" || merge === "registry-read") ids = [String(args[0])];
    else if (merge === "registry-items") {
      const seen = new Set<string>();
      for (const answer of answered) {
        const reply = answer && decodeSafely<{ items?: { id?: unknown }[] | object }>(answer.value);
        const items = reply && Array.isArray(reply.items) ? reply.items : [];
        for (const item of items) if (typeof item.id === "string") seen.add(item.id);
      }
      ids = [...seen];
    }
    await repairIds(q, registryKeys, ids);
  }
  return agreed.value.value;
}
