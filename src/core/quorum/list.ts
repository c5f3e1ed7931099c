/**
 * The registry merges that read the whole registry or its log: LIST merges every database's
 * registry record by record (HSCAN pages cannot be compared), EVENTS compares events by content
 * (stream ids are each database's own) and shows those a majority holds.
 */
import { StoreUnavailableError } from "../errors.js";
import type { LuaScript } from "../guard/scripts.js";
import { canonical, decodeSafely, gather, isOk } from "./answers.js";
import type { Quorum } from "./context.js";
import { repairSchedules, type ScheduleState, snapshots } from "./registry.js";

/**
 * `registry-list` (the registry's LIST) in quorum mode: ARGV cursor, count. HSCAN's cursors and
 * page order differ between databases even when they hold the same schedules, so pages cannot be compared: every page reads the whole registry from
 * every database (REGISTRY_SNAPSHOT_SCRIPT), takes each schedule's state from a majority
 * (repairing the databases that differ), sorts the ids and cuts the page out of that; the cursor
 * is the offset in the sorted ids. Cost: O(N) per page and database for N schedules (about
 * 300 bytes each: 1 000 schedules are ~300 kB per database per page). A schedule no majority
 * agrees on makes the whole page an error, never a page without it.
 */
export async function list(
  q: Quorum,
  script: LuaScript,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  const { majority, n, quorumError } = q;
  const registryKeys = keys.slice(0, 3);
  const offset = Number(args[0]);
  const count = Math.max(1, Number(args[1]));
  const { answers, states } = await snapshots(q, registryKeys, []);
  if (states.filter(Boolean).length < majority) throw quorumError(script.name, answers);
  const ids = [...new Set(states.flatMap((byId) => (byId ? [...byId.keys()] : [])))].sort();
  const agreed = await repairSchedules(q, registryKeys, ids, states);
  const undecided = ids.filter((id) => agreed.get(id) === undefined);
  if (undecided.length > 0) {
    throw new StoreUnavailableError(
      `quorum not reached for ${script.name}: no ${majority} of ${n} databases hold the same state of ${undecided.slice(0, 5).join(", ")}${undecided.length > 5 ? ", ..." : ""}`,
      { kind: "unreachable" },
    );
  }
  const items = ids.flatMap((id) => {
    const state = agreed.get(id) as ScheduleState;
    return state[1] === "" ? [] : [{ id, schedule: state[1], fire: state[2] || undefined }];
  });
  const page = items.slice(offset, offset + count);
  const next = offset + count < items.length ? String(offset + count) : "0";
  return { cursor: next, items: page };
}

/**
 * `registry-events` (the registry's EVENTS): stream ids are each database's own, so answers are
 * compared by content. An event is shown when a majority of databases holds it (same schedule, same event), newest first by its
 * id on the first database that holds it. Events are a log: they are not repaired.
 */
export async function events(
  q: Quorum,
  script: LuaScript,
  keys: string[],
  args: (string | number)[],
): Promise<unknown> {
  const { majority, onAll, quorumError } = q;
  const answers = await gather(onAll(script, keys, args));
  type Entry = { id: string; schedule: string; event: string };
  const lists = answers.map((answer) => {
    if (!isOk(answer)) return undefined;
    const reply = decodeSafely<Entry[] | object>(answer.value);
    return reply === undefined ? undefined : Array.isArray(reply) ? reply : [];
  });
  if (lists.filter(Boolean).length < majority) throw quorumError(script.name, answers);
  const held = new Map<string, { entry: Entry; count: number }>();
  for (const entries of lists) {
    if (!entries) continue;
    const seen = new Set<string>();
    for (const entry of entries) {
      const key = canonical([entry.schedule, entry.event]);
      if (seen.has(key)) continue;
      seen.add(key);
      const known = held.get(key) ?? { entry, count: 0 };
      known.count += 1;
      held.set(key, known);
    }
  }
  const idMs = (id: string) => id.split("-").map(Number) as [number, number];
  return [...held.values()]
    .filter((e) => e.count >= majority)
    .map((e) => e.entry)
    .sort((a, b) => {
      const [am, as] = idMs(a.id);
      const [bm, bs] = idMs(b.id);
      return bm - am || bs - as;
    });
}
